/*
 * libFuzzer driver: a request body through the strict scan, json-c and the
 * field-table validator (the path every JSON body of the API takes).
 */
#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "people.h"
#include "tenant.h"
#include "work.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct arena *a;
	const struct field *tables[] = {branding_patch_fields, client_fields, deliverable_fields,
	                                task_fields};
	if (a == NULL)
		a = arena_new(64 * 1024);
	struct json_parse p;
	if (json_parse_body(a, (const char *)data, size, &p) == 0) {
		for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
			struct json_errors e;
			json_errors_init(a, &e);
			json_validate(a, p.root, tables[i], (size & 1) != 0, &e);
		}
	}
	arena_reset(a);
	return 0;
}
