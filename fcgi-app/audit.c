/*
 * audit.c - audit_log inserts.
 */
#include <arpa/inet.h>

#include "audit.h"
#include "db.h"
#include "json.h"
#include "resource.h"

static struct stmt q_audit_insert = {
        "audit_insert",
        "INSERT INTO audit_log (tenant_id, actor_key_id, actor_member_id, action, target_type,"
        " target_id, request_id, ip, detail, actor_client_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::inet, $9::jsonb, $10)",
        10, 0};

/* nginx passes the peer address; anything else (a unix socket peer) is NULL */
static const char *
peer_ip(const struct request *r)
{
	unsigned char tmp[16];
	const char *ip = r->remote_addr;
	if (ip == NULL || (inet_pton(AF_INET, ip, tmp) != 1 && inet_pton(AF_INET6, ip, tmp) != 1))
		return NULL;
	return ip;
}

int
audit_record(struct request *r, const char *action, const char *target_type, const char *target_id,
             json_object *detail)
{
	const char *params[10] = {
	        r->tenant.id,
	        r->api_key_id[0] ? r->api_key_id : NULL,
	        r->team_member_id[0] ? r->team_member_id : NULL,
	        action,
	        target_type,
	        target_id,
	        r->request_id,
	        peer_ip(r),
	        detail != NULL ? json_render(r->arena, detail, NULL) : NULL,
	        r->portal_user_id[0] ? r->portal_user_id : NULL,
	};
	return db_exec(r, &q_audit_insert, params) != NULL ? 0 : ERR_DB;
}

static struct stmt q_audit_list = {
        "audit_list",
        "SELECT jsonb_build_object('id', a.id, 'at',"
        " to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
        " 'actor', jsonb_build_object('api_key_id', a.actor_key_id,"
        " 'member_id', a.actor_member_id, 'client_id', a.actor_client_id), 'action', a.action,"
        " 'target', jsonb_build_object('type', a.target_type, 'id', a.target_id),"
        " 'request_id', a.request_id, 'ip', host(a.ip), 'detail', a.detail), a.id::text"
        " FROM audit_log a WHERE a.tenant_id = $1 AND ($2::bigint IS NULL OR a.id < $2)"
        " AND ($3::uuid IS NULL OR a.actor_key_id = $3 OR a.actor_member_id = $3"
        " OR a.actor_client_id = $3)"
        " AND ($4::text IS NULL OR a.action = $4)"
        " AND ($5::timestamptz IS NULL OR a.at >= $5) AND ($6::timestamptz IS NULL OR a.at < $6)"
        " ORDER BY a.id DESC LIMIT $7",
        7, 0};

int
h_team_audit_list(struct request *r)
{
	const char *key, *before, *lim, *actor, *action, *since, *until;
	int limit;
	if (res_page(r, CURSOR_SEQ, &key, &before, &limit, &lim) != 0 ||
	    query_uuid(r, "actor", &actor) != 0 || query_text(r, "action", 64, &action) != 0 ||
	    query_timestamp(r, "since", &since) != 0 || query_timestamp(r, "until", &until) != 0)
		return 0;
	const char *p[7] = {r->tenant.id, before, actor, action, since, until, lim};
	PGresult *res = db_exec(r, &q_audit_list, p);
	return res != NULL ? res_send_list(r, res, limit) : ERR_DB;
}
