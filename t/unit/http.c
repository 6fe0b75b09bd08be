/* Unit tests: request parameters, headers, query strings, problem bodies. */
#include "http.h"
#include "json.h"
#include "tap.h"

int
main(void)
{
	struct arena *a = arena_new(8192);
	struct request r;
	char *env[] = {
	        "REQUEST_METHOD=POST",
	        "DOCUMENT_URI=/api/portal/v1/team/domains",
	        "QUERY_STRING=limit=5&q=a%20b+c&cursor=&x=%zz&dup=1&dup=2&nul=%00",
	        "ATRIUM_HOST=Acme.Portal.Localhost",
	        "ATRIUM_REQUEST_ID=bad id with spaces",
	        "HTTP_X_REQUEST_ID=client-123:abc",
	        "HTTP_X_API_KEY=k",
	        "CONTENT_LENGTH=12",
	        "CONTENT_TYPE=application/json",
	        NULL,
	};
	ok(http_request_init(&r, a, NULL, NULL, env) == 0, "init");
	is_str(r.method, "POST", "method");
	is_str(r.host, "acme.portal.localhost", "host lower-cased");
	is_str(r.request_id, "client-123:abc", "valid caller request id kept");
	ok(r.content_length == 12, "content length");
	is_str(http_header(&r, "x-api-key"), "k", "header lookup");
	ok(http_header(&r, "x-missing") == NULL, "missing header");
	bool dup = false;
	is_str(http_query(&r, "limit", &dup), "5", "query value");
	is_str(http_query(&r, "q", &dup), "a b c", "query decoding");
	is_str(http_query(&r, "cursor", &dup), "", "empty query value");
	is_str(http_query(&r, "x", &dup), "\x01", "malformed escape never matches");
	is_str(http_query(&r, "nul", &dup), "\x01", "%%00 refused");
	ok(http_query(&r, "dup", &dup) != NULL && dup, "duplicate detected");
	ok(http_query(&r, "none", &dup) == NULL, "absent");

	ok(http_request_id_valid("a"), "1 char id");
	ok(!http_request_id_valid(""), "empty id");
	char long_id[200];
	memset(long_id, 'a', 129);
	long_id[129] = '\0';
	ok(!http_request_id_valid(long_id), "129 chars refused");
	long_id[128] = '\0';
	ok(http_request_id_valid(long_id), "128 chars accepted");
	ok(!http_request_id_valid("a\r\nb"), "CRLF refused");

	char *env2[] = {"REQUEST_METHOD=GET", "DOCUMENT_URI=/", "CONTENT_LENGTH=-5", NULL};
	arena_reset(a);
	ok(http_request_init(&r, a, NULL, NULL, env2) != 0, "negative length refused");
	ok(r.status == 400, "400 for bad length");
	ok(strlen(r.request_id) == 32, "generated request id");

	char *env3[] = {"REQUEST_METHOD=GET", "DOCUMENT_URI=/", NULL};
	arena_reset(a);
	http_request_init(&r, a, NULL, NULL, env3);
	http_problem(&r, 404, "tenant_not_found", "no portal");
	json_object *o = json_tokener_parse(r.resp_body);
	is_str(json_object_get_string(json_get(o, "type")), "urn:problem:atrium:tenant_not_found",
	       "problem type");
	ok(json_object_get_int(json_get(o, "status")) == 404, "problem status");
	is_str(json_object_get_string(json_get(o, "code")), "tenant_not_found", "problem code");
	is_str(json_object_get_string(json_get(o, "request_id")), r.request_id, "request id");
	is_str(r.resp_type, "application/problem+json", "problem media type");
	json_object_put(o);

	http_problem(&r, 418, "no_such_code", "x");
	ok(r.status == 500, "unknown code becomes internal");

	struct json_errors e;
	json_errors_init(a, &e);
	json_errors_add(&e, "name", "required", "is required");
	http_problem_errors(&r, e.list);
	o = json_tokener_parse(r.resp_body);
	ok(r.status == 422, "a validation problem is a 422");
	is_str(json_object_get_string(json_get(o, "code")), "validation_failed", "422 code");
	json_object *first = json_object_array_get_idx(json_get(o, "errors"), 0);
	is_str(json_object_get_string(json_get(first, "field")), "name", "errors[0].field");
	json_object_put(o);
	arena_free(a);
	return done_testing();
}
