/*
 * projects.c - projects, project members (clients) and watchers (team).
 */
#include <string.h>

#include "audit.h"
#include "json.h"
#include "events.h"
#include "projects.h"
#include "resource.h"

static const char *const project_statuses[] = {"active", "on_hold", "completed", "archived", NULL};

const struct field project_fields[] = {
        {"name", FT_STRING, FF_REQUIRED | FF_NONBLANK, 1, LIMIT_NAME_CHARS, NULL, NULL, NULL},
        {"description", FT_STRING, FF_NULLABLE, 0, LIMIT_DESCRIPTION_CHARS, NULL, NULL, NULL},
        {"status", FT_STRING, 0, 1, 20, NULL, project_statuses, NULL},
        {"start_date", FT_STRING, FF_NULLABLE, 0, 0, check_date, NULL, NULL},
        {"due_date", FT_STRING, FF_NULLABLE, 0, 0, check_date, NULL, NULL},
        FIELD_READ_ONLY("id"),
        {"progress", FT_OBJECT, FF_READ_ONLY, 0, 0, NULL, NULL, NULL},
        FIELD_READ_ONLY("created_at"),
        FIELD_READ_ONLY("updated_at"),
        FIELD_READ_ONLY("tenant_id"),
        FIELD_END,
};

static struct stmt q_project_get = {
        "project_get",
        "SELECT " PROJECT_JSON("t") " FROM projects t WHERE t.tenant_id = $1 AND t.id = $2", 2, 0};
static struct stmt q_project_insert = {
        "project_insert",
        "INSERT INTO projects AS t (tenant_id, name, description, status, start_date, due_date)"
        " SELECT $1, x.name, x.description, coalesce(x.status, 'active'), x.start_date,"
        " x.due_date FROM jsonb_to_record($2::jsonb)"
        " AS x(name text, description text, status text, start_date date, due_date date)"
        " RETURNING " PROJECT_JSON("t") ", id",
        2, 0};
/* clang-format off */
static struct stmt q_project_update = {
	"project_update",
	"UPDATE projects t SET "
	PATCH_TEXT("name")
	", "
	PATCH_TEXT("description")
	", "
	PATCH_TEXT("status")
	", "
	PATCH_CAST("start_date", "date")
	", "
	PATCH_CAST("due_date", "date")
	", updated_at = now() WHERE t.tenant_id = $1 AND t.id = $2 RETURNING " PROJECT_JSON("t") "",
	3, 0};
/* clang-format on */
static struct stmt q_project_delete = {
        "project_delete", "DELETE FROM projects WHERE tenant_id = $1 AND id = $2", 2, 0};
static struct stmt q_project_list = {
        "project_list",
        "SELECT " PROJECT_JSON(
                "t") ", t.seq::text FROM projects t"
                     " WHERE t.tenant_id = $1 AND ($2::bigint IS NULL OR t.seq > $2)"
                     " AND ($3::text IS NULL OR t.status = $3)"
                     " AND ($4::text IS NULL OR strpos(lower(t.name), lower($4)) > 0)"
                     " AND ($5::date IS NULL OR t.due_date >= $5) AND ($6::date IS NULL OR "
                     "t.due_date <= $6)"
                     " AND ($7::uuid IS NULL OR EXISTS (SELECT 1 FROM project_members m"
                     " WHERE m.tenant_id = t.tenant_id AND m.project_id = t.id AND m.client_id = "
                     "$7))"
                     " ORDER BY t.seq LIMIT $8",
        8, 0};
static struct stmt q_project_exists = {
        "project_exists", "SELECT 1 FROM projects WHERE tenant_id = $1 AND id = $2 FOR KEY SHARE",
        2, 0};
static struct stmt q_project_dates = {
        "project_dates",
        "SELECT start_date::text, due_date::text FROM projects WHERE tenant_id = $1 AND id = $2", 2,
        0};

static const struct resource project_resource = {"project",         "/team/projects/",
                                                 &q_project_get,    &q_project_insert,
                                                 &q_project_update, &q_project_delete};

int
project_check(struct request *r, const char *project_id)
{
	const char *p[2] = {r->tenant.id, project_id};
	PGresult *res = db_exec(r, &q_project_exists, p);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1) {
		http_problem(r, 404, "not_found", "no such resource");
		return ERR_NOT_FOUND;
	}
	return 0;
}

/* Value of a date field of the body: its new value when sent (NULL when
 * cleared), else *stored. */
static const char *
date_after(struct request *r, const char *field, const char *stored)
{
	json_object *v = NULL;
	if (!json_object_object_get_ex(r->json, field, &v))
		return stored;
	return v != NULL ? json_object_get_string(v) : NULL;
}

