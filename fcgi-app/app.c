/*
 * app.c - the request pipeline shared by every route.
 */
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "auth.h"
#include "config.h"
#include "db.h"
#include "events.h"
#include "idem.h"
#include "json.h"
#include "log.h"
#include "router.h"
#include "tenant.h"

/* Reads and validates the body the route declares. */
static int
read_body(struct request *r, const struct route *rt)
{
	if (rt->body == BODY_NONE) {
		if (http_has_body(r)) {
			http_problem(r, 400, "bad_json", "this endpoint takes no body");
			return ERR_INVALID;
		}
		return 0;
	}
	if (rt->body == BODY_FORM)
		return http_has_body(r) ? http_read_body(r, 1024) : 0;
	bool required = rt->body != BODY_OPTIONAL && rt->body != BODY_CREATE_OPTIONAL;
	if (http_read_json(r, required) != 0)
		return ERR_INVALID;
	if (r->json == NULL || rt->fields == NULL)
		return 0;
	struct json_errors e;
	json_errors_init(r->arena, &e);
	bool create = rt->body == BODY_CREATE || rt->body == BODY_ACTION ||
	              rt->body == BODY_CREATE_OPTIONAL;
	if (json_validate(r->arena, r->json, rt->fields, create, &e) != 0) {
		http_problem_errors(r, e.list);
		return ERR_INVALID;
	}
	return 0;
}

static void
not_found_for_host(struct request *r)
{
	http_problem(r, 404, "tenant_not_found", "No portal is configured for this host.");
}

/* On the API host: the team surface and /healthz (a wrong method there is
 * still a 405), nothing else. */
static bool
api_host_path(const struct request *r, enum route_result rr)
{
	if (rr == ROUTE_FOUND)
		return r->route->surface == SURFACE_TEAM || r->route->surface == SURFACE_HEALTH;
	static const char team[] = API_BASE "/team/", health[] = API_BASE "/healthz";
	return rr == ROUTE_NO_METHOD &&
	       ((r->path.n > sizeof(team) - 1 && memcmp(r->path.p, team, sizeof(team) - 1) == 0) ||
	        str_eq(r->path, health));
}

/* Everything between BEGIN and the decision to commit. */
static int
run(struct request *r, enum route_result rr, const char *allow)
{
	int rc = tenant_resolve(r);
	if (rc == ERR_NOT_FOUND)
		return 0;
	if (rc != 0)
		return rc;
	/* the API host serves only the health check and the team surface */
	if (r->api_host && !api_host_path(r, rr)) {
		not_found_for_host(r);
		return 0;
	}
	if (rr == ROUTE_NO_PATH) {
		http_problem(r, 404, "not_found", "no such resource");
		return 0;
	}
	if (rr == ROUTE_NO_METHOD) {
		http_add_header(r, "Allow", allow);
		http_problem(r, 405, "method_not_allowed",
		             arena_printf(r->arena, "this resource allows %s", allow));
		return 0;
	}
	switch (r->route->surface) {
	case SURFACE_TEAM:
		/* /team/events also takes a one-time token: it authenticates itself */
		if (r->route->handler == h_team_events)
			break;
		if ((rc = tenant_auth_team(r)) != 0)
			return r->status != 0 ? 0 : rc;
		break;
	case SURFACE_CLIENT:
		if ((rc = auth_client(r)) != 0)
			return r->status != 0 ? 0 : rc;
		break;
	case SURFACE_PUBLIC:
	case SURFACE_HEALTH:
		break;
	}
	const char *unknown = http_query_unknown(r, r->route->query);
	if (unknown != NULL) {
		char esc[80];
		log_escape(esc, sizeof(esc), unknown);
		http_problem(r, 400, "bad_query",
		             arena_printf(r->arena, "unknown query parameter \"%s\"", esc));
		return 0;
	}
	if (read_body(r, r->route) != 0)
		return 0;
	if ((r->route->body == BODY_CREATE || r->route->body == BODY_CREATE_OPTIONAL) &&
	    strcmp(r->method, "POST") == 0)
		return idem_run(r, r->route->handler);
	return r->route->handler(r);
}

void
app_handle(struct request *r)
{
	char allow[64];
	if (r->status != 0)
		return; /* request_init already answered */
	/* bench ceiling: nginx -> FastCGI without the database (loopback only) */
	const char *hello = http_param(r, "ATRIUM_HELLO");
	if (hello != NULL && strcmp(hello, "1") == 0) {
		json_object *o = json_new_object(r->arena);
		json_add_str(o, "hello", "atrium");
		r->route_name = "/__atrium/hello";
		http_json(r, 200, o);
		return;
	}
	enum route_result rr = router_match(routes, routes_count, r->method, r->path, &r->route,
	                                    r->params, &r->nparams, allow, sizeof(allow));
	if (rr != ROUTE_FOUND)
		r->route = NULL;
	const char *cached_tenant = tenant_from_cache(r);
	if (db_begin(r, cached_tenant) != 0) {
		db_fail(r);
		return;
	}
	if (cached_tenant != NULL)
		r->has_tenant = true;
	int rc = run(r, rr, allow);
	if (rc != 0 && (r->status == 0 || r->status < 400)) {
		if (rc == ERR_DB || rc == ERR_UNAVAILABLE)
			db_fail(r);
		else
			http_problem(r, 500, "internal",
			             "an internal error occurred; quote the request id");
	}
	if (r->status == 0) {
		log_error(r, "handler returned without an answer");
		http_problem(r, 500, "internal",
		             "an internal error occurred; quote the request id");
	}
	if (r->route != NULL && strcmp(r->method, "GET") == 0)
		http_etag(r);
	if (r->status >= 400 && !r->commit_on_error) {
		db_rollback(r);
		r->events = NULL; /* never announce what was rolled back */
		return;
	}
	if (db_commit(r) != 0) {
		/* the answer was prepared but nothing was stored: say so */
		buf_init(&r->headers, r->arena, 64);
		db_fail(r);
		r->events = NULL;
		return;
	}
	/* committed: main.c publishes r->events once the answer is sent */
}
