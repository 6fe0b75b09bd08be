/*
 * work.c - milestones, tasks and deliverables of a project.
 *
 * Progress is never stored: PROJECT_JSON and MILESTONE_JSON count tasks
 * when they render (done / all tasks on the team surface).
 */
#include <string.h>

#include "attachments.h"
#include "events.h"
#include "json.h"
#include "notify.h"
#include "projects.h"
#include "resource.h"
#include "work.h"

#define COMMON_READ_ONLY                                                                           \
	FIELD_READ_ONLY("id"), FIELD_READ_ONLY("project_id"), FIELD_READ_ONLY("created_at"),       \
	        FIELD_READ_ONLY("updated_at"), FIELD_READ_ONLY("tenant_id")

/* The lists of a project's children share their parameters: keyset page,
 * ?status=, ?milestone_id= (tasks and deliverables), ?due_from= and
 * ?due_to=, in that order after (tenant, project).  The project must be the
 * tenant's (else 404). */
struct child_list {
	enum cursor_kind kind;
	const char *const *statuses;
	bool by_milestone;
	struct stmt *st;
};

static int
list_children(struct request *r, const struct child_list *l)
{
	const char *key, *seq, *lim, *status, *milestone = NULL, *from, *to;
	int limit;
	if (res_page(r, l->kind, &key, &seq, &limit, &lim) != 0 ||
	    query_enum(r, "status", l->statuses, &status) != 0 ||
	    (l->by_milestone && query_uuid(r, "milestone_id", &milestone) != 0) ||
	    query_date(r, "due_from", &from) != 0 || query_date(r, "due_to", &to) != 0)
		return 0;
	const char *project = res_param(r, 0);
	int rc = project_check(r, project);
	if (rc != 0)
		return rc == ERR_NOT_FOUND ? 0 : rc;
	const char *p[9] = {r->tenant.id, project, key, seq, status};
	int n = 5;
	if (l->by_milestone)
		p[n++] = milestone;
	p[n++] = from;
	p[n++] = to;
	p[n] = lim;
	PGresult *res = db_exec(r, l->st, p);
	return res != NULL ? res_send_list(r, res, limit) : ERR_DB;
}

/* ---- notifications of status changes ------------------------------------------ */

/*
 * A milestone that became done, a deliverable that became delivered: its
 * project's member clients hear of it when it is client-visible.  old is the
 * status before the change (NULL for a create); the answer in r is the
 * resource after it.
 */
struct transition {
	const char *status;   /* the status that notifies */
	const char *template; /* milestone_completed, deliverable_delivered */
	const char *topic;
	const char *kind; /* "milestone", "deliverable": payload key prefix */
};

static int
notify_transition(struct request *r, const struct transition *t, const char *old)
{
	if (r->status != 200 && r->status != 201)
		return 0;
	json_object *now = json_own(r->arena, json_tokener_parse(r->resp_body));
	const char *status = json_get_string(now, "status");
	json_object *visible = json_get(now, "client_visible");
	if (status == NULL || strcmp(status, t->status) != 0 ||
	    (old != NULL && strcmp(old, t->status) == 0) || visible == NULL ||
	    !json_object_get_boolean(visible))
		return 0;
	const char *id = json_get_string(now, "id");
	json_object *payload = json_new_object(r->arena);
	json_add_str(payload, arena_printf(r->arena, "%s_id", t->kind), id);
	json_add_str(payload, arena_printf(r->arena, "%s_title", t->kind),
	             json_get_string(now, "title"));
	if (json_get_string(now, "due_date") != NULL)
		json_add_str(payload, "due_date", json_get_string(now, "due_date"));
	return notify_queue(r, t->template, t->topic, json_get_string(now, "project_id"), false,
	                    true, payload, arena_printf(r->arena, "%s:%s", id, r->request_id));
}

static const struct transition milestone_done = {"done", "milestone_completed", "milestones",
                                                 "milestone"};
