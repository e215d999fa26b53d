/* SPDX-License-Identifier: MIT */
/*
 * coev/version.h — the version of the headers a program is built with.
 *
 * This file is the one source of the version: the Makefile reads
 * COEV_VERSION_MAJOR, _MINOR and _PATCH from it (for the library's file
 * names, coev.pc and the trace's metadata), so the numbers are written
 * nowhere else. The macros describe the headers; coev_version() and
 * coev_version_number() describe the library the program runs with, which
 * may be a newer one (a shared library upgraded under the program). What
 * a version number promises is in docs/ABI.md.
 */
#ifndef COEV_VERSION_H
#define COEV_VERSION_H

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define COEV_VERSION_MAJOR 0
#define COEV_VERSION_MINOR 1
#define COEV_VERSION_PATCH 0

/* The two-step expansion turns the numbers above into one string. */
#define COEV__STR2(x) #x
#define COEV__STR(x) COEV__STR2(x)
#define COEV_VERSION_STRING           \
	COEV__STR(COEV_VERSION_MAJOR) \
	"." COEV__STR(COEV_VERSION_MINOR) "." COEV__STR(COEV_VERSION_PATCH)

/* One integer that orders versions: 0.1.0 is 100, 1.2.3 is 10203. */
#define COEV__VERSION_ENCODE(maj, min, pat) ((maj)*10000 + (min)*100 + (pat))
#define COEV_VERSION_NUMBER                                          \
	COEV__VERSION_ENCODE(COEV_VERSION_MAJOR, COEV_VERSION_MINOR, \
			     COEV_VERSION_PATCH)

/*
 * COEV_VERSION_AT_LEAST(maj, min, pat) — 1 in #if when the headers are
 * version maj.min.pat or later, else 0, so a program can use a newer call
 * only where it exists:
 *   #if COEV_VERSION_AT_LEAST(0, 2, 0)
 */
#define COEV_VERSION_AT_LEAST(maj, min, pat) \
	(COEV_VERSION_NUMBER >= COEV__VERSION_ENCODE(maj, min, pat))

/*
 * coev_version — the version of the running library as "MAJOR.MINOR.PATCH"
 * (COEV_VERSION_STRING as the library was built). Returns a static
 * string, never NULL. Any thread; never fails; never allocates.
 * coev_version_number — the same as one integer (COEV_VERSION_NUMBER as
 * the library was built). Compare it with COEV_VERSION_NUMBER to tell a
 * library newer than the headers the program was built with.
 */
COEV_API const char *coev_version(void);
COEV_API int coev_version_number(void);

#ifdef __cplusplus
}
#endif

#endif
