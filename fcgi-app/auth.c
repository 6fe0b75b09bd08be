/*
 * auth.c - invites, passwords, portal sessions and the client's account.
 *
 * Tokens that travel to people (invite, reset, refresh) are 256-bit random
 * values, base64url without padding (43 characters); only their SHA-256 is
 * stored.  Access tokens are short-lived ES256 JWTs (token.c) naming a
 * session, and every request checks that the session is still live, so
 * logout, password changes and revocation take effect at once.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <openssl/rand.h>

#include "audit.h"
#include "auth.h"
#include "events.h"
#include "notify.h"
#include "config.h"
#include "db.h"
#include "page.h"
#include "password.h"
#include "resource.h"
#include "router.h"
#include "token.h"
#include "util.h"

#define SECRET_LEN  43 /* base64url of 32 random bytes */
#define COOKIE_NAME "atrium_refresh"
#define COOKIE_PATH API_BASE "/auth"
#define LOCK_AFTER  5

/* ---- helpers ---------------------------------------------------------- */

/* A new 256-bit secret and the hex SHA-256 that is stored of it. */
static int
new_secret(struct request *r, const char **secret, const char **hash)
{
	unsigned char rnd[32];
	char *s = arena_alloc(r->arena, SECRET_LEN + 2);
	char *h = arena_alloc(r->arena, 65);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return ERR_INTERNAL;
	b64url_encode(s, rnd, sizeof(rnd));
	util_sha256_hex(s, strlen(s), h);
	*secret = s;
	*hash = h;
	return 0;
}

