/* SPDX-License-Identifier: MIT */
/*
 * sched/version.c — coev_version and coev_version_number: the version the
 * library was built as, from coev/version.h, so that a program can compare
 * it with the COEV_VERSION_* macros of the headers it was built with.
 */
#include "coev/version.h"

const char *coev_version(void)
{
	return COEV_VERSION_STRING;
}

int coev_version_number(void)
{
	return COEV_VERSION_NUMBER;
}
