/*
 * portal.c - the client surface's projects: list and detail with progress,
 * tasks, deliverables, and the client's sign-off of a delivered deliverable.
 *
 * Every statement names the client ($3 or the member join) and filters on
 * client_visible; the row-level policies of sql/005_portal.sql enforce the
 * same rule a second time.  Client shapes carry no client_visible flag and
 * name a milestone only when it is client-visible itself.  Progress counts
 * client-visible tasks only.
 */
#include <string.h>

#include "audit.h"
#include "db.h"
#include "events.h"
#include "notify.h"
#include "portal.h"
#include "shapes.h"
#include "resource.h"
#include "router.h"

const struct field approve_fields[] = {
        {"comment", FT_STRING, FF_NULLABLE, 0, LIMIT_COMMENT_CHARS, NULL, NULL, NULL},
        FIELD_END,
};
const struct field request_changes_fields[] = {
        {"comment", FT_STRING, FF_REQUIRED | FF_NONBLANK, 1, LIMIT_COMMENT_CHARS, NULL, NULL, NULL},
        FIELD_END,
};

static struct stmt q_member = {
        "portal_member",
        "SELECT 1 FROM project_members WHERE tenant_id = $1 AND project_id = $2 AND client_id = $3",
        3, 0};

int
portal_member(struct request *r, const char *project_id)
{
	const char *p[3] = {r->tenant.id, project_id, r->portal_user_id};
	PGresult *res = db_exec(r, &q_member, p);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1) {
		http_problem(r, 404, "not_found", "no such project");
		return ERR_NOT_FOUND;
	}
	return 0;
}

/* ---- projects ---------------------------------------------------------------------- */

static const char *const project_statuses[] = {"active", "on_hold", "completed", "archived", NULL};

/* clang-format off */
static struct stmt q_projects = {
	"portal_projects",
	"SELECT " CLIENT_PROJECT_JSON("p", "$2::uuid") ", p.seq FROM project_members pm"
	" JOIN projects p ON p.tenant_id = pm.tenant_id AND p.id = pm.project_id"
	" WHERE pm.tenant_id = $1 AND pm.client_id = $2 AND ($3::bigint IS NULL OR p.seq > $3)"
	" AND ($4::text IS NULL OR p.status = $4)"
	" ORDER BY p.seq LIMIT $5",
	5, 0};
static struct stmt q_project = {
	"portal_project",
	"SELECT " CLIENT_PROJECT_JSON("p", "$3::uuid") " || jsonb_build_object("
	" 'created_at', api_time(p.created_at),"
	" 'milestones', (SELECT coalesce(jsonb_agg(" CLIENT_MILESTONE_JSON("ms")
	" ORDER BY ms.position, ms.seq), '[]'::jsonb) FROM milestones ms"
	" WHERE ms.tenant_id = p.tenant_id AND ms.project_id = p.id AND ms.client_visible),"
	" 'deliverables', (SELECT coalesce(jsonb_agg(" CLIENT_DELIVERABLE_JSON("dl")
	" ORDER BY dl.due_date, dl.seq), '[]'::jsonb) FROM deliverables dl"
	" WHERE dl.tenant_id = p.tenant_id AND dl.project_id = p.id AND dl.client_visible))"
	" FROM projects p JOIN project_members pm ON pm.tenant_id = p.tenant_id"
	" AND pm.project_id = p.id AND pm.client_id = $3"
	" WHERE p.tenant_id = $1 AND p.id = $2",
	3, 0};
/* clang-format on */

int
h_portal_projects_list(struct request *r)
{
	const char *key, *seq, *lim, *status;
	int limit;
	if (res_page(r, CURSOR_SEQ, &key, &seq, &limit, &lim) != 0 ||
	    query_enum(r, "status", project_statuses, &status) != 0)
		return 0;
	const char *p[5] = {r->tenant.id, r->portal_user_id, seq, status, lim};
	PGresult *res = db_exec(r, &q_projects, p);
	return res != NULL ? res_send_list(r, res, limit) : ERR_DB;
}

