/*
 * messages.c - a project's message thread.
 *
 * Clients read the client-visible, undeleted messages of their projects,
 * newest first, and post into them; the team reads everything (deleted
 * messages too, with deleted_at) and posts with visibility "client" or
 * "internal".  An internal message never reaches a client: not in a list,
 * an unread count, an attachment, an ETag or a notification.
 *
 * A post writes its notifications in its own transaction (outbox): messages
 * fold into one pending message_digest row per recipient and project until
 * the row's send_after (ATRIUM_DIGEST_WINDOW_S after the first message).
 */
#include <string.h>

#include "attachments.h"
#include "audit.h"
#include "config.h"
#include "db.h"
#include "events.h"
#include "messages.h"
#include "notify.h"
#include "portal.h"
#include "projects.h"
#include "resource.h"
#include "router.h"

static const struct field attachment_id_item[] = {
        {"attachment_id", FT_STRING, 0, 0, 0, check_uuid, NULL, NULL},
        FIELD_END,
};

/* read-only whatever their type (read_only is checked before the type) */
#define MESSAGE_READ_ONLY                                                                          \
	FIELD_READ_ONLY("id"), FIELD_READ_ONLY("project_id"), FIELD_READ_ONLY("created_at"),       \
	        FIELD_READ_ONLY("deleted_at"), FIELD_READ_ONLY("tenant_id"),                       \
	        FIELD_READ_ONLY("author"), FIELD_READ_ONLY("attachments")

const struct field client_message_fields[] = {
        {"body", FT_STRING, FF_NONBLANK, 1, LIMIT_MESSAGE_CHARS, NULL, NULL, NULL},
        {"attachment_ids", FT_STRING_ARRAY, 0, 0, LIMIT_MESSAGE_FILES, NULL, NULL,
         attachment_id_item},
        FIELD_READ_ONLY("visibility"),
        MESSAGE_READ_ONLY,
        FIELD_END,
};

static const char *const visibilities[] = {"client", "internal", NULL};

const struct field team_message_fields[] = {
        {"body", FT_STRING, FF_NONBLANK, 1, LIMIT_MESSAGE_CHARS, NULL, NULL, NULL},
        {"visibility", FT_STRING, 0, 1, 20, NULL, visibilities, NULL},
        {"attachment_ids", FT_STRING_ARRAY, 0, 0, LIMIT_MESSAGE_FILES, NULL, NULL,
         attachment_id_item},
        MESSAGE_READ_ONLY,
        FIELD_END,
};

const struct field read_marker_fields[] = {
        {"last_read_message_id", FT_STRING, FF_REQUIRED, 0, 0, check_uuid, NULL, NULL},
        FIELD_END,
};

/* the files of message alias a, oldest first (only ready ones are linked) */
#define MESSAGE_FILES(a)                                                                           \
	"(SELECT coalesce(jsonb_agg(api_attachment_brief(f) ORDER BY f.seq), '[]'::jsonb)"         \
	" FROM attachments f WHERE f.tenant_id = " a ".tenant_id AND f.message_id = " a ".id)"
#define CLIENT_MESSAGE_JSON(a) "api_client_message(" a ", " MESSAGE_FILES(a) ")"
#define TEAM_MESSAGE_JSON(a)   "api_team_message(" a ", " MESSAGE_FILES(a) ")"

/* ---- lists ------------------------------------------------------------------- */

/* $3 cursor (seq, newest first), $4 ?after= (a message id: only newer ones;
 * an id that is not in the list matches nothing) */
static struct stmt q_client_list = {
        "message_client_list",
        "SELECT " CLIENT_MESSAGE_JSON(
                "m") ", m.seq FROM messages m"
                     " WHERE m.tenant_id = $1 AND m.project_id = $2 AND m.visibility = 'client'"
                     " AND m.deleted_at IS NULL AND ($3::bigint IS NULL OR m.seq < $3)"
                     " AND ($4::uuid IS NULL OR m.seq > (SELECT x.seq FROM messages x WHERE "
                     "x.tenant_id = $1"
                     " AND x.project_id = $2 AND x.id = $4 AND x.visibility = 'client'"
                     " AND x.deleted_at IS NULL))"
                     " ORDER BY m.seq DESC LIMIT $5",
        5, 0};
