/* SPDX-License-Identifier: MIT */
/*
 * coev.h — the umbrella header: include this one.
 *
 * coev is a multi-threaded, work-stealing runtime for stackful coroutines:
 * per-core event loops run tasks, idle workers steal from busy ones.
 *
 * It declares nothing itself, so it has no extern "C" block: each header
 * it includes has its own, and a C++ program may include any of them.
 */
#ifndef COEV_H
#define COEV_H

#include "coev/version.h"
#include "coev/error.h"
#include "coev/time.h"
#include "coev/runtime.h"
#include "coev/task.h"
#include "coev/local.h"
#include "coev/scope.h"
#include "coev/io.h"
#include "coev/stream.h"
#include "coev/signal.h"
#include "coev/process.h"
#include "coev/blocking.h"
#include "coev/sync.h"
#include "coev/chan.h"
#include "coev/broadcast.h"
#include "coev/latest.h"
#include "coev/future.h"
#include "coev/select.h"
#include "coev/bridge.h"
#include "coev/debug.h"

#endif
