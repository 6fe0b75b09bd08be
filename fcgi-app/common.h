/*
 * common.h - types and rules shared by every module.
 *
 * Functions return 0 or a negative code from enum err; results travel through
 * out-parameters.  Bytes from the wire carry their length in struct str and
 * never rely on a NUL the client supplied.
 */
#ifndef ATRIUM_COMMON_H
#define ATRIUM_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
/* every header that declares a poisoned name comes before the poison */
#include <stdio.h>
#include <stdlib.h>

enum err {
	ERR_OK = 0,
	ERR_NOMEM = -1,       /* allocation failed (arena aborts instead) */
	ERR_DB = -2,          /* a statement failed; SQLSTATE kept in db module */
	ERR_UNAVAILABLE = -3, /* database unreachable: 503 + Retry-After */
	ERR_INTERNAL = -4,    /* a bug or an impossible state: 500 */
	ERR_INVALID = -5,     /* input did not parse or validate */
	ERR_NOT_FOUND = -6,   /* no such row (or not the caller's) */
	ERR_TOO_LARGE = -7,   /* over a limit */
};

struct str {
	const char *p;
	size_t n;
};

#define STR_LIT(s)   ((struct str){(s), sizeof(s) - 1})
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static inline int
str_eq(struct str a, const char *b)
{
	size_t n = strlen(b);
	return a.n == n && memcmp(a.p, b, n) == 0;
}

/* Unsafe string functions are not used anywhere; make any use a compile error. */
#pragma GCC poison sprintf vsprintf strcpy strcat gets atoi atol atoll

#endif