int
h_portal_project_get(struct request *r)
{
	const char *p[3] = {r->tenant.id, res_param(r, 0), r->portal_user_id};
	PGresult *res = db_exec(r, &q_project, p);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1) {
		http_problem(r, 404, "not_found", "no such project");
		return 0;
	}
	res_send_raw(r, 200, db_get(res, 0, 0));
	return 0;
}

/* ---- tasks and deliverables ------------------------------------------------------------ */

static const char *const task_statuses[] = {"todo", "in_progress", "done", NULL};
static const char *const deliverable_statuses[] = {"scheduled", "in_progress",       "delivered",
                                                   "approved",  "changes_requested", NULL};

/* ?milestone_id= matches only a client-visible milestone */
#define MILESTONE_FILTER(x, param)                                                                 \
	"(" param "::uuid IS NULL OR (" x ".milestone_id = " param " AND EXISTS (SELECT 1"         \
	" FROM milestones fm WHERE fm.tenant_id = " x ".tenant_id AND fm.id = " param              \
	" AND fm.client_visible)))"

/* clang-format off */
static struct stmt q_tasks = {
	"portal_tasks",
	"SELECT " CLIENT_TASK_JSON("t") ", t.position || '.' || t.seq FROM tasks t"
	" WHERE t.tenant_id = $1 AND t.project_id = $2 AND t.client_visible"
	" AND ($3::integer IS NULL OR (t.position, t.seq) > ($3::integer, $4::bigint))"
	" AND ($5::text IS NULL OR t.status = $5) AND " MILESTONE_FILTER("t", "$6")
	" ORDER BY t.position, t.seq LIMIT $7",
	7, 0};
static struct stmt q_deliverables = {
	"portal_deliverables",
	"SELECT " CLIENT_DELIVERABLE_JSON("d") ", d.due_date || '.' || d.seq FROM deliverables d"
	" WHERE d.tenant_id = $1 AND d.project_id = $2 AND d.client_visible"
	" AND ($3::date IS NULL OR (d.due_date, d.seq) > ($3::date, $4::bigint))"
	" AND ($5::text IS NULL OR d.status = $5) AND " MILESTONE_FILTER("d", "$6")
	" ORDER BY d.due_date, d.seq LIMIT $7",
	7, 0};
/* clang-format on */

static int
list(struct request *r, enum cursor_kind kind, const char *const *statuses, struct stmt *st)
{
	const char *key, *seq, *lim, *status, *milestone;
	int limit;
	if (res_page(r, kind, &key, &seq, &limit, &lim) != 0 ||
	    query_enum(r, "status", statuses, &status) != 0 ||
	    query_uuid(r, "milestone_id", &milestone) != 0)
		return 0;
	const char *project = res_param(r, 0);
	int rc = portal_member(r, project);
	if (rc != 0)
		return rc == ERR_NOT_FOUND ? 0 : rc;
	const char *p[7] = {r->tenant.id, project, key, seq, status, milestone, lim};
	PGresult *res = db_exec(r, st, p);
	return res != NULL ? res_send_list(r, res, limit) : ERR_DB;
}

int
h_portal_tasks_list(struct request *r)
{
	return list(r, CURSOR_POS_SEQ, task_statuses, &q_tasks);
}

int
h_portal_deliverables_list(struct request *r)
{
	return list(r, CURSOR_DATE_SEQ, deliverable_statuses, &q_deliverables);
}

/* ---- sign-off ------------------------------------------------------------------------------ */

static struct stmt q_lock = {
        "portal_deliverable_lock",
        "SELECT d.status FROM deliverables d WHERE d.tenant_id = $1 AND d.id = $2"
        " AND d.project_id = $3 AND d.client_visible FOR UPDATE",
        3, 0};
/* The decision names the deliverable's files by content hash: exactly what
 * was approved (or not). */
