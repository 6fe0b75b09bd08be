/*
 * resource.h - the shape every team resource shares.
 *
 * PostgreSQL renders each resource (the api_* functions of the migrations),
 * so a handler runs one statement and passes its JSON through.  A resource
 * statement set follows one convention:
 *   get    ($1 tenant, $2 id)                      -> json
 *   insert ($1 tenant, $2 body json [, $3 parent]) -> json, id
 *   update ($1 tenant, $2 id, $3 patch json)       -> json
 *   delete ($1 tenant, $2 id)                      -> (command tag)
 * and list statements return (json, cursor key) rows, limit + 1 of them.
 */
#ifndef ATRIUM_RESOURCE_H
#define ATRIUM_RESOURCE_H

#include "db.h"
#include "http.h"
#include "page.h"

struct resource {
	const char *name;     /* "project": audit target type and action prefix */
	const char *location; /* "/team/projects/" (the id follows) */
	struct stmt *get;
	struct stmt *insert;
	struct stmt *update;
	struct stmt *del;
};

/* The path parameter i as a NUL-terminated string. */
const char *res_param(struct request *r, int i);

/* GET one: 404 when the row is not the tenant's. */
int res_get(struct request *r, const struct resource *rs);
/* POST: 201 + Location + the resource; parent_id (may be NULL) is $3; a
 * statement that inserts nothing (missing parent) answers 404. */
int res_create(struct request *r, const struct resource *rs, const char *parent_id);
/* PATCH with r->json as the patch: 200 + the whole resource, or 404. */
int res_patch(struct request *r, const struct resource *rs);
/* DELETE: 204 or 404. */
int res_delete(struct request *r, const struct resource *rs);

/* Sends rows of (json, cursor key) as {"data":[...],"next_cursor":...}. */
int res_send_list(struct request *r, PGresult *res, int limit);

/* Keyset cursor kinds: the sort key the list is ordered by. */
enum cursor_kind {
	CURSOR_SEQ,      /* "123": creation order */
	CURSOR_POS_SEQ,  /* "-5.123": position, then creation */
	CURSOR_DATE_SEQ, /* "2026-12-04.123": date, then creation */
};

/*
 * Reads ?limit and ?cursor for a list ordered by kind.  *key (position or
 * date; NULL for CURSOR_SEQ) and *seq are NULL on the first page.  Returns
 * 0, or ERR_INVALID with a 400 answer.  limit_text is limit + 1.
 */
int res_page(struct request *r, enum cursor_kind kind, const char **key, const char **seq,
             int *limit, const char **limit_text);

/* Query filters: each returns 0 (value or NULL in *out) or ERR_INVALID with
 * a 400 bad_query answer. */
int query_enum(struct request *r, const char *name, const char *const *allowed, const char **out);
int query_date(struct request *r, const char *name, const char **out);
int query_uuid(struct request *r, const char *name, const char **out);
int query_text(struct request *r, const char *name, size_t max_chars, const char **out);
int query_timestamp(struct request *r, const char *name, const char **out);

/* Passes json text through as a 200/201 answer. */
void res_send_raw(struct request *r, int status, const char *json);

/* A 422 naming one field. */
void res_invalid(struct request *r, const char *field, const char *code, const char *message);
/* After a failed statement: 23503 on constraint -> 422 invalid_reference on
 * field; returns 1 when it answered, 0 when the failure is something else. */
int res_reference_error(struct request *r, const char *constraint, const char *field);

#endif

/*
 * SQL building blocks for update statements ($3 is the validated patch,
 * the updated table is aliased t): a key present sets the column, JSON null
 * clears it, an absent key keeps it.
 */
#define PATCH_TEXT(col)                                                                            \
	col " = CASE WHEN $3::jsonb ? '" col "' THEN $3::jsonb->>'" col "' ELSE t." col " END"
#define PATCH_CAST(col, type)                                                                      \
	col " = CASE WHEN $3::jsonb ? '" col "' THEN ($3::jsonb->>'" col "')::" type               \
	    " ELSE t." col " END"
/* a name/email search that needs no LIKE escaping */
#define SEARCH_NAME_EMAIL(alias, param)                                                            \
	"(" param "::text IS NULL OR strpos(lower(" alias ".name), lower(" param ")) > 0"          \
	" OR strpos(lower(" alias ".email), lower(" param ")) > 0)"

/*
 * Rendering of resources with derived parts: the sub-selects live in the
 * calling statement so that the api_* functions stay inlinable (see
 * sql/003_inline_json.sql).  alias is the table alias of the row.
 */
#define PROGRESS_OF(cond)                                                                          \
	"(SELECT api_progress(count(*) FILTER (WHERE sub.status = 'done'), count(*))"              \
	" FROM tasks sub WHERE " cond ")"
#define PROJECT_JSON(a)                                                                            \
	"api_project(" a                                                                           \
	", " PROGRESS_OF("sub.tenant_id = " a ".tenant_id AND sub.project_id = " a ".id") ")"
#define MILESTONE_JSON(a)                                                                          \
	"api_milestone(" a                                                                         \
	", " PROGRESS_OF("sub.tenant_id = " a ".tenant_id AND sub.milestone_id = " a ".id") ")"
#define DELIVERABLE_JSON(a)                                                                        \
	"api_deliverable(" a ", (SELECT api_decision(sub) FROM deliverable_decisions sub"          \
	" WHERE sub.tenant_id = " a ".tenant_id AND sub.id = " a ".decision_id),"                  \
	" (SELECT coalesce(jsonb_agg(sub.attachment_id ORDER BY sub.position), '[]'::jsonb)"       \
	" FROM deliverable_attachments sub WHERE sub.tenant_id = " a ".tenant_id"                  \
	" AND sub.deliverable_id = " a ".id))"
