/*
 * s3sign-gen: presigns one case per input line with s3_presign() and prints
 * the URL (or "NULL"), for t/s3sign-crosscheck.t, which compares the output
 * with botocore's.  Not a unit test: it is built into build/test/unit-tools/,
 * out of the unit runner's way.
 *
 * A line is tab-separated fields, each percent-encoded (%XX) so that any byte
 * can travel: method endpoint region bucket path_style(0|1) access_key_id
 * secret key now(epoch seconds) expires, then triples "h" name value (a
 * signed header) or "q" name value (a query parameter).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3sign.h"

#define FIXED_FIELDS 10
#define MAX_FIELDS   (FIXED_FIELDS + 3 * 40)

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes %XX in place; returns -1 on a malformed escape or an encoded NUL. */
static int
unescape(char *s)
{
	char *o = s;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p != '%') {
			*o++ = *p;
			continue;
		}
		int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
		if (hi < 0 || lo < 0 || (hi | lo) == 0)
			return -1;
		*o++ = (char)(hi * 16 + lo);
		p += 2;
	}
	*o = '\0';
	return 0;
}

static int
one_case(struct arena *a, char *line)
{
	char *f[MAX_FIELDS];
	size_t n = 0;
	/* strsep keeps empty fields (an empty header value is a case) */
	for (char *rest = line, *tok; (tok = strsep(&rest, "\t")) != NULL;) {
		if (n == MAX_FIELDS || unescape(tok) != 0)
			return -1;
		f[n++] = tok;
	}
	if (n < FIXED_FIELDS || (n - FIXED_FIELDS) % 3 != 0)
		return -1;
	struct s3_target t = {.endpoint = f[1],
	                      .region = f[2],
	                      .bucket = f[3],
	                      .path_style = strcmp(f[4], "1") == 0,
	                      .access_key_id = f[5],
	                      .secret_access_key = f[6]};
	size_t extra = (n - FIXED_FIELDS) / 3, nh = 0, nq = 0;
	struct s3_param *h = calloc(extra + 1, sizeof(*h)), *q = calloc(extra + 1, sizeof(*q));
	if (h == NULL || q == NULL) {
		free(h);
		free(q);
		return -1;
	}
	for (size_t i = FIXED_FIELDS; i < n; i += 3) {
		struct s3_param p = {f[i + 1], f[i + 2]};
		if (strcmp(f[i], "h") == 0)
			h[nh++] = p;
		else
			q[nq++] = p;
	}
	char *url = s3_presign(a, &t, f[0], f[7], (time_t)strtoll(f[8], NULL, 10),
	                       (int)strtol(f[9], NULL, 10), h, nh, q, nq);
	printf("%s\n", url != NULL ? url : "NULL");
	free(h);
	free(q);
	return 0;
}

int
main(void)
{
	struct arena *a = arena_new(64 * 1024);
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int rc = 0;
	while ((len = getline(&line, &cap, stdin)) > 0) {
		if (line[len - 1] == '\n')
			line[len - 1] = '\0';
		if (one_case(a, line) != 0) {
			fprintf(stderr, "s3sign-gen: malformed line\n");
			rc = 1;
			break;
		}
		arena_reset(a);
	}
	free(line);
	arena_free(a);
	return rc;
}
