/*
 * people.c - team members and clients (portal users) on the team surface.
 */
#include <string.h>

#include "auth.h"
#include "json.h"
#include "notify.h"
#include "people.h"
#include "resource.h"

/* ---- team members --------------------------------------------------------- */

const struct field member_fields[] = {
        {"name", FT_STRING, FF_REQUIRED | FF_NONBLANK, 1, LIMIT_NAME_CHARS, NULL, NULL, NULL},
        {"email", FT_STRING, FF_REQUIRED, 3, LIMIT_EMAIL_CHARS, check_email, NULL, NULL},
        {"phone", FT_STRING, FF_NULLABLE, 0, 0, check_e164, NULL, NULL},
        {"time_zone", FT_STRING, 0, 1, 64, check_time_zone, NULL, NULL},
        {"notify", FT_OBJECT, 0, 0, 0, NULL, NULL, notify_fields},
        FIELD_READ_ONLY("id"),
        FIELD_READ_ONLY("created_at"),
        FIELD_READ_ONLY("updated_at"),
        FIELD_END,
};

static struct stmt q_member_get = {
        "member_get",
        "SELECT api_team_member(t) FROM team_members t WHERE t.tenant_id = $1 AND t.id = $2", 2, 0};
static struct stmt q_member_insert = {
        "member_insert",
        "INSERT INTO team_members (tenant_id, name, email, phone, time_zone, notify_email,"
        " notify_whatsapp, notify_topics)"
        " SELECT $1, x.name, x.email, x.phone, coalesce(x.time_zone, 'UTC'),"
        " coalesce((x.notify->>'email')::boolean, true),"
        " coalesce((x.notify->>'whatsapp')::boolean, false),"
        " notify_merge('{}', coalesce(x.notify->'topics', '{}'))"
        " FROM jsonb_to_record($2::jsonb) AS x(name text, email text, phone text, time_zone text,"
        " notify jsonb)"
        " RETURNING api_team_member(team_members), id",
        2, 0};
/* clang-format off */
static struct stmt q_member_update = {
	"member_update",
	"UPDATE team_members t SET "
	PATCH_TEXT("name")
	", "
	PATCH_TEXT("email")
	", "
	PATCH_TEXT("phone")
	", "
	PATCH_TEXT("time_zone")
	", "
	PATCH_NOTIFY
	", updated_at = now() WHERE t.tenant_id = $1 AND t.id = $2 RETURNING api_team_member(t)",
	3, 0};
/* clang-format on */
static struct stmt q_member_delete = {
        "member_delete", "DELETE FROM team_members WHERE tenant_id = $1 AND id = $2", 2, 0};
/* clang-format off */
static struct stmt q_member_list = {
	"member_list",
	"SELECT api_team_member(t), t.seq::text FROM team_members t WHERE t.tenant_id = $1 AND"
	" ($2::bigint IS NULL OR t.seq > $2) AND "
	SEARCH_NAME_EMAIL("t", "$3")
	" AND ($4::uuid IS NULL OR EXISTS (SELECT 1 FROM project_watchers w WHERE w.tenant_id"
	" = t.tenant_id AND w.project_id = $4 AND w.member_id = t.id)) ORDER BY t.seq LIMIT $5",
	5, 0};
/* clang-format on */

static const struct resource member_resource = {"team_member",    "/team/members/",
                                                &q_member_get,    &q_member_insert,
                                                &q_member_update, &q_member_delete};

/* A duplicate email is the only unique key of people: say so plainly. */
static int
email_conflict(struct request *r, int rc)
{
	if (rc == ERR_DB && strcmp(db_sqlstate(), "23505") == 0) {
		http_problem(r, 409, "conflict",
		             "this email address is already in use in this tenant");
		return 0;
	}
	return rc;
}

int
h_members_list(struct request *r)
{
	const char *key, *seq, *lim, *q, *project;
	int limit;
	if (res_page(r, CURSOR_SEQ, &key, &seq, &limit, &lim) != 0 ||
	    query_text(r, "q", LIMIT_NAME_CHARS, &q) != 0 ||
	    query_uuid(r, "project_id", &project) != 0)
		return 0;
	const char *p[5] = {r->tenant.id, seq, q, project, lim};
	PGresult *res = db_exec(r, &q_member_list, p);
	return res != NULL ? res_send_list(r, res, limit) : ERR_DB;
}

int
h_members_create(struct request *r)
{
	return email_conflict(r, res_create(r, &member_resource, NULL));
}

int
h_member_get(struct request *r)
{
	return res_get(r, &member_resource);
}

int
h_member_patch(struct request *r)
{
	return email_conflict(r, res_patch(r, &member_resource));
}

int
h_member_delete(struct request *r)
{
	return res_delete(r, &member_resource);
}

/* ---- clients ------------------------------------------------------------- */

static const char *const client_statuses[] = {"invited", "active", "disabled", NULL};

const struct field client_fields[] = {
        {"email", FT_STRING, FF_REQUIRED, 3, LIMIT_EMAIL_CHARS, check_email, NULL, NULL},
        {"name", FT_STRING, FF_REQUIRED | FF_NONBLANK, 1, LIMIT_NAME_CHARS, NULL, NULL, NULL},
        {"company", FT_STRING, FF_NULLABLE, 0, LIMIT_NAME_CHARS, NULL, NULL, NULL},
        {"phone", FT_STRING, FF_NULLABLE, 0, 0, check_e164, NULL, NULL},
        {"locale", FT_STRING, 0, 2, 35, check_locale, NULL, NULL},
        {"time_zone", FT_STRING, 0, 1, 64, check_time_zone, NULL, NULL},
        {"status", FT_STRING, 0, 1, 20, NULL, client_statuses, NULL},
        {"notify", FT_OBJECT, 0, 0, 0, NULL, NULL, notify_fields},
        FIELD_READ_ONLY("id"),
        FIELD_READ_ONLY("created_at"),
        FIELD_READ_ONLY("updated_at"),
        FIELD_READ_ONLY("last_login_at"),
        FIELD_READ_ONLY("password"),
        FIELD_READ_ONLY("password_hash"),
        FIELD_END,
};

