/*
 * libFuzzer driver: SigV4 presigning with hostile targets and arguments (a
 * tenant's store settings come from an admin form), and the escapers that
 * put user-supplied file names into URLs and headers.
 *
 * Input: 13 bytes of header, then NUL-separated fields:
 *   byte 0      bit 0 path style, bits 1-2 method, bits 4-7 how many of the
 *               name/value pairs are headers (the rest are query parameters)
 *   bytes 1-8   now (int64, little-endian)
 *   bytes 9-12  expires (int32, little-endian)
 *   fields      endpoint, region, bucket, access key id, secret, key, then
 *               name, value pairs
 * Besides memory safety it checks what the callers rely on: a URL is
 * printable ASCII with a host no one can smuggle a userinfo or path into;
 * encodings keep to their alphabets; Content-Disposition has no control
 * characters.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3sign.h"

#define HEADER_LEN 13
#define MAX_FIELDS 46 /* 6 fixed + 20 pairs: above s3_presign's own caps */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static bool
hexdigit(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static void
check_encoded(const char *in, const char *out, bool keep_slash)
{
	size_t want = 0;
	for (const unsigned char *p = (const unsigned char *)in; *p != '\0'; p++)
		want += unreserved(*p) || (keep_slash && *p == '/') ? 1 : 3;
	if (out == NULL || strlen(out) != want)
		abort();
	for (const unsigned char *p = (const unsigned char *)out; *p != '\0'; p++) {
		if (*p == '%') {
			if (!hexdigit(p[1]) || !hexdigit(p[2]))
				abort();
			p += 2;
		} else if (!unreserved(*p) && !(keep_slash && *p == '/')) {
			abort();
		}
	}
}

static void
check_disposition(const char *cd)
{
	if (cd == NULL || strncmp(cd, "attachment", 10) != 0)
		abort();
	for (const unsigned char *p = (const unsigned char *)cd; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e)
			abort();
}

static void
check_url(const char *url)
{
	const char *p;
	if (strncmp(url, "https://", 8) == 0)
		p = url + 8;
	else if (strncmp(url, "http://", 7) == 0)
		p = url + 7;
	else
		abort();
	/* the authority: a lower-case host, maybe [IPv6], maybe :port, no userinfo */
	size_t hn = strcspn(p, "/");
	if (hn == 0 || p[hn] != '/' || strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789.-_:[]") < hn)
		abort();
	/* printable, no space, one '?', no fragment; the signature comes last */
	for (const unsigned char *c = (const unsigned char *)url; *c != '\0'; c++)
		if (*c <= 0x20 || *c >= 0x7f || *c == '#')
			abort();
	const char *q = strchr(url, '?');
	if (q == NULL || strchr(q + 1, '?') != NULL)
		abort();
	const char *sig = strstr(url, "&X-Amz-Signature=");
	if (sig == NULL || strlen(sig + 17) != 64 || strspn(sig + 17, "0123456789abcdef") != 64)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct arena *a;
	if (a == NULL)
		a = arena_new(64 * 1024);

	/* the whole input as one string, through the escapers */
	char *all = arena_strndup(a, (const char *)data, size);
	check_encoded(all, s3_uri_encode(a, all, false), false);
	check_encoded(all, s3_uri_encode(a, all, true), true);
	check_disposition(s3_content_disposition(a, all));

	if (size >= HEADER_LEN) {
		static const char *const methods[] = {"GET", "PUT", "HEAD", "DELETE"};
		uint8_t flags = data[0];
		uint64_t now = 0;
		uint32_t exp = 0;
		for (int i = 7; i >= 0; i--)
			now = now << 8 | data[1 + i];
		for (int i = 3; i >= 0; i--)
			exp = exp << 8 | data[9 + i];

		/* fields: NUL-separated, the last one runs to the end */
		char *body = arena_strndup(a, (const char *)data + HEADER_LEN, size - HEADER_LEN);
		size_t blen = size - HEADER_LEN;
		const char *f[MAX_FIELDS];
		size_t n = 0;
		for (size_t start = 0; n < MAX_FIELDS && start <= blen;) {
			f[n++] = body + start;
			start += strlen(body + start) + 1;
		}
		while (n < 6)
			f[n++] = "";
		struct s3_target t = {.endpoint = f[0],
		                      .region = f[1],
		                      .bucket = f[2],
		                      .path_style = (flags & 1) != 0,
		                      .access_key_id = f[3],
		                      .secret_access_key = f[4]};
		struct s3_param pairs[(MAX_FIELDS - 6) / 2];
		size_t np = (n - 6) / 2;
		for (size_t i = 0; i < np; i++)
			pairs[i] = (struct s3_param){f[6 + 2 * i], f[7 + 2 * i]};
		size_t nh = (size_t)(flags >> 4) < np ? (size_t)(flags >> 4) : np;
		char *url = s3_presign(a, &t, methods[(flags >> 1) & 3], f[5], (time_t)(int64_t)now,
		                       (int)(int32_t)exp, pairs, nh, pairs + nh, np - nh);
		if (url != NULL)
			check_url(url);
		for (size_t i = 0; i < n; i++) {
			check_encoded(f[i], s3_uri_encode(a, f[i], true), true);
			check_disposition(s3_content_disposition(a, f[i]));
		}
	}
	arena_reset(a);
	return 0;
}
