/*
 * libFuzzer driver: FastCGI parameters as nginx passes them (one NAME=value
 * per line) through request parsing, the router, the query-string readers
 * and pagination.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http.h"
#include "page.h"
#include "router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct arena *a;
	if (a == NULL)
		a = arena_new(64 * 1024);
	char *copy = arena_strndup(a, (const char *)data, size);
	char *env[32];
	size_t n = 0;
	for (char *line = strtok(copy, "\n"); line != NULL && n < 31; line = strtok(NULL, "\n"))
		if (strchr(line, '=') != NULL)
			env[n++] = line;
	env[n] = NULL;

	struct request r;
	if (http_request_init(&r, a, NULL, NULL, env) == 0) {
		char allow[64];
		router_match(routes, routes_count, r.method, r.path, &r.route, r.params, &r.nparams,
		             allow, sizeof(allow));
		bool dup;
		http_query(&r, "q", &dup);
		http_query_unknown(&r, "limit cursor status q");
		struct page pg;
		page_parse(&r, &pg);
		http_header(&r, "x-api-key");
	}
	arena_reset(a);
	return 0;
}