/* The stored hash of a presented secret, or NULL when it cannot be one. */
static const char *
secret_hash(struct request *r, const char *s)
{
	if (s == NULL || strlen(s) != SECRET_LEN)
		return NULL;
	for (const char *p = s; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return NULL;
	char *h = arena_alloc(r->arena, 65);
	util_sha256_hex(s, SECRET_LEN, h);
	return h;
}

static const char *
body_str(struct request *r, const char *key)
{
	return json_object_get_string(json_get(r->json, key));
}

static size_t
body_len(struct request *r, const char *key)
{
	json_object *v = json_get(r->json, key);
	return v != NULL ? (size_t)json_object_get_string_len(v) : 0;
}

static void
set_refresh_cookie(struct request *r, const char *value, int max_age)
{
	http_add_header(r, "Set-Cookie",
	                arena_printf(r->arena,
	                             COOKIE_NAME "=%s; Path=" COOKIE_PATH
	                                         "; Max-Age=%d; HttpOnly; Secure; SameSite=Strict",
	                             value, max_age));
}

/* The atrium_refresh cookie's value, or NULL. */
static const char *
refresh_cookie(struct request *r)
{
	const char *c = http_header(r, "cookie");
	static const char name[] = COOKIE_NAME "=";
	while (c != NULL && *c != '\0') {
		while (*c == ' ' || *c == ';')
			c++;
		const char *end = strchr(c, ';');
		size_t n = end != NULL ? (size_t)(end - c) : strlen(c);
		if (n > sizeof(name) - 1 && strncmp(c, name, sizeof(name) - 1) == 0)
			return arena_strndup(r->arena, c + sizeof(name) - 1,
			                     n - (sizeof(name) - 1));
		c = end;
	}
	return NULL;
}

/* The link host: the request's tenant host, or on the API host the
 * tenant's first host. */
static const char *
portal_link(struct request *r, const char *page, const char *secret)
{
	const char *base = notify_portal_base(r);
	/* the token travels in the fragment: never in logs or referrers */
	return base != NULL ? arena_printf(r->arena, "%s/%s#token=%s", base, page, secret) : NULL;
}

static struct stmt q_outbox_insert = {
        "outbox_insert",
        "INSERT INTO outbox (tenant_id, channel, template, recipient_kind, recipient_id, address,"
        " payload, dedupe_key) VALUES ($1, 'email', $2, 'client', $3, $4, $5::jsonb, $6)",
        6, 0};

/* An email for the notifier, in this transaction. */
static int
queue_email(struct request *r, const char *template, const char *user_id, const char *address,
            const char *name, const char *link, const char *expires_at, const char *dedupe)
{
	json_object *payload = json_new_object(r->arena);
	json_add_str(payload, "link", link);
	json_add_str(payload, "name", name);
	json_add_str(payload, "expires_at", expires_at);
	const char *p[6] = {
	        r->tenant.id, template, user_id, address, json_render(r->arena, payload, NULL),
	        dedupe};
	return db_exec(r, &q_outbox_insert, p) != NULL ? 0 : ERR_DB;
}

/* ---- sessions ----------------------------------------------------------- */

static struct stmt q_session_insert = {
        "session_insert",
        "INSERT INTO portal_sessions (tenant_id, user_id, expires_at, user_agent, ip)"
        " VALUES ($1, $2, now() + make_interval(secs => $3::integer), $4,"
        " CASE WHEN $5::text ~ '^[0-9a-fA-F.:]+$' THEN $5::inet END) RETURNING id",
        5, 0};
static struct stmt q_refresh_insert = {
        "refresh_insert",
        "INSERT INTO session_refresh_tokens (tenant_id, token_sha256, session_id)"
        " VALUES ($1, decode($2, 'hex'), $3)",
        3, 0};

/* Answers a session: access token, user, and a new refresh cookie. */
static int
send_session(struct request *r, int status, const char *session_id, const char *user_id,
             const char *email, const char *name)
{
	const char *refresh, *hash, *access;
	if (new_secret(r, &refresh, &hash) != 0 ||
	    token_issue(r, user_id, session_id, &access) != 0)
		return ERR_INTERNAL;
	const char *p[3] = {r->tenant.id, hash, session_id};
	if (db_exec(r, &q_refresh_insert, p) == NULL)
		return ERR_DB;
	json_object *o = json_new_object(r->arena);
	json_add_str(o, "access_token", access);
	json_add_str(o, "token_type", "Bearer");
	json_add_int(o, "expires_in", config.access_ttl);
	json_object *u = json_object_new_object();
	json_add_str(u, "id", user_id);
	json_add_str(u, "email", email);
	json_add_str(u, "name", name);
	json_add_take(o, "user", u);
	set_refresh_cookie(r, refresh, config.refresh_ttl);
	http_json(r, status, o);
	return 0;
}

static int
start_session(struct request *r, const char *user_id, const char *email, const char *name)
{
	char ttl[16];
	snprintf(ttl, sizeof(ttl), "%d", config.refresh_ttl);
	const char *ua = http_header(r, "user-agent");
	const char *p[5] = {r->tenant.id, user_id, ttl,
	                    ua != NULL ? arena_strndup(r->arena, ua, strnlen(ua, 256)) : NULL,
	                    r->remote_addr};
	PGresult *res = db_exec(r, &q_session_insert, p);
	if (res == NULL)
		return ERR_DB;
	if (audit_record(r, "session.create", "portal_user", user_id, NULL) != 0)
		return ERR_DB;
	return send_session(r, 200, db_get(res, 0, 0), user_id, email, name);
}

static struct stmt q_sessions_revoke = {
        "sessions_revoke",
        "UPDATE portal_sessions SET revoked_at = now(), revoked_reason = $3"
        " WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL"
        " AND ($4::uuid IS NULL OR id <> $4) RETURNING id",
        4, 0};

int
auth_revoke_user_sessions(struct request *r, const char *user_id, const char *reason,
                          const char *except_session)
{
	const char *p[4] = {r->tenant.id, user_id, reason, except_session};
	PGresult *res = db_exec(r, &q_sessions_revoke, p);
	if (res == NULL)
		return ERR_DB;
	/* their real-time subscriptions end with them */
	for (int i = 0; i < PQntuples(res); i++)
		events_end_session(r, db_get(res, i, 0));
	return 0;
}

/* ---- the client surface's credential ------------------------------------------ */

/* The session check also sets app.portal_user_id for the row-level policies
 * of the client surface: one round trip. */
static struct stmt q_session_check = {
        "session_check",
        "SELECT u.email, u.name, set_config('app.portal_user_id', u.id::text, true),"
        " s.last_used_at < now() - interval '60 seconds'"
        " FROM portal_sessions s JOIN portal_users u ON u.tenant_id = s.tenant_id"
        " AND u.id = s.user_id WHERE s.tenant_id = $1 AND s.id = $2 AND s.user_id = $3"
        " AND s.revoked_at IS NULL AND s.expires_at > now() AND u.status = 'active'",
        3, 0};
static struct stmt q_session_touch = {
        "session_touch",
        "UPDATE portal_sessions SET last_used_at = now() WHERE tenant_id = $1 AND id = $2", 2, 0};

static int
client_unauthorized(struct request *r, const char *code, const char *detail)
{
	http_add_header(r, "WWW-Authenticate", "Bearer realm=\"atrium\"");
	http_problem(r, 401, code, detail);
	return ERR_INVALID;
}

int
auth_client(struct request *r)
{
	const char *h = http_header(r, "authorization");
	/* EventSource and WebSocket cannot send headers: the real-time route
	 * alone takes the token as ?access_token= (never logged by nginx) */
	bool dup = false;
	const char *q = r->route != NULL && strcmp(r->route->pattern, "/events") == 0
	                        ? http_query(r, "access_token", &dup)
	                        : NULL;
	if (h == NULL && q != NULL && !dup)
		h = arena_printf(r->arena, "Bearer %s", q);
	if (http_header(r, "x-api-key") != NULL || http_header(r, "x-erix-api-key") != NULL)
		return client_unauthorized(
		        r, "unauthorized",
		        "console API keys are not accepted on the client surface");
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return client_unauthorized(r, "unauthorized", "a portal access token is required");
	struct token_claims c;
	bool expired = false;
	if (token_verify(r, h + 7, &c, &expired) != 0)
		return expired ? client_unauthorized(r, "token_expired", "the access token expired")
		               : client_unauthorized(r, "unauthorized",
		                                     "the access token is invalid");
	const char *p[3] = {r->tenant.id, c.sid, c.sub};
	PGresult *res = db_exec(r, &q_session_check, p);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1)
		return client_unauthorized(r, "unauthorized", "the session has ended");
	snprintf(r->portal_user_id, sizeof(r->portal_user_id), "%s", c.sub);
	snprintf(r->session_id, sizeof(r->session_id), "%s", c.sid);
	/* last use is kept to the minute: one write per session per minute */
	if (strcmp(db_get(res, 0, 3), "t") == 0) {
		const char *t[2] = {r->tenant.id, c.sid};
		if (db_exec(r, &q_session_touch, t) == NULL)
			return ERR_DB;
	}
	return 0;
}

