/*
 * page.h - keyset pagination parameters (?limit=, ?cursor=).
 *
 * Cursors are opaque to callers: base64url of the last row's sort key.  A
 * cursor that does not decode to a key of the expected shape is a 400
 * bad_query, never a database error.
 */
#ifndef ATRIUM_PAGE_H
#define ATRIUM_PAGE_H

#include "http.h"

struct page {
	int limit;
	const char *after; /* decoded cursor (NUL-free text) or NULL */
};

/* Reads ?limit= (1..LIMIT_PAGE_MAX, default LIMIT_PAGE_DEFAULT) and
 * ?cursor=; sets a 400 answer and returns ERR_INVALID when malformed. */
int page_parse(struct request *r, struct page *pg);
/* base64url (no padding) of key, in arena memory. */
const char *page_cursor(struct request *r, const char *key);

/* base64url without padding; out must hold 4 * ceil(n / 3) + 1 bytes. */
size_t b64url_encode(char *out, const unsigned char *in, size_t n);
/* Decodes base64url (padding optional) into arena memory; NULL if invalid. */
unsigned char *b64url_decode(struct arena *a, const char *in, size_t n, size_t *out_len);

#endif