static struct stmt q_client_get = {
        "client_get",
        "SELECT api_client(t) FROM portal_users t WHERE t.tenant_id = $1 AND t.id = $2", 2, 0};
static struct stmt q_client_insert = {
        "client_insert",
        "INSERT INTO portal_users (tenant_id, email, name, company, phone, locale, time_zone,"
        " notify_email, notify_whatsapp, notify_topics)"
        " SELECT $1, x.email, x.name, x.company, x.phone, coalesce(x.locale, 'en'),"
        " coalesce(x.time_zone, 'UTC'), coalesce((x.notify->>'email')::boolean, true),"
        " coalesce((x.notify->>'whatsapp')::boolean, false),"
        " notify_merge('{}', coalesce(x.notify->'topics', '{}'))"
        " FROM jsonb_to_record($2::jsonb) AS x(email text, name text, company text, phone text,"
        " locale text, time_zone text, notify jsonb)"
        " RETURNING api_client(portal_users), id",
        2, 0};
/* clang-format off */
static struct stmt q_client_update = {
	"client_update",
	"UPDATE portal_users t SET "
	PATCH_TEXT("email")
	", "
	PATCH_TEXT("name")
	", "
	PATCH_TEXT("company")
	", "
	PATCH_TEXT("phone")
	", "
	PATCH_TEXT("locale")
	", "
	PATCH_TEXT("time_zone")
	", "
	PATCH_TEXT("status")
	", "
	PATCH_NOTIFY
	", updated_at = now() WHERE t.tenant_id = $1 AND t.id = $2 RETURNING api_client(t)",
	3, 0};
/* clang-format on */
static struct stmt q_client_delete = {
        "client_delete", "DELETE FROM portal_users WHERE tenant_id = $1 AND id = $2", 2, 0};
static struct stmt q_client_activated = {"client_activated",
                                         "SELECT activated_at IS NOT NULL FROM portal_users"
                                         " WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                                         2, 0};
/* clang-format off */
static struct stmt q_client_list = {
	"client_list",
	"SELECT api_client(t), t.seq::text FROM portal_users t WHERE t.tenant_id = $1 AND"
	" ($2::bigint IS NULL OR t.seq > $2) AND ($3::text IS NULL OR t.status = $3) AND "
	SEARCH_NAME_EMAIL("t", "$4")
	" AND ($5::uuid IS NULL OR EXISTS (SELECT 1 FROM project_members m WHERE m.tenant_id ="
	" t.tenant_id AND m.project_id = $5 AND m.client_id = t.id)) ORDER BY t.seq LIMIT $6",
	6, 0};
/* clang-format on */

static const struct resource client_resource = {"client",         "/team/clients/",
                                                &q_client_get,    &q_client_insert,
                                                &q_client_update, &q_client_delete};

int
h_clients_list(struct request *r)
{
	const char *key, *seq, *lim, *status, *q, *project;
	int limit;
	if (res_page(r, CURSOR_SEQ, &key, &seq, &limit, &lim) != 0 ||
	    query_enum(r, "status", client_statuses, &status) != 0 ||
	    query_text(r, "q", LIMIT_NAME_CHARS, &q) != 0 ||
	    query_uuid(r, "project_id", &project) != 0)
		return 0;
	const char *p[6] = {r->tenant.id, seq, status, q, project, lim};
	PGresult *res = db_exec(r, &q_client_list, p);
	return res != NULL ? res_send_list(r, res, limit) : ERR_DB;
}

int
h_clients_create(struct request *r)
{
	const char *status = json_object_get_string(json_get(r->json, "status"));
	if (status != NULL && strcmp(status, "invited") != 0) {
		/* a client becomes active by accepting an invite, never by decree */
		res_invalid(r, "status", "invalid_enum", "a new client is always invited");
		return 0;
	}
	return email_conflict(r, res_create(r, &client_resource, NULL));
}

int
h_client_get(struct request *r)
{
	return res_get(r, &client_resource);
}

int
h_client_patch(struct request *r)
{
	const char *status = json_object_get_string(json_get(r->json, "status"));
	if (status != NULL && strcmp(status, "invited") == 0) {
		res_invalid(r, "status", "invalid_enum", "the team may set active or disabled");
		return 0;
	}
	if (status != NULL && strcmp(status, "active") == 0) {
		const char *p[2] = {r->tenant.id, res_param(r, 0)};
		PGresult *res = db_exec(r, &q_client_activated, p);
		if (res == NULL)
			return ERR_DB;
		if (PQntuples(res) == 1 && strcmp(db_get(res, 0, 0), "t") != 0) {
			res_invalid(r, "status", "invalid_enum",
			            "active needs an accepted invite; this client has not accepted "
			            "one");
			return 0;
		}
	}
	int rc = email_conflict(r, res_patch(r, &client_resource));
	/* a disabled account's sessions end now, not when their tokens expire */
	if (rc == 0 && r->status == 200 && status != NULL && strcmp(status, "disabled") == 0)
		rc = auth_revoke_user_sessions(r, res_param(r, 0), "disabled", NULL);
	return rc;
}

int
h_client_delete(struct request *r)
{
	/* memberships go with the row (ON DELETE CASCADE); messages keep their
	 * text and show the author as a former client */
	return res_delete(r, &client_resource);
}
