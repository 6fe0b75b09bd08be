/*
 * events.c - real-time portal events (see events.h).
 */
#include <curl/curl.h>
#include <openssl/rand.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "events.h"
#include "log.h"
#include "page.h"
#include "portal.h"
#include "projects.h"
#include "resource.h"
#include "router.h"
#include "shapes.h"
#include "tenant.h"
#include "util.h"

#define EVENTS_TOKEN_TTL_S 60

/* One publication or channel deletion queued for after the commit. */
struct event_item {
	struct event_item *next;
	const char *channel;
	const char *type; /* NULL: delete the channel (ends its subscriptions) */
	const char *body;
};

static void
queue(struct request *r, const char *channel, const char *type, const char *body)
{
	struct event_item *e = arena_alloc(r->arena, sizeof(*e));
	e->channel = channel;
	e->type = type;
	e->body = body;
	/* kept in order: appended at the tail */
	e->next = NULL;
	struct event_item **tail = &r->events;
	while (*tail != NULL)
		tail = &(*tail)->next;
	*tail = e;
}

static const char *
event_body(struct request *r, const char *type, const char *project_id, const char *json)
{
	char at[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return arena_printf(r->arena,
	                    "{\"type\":\"%s\",\"project_id\":\"%s\",\"at\":\"%s\",\"data\":%s}",
	                    type, project_id, at, json);
}

static struct stmt q_member_ids = {"events_member_ids", "SELECT project_member_ids($1, $2)::text",
                                   2, 0};

int
events_add(struct request *r, const char *type, const char *project_id, const char *team_json,
           const char *client_json)
{
	const char *tb = event_body(r, type, project_id, team_json);
	queue(r, arena_printf(r->arena, "tp-%s-%s", r->tenant.id, project_id), type, tb);
	queue(r, arena_printf(r->arena, "tt-%s", r->tenant.id), type, tb);
	if (client_json == NULL)
		return 0;
	const char *p[2] = {r->tenant.id, project_id};
	PGresult *res = db_exec(r, &q_member_ids, p);
	if (res == NULL)
		return ERR_DB;
	const char *cb = event_body(r, type, project_id, client_json);
	/* each member client's all-projects channel and its channel of this
	 * project: a stream reads one channel, so a reconnect replays it in
	 * publication order */
	for (int i = 0; i < PQntuples(res); i++) {
		queue(r, arena_printf(r->arena, "c-%s-%s", r->tenant.id, db_get(res, i, 0)), type,
		      cb);
		queue(r,
		      arena_printf(r->arena, "cp-%s-%s-%s", r->tenant.id, project_id,
		                   db_get(res, i, 0)),
		      type, cb);
	}
	return 0;
}

void
events_end_session(struct request *r, const char *session_id)
{
	queue(r, arena_printf(r->arena, "s-%s-%s", r->tenant.id, session_id), NULL, NULL);
}

void
events_end_member(struct request *r, const char *project_id, const char *client_id)
{
	/* both of its streams that could carry the project end; the client may
	 * open its all-projects stream again at once */
	queue(r, arena_printf(r->arena, "cp-%s-%s-%s", r->tenant.id, project_id, client_id), NULL,
	      NULL);
	queue(r, arena_printf(r->arena, "c-%s-%s", r->tenant.id, client_id), NULL, NULL);
}

/* ---- resources changed on the team surface ------------------------------------- */

/* the client shape of a changed resource, when a client may see it */
static struct stmt q_client_task = {
        "events_client_task",
        "SELECT " CLIENT_TASK_JSON("t") " FROM tasks t WHERE t.tenant_id = $1 AND t.id = $2"
                                        " AND t.client_visible",
        2, 0};
static struct stmt q_client_milestone = {
        "events_client_milestone",
        "SELECT " CLIENT_MILESTONE_JSON("m") " FROM milestones m WHERE m.tenant_id = $1"
                                             " AND m.id = $2 AND m.client_visible",
        2, 0};
static struct stmt q_client_deliverable = {
        "events_client_deliverable",
        "SELECT " CLIENT_DELIVERABLE_JSON("d") " FROM deliverables d WHERE d.tenant_id = $1"
                                               " AND d.id = $2 AND d.client_visible",
        2, 0};
/* (the unread count is each client's own: not in a shared event) */
static struct stmt q_client_project = {
        "events_client_project",
        "SELECT " CLIENT_PROJECT_JSON("p", "NULL::uuid") " - 'unread_messages' FROM projects p"
                                                         " WHERE p.tenant_id = $1 AND p.id = $2",
        2, 0};

int
events_resource(struct request *r, const char *type, enum events_kind kind)
{
	if (r->status != 200 && r->status != 201)
		return 0;
	json_object *o = json_own(r->arena, json_tokener_parse(r->resp_body));
	const char *id = json_get_string(o, "id");
	const char *project = kind == EVENTS_PROJECT ? id : json_get_string(o, "project_id");
	if (id == NULL || project == NULL)
		return ERR_INTERNAL;
	struct stmt *st = kind == EVENTS_TASK          ? &q_client_task
	                  : kind == EVENTS_MILESTONE   ? &q_client_milestone
	                  : kind == EVENTS_DELIVERABLE ? &q_client_deliverable
	                                               : &q_client_project;
	const char *p[2] = {r->tenant.id, id};
	PGresult *res = db_exec(r, st, p);
	if (res == NULL)
		return ERR_DB;
	const char *team_json = arena_strndup(r->arena, r->resp_body, r->resp_len);
	return events_add(r, type, project, team_json,
	                  PQntuples(res) == 1 ? db_get(res, 0, 0) : NULL);
}

/* ---- publication ------------------------------------------------------------ */

static CURL *curl; /* one per worker: keeps the connection to nginx */

static size_t
discard(char *p, size_t size, size_t n, void *u)
{
	(void)p;
	(void)u;
	return size * n;
}

/* One request to the publisher: POST an event to channels (comma-joined:
 * nchan publishes one message to each), or DELETE a channel (type NULL). */
static void
publish(struct request *r, const char *sock, const char *channels, const char *type,
        const char *body)
{
	curl_easy_reset(curl);
	const char *url = arena_printf(r->arena, "http://localhost/pub/%s", channels);
	curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 2000L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
	struct curl_slist *h = NULL;
	char ev[96];
	if (type != NULL) {
		snprintf(ev, sizeof(ev), "X-EventSource-Event: %s", type);
		h = curl_slist_append(h, ev);
		h = curl_slist_append(h, "Content-Type: application/json");
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	} else {
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "DELETE");
	}
	CURLcode rc = curl_easy_perform(curl);
	long status = 0;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	/* 404 on a DELETE: nobody was subscribed */
	if (rc != CURLE_OK || (status >= 300 && !(type == NULL && status == 404)))
		log_error(r, "event %s not published: %s (%ld)", type != NULL ? type : "delete",
		          rc != CURLE_OK ? curl_easy_strerror(rc) : "status", status);
}

