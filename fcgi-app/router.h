/*
 * router.h - the route table and its matcher.
 *
 * Routes are data (method, pattern, surface, body mode, accepted fields,
 * handler); the router, not the handler, refuses unknown paths (404), wrong
 * methods (405 + Allow), path ids that are not UUIDs (404), and bodies with
 * unknown or invalid fields (422).
 */
#ifndef ATRIUM_ROUTER_H
#define ATRIUM_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "common.h"
#include "http.h"
#include "json.h"

#define API_BASE "/api/portal/v1"

enum surface {
	SURFACE_PUBLIC, /* tenant from Host, no credentials */
	SURFACE_HEALTH, /* no tenant needed beyond a known host */
	SURFACE_TEAM,   /* x-api-key + x-client-code */
	SURFACE_CLIENT, /* Bearer portal JWT */
};

enum body_mode {
	BODY_NONE,            /* a body is refused (400) */
	BODY_OPTIONAL,        /* an action: a body, when present, must be an object */
	BODY_CREATE,          /* required object, FF_REQUIRED fields enforced */
	BODY_PATCH,           /* required object, only the fields sent */
	BODY_ACTION,          /* required object, FF_REQUIRED enforced, not a create */
	BODY_CREATE_OPTIONAL, /* a create whose body may be omitted */
	BODY_FORM,            /* any small body, not parsed (RFC 8058 one-click POSTs) */
};

struct route {
	const char *method;
	const char *pattern; /* below API_BASE; "{name}" matches one segment */
	enum surface surface;
	enum body_mode body;
	const struct field *fields;
	int (*handler)(struct request *r);
	const char *query; /* accepted query parameters, space-separated; NULL: none */
	/* an Idempotency-Key replay passes the stored answer through this first
	 * (e.g. to sign a fresh upload URL); NULL: replayed as stored */
	int (*replay)(struct request *r);
};

enum route_result {
	ROUTE_FOUND = 0,
	ROUTE_NO_PATH = -1,   /* 404 */
	ROUTE_NO_METHOD = -2, /* 405, allow filled */
};

/*
 * Matches method and path (which must start with API_BASE) against table.
 * On ROUTE_FOUND *out and params are set (params borrow path bytes).  On
 * ROUTE_NO_METHOD allow holds "GET, PATCH" style text.  A segment bound to a
 * parameter named "id" or ending in "_id" must be a UUID, else the path does
 * not match.
 */
enum route_result router_match(const struct route *table, size_t n, const char *method,
                               struct str path, const struct route **out, struct str *params,
                               int *nparams, char *allow, size_t allow_len);

/* True when s (n bytes) is a UUID in 8-4-4-4-12 hex form. */
bool router_is_uuid(const char *s, size_t n);

/* The application's table (routes.c). */
extern const struct route routes[];
extern const size_t routes_count;

#endif