/* ---- invites ------------------------------------------------------------ */

static const char *const deliveries[] = {"email", "link", NULL};
static const struct field uuid_item[] = {
        {"project_id", FT_STRING, 0, 0, 0, check_uuid, NULL, NULL},
        FIELD_END,
};

const struct field invite_fields[] = {
        {"project_ids", FT_STRING_ARRAY, 0, 0, 100, NULL, NULL, uuid_item},
        {"delivery", FT_STRING, 0, 1, 10, NULL, deliveries, NULL},
        FIELD_END,
};

static struct stmt q_invite_client = {
        "invite_client",
        "SELECT status, email, name FROM portal_users WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        2, 0};
static struct stmt q_invite_revoke = {
        "invite_revoke",
        "UPDATE invites SET revoked_at = now() WHERE tenant_id = $1 AND client_id = $2"
        " AND used_at IS NULL AND revoked_at IS NULL",
        2, 0};
static struct stmt q_invite_insert = {
        "invite_insert",
        "INSERT INTO invites (tenant_id, client_id, token_sha256, delivery, expires_at)"
        " VALUES ($1, $2, decode($3, 'hex'), $4, now() + make_interval(secs => $5::integer))"
        " RETURNING id, api_time(expires_at)",
        5, 0};
static struct stmt q_projects_missing = {
        "projects_missing",
        "SELECT x::text FROM unnest($2::uuid[]) WITH ORDINALITY AS u(x, n) WHERE NOT EXISTS"
        " (SELECT 1 FROM projects p WHERE p.tenant_id = $1 AND p.id = u.x) ORDER BY n LIMIT 1",
        2, 0};
static struct stmt q_projects_grant = {
        "projects_grant",
        "INSERT INTO project_members (tenant_id, project_id, client_id)"
        " SELECT $1, p.id, $3 FROM projects p WHERE p.tenant_id = $1 AND p.id = ANY($2::uuid[])"
        " ON CONFLICT DO NOTHING",
        3, 0};

/* {a,b,c} from the project_ids array */
static const char *
uuid_array(struct request *r, json_object *ids)
{
	struct buf b;
	buf_init(&b, r->arena, 64);
	buf_putc(&b, '{');
	for (size_t i = 0; ids != NULL && i < json_object_array_length(ids); i++)
		buf_printf(&b, "%s%s", i ? "," : "",
		           json_object_get_string(json_object_array_get_idx(ids, i)));
	buf_putc(&b, '}');
	return buf_cstr(&b);
}

static int
grant_projects(struct request *r, const char *client_id)
{
	json_object *ids = json_get(r->json, "project_ids");
	if (ids == NULL || json_object_array_length(ids) == 0)
		return 0;
	const char *arr = uuid_array(r, ids);
	const char *p[3] = {r->tenant.id, arr, client_id};
	PGresult *res = db_exec(r, &q_projects_missing, p);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) == 1) {
		const char *missing = db_get(res, 0, 0);
		for (size_t i = 0; i < json_object_array_length(ids); i++)
			if (strcasecmp(json_object_get_string(json_object_array_get_idx(ids, i)),
			               missing) == 0) {
				res_invalid(r, arena_printf(r->arena, "project_ids[%zu]", i),
				            "invalid_reference", "is not a project of this tenant");
				return ERR_INVALID;
			}
		res_invalid(r, "project_ids", "invalid_reference", "names a project of no tenant");
		return ERR_INVALID;
	}
	return db_exec(r, &q_projects_grant, p) != NULL ? 0 : ERR_DB;
}

int
h_client_invite(struct request *r)
{
	const char *client = res_param(r, 0);
	const char *delivery = body_str(r, "delivery");
	if (delivery == NULL)
		delivery = "email";
	const char *p[2] = {r->tenant.id, client};
	PGresult *res = db_exec(r, &q_invite_client, p);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1) {
		http_problem(r, 404, "not_found", "no such resource");
		return 0;
	}
	if (strcmp(db_get(res, 0, 0), "invited") != 0) {
		/* an active client resets a forgotten password instead */
		http_problem(r, 409, "invalid_state",
		             "only a client who has not accepted an invite can be invited");
		return 0;
	}
	const char *email = db_get(res, 0, 1), *name = db_get(res, 0, 2);
	int rc = grant_projects(r, client);
	if (rc != 0)
		return rc == ERR_INVALID ? 0 : rc;
	const char *secret, *hash;
	if (new_secret(r, &secret, &hash) != 0)
		return ERR_INTERNAL;
	char ttl[16];
	snprintf(ttl, sizeof(ttl), "%d", config.invite_ttl);
	const char *ip[5] = {r->tenant.id, client, hash, delivery, ttl};
	if (db_exec(r, &q_invite_revoke, p) == NULL ||
	    (res = db_exec(r, &q_invite_insert, ip)) == NULL)
		return ERR_DB;
	const char *invite_id = db_get(res, 0, 0), *expires = db_get(res, 0, 1);
	const char *link = portal_link(r, "invite", secret);
	if (link == NULL)
		return ERR_INTERNAL;
	if (strcmp(delivery, "email") == 0 &&
	    queue_email(r, "invite", client, email, name, link, expires,
	                arena_printf(r->arena, "invite:%s", invite_id)) != 0)
		return ERR_DB;
	json_object *detail = json_new_object(r->arena);
	json_add_str(detail, "delivery", delivery);
	if (audit_record(r, "client.invite", "client", client, detail) != 0)
		return ERR_DB;
	json_object *o = json_new_object(r->arena);
	json_add_str(o, "invite_id", invite_id);
	json_add_str(o, "expires_at", expires);
	/* an Idempotency-Key replay never repeats the link: the token is not
	 * stored anywhere, not even for replays */
	r->replay_body = json_render(r->arena, o, NULL);
	if (strcmp(delivery, "link") == 0)
		json_add_str(o, "invite_url", link);
	http_json(r, 201, o);
	return 0;
}