#define EVENTS_BATCH   200  /* channels in one publication (nchan allows 255) */
#define EVENTS_URL_MAX 1000 /* bytes of the channel list: nchan takes 1,024 at most */

void
events_flush(struct request *r)
{
	const char *sock = getenv("ATRIUM_NCHAN_SOCKET");
	if (r->events == NULL || sock == NULL || *sock == '\0')
		return;
	if (curl == NULL && (curl = curl_easy_init()) == NULL)
		return;
	struct event_item *e = r->events;
	while (e != NULL) {
		/* one request for a run of the same event (same body) */
		struct buf channels;
		buf_init(&channels, r->arena, 256);
		buf_puts(&channels, e->channel);
		struct event_item *n = e->next;
		for (int k = 1;
		     n != NULL && e->type != NULL && n->type == e->type && n->body == e->body &&
		     k < EVENTS_BATCH && channels.len + strlen(n->channel) < EVENTS_URL_MAX;
		     n = n->next, k++) {
			buf_putc(&channels, ',');
			buf_puts(&channels, n->channel);
		}
		publish(r, sock, buf_cstr(&channels), e->type, e->body);
		e = n;
	}
	r->events = NULL;
}

/* ---- subscriptions ------------------------------------------------------------ */

/* Hands the request to nchan: the channels, comma-separated. */
static int
subscribe(struct request *r, struct buf *channels)
{
	r->status = 200;
	http_add_header(r, "X-Accel-Redirect",
	                arena_printf(r->arena, "/internal/events/%s", buf_cstr(channels)));
	r->resp_type = "text/plain";
	r->resp_body = "";
	r->resp_len = 0;
	return 0;
}

int
h_events(struct request *r)
{
	const char *project;
	if (query_uuid(r, "project_id", &project) != 0)
		return 0;
	struct buf b;
	buf_init(&b, r->arena, 256);
	buf_printf(&b, "s-%s-%s", r->tenant.id, r->session_id);
	if (project != NULL) {
		int rc = portal_member(r, project);
		if (rc != 0)
			return rc == ERR_NOT_FOUND ? 0 : rc;
		buf_printf(&b, ",cp-%s-%s-%s", r->tenant.id, project, r->portal_user_id);
	} else {
		buf_printf(&b, ",c-%s-%s", r->tenant.id, r->portal_user_id);
	}
	return subscribe(r, &b);
}

