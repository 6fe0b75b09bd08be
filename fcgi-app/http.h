/*
 * http.h - one FastCGI request: what nginx passed, the body, the answer.
 *
 * nginx has already normalised the path ($uri), lower-cased the Host ($host)
 * and chosen the request id (the caller's X-Request-Id when it is valid).
 * The worker checks all of it again rather than trusting the transport.
 */
#ifndef ATRIUM_HTTP_H
#define ATRIUM_HTTP_H

#include <fcgiapp.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "common.h"
#include "limits.h"

struct route;
struct event_item;

/* The tenant a request runs for, once known. */
struct tenant {
	char id[37];   /* UUID text */
	char code[41]; /* public x-client-code */
};

struct request {
	struct arena *arena;
	FCGX_Stream *in;
	FCGX_Stream *out;
	char **envp;

	const char *method;
	struct str path;  /* normalised, starts with '/' */
	struct str query; /* without '?' */
	const char *host; /* lower-case, no port */
	const char *remote_addr;
	const char *content_type;
	long long content_length; /* -1 when not sent */
	char request_id[LIMIT_REQUEST_ID + 1];
	uint64_t start_us;

	struct str body;   /* read by http_read_body() */
	json_object *json; /* parsed body (NULL when none) */

	const struct route *route;
	const char *route_name; /* for the access log when no table route ran */
	struct str params[LIMIT_ROUTE_PARAMS];
	int nparams;

	bool has_tenant;
	bool api_host; /* request arrived on ATRIUM_API_HOST */
	struct tenant tenant;
	char api_key_id[37]; /* set after team authentication */
	char team_member_id[37];
	char portal_user_id[37]; /* set after client authentication */
	char session_id[37];
	bool commit_on_error; /* an error answer whose writes must stay (throttle) */

	/* the answer */
	int status;
	struct buf headers; /* extra header lines, CRLF-terminated */
	const char *resp_type;
	const char *resp_body;
	size_t resp_len;
	const char *problem_code;  /* for the access log */
	const char *cache_control; /* NULL: no-store (the default for the API) */
	const char *location;      /* Location header of a 201, or NULL */
	bool replayed;             /* answer replayed for an Idempotency-Key */
	const char *replay_body;   /* what a replay answers, when not the body (secrets) */

	/* real-time events queued for after the commit (events.c) */
	struct event_item *events;

	/* test builds only (-DATRIUM_FAULTS): the x-atrium-fault: db=N header
	 * makes the Nth database call of the request fail */
	int fault_db;
	int db_calls;
};

/* Fills r from the FastCGI parameters; returns 0 or ERR_INVALID (with a
 * problem answer already set, e.g. path too long). */
int http_request_init(struct request *r, struct arena *a, FCGX_Stream *in, FCGX_Stream *out,
                      char **envp);

/* A request header by its lower-case name ("x-api-key"); NULL when absent. */
const char *http_header(const struct request *r, const char *name);
/* A raw FastCGI parameter ("CONTENT_TYPE"); NULL when absent. */
const char *http_param(const struct request *r, const char *name);

/*
 * Reads the body into r->body, refusing more than max bytes (413) and bodies
 * whose length disagrees with Content-Length (400).  Returns 0, or
 * ERR_INVALID/ERR_TOO_LARGE with the problem answer set.
 */
int http_read_body(struct request *r, size_t max);

/* True when the request has a body (Content-Length > 0). */
bool http_has_body(const struct request *r);

/*
 * Reads and parses a JSON object body into r->json.  required=false accepts
 * an empty body (r->json stays NULL).  Sets 400/413/415 problem answers.
 */
int http_read_json(struct request *r, bool required);

/* Adds "Name: value" to the answer; value must already be safe (no CR/LF). */
void http_add_header(struct request *r, const char *name, const char *value);

/* Sets a JSON answer; obj may be NULL for an empty body (204/304). */
void http_json(struct request *r, int status, json_object *obj);
/*
 * Conditional GET: gives a 200 answer an ETag (a digest of the body, so it
 * says nothing the body does not) and turns it into a 304 without a body
 * when If-None-Match names it.
 */
void http_etag(struct request *r);

/* Sets an empty answer (e.g. 204). */
void http_empty(struct request *r, int status);

/*
 * Sets an RFC 9457 problem answer with a stable code.  detail may be NULL
 * (the title is used).  errors (a json array owned by the arena) is added as
 * "errors" when not NULL.
 */
void http_problem(struct request *r, int status, const char *code, const char *detail);
void http_problem_errors(struct request *r, json_object *errors);

/* Writes the answer to the FastCGI stream (status line, headers, body). */
void http_send(struct request *r);

/* Query string: value of name (percent-decoded) or NULL; *dup set when the
 * parameter appears more than once. */
const char *http_query(struct request *r, const char *name, bool *dup);

/* The first query parameter whose name is not in allowed (space-separated
 * names; NULL allows none), in arena memory; NULL when all are allowed. */
const char *http_query_unknown(struct request *r, const char *allowed);

/* Microseconds on a monotonic clock. */
uint64_t http_now_us(void);

/* True when s is 1..128 characters of [A-Za-z0-9._:-]. */
bool http_request_id_valid(const char *s);

#endif