static struct stmt q_team_list = {
        "message_team_list",
        "SELECT " TEAM_MESSAGE_JSON("m") ", m.seq FROM messages m"
                                         " WHERE m.tenant_id = $1 AND m.project_id = $2 AND "
                                         "($3::bigint IS NULL OR m.seq < $3)"
                                         " AND ($4::uuid IS NULL OR m.seq > (SELECT x.seq FROM "
                                         "messages x WHERE x.tenant_id = $1"
                                         " AND x.project_id = $2 AND x.id = $4))"
                                         " AND ($5::text IS NULL OR m.visibility = $5)"
                                         " AND ($6::boolean OR m.deleted_at IS NULL)"
                                         " ORDER BY m.seq DESC LIMIT $7",
        7, 0};

int
h_client_messages_list(struct request *r)
{
	const char *key, *before, *lim, *after;
	int limit;
	if (res_page(r, CURSOR_SEQ, &key, &before, &limit, &lim) != 0 ||
	    query_uuid(r, "after", &after) != 0)
		return 0;
	const char *project = res_param(r, 0);
	int rc = portal_member(r, project);
	if (rc != 0)
		return rc == ERR_NOT_FOUND ? 0 : rc;
	const char *p[5] = {r->tenant.id, project, before, after, lim};
	PGresult *res = db_exec(r, &q_client_list, p);
	return res != NULL ? res_send_list(r, res, limit) : ERR_DB;
}

int
h_team_messages_list(struct request *r)
{
	static const char *const bools[] = {"true", "false", NULL};
	const char *key, *before, *lim, *after, *visibility, *deleted;
	int limit;
	if (res_page(r, CURSOR_SEQ, &key, &before, &limit, &lim) != 0 ||
	    query_uuid(r, "after", &after) != 0 ||
	    query_enum(r, "visibility", visibilities, &visibility) != 0 ||
	    query_enum(r, "include_deleted", bools, &deleted) != 0)
		return 0;
	const char *project = res_param(r, 0);
	int rc = project_check(r, project);
	if (rc != 0)
		return rc == ERR_NOT_FOUND ? 0 : rc;
	const char *p[7] = {r->tenant.id, project,    before,
	                    after,        visibility, deleted != NULL ? deleted : "true",
	                    lim};
	PGresult *res = db_exec(r, &q_team_list, p);
	return res != NULL ? res_send_list(r, res, limit) : ERR_DB;
}

/* ---- posting ------------------------------------------------------------------- */

/* The author's name is kept with the message; a team post without
 * x-team-member is signed with the tenant's display name. */
static struct stmt q_insert = {
        "message_insert",
        "INSERT INTO messages AS m (tenant_id, project_id, author_kind, author_client_id,"
        " author_member_id, author_name, visibility, body)"
        " SELECT $1, $2, $3, $4, $5, coalesce("
        " (SELECT u.name FROM portal_users u WHERE u.tenant_id = $1 AND u.id = $4),"
        " (SELECT tm.name FROM team_members tm WHERE tm.tenant_id = $1 AND tm.id = $5),"
        " (SELECT b.display_name FROM tenant_branding b WHERE b.tenant_id = $1)), $6, $7"
        " RETURNING m.id, m.seq, m.author_name, api_time(m.created_at)",
        7, 0};
static struct stmt q_client_get = {
        "message_client_get",
        "SELECT " CLIENT_MESSAGE_JSON("m") " FROM messages m WHERE m.tenant_id = $1 AND m.id = $2",
        2, 0};
static struct stmt q_team_get = {
        "message_team_get",
        "SELECT " TEAM_MESSAGE_JSON("m") " FROM messages m WHERE m.tenant_id = $1 AND m.id = $2", 2,
        0};

/*
 * Notifications of a new message, folded into digests: $3 notify the
 * project's watchers (except $4, the authoring member), $5 notify its member
 * clients, each on the channels they want messages on (outbox_recipients);
 * $6 the digest item; $7 the message id; $8 the window in seconds; $9 the
 * project's page in the portal.  The open digest of a recipient and project (pending,
 * untried: the unique index outbox_digest_open) takes the item; otherwise a
 * new one opens, due after the window.  A digest a notifier is sending
 * right now is locked: the insert waits, finds it sent, and opens a new one.
 */
/* clang-format off */
static struct stmt q_notify = {
	"message_notify",
	"INSERT INTO outbox AS o (tenant_id, channel, template, recipient_kind, recipient_id,"
	" address, project_id, payload, dedupe_key, send_after)"
	" SELECT $1, rc.channel, 'message_digest', rc.kind, rc.id, rc.address, $2,"
	" jsonb_build_object('messages', jsonb_build_array($6::jsonb), 'link', $9::text,"
	" 'project_name', (SELECT p.name FROM projects p WHERE p.tenant_id = $1 AND p.id = $2)),"
	" 'message_digest:' || $7::text || ':' || rc.kind || ':' || rc.id || ':' || rc.channel,"
	" now() + make_interval(secs => $8::integer)"
	" FROM outbox_recipients($1, $2, $3, $5, 'messages', $4) rc"
	" ORDER BY rc.kind, rc.id, rc.channel"
	" ON CONFLICT (tenant_id, channel, recipient_kind, recipient_id, project_id)"
	" WHERE template = 'message_digest' AND status = 'pending' AND attempts = 0"
	" DO UPDATE SET payload = jsonb_set(o.payload, '{messages}',"
	" coalesce(o.payload->'messages', '[]'::jsonb) || (excluded.payload->'messages'))",
	9, 0};
