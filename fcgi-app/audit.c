/*
 * audit.c - audit_log inserts.
 */
#include <arpa/inet.h>

#include "audit.h"
#include "db.h"
#include "json.h"

static struct stmt q_audit_insert = {
        "audit_insert",
        "INSERT INTO audit_log (tenant_id, actor_key_id, actor_member_id, action, target_type,"
        " target_id, request_id, ip, detail)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::inet, $9::jsonb)",
        9, 0};

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
	const char *params[9] = {
	        r->tenant.id,
	        r->api_key_id[0] ? r->api_key_id : NULL,
	        r->team_member_id[0] ? r->team_member_id : NULL,
	        action,
	        target_type,
	        target_id,
	        r->request_id,
	        peer_ip(r),
	        detail != NULL ? json_render(r->arena, detail, NULL) : NULL,
	};
	return db_exec(r, &q_audit_insert, params) != NULL ? 0 : ERR_DB;
}
