/* SPDX-License-Identifier: MIT */
/*
 * observe/symbol.h — naming code addresses for debug output (observe/symbol.c):
 * "function+0xoff (object)", static functions included, with libc alone.
 * Not installed.
 */
#ifndef COEV_SCHED_SYMBOL_H
#define COEV_SCHED_SYMBOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * coev__symbolise — describe the code address pc in buf, in the first form
 * that applies:
 *   "name+0xOFF (object)"   a function symbol of the object's symbol table
 *                           (or dladdr's exported name) covers pc;
 *   "0xPC (object+0xOFF)"   pc is in a loaded object but no function is
 *                           known; OFF is what `addr2line -e object` takes;
 *   "0xPC"                  pc is in no loaded object.
 * object is the file's base name. ret_addr says that pc is a return
 * address, which points just after its call instruction and so may already
 * be in the next function: then pc - 1 is looked up, while pc itself is
 * printed and offsets are measured to pc. Garbage addresses (0, heap,
 * stack) give one of the forms above, never a fault.
 *
 * buf is always NUL-terminated when len > 0, truncated to len - 1
 * characters; len 0 writes nothing. Returns the length written (strlen of
 * buf, 0 when len is 0).
 *
 * Any thread; takes a process-wide mutex and the loader's lock; may block
 * in open/mmap; maps (never mallocs) each object file on its first use and
 * keeps up to 16 such mappings for the life of the process. Not
 * async-signal-safe: never call it from a signal handler.
 */
size_t coev__symbolise(uintptr_t pc, bool ret_addr, char *buf, size_t len);

/*
 * coev__function_start — the address where the function holding pc
 * starts, from the same symbol tables, or 0 when no function is known.
 * Threads and costs as coev__symbolise.
 */
uintptr_t coev__function_start(uintptr_t pc);

#endif