static struct stmt q_token_use = {
        "events_token_use",
        "UPDATE team_event_tokens SET used_at = now() WHERE tenant_id = $1"
        " AND token_sha256 = decode($2, 'hex') AND used_at IS NULL AND expires_at > now()"
        " RETURNING project_id::text",
        2, 0};

int
h_team_events(struct request *r)
{
	const char *project;
	bool dup = false;
	const char *token = http_query(r, "token", &dup);
	if (query_uuid(r, "project_id", &project) != 0)
		return 0;
	if (token != NULL && http_header(r, "x-api-key") == NULL &&
	    http_header(r, "x-erix-api-key") == NULL) {
		/* a browser console: the one-time token names the tenant's project
		 * (or none) it was minted for */
		char hash[65];
		util_sha256_hex(token, strlen(token), hash);
		const char *p[2] = {r->tenant.id, hash};
		PGresult *res = r->has_tenant && !dup ? db_exec(r, &q_token_use, p) : NULL;
		if (r->has_tenant && !dup && res == NULL)
			return ERR_DB;
		if (res == NULL || PQntuples(res) != 1) {
			http_add_header(r, "WWW-Authenticate", "Bearer realm=\"atrium\"");
			http_problem(r, 401, "unauthorized", "the subscription token is not valid");
			/* the token is spent even when the request fails later */
			return 0;
		}
		r->commit_on_error = true;
		const char *minted = db_get(res, 0, 0);
		if (project != NULL && (minted == NULL || strcmp(minted, project) != 0)) {
			http_problem(r, 404, "not_found", "no such project");
			return 0;
		}
		project = minted;
	} else {
		int rc = tenant_auth_team(r);
		if (rc != 0)
			return r->status != 0 ? 0 : rc;
		if (project != NULL && (rc = project_check(r, project)) != 0)
			return rc == ERR_NOT_FOUND ? 0 : rc;
	}
	struct buf b;
	buf_init(&b, r->arena, 128);
	if (project != NULL)
		buf_printf(&b, "tp-%s-%s", r->tenant.id, project);
	else
		buf_printf(&b, "tt-%s", r->tenant.id);
	return subscribe(r, &b);
}

const struct field events_token_fields[] = {
        {"project_id", FT_STRING, FF_NULLABLE, 0, 0, check_uuid, NULL, NULL},
        FIELD_END,
};

static struct stmt q_token_insert = {
        "events_token_insert",
        "INSERT INTO team_event_tokens (tenant_id, token_sha256, project_id, api_key_id,"
        " expires_at) SELECT $1, decode($2, 'hex'), $3, $4, now() + make_interval(secs => $5)"
        " WHERE $3::uuid IS NULL OR EXISTS (SELECT 1 FROM projects p WHERE p.tenant_id = $1"
        " AND p.id = $3) RETURNING api_time(expires_at)",
        5, 0};
static struct stmt q_token_expire = {"events_token_expire",
                                     "DELETE FROM team_event_tokens WHERE tenant_id = $1 AND "
                                     "expires_at < now() - interval '1 hour'",
                                     1, 0};

int
h_team_events_token(struct request *r)
{
	unsigned char raw[32];
	char token[64], hash[65];
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return ERR_INTERNAL;
	b64url_encode(token, raw, sizeof(raw));
	util_sha256_hex(token, strlen(token), hash);
	const char *project = r->json != NULL ? json_get_string(r->json, "project_id") : NULL;
	const char *p[5] = {r->tenant.id, hash, project, r->api_key_id,
	                    arena_printf(r->arena, "%d", EVENTS_TOKEN_TTL_S)};
	PGresult *res = db_exec(r, &q_token_insert, p);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1) {
		res_invalid(r, "project_id", "invalid_reference",
		            "is not a project of this tenant");
		return 0;
	}
	const char *e[1] = {r->tenant.id};
	if (db_exec(r, &q_token_expire, e) == NULL)
		return ERR_DB;
	json_object *o = json_new_object(r->arena);
	json_add_str(o, "token", token);
	json_add_str(o, "expires_at", db_get(res, 0, 0));
	/* an Idempotency-Key replay never repeats a token */
	r->replay_body = "{\"token\":null}";
	http_json(r, 201, o);
	return 0;
}