int
dates_in_order(struct request *r, const char *start, const char *due)
{
	if (start != NULL && due != NULL && strcmp(due, start) < 0) {
		res_invalid(r, "due_date", "out_of_range", "must not be before start_date");
		return ERR_INVALID;
	}
	return 0;
}

int
h_projects_list(struct request *r)
{
	const char *key, *seq, *lim, *status, *q, *from, *to, *client;
	int limit;
	if (res_page(r, CURSOR_SEQ, &key, &seq, &limit, &lim) != 0 ||
	    query_enum(r, "status", project_statuses, &status) != 0 ||
	    query_text(r, "q", LIMIT_NAME_CHARS, &q) != 0 ||
	    query_date(r, "due_from", &from) != 0 || query_date(r, "due_to", &to) != 0 ||
	    query_uuid(r, "client_id", &client) != 0)
		return 0;
	const char *p[8] = {r->tenant.id, seq, status, q, from, to, client, lim};
	PGresult *res = db_exec(r, &q_project_list, p);
	return res != NULL ? res_send_list(r, res, limit) : ERR_DB;
}

int
h_projects_create(struct request *r)
{
	if (dates_in_order(r, date_after(r, "start_date", NULL), date_after(r, "due_date", NULL)) !=
	    0)
		return 0;
	return res_create(r, &project_resource, NULL);
}

int
h_project_get(struct request *r)
{
	return res_get(r, &project_resource);
}

int
h_project_patch(struct request *r)
{
	if (json_has(r->json, "start_date") || json_has(r->json, "due_date")) {
		const char *p[2] = {r->tenant.id, res_param(r, 0)};
		PGresult *res = db_exec(r, &q_project_dates, p);
		if (res == NULL)
			return ERR_DB;
		if (PQntuples(res) == 1 &&
		    dates_in_order(r, date_after(r, "start_date", db_get(res, 0, 0)),
		                   date_after(r, "due_date", db_get(res, 0, 1))) != 0)
			return 0;
	}
	int rc = res_patch(r, &project_resource);
	return rc != 0 ? rc : events_resource(r, "project.updated", EVENTS_PROJECT);
}

int
h_project_delete(struct request *r)
{
	/* milestones, tasks, deliverables, members and watchers go with it in
	 * this transaction (ON DELETE CASCADE) */
	return res_delete(r, &project_resource);
}

/* ---- members and watchers ------------------------------------------------ */

/* One relation between a project and a person: the statements differ, the
 * handling does not. */
struct relation {
	const char *name; /* audit target type */
	struct stmt *person_exists;
	struct stmt *add;    /* $1 tenant, $2 project, $3 person; RETURNING 1 when new */
	struct stmt *remove; /* same parameters */
	struct stmt *list;   /* $1 tenant, $2 project, $3 after seq, $4 limit */
};

static struct stmt q_client_exists = {
        "client_exists", "SELECT 1 FROM portal_users WHERE tenant_id = $1 AND id = $2", 2, 0};
static struct stmt q_member_exists = {
        "member_exists", "SELECT 1 FROM team_members WHERE tenant_id = $1 AND id = $2", 2, 0};