static const struct transition deliverable_delivered = {"delivered", "deliverable_delivered",
                                                        "deliverables", "deliverable"};

/* *out: the status before a PATCH that sets one (the row locked until the
 * commit); NULL when the patch leaves the status alone or the row is not
 * there.  Returns 0 or ERR_DB. */
static int
status_before(struct request *r, struct stmt *st, const char **out)
{
	*out = NULL;
	if (json_get_string(r->json, "status") == NULL)
		return 0;
	const char *p[2] = {r->tenant.id, res_param(r, 0)};
	PGresult *res = db_exec(r, st, p);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) == 1)
		*out = db_get(res, 0, 0);
	return 0;
}

static struct stmt q_milestone_status = {
        "milestone_status",
        "SELECT status FROM milestones WHERE tenant_id = $1 AND id = $2 FOR UPDATE", 2, 0};
static struct stmt q_deliverable_status = {
        "deliverable_status",
        "SELECT status FROM deliverables WHERE tenant_id = $1 AND id = $2 FOR UPDATE", 2, 0};

/* ---- milestones ------------------------------------------------------------- */

static const char *const milestone_statuses[] = {"pending", "in_progress", "done", NULL};

const struct field milestone_fields[] = {
        {"title", FT_STRING, FF_REQUIRED | FF_NONBLANK, 1, LIMIT_NAME_CHARS, NULL, NULL, NULL},
        {"description", FT_STRING, FF_NULLABLE, 0, LIMIT_DESCRIPTION_CHARS, NULL, NULL, NULL},
        {"due_date", FT_STRING, FF_NULLABLE, 0, 0, check_date, NULL, NULL},
        {"status", FT_STRING, 0, 1, 20, NULL, milestone_statuses, NULL},
        {"position", FT_INT, 0, -LIMIT_POSITION, LIMIT_POSITION, NULL, NULL, NULL},
        {"client_visible", FT_BOOL, 0, 0, 0, NULL, NULL, NULL},
        {"percent", FT_INT, FF_READ_ONLY, 0, 0, NULL, NULL, NULL},
        COMMON_READ_ONLY,
        FIELD_END,
};

static struct stmt q_milestone_get = {
        "milestone_get",
        "SELECT " MILESTONE_JSON("t") " FROM milestones t WHERE t.tenant_id = $1 AND t.id = $2", 2,
        0};
static struct stmt q_milestone_insert = {
        "milestone_insert",
        "INSERT INTO milestones AS t (tenant_id, project_id, title, description, due_date, status,"
        " position, client_visible)"
        " SELECT $1, $3, x.title, x.description, x.due_date, coalesce(x.status, 'pending'),"
        " coalesce(x.position, 0), coalesce(x.client_visible, true)"
        " FROM jsonb_to_record($2::jsonb) AS x(title text, description text, due_date date,"
        " status text, position integer, client_visible boolean)"
        " WHERE EXISTS (SELECT 1 FROM projects p WHERE p.tenant_id = $1 AND p.id = $3)"
        " RETURNING " MILESTONE_JSON("t") ", id",
        3, 0};
/* clang-format off */
static struct stmt q_milestone_update = {
	"milestone_update",
	"UPDATE milestones t SET "
	PATCH_TEXT("title") ", "
	PATCH_TEXT("description") ", "
	PATCH_CAST("due_date", "date") ", "
	PATCH_TEXT("status") ", "
	PATCH_CAST("position", "integer") ", "
	PATCH_CAST("client_visible", "boolean") ", "
	"updated_at = now() WHERE t.tenant_id = $1 AND t.id = $2"
	" RETURNING " MILESTONE_JSON("t"),
	3, 0};
/* clang-format on */
static struct stmt q_milestone_delete = {
        "milestone_delete", "DELETE FROM milestones WHERE tenant_id = $1 AND id = $2", 2, 0};