const struct field token_fields[] = {
        {"token", FT_STRING, FF_REQUIRED, 1, 256, NULL, NULL, NULL},
        FIELD_END,
};

const struct field accept_fields[] = {
        {"token", FT_STRING, FF_REQUIRED, 1, 256, NULL, NULL, NULL},
        {"password", FT_STRING, FF_REQUIRED, 0, 0, NULL, NULL, NULL},
        {"name", FT_STRING, FF_NONBLANK, 1, LIMIT_NAME_CHARS, NULL, NULL, NULL},
        FIELD_END,
};

#define INVITE_FIND                                                                                \
	"SELECT i.id, u.id, u.email, u.name, api_time(i.expires_at), b.display_name"               \
	" FROM invites i JOIN portal_users u ON u.tenant_id = i.tenant_id AND u.id = i.client_id"  \
	" JOIN tenant_branding b ON b.tenant_id = i.tenant_id"                                     \
	" WHERE i.tenant_id = $1 AND i.token_sha256 = decode($2, 'hex') AND i.used_at IS NULL"     \
	" AND i.revoked_at IS NULL AND i.expires_at > now() AND u.status = 'invited'"

static struct stmt q_invite_find = {"invite_find", INVITE_FIND, 2, 0};
/* accept locks the invite: of two concurrent accepts the second waits, then
 * finds it used */
static struct stmt q_invite_lock = {"invite_lock", INVITE_FIND " FOR UPDATE OF i, u", 2, 0};
static struct stmt q_invite_use = {
        "invite_use", "UPDATE invites SET used_at = now() WHERE tenant_id = $1 AND id = $2", 2, 0};
static struct stmt q_user_activate = {
        "user_activate",
        "UPDATE portal_users SET password_hash = $3, status = 'active', activated_at = now(),"
        " password_changed_at = now(), name = coalesce($4, name), updated_at = now(),"
        " last_login_at = now() WHERE tenant_id = $1 AND id = $2 RETURNING name",
        4, 0};

static int
invite_invalid(struct request *r)
{
	http_problem(r, 404, "invite_invalid", "this invite link is invalid, used or expired");
	return 0;
}

/* "j***@example.com" */
static const char *
email_hint(struct request *r, const char *email)
{
	const char *at = strchr(email, '@');
	if (at == NULL || at == email)
		return "***";
	size_t first = 1;
	while ((((unsigned char)email[first]) & 0xc0) == 0x80)
		first++; /* keep a whole UTF-8 character */
	return arena_printf(r->arena, "%.*s***%s", (int)first, email, at);
}

int
h_invite_inspect(struct request *r)
{
	const char *hash = secret_hash(r, body_str(r, "token"));
	if (hash == NULL)
		return invite_invalid(r);
	const char *p[2] = {r->tenant.id, hash};
	PGresult *res = db_exec(r, &q_invite_find, p);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1)
		return invite_invalid(r);
	json_object *o = json_new_object(r->arena);
	json_add_str(o, "email_hint", email_hint(r, db_get(res, 0, 2)));
	json_add_str(o, "name", db_get(res, 0, 3));
	json_add_str(o, "tenant_display_name", db_get(res, 0, 5));
	json_add_str(o, "expires_at", db_get(res, 0, 4));
	http_json(r, 200, o);
	return 0;
}

/* Password rules as a 422, or 0. */
static int
password_rules(struct request *r, const char *field, const char *email)
{
	struct json_errors e;
	json_errors_init(r->arena, &e);
	password_check(body_str(r, field), body_len(r, field), email, field, &e);
	if (e.count == 0)
		return 0;
	http_problem_errors(r, e.list);
	return ERR_INVALID;
}

int
h_invite_accept(struct request *r)
{
	const char *hash = secret_hash(r, body_str(r, "token"));
	if (hash == NULL)
		return invite_invalid(r);
	const char *p[2] = {r->tenant.id, hash};
	PGresult *res = db_exec(r, &q_invite_lock, p);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1)
		return invite_invalid(r);
	const char *invite = db_get(res, 0, 0), *user = db_get(res, 0, 1);
	const char *email = db_get(res, 0, 2);
	/* a refused password leaves the invite usable (the answer rolls back) */
	if (password_rules(r, "password", email) != 0)
		return 0;
	char encoded[PASSWORD_HASH_MAX];
	if (password_hash(body_str(r, "password"), body_len(r, "password"), encoded) != 0)
		return ERR_INTERNAL;
	const char *u[4] = {r->tenant.id, user, encoded, body_str(r, "name")};
	const char *ip[2] = {r->tenant.id, invite};
	if (db_exec(r, &q_invite_use, ip) == NULL ||
	    (res = db_exec(r, &q_user_activate, u)) == NULL)
		return ERR_DB;
	if (audit_record(r, "invite.accept", "portal_user", user, NULL) != 0)
		return ERR_DB;
	return start_session(r, user, email, db_get(res, 0, 0));
}

