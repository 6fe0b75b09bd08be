/*
 * util.h - small shared helpers: digests and hex.
 */
#ifndef ATRIUM_UTIL_H
#define ATRIUM_UTIL_H

#include <stddef.h>

/* Lower-case hex SHA-256 of n bytes at p into out (65 bytes with the NUL). */
void util_sha256_hex(const void *p, size_t n, char out[65]);
/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void util_hex(const unsigned char *in, size_t n, char *out);

#endif