static struct stmt q_milestone_list = {
        "milestone_list",
        "SELECT " MILESTONE_JSON(
                "t") ", t.position || '.' || t.seq FROM milestones t"
                     " WHERE t.tenant_id = $1 AND t.project_id = $2"
                     " AND ($3::integer IS NULL OR (t.position, t.seq) > ($3::integer, $4::bigint))"
                     " AND ($5::text IS NULL OR t.status = $5)"
                     " AND ($6::date IS NULL OR t.due_date >= $6) AND ($7::date IS NULL OR "
                     "t.due_date <= $7)"
                     " ORDER BY t.position, t.seq LIMIT $8",
        8, 0};

static const struct resource milestone_resource = {"milestone",         "/team/milestones/",
                                                   &q_milestone_get,    &q_milestone_insert,
                                                   &q_milestone_update, &q_milestone_delete};

int
h_milestones_list(struct request *r)
{
	static const struct child_list l = {CURSOR_POS_SEQ, milestone_statuses, false,
	                                    &q_milestone_list};
	return list_children(r, &l);
}

int
h_milestones_create(struct request *r)
{
	int rc = res_create(r, &milestone_resource, res_param(r, 0));
	if (rc == 0)
		rc = notify_transition(r, &milestone_done, NULL);
	return rc != 0 ? rc : events_resource(r, "milestone.updated", EVENTS_MILESTONE);
}

int
h_milestone_get(struct request *r)
{
	return res_get(r, &milestone_resource);
}

int
h_milestone_patch(struct request *r)
{
	const char *old;
	if (status_before(r, &q_milestone_status, &old) != 0)
		return ERR_DB;
	int rc = res_patch(r, &milestone_resource);
	if (rc == 0 && json_get_string(r->json, "status") != NULL)
		rc = notify_transition(r, &milestone_done, old != NULL ? old : "done");
	return rc != 0 ? rc : events_resource(r, "milestone.updated", EVENTS_MILESTONE);
}

int
h_milestone_delete(struct request *r)
{
	/* its tasks and deliverables stay in the project, without a milestone */
	return res_delete(r, &milestone_resource);
}

/* ---- tasks ------------------------------------------------------------------ */

static const char *const task_statuses[] = {"todo", "in_progress", "done", NULL};

const struct field task_fields[] = {
        {"milestone_id", FT_STRING, FF_NULLABLE, 0, 0, check_uuid, NULL, NULL},
        {"title", FT_STRING, FF_REQUIRED | FF_NONBLANK, 1, LIMIT_NAME_CHARS, NULL, NULL, NULL},
        {"status", FT_STRING, 0, 1, 20, NULL, task_statuses, NULL},
        {"due_date", FT_STRING, FF_NULLABLE, 0, 0, check_date, NULL, NULL},
        {"position", FT_INT, 0, -LIMIT_POSITION, LIMIT_POSITION, NULL, NULL, NULL},
        {"client_visible", FT_BOOL, 0, 0, 0, NULL, NULL, NULL},
        COMMON_READ_ONLY,
        FIELD_END,
};

static struct stmt q_task_get = {
        "task_get", "SELECT api_task(t) FROM tasks t WHERE t.tenant_id = $1 AND t.id = $2", 2, 0};
static struct stmt q_task_insert = {
        "task_insert",
        "INSERT INTO tasks (tenant_id, project_id, milestone_id, title, status, due_date,"
        " position, client_visible)"
        " SELECT $1, $3, x.milestone_id, x.title, coalesce(x.status, 'todo'), x.due_date,"
        " coalesce(x.position, 0), coalesce(x.client_visible, true)"
        " FROM jsonb_to_record($2::jsonb) AS x(milestone_id uuid, title text, status text,"
        " due_date date, position integer, client_visible boolean)"
        " WHERE EXISTS (SELECT 1 FROM projects p WHERE p.tenant_id = $1 AND p.id = $3)"
        " RETURNING api_task(tasks), id",
        3, 0};