/* clang-format off */
static struct stmt q_decide = {
	"portal_deliverable_decide",
	"WITH dec AS (INSERT INTO deliverable_decisions (tenant_id, deliverable_id, status, comment,"
	" by_kind, by_id, by_name, attachments)"
	" SELECT $1, $2, $3, $4, 'client', u.id, u.name,"
	" (SELECT coalesce(jsonb_agg(jsonb_build_object('id', a.id, 'sha256', a.sha256)"
	" ORDER BY da.position), '[]'::jsonb) FROM deliverable_attachments da"
	" JOIN attachments a ON a.tenant_id = da.tenant_id AND a.id = da.attachment_id"
	" WHERE da.tenant_id = $1 AND da.deliverable_id = $2)"
	" FROM portal_users u WHERE u.tenant_id = $1 AND u.id = $5 RETURNING id, by_name)"
	" UPDATE deliverables SET status = $3, decision_id = (SELECT id FROM dec), updated_at = now()"
	" WHERE tenant_id = $1 AND id = $2"
	" RETURNING (SELECT id FROM dec), (SELECT by_name FROM dec), title",
	5, 0};
static struct stmt q_deliverable = {
	"portal_deliverable",
	"SELECT " CLIENT_DELIVERABLE_JSON("d") " FROM deliverables d"
	" WHERE d.tenant_id = $1 AND d.id = $2",
	2, 0};
/* clang-format on */

/* the team's shape of it, for the team's event */
static struct stmt q_team_deliverable = {
        "portal_team_deliverable",
        "SELECT " DELIVERABLE_JSON("t") " FROM deliverables t WHERE t.tenant_id = $1 AND t.id = $2",
        2, 0};

static int
decide(struct request *r, const char *decision)
{
	const char *project = res_param(r, 0), *id = res_param(r, 1);
	int rc = portal_member(r, project);
	if (rc != 0)
		return rc == ERR_NOT_FOUND ? 0 : rc;
	const char *lp[3] = {r->tenant.id, id, project};
	PGresult *res = db_exec(r, &q_lock, lp);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1) {
		http_problem(r, 404, "not_found", "no such deliverable");
		return 0;
	}
	if (strcmp(db_get(res, 0, 0), "delivered") != 0) {
		http_problem(
		        r, 409, "invalid_state",
		        arena_printf(r->arena,
		                     "only a delivered deliverable can be signed off (it is %s)",
		                     db_get(res, 0, 0)));
		return 0;
	}
	const char *comment = json_get_string(r->json, "comment");
	const char *dp[5] = {r->tenant.id, id, decision, comment, r->portal_user_id};
	if ((res = db_exec(r, &q_decide, dp)) == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1 || db_get(res, 0, 0) == NULL)
		return ERR_INTERNAL;
	const char *decision_id = db_get(res, 0, 0);
	json_object *payload = json_new_object(r->arena);
	json_add_str(payload, "deliverable_id", id);
	json_add_str(payload, "deliverable_title", db_get(res, 0, 2));
	json_add_str(payload, "decision", decision);
	json_add_str(payload, "comment", comment);
	json_add_str(payload, "by_name", db_get(res, 0, 1));
	/* the project's watchers learn of the decision */
	if (notify_queue(r, "deliverable_decision", "deliverables", project, true, false, payload,
	                 decision_id) != 0)
		return ERR_DB;
	json_object *detail = json_new_object(r->arena);
	json_add_str(detail, "decision_id", decision_id);
	if (audit_record(r,
	                 strcmp(decision, "approved") == 0 ? "deliverable.approve"
	                                                   : "deliverable.request_changes",
	                 "deliverable", id, detail) != 0)
		return ERR_DB;
	const char *gp[2] = {r->tenant.id, id};
	PGresult *team;
	if ((res = db_exec(r, &q_deliverable, gp)) == NULL ||
	    (team = db_exec(r, &q_team_deliverable, gp)) == NULL)
		return ERR_DB;
	if (events_add(r, "deliverable.updated", project, db_get(team, 0, 0), db_get(res, 0, 0)) !=
	    0)
		return ERR_DB;
	res_send_raw(r, 200, db_get(res, 0, 0));
	return 0;
}

int
h_portal_deliverable_approve(struct request *r)
{
	return decide(r, "approved");
}

int
h_portal_deliverable_request_changes(struct request *r)
{
	return decide(r, "changes_requested");
}
