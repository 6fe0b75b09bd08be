/*
 * page.c - pagination parameters and base64url.
 */
#include <string.h>

#include <openssl/evp.h>

#include "config.h"
#include "page.h"

size_t
b64url_encode(char *out, const unsigned char *in, size_t n)
{
	int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	size_t m = len > 0 ? (size_t)len : 0;
	while (m > 0 && out[m - 1] == '=')
		m--;
	for (size_t i = 0; i < m; i++) {
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	}
	out[m] = '\0';
	return m;
}

unsigned char *
b64url_decode(struct arena *a, const char *in, size_t n, size_t *out_len)
{
	while (n > 0 && in[n - 1] == '=')
		n--;
	if (n % 4 == 1 || n > 4096)
		return NULL;
	size_t padded = (n + 3) / 4 * 4;
	char *tmp = arena_alloc(a, padded + 1);
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (c == '+' || c == '/')
			return NULL; /* only the URL alphabet */
		tmp[i] = c;
	}
	for (size_t i = n; i < padded; i++)
		tmp[i] = '=';
	unsigned char *out = arena_alloc(a, padded / 4 * 3 + 1);
	int len = EVP_DecodeBlock(out, (const unsigned char *)tmp, (int)padded);
	if (len < 0)
		return NULL;
	/* EVP_DecodeBlock counts the padding as zero bytes */
	size_t real = (size_t)len - (padded - n);
	out[real] = '\0';
	*out_len = real;
	return out;
}

int
page_parse(struct request *r, struct page *pg)
{
	bool dup = false;
	pg->limit = LIMIT_PAGE_DEFAULT;
	pg->after = NULL;
	const char *l = http_query(r, "limit", &dup);
	long long v = 0;
	if (dup || (l != NULL && (strspn(l, "0123456789") != strlen(l) ||
	                          config_parse_int(l, 1, LIMIT_PAGE_MAX, &v) != 0))) {
		http_problem(r, 400, "bad_query", "limit must be an integer from 1 to 200");
		return ERR_INVALID;
	}
	if (l != NULL)
		pg->limit = (int)v;
	const char *c = http_query(r, "cursor", &dup);
	if (c == NULL)
		return 0;
	size_t n = 0;
	unsigned char *key = dup ? NULL : b64url_decode(r->arena, c, strlen(c), &n);
	if (key == NULL || n == 0 || memchr(key, '\0', n) != NULL) {
		http_problem(r, 400, "bad_query", "cursor is not a cursor this API returned");
		return ERR_INVALID;
	}
	pg->after = (const char *)key;
	return 0;
}

const char *
page_cursor(struct request *r, const char *key)
{
	size_t n = strlen(key);
	char *out = arena_alloc(r->arena, 4 * ((n + 2) / 3) + 1);
	b64url_encode(out, (const unsigned char *)key, n);
	return out;
}