/* clang-format off */
static struct stmt q_task_update = {
	"task_update",
	"UPDATE tasks t SET "
	PATCH_CAST("milestone_id", "uuid") ", "
	PATCH_TEXT("title") ", "
	PATCH_TEXT("status") ", "
	PATCH_CAST("due_date", "date") ", "
	PATCH_CAST("position", "integer") ", "
	PATCH_CAST("client_visible", "boolean") ", "
	"updated_at = now() WHERE t.tenant_id = $1 AND t.id = $2"
	" RETURNING api_task(t)",
	3, 0};
/* clang-format on */
static struct stmt q_task_delete = {"task_delete",
                                    "DELETE FROM tasks WHERE tenant_id = $1 AND id = $2", 2, 0};
static struct stmt q_task_list = {
        "task_list",
        "SELECT api_task(t), t.position || '.' || t.seq FROM tasks t"
        " WHERE t.tenant_id = $1 AND t.project_id = $2"
        " AND ($3::integer IS NULL OR (t.position, t.seq) > ($3::integer, $4::bigint))"
        " AND ($5::text IS NULL OR t.status = $5) AND ($6::uuid IS NULL OR t.milestone_id = $6)"
        " AND ($7::date IS NULL OR t.due_date >= $7) AND ($8::date IS NULL OR t.due_date <= $8)"
        " ORDER BY t.position, t.seq LIMIT $9",
        9, 0};

static const struct resource task_resource = {"task",         "/team/tasks/", &q_task_get,
                                              &q_task_insert, &q_task_update, &q_task_delete};

/* A milestone of another project (or tenant) is an invalid reference. */
static int
milestone_reference(struct request *r, int rc, const char *constraint)
{
	if (rc == ERR_DB && res_reference_error(r, constraint, "milestone_id"))
		return 0;
	return rc;
}

int
h_tasks_list(struct request *r)
{
	static const struct child_list l = {CURSOR_POS_SEQ, task_statuses, true, &q_task_list};
	return list_children(r, &l);
}

int
h_tasks_create(struct request *r)
{
	int rc = milestone_reference(r, res_create(r, &task_resource, res_param(r, 0)),
	                             "tasks_milestone_fkey");
	return rc != 0 ? rc : events_resource(r, "task.updated", EVENTS_TASK);
}

int
h_task_get(struct request *r)
{
	return res_get(r, &task_resource);
}

int
h_task_patch(struct request *r)
{
	int rc = milestone_reference(r, res_patch(r, &task_resource), "tasks_milestone_fkey");
	return rc != 0 ? rc : events_resource(r, "task.updated", EVENTS_TASK);
}

int
h_task_delete(struct request *r)
{
	return res_delete(r, &task_resource);
}

/* ---- deliverables ------------------------------------------------------------- */

static const char *const deliverable_statuses[] = {"scheduled", "in_progress",       "delivered",
                                                   "approved",  "changes_requested", NULL};
/* approved and changes_requested are the client's decisions */
static const char *const deliverable_team_statuses[] = {"scheduled", "in_progress", "delivered",
                                                        NULL};

static const struct field attachment_id_item[] = {
        {"attachment_id", FT_STRING, 0, 0, 0, check_uuid, NULL, NULL},
        FIELD_END,
};

const struct field deliverable_fields[] = {
        {"milestone_id", FT_STRING, FF_NULLABLE, 0, 0, check_uuid, NULL, NULL},
        {"title", FT_STRING, FF_REQUIRED | FF_NONBLANK, 1, LIMIT_NAME_CHARS, NULL, NULL, NULL},
        {"description", FT_STRING, FF_NULLABLE, 0, LIMIT_DESCRIPTION_CHARS, NULL, NULL, NULL},
        {"due_date", FT_STRING, FF_REQUIRED, 0, 0, check_date, NULL, NULL},
        {"status", FT_STRING, 0, 1, 20, NULL, deliverable_team_statuses, NULL},
        {"attachment_ids", FT_STRING_ARRAY, 0, 0, LIMIT_DELIVERABLE_FILES, NULL, NULL,
         attachment_id_item},
        {"client_visible", FT_BOOL, 0, 0, 0, NULL, NULL, NULL},
        FIELD_READ_ONLY("delivered_at"),
        {"decision", FT_OBJECT, FF_READ_ONLY, 0, 0, NULL, NULL, NULL},
        COMMON_READ_ONLY,
        FIELD_END,
};