static struct stmt q_pm_add = {
        "pm_add",
        "INSERT INTO project_members (tenant_id, project_id, client_id) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        3, 0};
static struct stmt q_pm_remove = {
        "pm_remove",
        "DELETE FROM project_members WHERE tenant_id = $1 AND project_id = $2 AND client_id = $3",
        3, 0};
static struct stmt q_pm_list = {
        "pm_list",
        "SELECT jsonb_build_object('client_id', u.id, 'name', u.name, 'email', u.email,"
        " 'added_at', api_time(m.added_at)), m.seq::text"
        " FROM project_members m JOIN portal_users u ON u.tenant_id = m.tenant_id"
        " AND u.id = m.client_id WHERE m.tenant_id = $1 AND m.project_id = $2"
        " AND ($3::bigint IS NULL OR m.seq > $3) ORDER BY m.seq LIMIT $4",
        4, 0};
static struct stmt q_pw_add = {
        "pw_add",
        "INSERT INTO project_watchers (tenant_id, project_id, member_id) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        3, 0};
static struct stmt q_pw_remove = {
        "pw_remove",
        "DELETE FROM project_watchers WHERE tenant_id = $1 AND project_id = $2 AND member_id = $3",
        3, 0};
static struct stmt q_pw_list = {
        "pw_list",
        "SELECT jsonb_build_object('member_id', t.id, 'name', t.name, 'email', t.email,"
        " 'added_at', api_time(w.added_at)), w.seq::text"
        " FROM project_watchers w JOIN team_members t ON t.tenant_id = w.tenant_id"
        " AND t.id = w.member_id WHERE w.tenant_id = $1 AND w.project_id = $2"
        " AND ($3::bigint IS NULL OR w.seq > $3) ORDER BY w.seq LIMIT $4",
        4, 0};

static const struct relation members_rel = {"project_member", &q_client_exists, &q_pm_add,
                                            &q_pm_remove, &q_pm_list};
static const struct relation watchers_rel = {"project_watcher", &q_member_exists, &q_pw_add,
                                             &q_pw_remove, &q_pw_list};

static int
relation_list(struct request *r, const struct relation *rel)
{
	const char *key, *seq, *lim;
	int limit;
	const char *project = res_param(r, 0);
	if (res_page(r, CURSOR_SEQ, &key, &seq, &limit, &lim) != 0)
		return 0;
	int rc = project_check(r, project);
	if (rc != 0)
		return rc == ERR_NOT_FOUND ? 0 : rc;
	const char *p[4] = {r->tenant.id, project, seq, lim};
	PGresult *res = db_exec(r, rel->list, p);
	return res != NULL ? res_send_list(r, res, limit) : ERR_DB;
}

/* Both ends must be the tenant's, else 404 like any foreign id. */
static int
relation_ends(struct request *r, const struct relation *rel, const char *project,
              const char *person)
{
	int rc = project_check(r, project);
	if (rc != 0)
		return rc;
	const char *p[2] = {r->tenant.id, person};
	PGresult *res = db_exec(r, rel->person_exists, p);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1) {
		http_problem(r, 404, "not_found", "no such resource");
		return ERR_NOT_FOUND;
	}
	return 0;
}

static int
relation_put(struct request *r, const struct relation *rel)
{
	const char *project = res_param(r, 0), *person = res_param(r, 1);
	int rc = relation_ends(r, rel, project, person);
	if (rc != 0)
		return rc == ERR_NOT_FOUND ? 0 : rc;
	const char *p[3] = {r->tenant.id, project, person};
	PGresult *res = db_exec(r, rel->add, p);
	if (res == NULL)
		return ERR_DB;
	/* PUT is idempotent: granting twice changes (and audits) nothing */
	if (PQntuples(res) == 1 &&
	    audit_record(r, arena_printf(r->arena, "%s.add", rel->name), rel->name,
	                 arena_printf(r->arena, "%s/%s", project, person), NULL) != 0)
		return ERR_DB;
	http_empty(r, 204);
	return 0;
}

static int
relation_delete(struct request *r, const struct relation *rel)
{
	const char *project = res_param(r, 0), *person = res_param(r, 1);
	const char *p[3] = {r->tenant.id, project, person};
	PGresult *res = db_exec(r, rel->remove, p);
	if (res == NULL)
		return ERR_DB;
	if (strcmp(PQcmdTuples(res), "0") == 0) {
		http_problem(r, 404, "not_found", "no such resource");
		return 0;
	}
	if (audit_record(r, arena_printf(r->arena, "%s.remove", rel->name), rel->name,
	                 arena_printf(r->arena, "%s/%s", project, person), NULL) != 0)
		return ERR_DB;
	http_empty(r, 204);
	return 0;
}

int
h_project_members_list(struct request *r)
{
	return relation_list(r, &members_rel);
}

/* member.added / member.removed reach the team; a removed client's
 * subscription to the project ends. */
static int
member_event(struct request *r, const char *type)
{
	if (r->status != 204)
		return 0;
	const char *project = res_param(r, 0), *client = res_param(r, 1);
	json_object *o = json_new_object(r->arena);
	json_add_str(o, "project_id", project);
	json_add_str(o, "client_id", client);
	if (strcmp(type, "member.removed") == 0)
		events_end_member(r, project, client);
	return events_add(r, type, project, json_render(r->arena, o, NULL), NULL);
}

int
h_project_member_put(struct request *r)
{
	int rc = relation_put(r, &members_rel);
	return rc != 0 ? rc : member_event(r, "member.added");
}

int
h_project_member_delete(struct request *r)
{
	int rc = relation_delete(r, &members_rel);
	return rc != 0 ? rc : member_event(r, "member.removed");
}

int
h_project_watchers_list(struct request *r)
{
	return relation_list(r, &watchers_rel);
}

int
h_project_watcher_put(struct request *r)
{
	return relation_put(r, &watchers_rel);
}

int
h_project_watcher_delete(struct request *r)
{
	return relation_delete(r, &watchers_rel);
}
