/*
 * notify.c - notifications written by the workers (see notify.h).
 */
#include <string.h>

#include "config.h"
#include "db.h"
#include "notify.h"

static const struct field channel_fields[] = {
        {"email", FT_BOOL, 0, 0, 0, NULL, NULL, NULL},
        {"whatsapp", FT_BOOL, 0, 0, 0, NULL, NULL, NULL},
        FIELD_END,
};

static const struct field topic_fields[] = {
        {"messages", FT_OBJECT, 0, 0, 0, NULL, NULL, channel_fields},
        {"deliverables", FT_OBJECT, 0, 0, 0, NULL, NULL, channel_fields},
        {"milestones", FT_OBJECT, 0, 0, 0, NULL, NULL, channel_fields},
        FIELD_END,
};

const struct field notify_fields[] = {
        {"email", FT_BOOL, 0, 0, 0, NULL, NULL, NULL},
        {"whatsapp", FT_BOOL, 0, 0, 0, NULL, NULL, NULL},
        {"topics", FT_OBJECT, 0, 0, 0, NULL, NULL, topic_fields},
        FIELD_END,
};

static struct stmt q_first_host = {
        "notify_first_host",
        "SELECT host FROM tenant_domains WHERE tenant_id = $1 ORDER BY created_at, host LIMIT 1", 1,
        0};

const char *
notify_portal_base(struct request *r)
{
	const char *host = r->host;
	if (r->api_host || host == NULL) {
		const char *p[1] = {r->tenant.id};
		PGresult *res = db_exec(r, &q_first_host, p);
		if (res == NULL || PQntuples(res) != 1)
			return NULL;
		host = db_get(res, 0, 0);
	}
	char port[16] = "";
	if (config.public_port != 443)
		snprintf(port, sizeof(port), ":%d", config.public_port);
	return arena_printf(r->arena, "https://%s%s", host, port);
}

const char *
notify_project_link(struct request *r, const char *project_id)
{
	const char *base = notify_portal_base(r);
	return base != NULL ? arena_printf(r->arena, "%s/projects/%s", base, project_id) : NULL;
}

static struct stmt q_queue = {
        "notify_queue",
        "INSERT INTO outbox (tenant_id, channel, template, recipient_kind, recipient_id, address,"
        " project_id, payload, dedupe_key)"
        " SELECT $1, rc.channel, $3, rc.kind, rc.id, rc.address, $2,"
        " $4::jsonb || jsonb_build_object('project_name',"
        " (SELECT p.name FROM projects p WHERE p.tenant_id = $1 AND p.id = $2)),"
        " $5 || ':' || rc.kind || ':' || rc.id || ':' || rc.channel"
        " FROM outbox_recipients($1, $2, $6, $7, $8, NULL) rc"
        " ON CONFLICT (tenant_id, dedupe_key) DO NOTHING",
        8, 0};

int
notify_queue(struct request *r, const char *template, const char *topic, const char *project_id,
             bool watchers, bool clients, json_object *payload, const char *event)
{
	const char *link = notify_project_link(r, project_id);
	if (link == NULL)
		return ERR_DB;
	json_add_str(payload, "link", link);
	const char *p[8] = {r->tenant.id,
	                    project_id,
	                    template,
	                    json_render(r->arena, payload, NULL),
	                    arena_printf(r->arena, "%s:%s", template, event),
	                    watchers ? "true" : "false",
	                    clients ? "true" : "false",
	                    topic};
	return db_exec(r, &q_queue, p) != NULL ? 0 : ERR_DB;
}