static struct stmt q_deliverable_get = {
        "deliverable_get",
        "SELECT " DELIVERABLE_JSON("t") " FROM deliverables t WHERE t.tenant_id = $1 AND t.id = $2",
        2, 0};
static struct stmt q_deliverable_insert = {
        "deliverable_insert",
        "INSERT INTO deliverables AS t (tenant_id, project_id, milestone_id, title, description,"
        " due_date, status, delivered_at, client_visible)"
        " SELECT $1, $3, x.milestone_id, x.title, x.description, x.due_date,"
        " coalesce(x.status, 'scheduled'),"
        " CASE WHEN x.status = 'delivered' THEN now() END, coalesce(x.client_visible, true)"
        " FROM jsonb_to_record($2::jsonb) AS x(milestone_id uuid, title text, description text,"
        " due_date date, status text, client_visible boolean)"
        " WHERE EXISTS (SELECT 1 FROM projects p WHERE p.tenant_id = $1 AND p.id = $3)"
        " RETURNING " DELIVERABLE_JSON("t") ", id",
        3, 0};
/* Delivering (again) stamps delivered_at; any status change of a decided
 * deliverable is a new version: the decision stays in history, not on it. */
/* clang-format off */
static struct stmt q_deliverable_update = {
	"deliverable_update",
	"UPDATE deliverables t SET "
	PATCH_CAST("milestone_id", "uuid") ", "
	PATCH_TEXT("title") ", "
	PATCH_TEXT("description") ", "
	PATCH_CAST("due_date", "date") ", "
	PATCH_TEXT("status") ", "
	PATCH_CAST("client_visible", "boolean") ", "
	"delivered_at = CASE WHEN $3::jsonb->>'status' = 'delivered' AND t.status <> 'delivered'"
	" THEN now() ELSE t.delivered_at END, "
	"decision_id = CASE WHEN $3::jsonb ? 'status' AND t.status IN ('approved', 'changes_requested')"
	" THEN NULL ELSE t.decision_id END, "
	"updated_at = now() WHERE t.tenant_id = $1 AND t.id = $2"
	" RETURNING " DELIVERABLE_JSON("t"),
	3, 0};
/* clang-format on */
static struct stmt q_deliverable_delete = {
        "deliverable_delete", "DELETE FROM deliverables WHERE tenant_id = $1 AND id = $2", 2, 0};
/* clang-format off */
static struct stmt q_deliverable_list = {
	"deliverable_list",
	"SELECT " DELIVERABLE_JSON("t") ", t.due_date || '.' || t.seq FROM deliverables t"
	" WHERE t.tenant_id = $1 AND t.project_id = $2"
	" AND ($3::date IS NULL OR (t.due_date, t.seq) > ($3::date, $4::bigint))"
	" AND ($5::text IS NULL OR t.status = $5) AND ($6::uuid IS NULL OR t.milestone_id = $6)"
	" AND ($7::date IS NULL OR t.due_date >= $7) AND ($8::date IS NULL OR t.due_date <= $8)"
	" ORDER BY t.due_date, t.seq LIMIT $9",
	9, 0};
/* clang-format on */

static const struct resource deliverable_resource = {"deliverable",         "/team/deliverables/",
                                                     &q_deliverable_get,    &q_deliverable_insert,
                                                     &q_deliverable_update, &q_deliverable_delete};

/* attachment_ids: ready team uploads of the deliverable's project, stored in
 * order (deliverable_attachments); the answer is rendered again after. */