/* ---- login ---------------------------------------------------------------- */

const struct field login_fields[] = {
        {"email", FT_STRING, FF_REQUIRED, 1, LIMIT_EMAIL_CHARS, NULL, NULL, NULL},
        {"password", FT_STRING, FF_REQUIRED, 1, PASSWORD_MAX_CHARS, NULL, NULL, NULL},
        FIELD_END,
};

static struct stmt q_throttle_get = {
        "throttle_get",
        "SELECT ceil(extract(epoch FROM locked_until - now()))::integer FROM login_throttle"
        " WHERE tenant_id = $1 AND email_key = $2 AND locked_until > now()",
        2, 0};
static struct stmt q_throttle_fail = {
        "throttle_fail",
        "INSERT INTO login_throttle AS t (tenant_id, email_key, failures, window_started_at)"
        " VALUES ($1, $2, 1, now()) ON CONFLICT (tenant_id, email_key) DO UPDATE SET"
        " failures = CASE WHEN t.window_started_at < now() - interval '15 minutes' THEN 1"
        " ELSE t.failures + 1 END,"
        " window_started_at = CASE WHEN t.window_started_at < now() - interval '15 minutes'"
        " THEN now() ELSE t.window_started_at END RETURNING failures",
        2, 0};
/* each further lock lasts twice as long as the one before */
static struct stmt q_throttle_lock = {
        "throttle_lock",
        "UPDATE login_throttle SET locked_until = now() + make_interval(secs =>"
        " $3::integer * (2 ^ least(lock_count, 12))), lock_count = lock_count + 1,"
        " failures = 0, window_started_at = now() WHERE tenant_id = $1 AND email_key = $2",
        3, 0};
static struct stmt q_throttle_clear = {
        "throttle_clear", "DELETE FROM login_throttle WHERE tenant_id = $1 AND email_key = $2", 2,
        0};
static struct stmt q_login_user = {"login_user",
                                   "SELECT id, password_hash, status, email, name FROM portal_users"
                                   " WHERE tenant_id = $1 AND lower(email) = lower($2)",
                                   2, 0};
static struct stmt q_user_login = {
        "user_login",
        "UPDATE portal_users SET last_login_at = now(),"
        " password_hash = coalesce($3, password_hash) WHERE tenant_id = $1 AND id = $2",
        3, 0};

