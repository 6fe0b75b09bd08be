/*
 * idem.c - Idempotency-Key bookkeeping.
 */
#include <string.h>

#include <openssl/rand.h>

#include "db.h"
#include "idem.h"
#include "router.h"
#include "util.h"

#define IDEM_KEY_MAX 128

static struct stmt q_idem_lock = {
        "idem_lock", "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 7))", 1, 0};
static struct stmt q_idem_get = {
        "idem_get",
        "SELECT request_sha256 = decode($5, 'hex'), status, location, body FROM idempotency_keys"
        " WHERE tenant_id = $1 AND credential = $2 AND path = $3 AND key = $4"
        " AND created_at > now() - interval '24 hours'",
        5, 0};
static struct stmt q_idem_put = {
        "idem_put",
        "INSERT INTO idempotency_keys (tenant_id, credential, path, key, request_sha256, status,"
        " location, body) VALUES ($1, $2, $3, $4, decode($5, 'hex'), $6, $7, $8)"
        " ON CONFLICT (tenant_id, credential, path, key) DO UPDATE SET"
        " request_sha256 = EXCLUDED.request_sha256, status = EXCLUDED.status,"
        " location = EXCLUDED.location, body = EXCLUDED.body, created_at = now()",
        8, 0};
static struct stmt q_idem_expire = {"idem_expire",
                                    "DELETE FROM idempotency_keys WHERE tenant_id = $1"
                                    " AND created_at < now() - interval '24 hours'",
                                    1, 0};

static bool
key_ok(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n > IDEM_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)k[i] < 0x21 || (unsigned char)k[i] > 0x7e)
			return false;
	return true;
}

/* SHA-256 of method and body: with the path in the key's scope, "the same
 * request". */
static void
request_hash(const struct request *r, char out[65])
{
	size_t ml = strlen(r->method);
	char *buf = arena_alloc(r->arena, ml + 1 + r->body.n + 1);
	memcpy(buf, r->method, ml);
	buf[ml] = '\n';
	if (r->body.n > 0)
		memcpy(buf + ml + 1, r->body.p, r->body.n);
	util_sha256_hex(buf, ml + 1 + r->body.n, out);
}

static const char *
credential_of(const struct request *r)
{
	if (r->api_key_id[0] != '\0')
		return r->api_key_id;
	return r->portal_user_id[0] != '\0' ? r->portal_user_id : "";
}

int
idem_run(struct request *r, int (*handler)(struct request *r))
{
	const char *key = http_header(r, "idempotency-key");
	if (key == NULL)
		return handler(r);
	if (!key_ok(key)) {
		http_problem(r, 400, "bad_header",
		             "Idempotency-Key must be 1-128 printable ASCII characters");
		return 0;
	}
	const char *path = arena_strndup(r->arena, r->path.p, r->path.n);
	const char *cred = credential_of(r);
	char hash[65];
	request_hash(r, hash);
	const char *lockname = arena_printf(r->arena, "%s|%s|%s|%s", r->tenant.id, cred, path, key);
	const char *lp[1] = {lockname};
	PGresult *res = db_exec(r, &q_idem_lock, lp);
	if (res == NULL)
		return ERR_DB;
	if (strcmp(db_get(res, 0, 0), "t") != 0) {
		http_add_header(r, "Retry-After", "1");
		http_problem(r, 409, "idempotency_in_progress",
		             "a request with this Idempotency-Key is still being processed");
		return 0;
	}
	const char *gp[5] = {r->tenant.id, cred, path, key, hash};
	if ((res = db_exec(r, &q_idem_get, gp)) == NULL)
		return ERR_DB;
	if (PQntuples(res) == 1) {
		if (strcmp(db_get(res, 0, 0), "t") != 0) {
			http_problem(r, 409, "idempotency_conflict",
			             "this Idempotency-Key was used with a different request");
			return 0;
		}
		r->status = (int)strtol(db_get(res, 0, 1), NULL, 10);
		r->location = db_get(res, 0, 2);
		r->resp_type = "application/json";
		r->resp_body = db_get(res, 0, 3);
		r->resp_len = strlen(r->resp_body);
		r->replayed = true;
		return r->route != NULL && r->route->replay != NULL ? r->route->replay(r) : 0;
	}
	int rc = handler(r);
	if (rc != 0 || r->status < 200 || r->status >= 300)
		return rc;
	char status[8];
	snprintf(status, sizeof(status), "%d", r->status);
	const char *body =
	        r->replay_body != NULL
	                ? r->replay_body
	                : arena_strndup(r->arena, r->resp_body != NULL ? r->resp_body : "",
	                                r->resp_len);
	const char *pp[8] = {r->tenant.id, cred, path, key, hash, status, r->location, body};
	if (db_exec(r, &q_idem_put, pp) == NULL)
		return ERR_DB;
	/* expired keys of the tenant go now and then, not on every create */
	unsigned char dice = 0;
	if (RAND_bytes(&dice, 1) == 1 && dice < 4) {
		const char *ep[1] = {r->tenant.id};
		if (db_exec(r, &q_idem_expire, ep) == NULL)
			return ERR_DB;
	}
	return 0;
}