/* clang-format on */

/* the digest's line for one message: enough to write the email without
 * reading the message again (the body is cut to 500 code points) */
static const char *
digest_item(struct request *r, PGresult *ins, const char *body, int files)
{
	json_object *o = json_new_object(r->arena);
	json_add_str(o, "message_id", db_get(ins, 0, 0));
	json_add_str(o, "author_name", db_get(ins, 0, 2));
	json_add_str(o, "created_at", db_get(ins, 0, 3));
	if (body != NULL) {
		size_t n = strlen(body), chars = 0, i = 0;
		while (i < n && chars < 500) {
			i++;
			while (i < n && ((unsigned char)body[i] & 0xc0) == 0x80)
				i++;
			chars++;
		}
		json_add_str(o, "excerpt", arena_strndup(r->arena, body, i));
		json_add_bool(o, "truncated", i < n);
	} else {
		json_add_str(o, "excerpt", NULL);
		json_add_bool(o, "truncated", false);
	}
	json_add_int(o, "attachments", files);
	return json_render(r->arena, o, NULL);
}

static int
post(struct request *r, const char *project, bool client)
{
	json_object *ids = json_get(r->json, "attachment_ids");
	const char *body = json_get_string(r->json, "body");
	int files = ids != NULL ? (int)json_object_array_length(ids) : 0;
	if (body == NULL && files == 0) {
		res_invalid(r, "body", "required",
		            "a message needs a body or at least one attachment");
		return 0;
	}
	const char *visibility = client ? "client" : json_get_string(r->json, "visibility");
	if (visibility == NULL)
		visibility = "client";
	const char *member = !client && r->team_member_id[0] ? r->team_member_id : NULL;
	const char *p[7] = {r->tenant.id,
	                    project,
	                    client ? "client" : "team",
	                    client ? r->portal_user_id : NULL,
	                    member,
	                    visibility,
	                    body};
	PGresult *ins = db_exec(r, &q_insert, p);
	if (ins == NULL)
		return ERR_DB;
	const char *id = db_get(ins, 0, 0);
	int rc = attachments_link_message(r, project, id, ids);
	if (rc != 0)
		return rc == ERR_INVALID ? 0 : rc;
	bool internal = strcmp(visibility, "internal") == 0;
	const char *link = notify_project_link(r, project);
	if (link == NULL)
		return ERR_DB;
	const char *np[9] = {r->tenant.id,
	                     project,
	                     client || internal ? "true" : "false",
	                     member,
	                     !client && !internal ? "true" : "false",
	                     digest_item(r, ins, body, files),
	                     id,
	                     arena_printf(r->arena, "%d", config.digest_window),
	                     link};
	if (db_exec(r, &q_notify, np) == NULL)
		return ERR_DB;
	if (audit_record(r, "message.create", "message", id, NULL) != 0)
		return ERR_DB;
	/* both shapes: the answer is the caller's, the event goes to both
	 * audiences (the client one only when the message is client-visible) */
	const char *gp[2] = {r->tenant.id, id};
	PGresult *team = db_exec(r, &q_team_get, gp);
	PGresult *cl = team != NULL && !internal ? db_exec(r, &q_client_get, gp) : NULL;
	if (team == NULL || (!internal && cl == NULL))
		return ERR_DB;
	const char *team_json = db_get(team, 0, 0);
	const char *client_json = cl != NULL ? db_get(cl, 0, 0) : NULL;
	if (events_add(r, "message.created", project, team_json, client_json) != 0)
		return ERR_DB;
	if (!client)
		r->location = arena_printf(r->arena, "%s/team/messages/%s", API_BASE, id);
	res_send_raw(r, 201, client ? client_json : team_json);
	return 0;
}

int
h_client_messages_create(struct request *r)
{
	const char *project = res_param(r, 0);
	int rc = portal_member(r, project);
	if (rc != 0)
		return rc == ERR_NOT_FOUND ? 0 : rc;
	return post(r, project, true);
}