static const char *
lower_dup(struct request *r, const char *s)
{
	char *d = arena_strdup(r->arena, s);
	for (char *p = d; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

static int
locked(struct request *r, const char *seconds)
{
	http_add_header(r, "Retry-After", seconds);
	http_problem(r, 429, "account_locked",
	             "too many failed attempts for this account; try again later");
	return 0;
}

/* Counts a wrong password for key (locking it after LOCK_AFTER); the count
 * is committed although the answer is an error. */
static int
count_failure(struct request *r, const char *key)
{
	const char *p[2] = {r->tenant.id, key};
	PGresult *res = db_exec(r, &q_throttle_fail, p);
	if (res == NULL)
		return ERR_DB;
	if (strtol(db_get(res, 0, 0), NULL, 10) >= LOCK_AFTER) {
		char base[16];
		snprintf(base, sizeof(base), "%d", config.lockout_base);
		const char *lp[3] = {r->tenant.id, key, base};
		if (db_exec(r, &q_throttle_lock, lp) == NULL)
			return ERR_DB;
	}
	r->commit_on_error = true;
	return 0;
}

/* The lock of key, answered as 429; 1 when locked, 0 when not. */
static int
check_lock(struct request *r, const char *key, int *rc)
{
	const char *p[2] = {r->tenant.id, key};
	PGresult *res = db_exec(r, &q_throttle_get, p);
	*rc = res == NULL ? ERR_DB : 0;
	if (res == NULL || PQntuples(res) != 1)
		return res == NULL;
	locked(r, db_get(res, 0, 0));
	return 1;
}

/* A wrong password (or no account). */
static int
login_failed(struct request *r, const char *key)
{
	int rc = count_failure(r, key);
	if (rc != 0)
		return rc;
	http_problem(r, 401, "invalid_credentials", "the email or the password is wrong");
	return 0;
}

int
h_login(struct request *r)
{
	const char *email = body_str(r, "email"), *pw = body_str(r, "password");
	size_t pwn = body_len(r, "password");
	const char *key = lower_dup(r, email);
	const char *p[2] = {r->tenant.id, key};
	int rc = 0;
	if (check_lock(r, key, &rc))
		return rc;
	const char *u[2] = {r->tenant.id, email};
	PGresult *res = db_exec(r, &q_login_user, u);
	if (res == NULL)
		return ERR_DB;
	const char *hash = PQntuples(res) == 1 ? db_get(res, 0, 1) : NULL;
	/* the same argon2 work whether or not the account exists */
	if (!password_verify(hash, pw, pwn))
		return login_failed(r, key);
	const char *user = db_get(res, 0, 0);
	if (strcmp(db_get(res, 0, 2), "disabled") == 0) {
		http_problem(r, 403, "account_disabled", "this account has been disabled");
		return 0;
	}
	char rehash[PASSWORD_HASH_MAX];
	bool again = password_needs_rehash(hash) && password_hash(pw, pwn, rehash) == 0;
	const char *lp[3] = {r->tenant.id, user, again ? rehash : NULL};
	if (db_exec(r, &q_throttle_clear, p) == NULL || db_exec(r, &q_user_login, lp) == NULL)
		return ERR_DB;
	return start_session(r, user, db_get(res, 0, 3), db_get(res, 0, 4));
}

/* ---- refresh and logout ------------------------------------------------------ */

static struct stmt q_refresh_find = {
        "refresh_find",
        "SELECT s.id, s.user_id, r.rotated_at IS NOT NULL,"
        " coalesce(r.rotated_at > now() - make_interval(secs => $3::integer), false),"
        " s.revoked_at IS NULL AND s.expires_at > now() AND u.status = 'active', u.email, u.name"
        " FROM session_refresh_tokens r JOIN portal_sessions s ON s.tenant_id = r.tenant_id"
        " AND s.id = r.session_id JOIN portal_users u ON u.tenant_id = s.tenant_id"
        " AND u.id = s.user_id WHERE r.tenant_id = $1 AND r.token_sha256 = decode($2, 'hex')"
        " FOR UPDATE OF r, s",
        3, 0};
static struct stmt q_refresh_rotate = {"refresh_rotate",
                                       "UPDATE session_refresh_tokens SET rotated_at = now()"
                                       " WHERE tenant_id = $1 AND token_sha256 = decode($2, 'hex')",
                                       2, 0};
static struct stmt q_session_slide = {
        "session_slide",
        "UPDATE portal_sessions SET expires_at = now() + make_interval(secs => $3::integer),"
        " last_used_at = now() WHERE tenant_id = $1 AND id = $2",
        3, 0};
static struct stmt q_session_end = {
        "session_end",
        "UPDATE portal_sessions SET revoked_at = now(), revoked_reason = $3"
        " WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL AND ($4::uuid IS NULL OR"
        " user_id = $4)",
        4, 0};

static int
refresh_refused(struct request *r)
{
	set_refresh_cookie(r, "", 0);
	http_problem(r, 401, "unauthorized", "the refresh token is invalid or expired");
	return 0;
}

int
h_refresh(struct request *r)
{
	const char *hash = secret_hash(r, refresh_cookie(r));
	if (hash == NULL)
		return refresh_refused(r);
	char grace[16];
	snprintf(grace, sizeof(grace), "%d", config.refresh_grace);
	const char *p[3] = {r->tenant.id, hash, grace};
	PGresult *res = db_exec(r, &q_refresh_find, p);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1 || strcmp(db_get(res, 0, 4), "t") != 0)
		return refresh_refused(r);
	const char *session = db_get(res, 0, 0), *user = db_get(res, 0, 1);
	if (strcmp(db_get(res, 0, 2), "t") == 0) {
		if (strcmp(db_get(res, 0, 3), "t") == 0) {
			/* two tabs refreshed at once: the other one won, nothing is wrong */
			http_problem(r, 409, "refresh_conflict",
			             "this refresh token was just rotated; use the newer one");
			return 0;
		}
		/* an old token came back: it was stolen or replayed; end the session */
		const char *e[4] = {r->tenant.id, session, "refresh_reuse", NULL};
		if (db_exec(r, &q_session_end, e) == NULL ||
		    audit_record(r, "session.revoke", "portal_session", session, NULL) != 0)
			return ERR_DB;
		events_end_session(r, session);
		r->commit_on_error = true;
		return refresh_refused(r);
	}
	char ttl[16];
	snprintf(ttl, sizeof(ttl), "%d", config.refresh_ttl);
	const char *sp[3] = {r->tenant.id, session, ttl};
	const char *rp[2] = {r->tenant.id, hash};
	if (db_exec(r, &q_refresh_rotate, rp) == NULL || db_exec(r, &q_session_slide, sp) == NULL)
		return ERR_DB;
	return send_session(r, 200, session, user, db_get(res, 0, 5), db_get(res, 0, 6));
}

int
h_logout(struct request *r)
{
	const char *e[4] = {r->tenant.id, r->session_id, "logout", NULL};
	if (db_exec(r, &q_session_end, e) == NULL)
		return ERR_DB;
	events_end_session(r, r->session_id);
	set_refresh_cookie(r, "", 0);
	http_empty(r, 204);
	return 0;
}

static struct stmt q_sessions_list = {
        "sessions_list",
        "SELECT jsonb_build_object('id', s.id, 'created_at', api_time(s.created_at),"
        " 'last_used_at', api_time(s.last_used_at), 'user_agent', s.user_agent,"
        " 'ip', host(s.ip), 'current', s.id = $3), s.seq::text FROM portal_sessions s"
        " WHERE s.tenant_id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL"
        " AND s.expires_at > now() AND ($4::bigint IS NULL OR s.seq > $4)"
        " ORDER BY s.seq LIMIT $5",
        5, 0};

int
h_sessions_list(struct request *r)
{
	const char *key, *seq, *lim;
	int limit;
	if (res_page(r, CURSOR_SEQ, &key, &seq, &limit, &lim) != 0)
		return 0;
	const char *p[5] = {r->tenant.id, r->portal_user_id, r->session_id, seq, lim};
	PGresult *res = db_exec(r, &q_sessions_list, p);
	return res != NULL ? res_send_list(r, res, limit) : ERR_DB;
}

int
h_session_delete(struct request *r)
{
	const char *e[4] = {r->tenant.id, res_param(r, 0), "revoked", r->portal_user_id};
	PGresult *res = db_exec(r, &q_session_end, e);
	if (res == NULL)
		return ERR_DB;
	if (strcmp(PQcmdTuples(res), "1") != 0) {
		http_problem(r, 404, "not_found", "no such session");
		return 0;
	}
	events_end_session(r, e[1]);
	http_empty(r, 204);
	return 0;
}

/* ---- password reset -------------------------------------------------------------- */

const struct field forgot_fields[] = {
        {"email", FT_STRING, FF_REQUIRED, 1, LIMIT_EMAIL_CHARS, NULL, NULL, NULL},
        FIELD_END,
};

const struct field reset_fields[] = {
        {"token", FT_STRING, FF_REQUIRED, 1, 256, NULL, NULL, NULL},
        {"password", FT_STRING, FF_REQUIRED, 0, 0, NULL, NULL, NULL},
        FIELD_END,
};

/* An active account with no reset sent in the last minute (a flood of
 * "forgot" requests sends one email a minute at most). */
static struct stmt q_reset_user = {
        "reset_user",
        "SELECT u.id, u.email, u.name FROM portal_users u WHERE u.tenant_id = $1"
        " AND lower(u.email) = lower($2) AND u.status = 'active' AND NOT EXISTS (SELECT 1"
        " FROM password_resets x WHERE x.tenant_id = u.tenant_id AND x.user_id = u.id"
        " AND x.created_at > now() - interval '60 seconds') FOR UPDATE",
        2, 0};
static struct stmt q_reset_supersede = {
        "reset_supersede",
        "UPDATE password_resets SET used_at = now() WHERE tenant_id = $1 AND user_id = $2"
        " AND used_at IS NULL",
        2, 0};
static struct stmt q_reset_insert = {
        "reset_insert",
        "INSERT INTO password_resets (tenant_id, user_id, token_sha256, expires_at)"
        " VALUES ($1, $2, decode($3, 'hex'), now() + make_interval(secs => $4::integer))"
        " RETURNING id, api_time(expires_at)",
        4, 0};
static struct stmt q_reset_find = {
        "reset_find",
        "SELECT x.id, u.id, u.email FROM password_resets x JOIN portal_users u"
        " ON u.tenant_id = x.tenant_id AND u.id = x.user_id WHERE x.tenant_id = $1"
        " AND x.token_sha256 = decode($2, 'hex') AND x.used_at IS NULL AND x.expires_at > now()"
        " AND u.status = 'active' FOR UPDATE OF x, u",
        2, 0};
static struct stmt q_reset_use = {
        "reset_use", "UPDATE password_resets SET used_at = now() WHERE tenant_id = $1 AND id = $2",
        2, 0};
static struct stmt q_user_password = {
        "user_password",
        "UPDATE portal_users SET password_hash = $3, password_changed_at = now(),"
        " updated_at = now() WHERE tenant_id = $1 AND id = $2",
        3, 0};

int
h_password_forgot(struct request *r)
{
	const char *p[2] = {r->tenant.id, body_str(r, "email")};
	PGresult *res = db_exec(r, &q_reset_user, p);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) == 1) {
		const char *user = db_get(res, 0, 0), *email = db_get(res, 0, 1);
		const char *name = db_get(res, 0, 2);
		const char *secret, *hash;
		char ttl[16];
		snprintf(ttl, sizeof(ttl), "%d", config.reset_ttl);
		if (new_secret(r, &secret, &hash) != 0)
			return ERR_INTERNAL;
		const char *sp[2] = {r->tenant.id, user};
		const char *ip[4] = {r->tenant.id, user, hash, ttl};
		if (db_exec(r, &q_reset_supersede, sp) == NULL ||
		    (res = db_exec(r, &q_reset_insert, ip)) == NULL)
			return ERR_DB;
		const char *link = portal_link(r, "reset", secret);
		if (link == NULL ||
		    queue_email(r, "password_reset", user, email, name, link, db_get(res, 0, 1),
		                arena_printf(r->arena, "reset:%s", db_get(res, 0, 0))) != 0)
			return ERR_DB;
	}
	/* the same answer whether or not the address has an account */
	http_empty(r, 202);
	return 0;
}

