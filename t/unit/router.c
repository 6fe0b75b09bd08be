/* Unit tests: route matching, parameters, 404/405, UUID segments. */
#include "router.h"
#include "tap.h"

static int
h(struct request *r)
{
	(void)r;
	return 0;
}

static const struct route table[] = {
        {"GET", "/branding", SURFACE_PUBLIC, BODY_NONE, NULL, h, NULL, NULL},
        {"GET", "/team/domains", SURFACE_TEAM, BODY_NONE, NULL, h, NULL, NULL},
        {"POST", "/team/domains", SURFACE_TEAM, BODY_CREATE, NULL, h, NULL, NULL},
        {"DELETE", "/team/domains/{host}", SURFACE_TEAM, BODY_NONE, NULL, h, NULL, NULL},
        {"GET", "/team/projects/{id}", SURFACE_TEAM, BODY_NONE, NULL, h, NULL, NULL},
        {"PATCH", "/team/projects/{id}", SURFACE_TEAM, BODY_PATCH, NULL, h, NULL, NULL},
        {"PUT", "/team/projects/{id}/members/{client_id}", SURFACE_TEAM, BODY_NONE, NULL, h, NULL,
         NULL},
};

static enum route_result
m(const char *method, const char *path, const struct route **rt, struct str *params, int *np,
  char *allow)
{
	return router_match(table, ARRAY_LEN(table), method, (struct str){path, strlen(path)}, rt,
	                    params, np, allow, 64);
}

int
main(void)
{
	const struct route *rt = NULL;
	struct str params[LIMIT_ROUTE_PARAMS];
	int np = 0;
	char allow[64];
	const char *uuid = "0b6c7f3e-1b2a-4c5d-8e9f-0123456789ab";
	char path[256];

	ok(m("GET", "/api/portal/v1/branding", &rt, params, &np, allow) == ROUTE_FOUND &&
	           rt == &table[0],
	   "static route");
	ok(m("HEAD", "/api/portal/v1/branding", &rt, params, &np, allow) == ROUTE_FOUND,
	   "HEAD matches GET");
	ok(m("GET", "/api/portal/v1/nope", &rt, params, &np, allow) == ROUTE_NO_PATH, "unknown");
	ok(m("GET", "/api/portal/v2/branding", &rt, params, &np, allow) == ROUTE_NO_PATH,
	   "other base path");
	ok(m("GET", "/api/portal/v1/branding/", &rt, params, &np, allow) == ROUTE_NO_PATH,
	   "trailing slash");
	ok(m("GET", "/api/portal/v1//branding", &rt, params, &np, allow) == ROUTE_NO_PATH,
	   "empty segment");
	ok(m("GET", "/api/portal/v1", &rt, params, &np, allow) == ROUTE_NO_PATH, "base only");
	ok(m("PUT", "/api/portal/v1/team/domains", &rt, params, &np, allow) == ROUTE_NO_METHOD,
	   "wrong method");
	is_str(allow, "GET, POST", "Allow lists the methods");

	ok(m("DELETE", "/api/portal/v1/team/domains/a.example.com", &rt, params, &np, allow) ==
	           ROUTE_FOUND,
	   "host parameter");
	ok(np == 1 && params[0].n == 13 && memcmp(params[0].p, "a.example.com", 13) == 0,
	   "parameter bytes");

	snprintf(path, sizeof(path), "/api/portal/v1/team/projects/%s", uuid);
	ok(m("GET", path, &rt, params, &np, allow) == ROUTE_FOUND && np == 1, "uuid id");
	ok(m("DELETE", path, &rt, params, &np, allow) == ROUTE_NO_METHOD, "405 on id route");
	is_str(allow, "GET, PATCH", "Allow for id route");
	ok(m("GET", "/api/portal/v1/team/projects/123", &rt, params, &np, allow) == ROUTE_NO_PATH,
	   "non-UUID id is 404");
	ok(m("GET", "/api/portal/v1/team/projects/0b6c7f3e-1b2a-4c5d-8e9f-0123456789aZ", &rt,
	     params, &np, allow) == ROUTE_NO_PATH,
	   "non-hex id is 404");
	snprintf(path, sizeof(path), "/api/portal/v1/team/projects/%s/members/%s", uuid, uuid);
	ok(m("PUT", path, &rt, params, &np, allow) == ROUTE_FOUND && np == 2, "two parameters");
	snprintf(path, sizeof(path), "/api/portal/v1/team/projects/%s/members/x", uuid);
	ok(m("PUT", path, &rt, params, &np, allow) == ROUTE_NO_PATH, "second id checked");
	ok(router_is_uuid(uuid, 36), "is_uuid");
	ok(!router_is_uuid("0b6c7f3e11b2a-4c5d-8e9f-0123456789ab", 36), "dash positions");
	/* a path with many segments must not overflow */
	ok(m("GET", "/api/portal/v1/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s", &rt, params, &np,
	     allow) == ROUTE_NO_PATH,
	   "too many segments");
	return done_testing();
}