int
h_team_messages_create(struct request *r)
{
	const char *project = res_param(r, 0);
	int rc = project_check(r, project);
	if (rc != 0)
		return rc == ERR_NOT_FOUND ? 0 : rc;
	return post(r, project, false);
}

/* ---- one message (team), soft delete ---------------------------------------------- */

int
h_team_message_get(struct request *r)
{
	const char *p[2] = {r->tenant.id, res_param(r, 0)};
	PGresult *res = db_exec(r, &q_team_get, p);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1) {
		http_problem(r, 404, "not_found", "no such message");
		return 0;
	}
	res_send_raw(r, 200, db_get(res, 0, 0));
	return 0;
}

/* deleting again keeps the first deletion time */
static struct stmt q_delete = {
        "message_delete",
        "UPDATE messages SET deleted_at = coalesce(deleted_at, now())"
        " WHERE tenant_id = $1 AND id = $2"
        " RETURNING deleted_at = now(), project_id::text, visibility = 'client'",
        2, 0};

/* A deleted message leaves the digests that have not gone out yet; a digest
 * left with nothing to say goes too.  (One a notifier is sending right now is
 * locked: these wait for it and then leave it alone, as it is sent.) */
static struct stmt q_digest_drop = {
        "message_digest_drop",
        "UPDATE outbox o SET payload = jsonb_set(o.payload, '{messages}',"
        " (SELECT coalesce(jsonb_agg(x), '[]'::jsonb) FROM "
        "jsonb_array_elements(o.payload->'messages') x"
        " WHERE x->>'message_id' <> $2::text))"
        " WHERE o.tenant_id = $1 AND o.template = 'message_digest' AND o.status = 'pending'"
        " AND o.payload->'messages' @> jsonb_build_array(jsonb_build_object('message_id', "
        "$2::text))",
        2, 0};
static struct stmt q_digest_empty = {
        "message_digest_empty",
        "DELETE FROM outbox WHERE tenant_id = $1 AND template = 'message_digest'"
        " AND status = 'pending' AND payload->'messages' = '[]'::jsonb",
        1, 0};

int
h_team_message_delete(struct request *r)
{
	const char *id = res_param(r, 0);
	const char *p[2] = {r->tenant.id, id};
	PGresult *res = db_exec(r, &q_delete, p);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1) {
		http_problem(r, 404, "not_found", "no such message");
		return 0;
	}
	if (strcmp(db_get(res, 0, 0), "t") == 0) {
		if (db_exec(r, &q_digest_drop, p) == NULL ||
		    db_exec(r, &q_digest_empty, p) == NULL ||
		    audit_record(r, "message.delete", "message", id, NULL) != 0)
			return ERR_DB;
		const char *project = db_get(res, 0, 1);
		bool client_visible = strcmp(db_get(res, 0, 2), "t") == 0;
		PGresult *team = db_exec(r, &q_team_get, p);
		if (team == NULL)
			return ERR_DB;
		/* clients learn only which message went */
		const char *gone = arena_printf(r->arena, "{\"id\":\"%s\",\"project_id\":\"%s\"}",
		                                id, project);
		if (events_add(r, "message.deleted", project, db_get(team, 0, 0),
		               client_visible ? gone : NULL) != 0)
			return ERR_DB;
	}
	http_empty(r, 204);
	return 0;
}

/* ---- read markers --------------------------------------------------------------------- */

/* the marker never moves back; a message the client cannot see -> no row */
static struct stmt q_read = {
        "message_read",
        "INSERT INTO message_reads AS r (tenant_id, project_id, client_id, last_seq)"
        " SELECT $1, $2, $3, m.seq FROM messages m WHERE m.tenant_id = $1 AND m.project_id = $2"
        " AND m.id = $4 AND m.visibility = 'client' AND m.deleted_at IS NULL"
        " ON CONFLICT (tenant_id, project_id, client_id) DO UPDATE"
        " SET last_seq = greatest(r.last_seq, excluded.last_seq), updated_at = now()"
        " RETURNING 1",
        4, 0};

int
h_client_messages_read(struct request *r)
{
	const char *project = res_param(r, 0);
	int rc = portal_member(r, project);
	if (rc != 0)
		return rc == ERR_NOT_FOUND ? 0 : rc;
	const char *p[4] = {r->tenant.id, project, r->portal_user_id,
	                    json_get_string(r->json, "last_read_message_id")};
	PGresult *res = db_exec(r, &q_read, p);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1) {
		http_problem(r, 404, "not_found", "no such message");
		return 0;
	}
	http_empty(r, 204);
	return 0;
}