int
h_password_reset(struct request *r)
{
	const char *hash = secret_hash(r, body_str(r, "token"));
	PGresult *res = NULL;
	const char *p[2] = {r->tenant.id, hash};
	if (hash != NULL && (res = db_exec(r, &q_reset_find, p)) == NULL)
		return ERR_DB;
	if (res == NULL || PQntuples(res) != 1) {
		http_problem(r, 404, "token_invalid",
		             "this reset link is invalid, used or expired");
		return 0;
	}
	const char *reset = db_get(res, 0, 0), *user = db_get(res, 0, 1);
	if (password_rules(r, "password", db_get(res, 0, 2)) != 0)
		return 0;
	char encoded[PASSWORD_HASH_MAX];
	if (password_hash(body_str(r, "password"), body_len(r, "password"), encoded) != 0)
		return ERR_INTERNAL;
	const char *up[3] = {r->tenant.id, user, encoded};
	const char *rp[2] = {r->tenant.id, reset};
	if (db_exec(r, &q_user_password, up) == NULL || db_exec(r, &q_reset_use, rp) == NULL ||
	    auth_revoke_user_sessions(r, user, "password_reset", NULL) != 0 ||
	    audit_record(r, "password.reset", "portal_user", user, NULL) != 0)
		return ERR_DB;
	http_empty(r, 204);
	return 0;
}

