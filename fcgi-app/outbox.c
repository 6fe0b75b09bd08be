/*
 * outbox.c - GET /team/outbox, and /unsubscribe (RFC 8058 one-click).
 *
 * The outbox list never shows a payload: it may hold an invite or reset
 * link until the notifier scrubs it, and message excerpts.
 */
#include <string.h>
#include <time.h>

#include "audit.h"
#include "db.h"
#include "json.h"
#include "outbox.h"
#include "resource.h"
#include "unsub.h"

static const char *const statuses[] = {"pending", "sent", "dead", NULL};
static const char *const channels[] = {"email", "whatsapp", NULL};
static const char *const templates[] = {"invite",
                                        "password_reset",
                                        "message_digest",
                                        "deliverable_delivered",
                                        "deliverable_decision",
                                        "milestone_completed",
                                        NULL};

static struct stmt q_list = {
        "outbox_list",
        "SELECT jsonb_build_object('id', o.id, 'channel', o.channel, 'template', o.template,"
        " 'recipient', jsonb_build_object('kind', o.recipient_kind, 'id', o.recipient_id,"
        " 'address', o.address), 'project_id', o.project_id, 'status', o.status,"
        " 'attempts', o.attempts, 'last_error', o.last_error,"
        " 'created_at', api_time(o.created_at), 'send_after', api_time(o.send_after),"
        " 'sent_at', api_time(o.sent_at)), o.seq"
        " FROM outbox o WHERE o.tenant_id = $1 AND ($2::bigint IS NULL OR o.seq < $2)"
        " AND ($3::text IS NULL OR o.status = $3) AND ($4::text IS NULL OR o.channel = $4)"
        " AND ($5::text IS NULL OR o.template = $5) AND ($6::uuid IS NULL OR o.project_id = $6)"
        " AND ($7::uuid IS NULL OR o.recipient_id = $7)"
        " ORDER BY o.seq DESC LIMIT $8",
        8, 0};

int
h_team_outbox_list(struct request *r)
{
	const char *key, *before, *lim, *status, *channel, *template, *project, *recipient;
	int limit;
	if (res_page(r, CURSOR_SEQ, &key, &before, &limit, &lim) != 0 ||
	    query_enum(r, "status", statuses, &status) != 0 ||
	    query_enum(r, "channel", channels, &channel) != 0 ||
	    query_enum(r, "template", templates, &template) != 0 ||
	    query_uuid(r, "project_id", &project) != 0 ||
	    query_uuid(r, "recipient_id", &recipient) != 0)
		return 0;
	const char *p[8] = {r->tenant.id, before,  status,    channel,
	                    template,     project, recipient, lim};
	PGresult *res = db_exec(r, &q_list, p);
	return res != NULL ? res_send_list(r, res, limit) : ERR_DB;
}

/* ---- one-click unsubscribe --------------------------------------------------- */

/* the preference a token names, now; $5 = turn it off first */
static struct stmt q_client_pref = {
        "unsubscribe_client",
        "UPDATE portal_users t SET notify_topics = CASE WHEN $5::boolean"
        " THEN notify_merge(t.notify_topics, jsonb_build_object($3::text,"
        " jsonb_build_object($4::text, false))) ELSE t.notify_topics END,"
        " updated_at = CASE WHEN $5::boolean THEN now() ELSE t.updated_at END"
        " WHERE t.tenant_id = $1 AND t.id = $2"
        " RETURNING notify_on(CASE $4::text WHEN 'email' THEN t.notify_email"
        " ELSE t.notify_whatsapp END, t.notify_topics, $3::text, $4::text)",
        5, 0};
static struct stmt q_team_pref = {
        "unsubscribe_team",
        "UPDATE team_members t SET notify_topics = CASE WHEN $5::boolean"
        " THEN notify_merge(t.notify_topics, jsonb_build_object($3::text,"
        " jsonb_build_object($4::text, false))) ELSE t.notify_topics END,"
        " updated_at = CASE WHEN $5::boolean THEN now() ELSE t.updated_at END"
        " WHERE t.tenant_id = $1 AND t.id = $2"
        " RETURNING notify_on(CASE $4::text WHEN 'email' THEN t.notify_email"
        " ELSE t.notify_whatsapp END, t.notify_topics, $3::text, $4::text)",
        5, 0};

static int
unsubscribe(struct request *r, bool apply)
{
	bool dup = false;
	const char *token = http_query(r, "token", &dup);
	struct unsub u;
	if (token == NULL || dup || unsub_verify(r->arena, token, time(NULL), &u) != 0 ||
	    strcmp(u.tenant_id, r->tenant.id) != 0 ||
	    (strcmp(u.kind, "client") != 0 && strcmp(u.kind, "team") != 0) ||
	    (strcmp(u.channel, "email") != 0 && strcmp(u.channel, "whatsapp") != 0) ||
	    (strcmp(u.topic, "messages") != 0 && strcmp(u.topic, "deliverables") != 0 &&
	     strcmp(u.topic, "milestones") != 0)) {
		http_problem(r, 404, "token_invalid", "this unsubscribe link is not valid");
		return 0;
	}
	const char *p[5] = {r->tenant.id, u.recipient_id, u.topic, u.channel,
	                    apply ? "true" : "false"};
	/* UPDATE ... without a change on GET: one statement for both */
	PGresult *res =
	        db_exec(r, strcmp(u.kind, "client") == 0 ? &q_client_pref : &q_team_pref, p);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1) {
		http_problem(r, 404, "token_invalid", "this unsubscribe link is not valid");
		return 0;
	}
	if (apply) {
		json_object *d = json_new_object(r->arena);
		json_add_str(d, "topic", u.topic);
		json_add_str(d, "channel", u.channel);
		json_add_str(d, "recipient_kind", u.kind);
		if (audit_record(r, "notify.unsubscribe", u.kind, u.recipient_id, d) != 0)
			return ERR_DB;
	}
	json_object *o = json_new_object(r->arena);
	json_add_str(o, "topic", u.topic);
	json_add_str(o, "channel", u.channel);
	json_add_str(o, "recipient_kind", u.kind);
	json_add_bool(o, "unsubscribed", strcmp(db_get(res, 0, 0), "t") != 0);
	http_json(r, 200, o);
	return 0;
}

int
h_unsubscribe_get(struct request *r)
{
	return unsubscribe(r, false);
}

int
h_unsubscribe_post(struct request *r)
{
	return unsubscribe(r, true);
}
