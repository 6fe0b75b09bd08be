/*
 * libFuzzer driver: opaque list cursors (base64url of a sort key) as a
 * caller may forge them, through the decoder and every list's cursor parser.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http.h"
#include "resource.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct arena *a;
	if (a == NULL)
		a = arena_new(64 * 1024);
	size_t n = 0;
	b64url_decode(a, (const char *)data, size, &n);

	const char *q = arena_printf(a, "QUERY_STRING=cursor=%.*s", (int)size, (const char *)data);
	char *env[] = {"REQUEST_METHOD=GET", "DOCUMENT_URI=/api/portal/v1/team/projects",
	               (char *)(uintptr_t)q, NULL};
	enum cursor_kind kinds[] = {CURSOR_SEQ, CURSOR_POS_SEQ, CURSOR_DATE_SEQ};
	for (size_t i = 0; i < 3; i++) {
		struct request r;
		const char *key, *seq, *lim;
		int limit;
		if (http_request_init(&r, a, NULL, NULL, env) == 0)
			res_page(&r, kinds[i], &key, &seq, &limit, &lim);
	}
	arena_reset(a);
	return 0;
}