static struct stmt q_deliverable_project = {
        "deliverable_project",
        "SELECT project_id FROM deliverables WHERE tenant_id = $1 AND id = $2", 2, 0};
static struct stmt q_deliverable_files_clear = {
        "deliverable_files_clear",
        "DELETE FROM deliverable_attachments WHERE tenant_id = $1 AND deliverable_id = $2", 2, 0};
static struct stmt q_deliverable_files_set = {
        "deliverable_files_set",
        "INSERT INTO deliverable_attachments (tenant_id, project_id, deliverable_id,"
        " attachment_id, position)"
        " SELECT d.tenant_id, d.project_id, d.id, x.id::uuid, x.n"
        " FROM deliverables d, jsonb_array_elements_text($3::jsonb) WITH ORDINALITY AS x(id, n)"
        " WHERE d.tenant_id = $1 AND d.id = $2",
        3, 0};

static int
set_files(struct request *r, const char *deliverable_id, json_object *ids)
{
	const char *p[3] = {r->tenant.id, deliverable_id, json_render(r->arena, ids, NULL)};
	if (db_exec(r, &q_deliverable_files_clear, p) == NULL ||
	    db_exec(r, &q_deliverable_files_set, p) == NULL)
		return ERR_DB;
	PGresult *res = db_exec(r, &q_deliverable_get, p);
	if (res == NULL)
		return ERR_DB;
	res_send_raw(r, r->status, db_get(res, 0, 0));
	return 0;
}

int
h_deliverables_list(struct request *r)
{
	static const struct child_list l = {CURSOR_DATE_SEQ, deliverable_statuses, true,
	                                    &q_deliverable_list};
	return list_children(r, &l);
}

int
h_deliverables_create(struct request *r)
{
	json_object *ids = json_get(r->json, "attachment_ids");
	int rc = attachments_check_team(r, res_param(r, 0), ids);
	if (rc != 0)
		return rc == ERR_INVALID ? 0 : rc;
	rc = milestone_reference(r, res_create(r, &deliverable_resource, res_param(r, 0)),
	                         "deliverables_milestone_fkey");
	if (rc != 0 || r->status != 201)
		return rc;
	/* the new id ends the Location */
	const char *slash = strrchr(r->location, '/');
	if (ids != NULL && (rc = set_files(r, slash + 1, ids)) != 0)
		return rc;
	if ((rc = notify_transition(r, &deliverable_delivered, NULL)) != 0)
		return rc;
	return events_resource(r, "deliverable.updated", EVENTS_DELIVERABLE);
}

int
h_deliverable_get(struct request *r)
{
	return res_get(r, &deliverable_resource);
}

int
h_deliverable_patch(struct request *r)
{
	json_object *ids = json_get(r->json, "attachment_ids");
	const char *id = res_param(r, 0);
	if (ids != NULL) {
		const char *p[2] = {r->tenant.id, id};
		PGresult *res = db_exec(r, &q_deliverable_project, p);
		if (res == NULL)
			return ERR_DB;
		if (PQntuples(res) == 1) {
			int rc = attachments_check_team(r, db_get(res, 0, 0), ids);
			if (rc != 0)
				return rc == ERR_INVALID ? 0 : rc;
		}
	}
	const char *old;
	if (status_before(r, &q_deliverable_status, &old) != 0)
		return ERR_DB;
	int rc = milestone_reference(r, res_patch(r, &deliverable_resource),
	                             "deliverables_milestone_fkey");
	if (rc != 0 || r->status != 200)
		return rc;
	if (ids != NULL && (rc = set_files(r, id, ids)) != 0)
		return rc;
	if (json_get_string(r->json, "status") != NULL &&
	    (rc = notify_transition(r, &deliverable_delivered, old != NULL ? old : "delivered")) !=
	            0)
		return rc;
	return events_resource(r, "deliverable.updated", EVENTS_DELIVERABLE);
}

int
h_deliverable_delete(struct request *r)
{
	return res_delete(r, &deliverable_resource);
}