/* ---- the signed-in client ----------------------------------------------------- */

const struct field me_fields[] = {
        {"name", FT_STRING, FF_NONBLANK, 1, LIMIT_NAME_CHARS, NULL, NULL, NULL},
        {"phone", FT_STRING, FF_NULLABLE, 0, 0, check_e164, NULL, NULL},
        {"locale", FT_STRING, 0, 2, 35, check_locale, NULL, NULL},
        {"time_zone", FT_STRING, 0, 1, 64, check_time_zone, NULL, NULL},
        {"notify", FT_OBJECT, 0, 0, 0, NULL, NULL, notify_fields},
        FIELD_READ_ONLY("id"),
        FIELD_READ_ONLY("email"),
        FIELD_READ_ONLY("company"),
        FIELD_READ_ONLY("status"),
        FIELD_END,
};

const struct field me_password_fields[] = {
        {"current_password", FT_STRING, FF_REQUIRED, 1, PASSWORD_MAX_CHARS, NULL, NULL, NULL},
        {"new_password", FT_STRING, FF_REQUIRED, 0, 0, NULL, NULL, NULL},
        FIELD_END,
};

static struct stmt q_me_get = {
        "me_get", "SELECT api_me(t) FROM portal_users t WHERE t.tenant_id = $1 AND t.id = $2", 2,
        0};
/* clang-format off */
static struct stmt q_me_update = {
	"me_update",
	"UPDATE portal_users t SET "
	PATCH_TEXT("name") ", "
	PATCH_TEXT("phone") ", "
	PATCH_TEXT("locale") ", "
	PATCH_TEXT("time_zone") ", "
	PATCH_NOTIFY ", "
	"updated_at = now() WHERE t.tenant_id = $1 AND t.id = $2 RETURNING api_me(t)",
	3, 0};
/* clang-format on */
static struct stmt q_me_hash = {
        "me_hash",
        "SELECT password_hash, email FROM portal_users WHERE tenant_id = $1 AND id = $2"
        " FOR UPDATE",
        2, 0};

static void
send_text(struct request *r, const char *json)
{
	r->status = 200;
	r->resp_type = "application/json";
	r->resp_body = json;
	r->resp_len = strlen(json);
}

int
h_me_get(struct request *r)
{
	const char *p[2] = {r->tenant.id, r->portal_user_id};
	PGresult *res = db_exec(r, &q_me_get, p);
	if (res == NULL || PQntuples(res) != 1)
		return ERR_DB;
	send_text(r, db_get(res, 0, 0));
	return 0;
}

int
h_me_patch(struct request *r)
{
	const char *p[3] = {r->tenant.id, r->portal_user_id, json_render(r->arena, r->json, NULL)};
	PGresult *res = db_exec(r, &q_me_update, p);
	if (res == NULL || PQntuples(res) != 1)
		return ERR_DB;
	send_text(r, db_get(res, 0, 0));
	return 0;
}

int
h_me_password(struct request *r)
{
	const char *p[2] = {r->tenant.id, r->portal_user_id};
	PGresult *res = db_exec(r, &q_me_hash, p);
	if (res == NULL || PQntuples(res) != 1)
		return ERR_DB;
	/* guesses of the current password count like wrong logins (a stolen
	 * access token must not become an unlimited password oracle) */
	const char *key = lower_dup(r, db_get(res, 0, 1));
	int rc = 0;
	if (check_lock(r, key, &rc))
		return rc;
	if (!password_verify(db_get(res, 0, 0), body_str(r, "current_password"),
	                     body_len(r, "current_password"))) {
		if ((rc = count_failure(r, key)) != 0)
			return rc;
		http_problem(r, 403, "invalid_credentials", "the current password is wrong");
		return 0;
	}
	if (password_rules(r, "new_password", db_get(res, 0, 1)) != 0)
		return 0;
	char encoded[PASSWORD_HASH_MAX];
	if (password_hash(body_str(r, "new_password"), body_len(r, "new_password"), encoded) != 0)
		return ERR_INTERNAL;
	const char *up[3] = {r->tenant.id, r->portal_user_id, encoded};
	/* every other session ends; this one stays */
	if (db_exec(r, &q_user_password, up) == NULL ||
	    auth_revoke_user_sessions(r, r->portal_user_id, "password_change", r->session_id) !=
	            0 ||
	    audit_record(r, "password.change", "portal_user", r->portal_user_id, NULL) != 0)
		return ERR_DB;
	http_empty(r, 204);
	return 0;
}

int
h_jwks(struct request *r)
{
	r->cache_control = "public, max-age=300";
	send_text(r, token_jwks());
	return 0;
}
