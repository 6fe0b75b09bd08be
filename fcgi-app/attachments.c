/*
 * attachments.c - files that browsers upload straight to the object store.
 *
 *   POST /projects/{id}/attachments      a pending row + a presigned PUT
 *   POST /attachments/{id}/complete      HEAD + read back -> ready (sha256)
 *   GET  /attachments/{id}/download      a presigned GET (attachment)
 *
 * and the same under /team.  The object key is chosen here
 * (tenants/{tenant}/projects/{project}/{id}); the user's file name only ever
 * reaches the Content-Disposition of a download, encoded.
 *
 * Who sees an attachment on the client surface: a member of its project,
 * when the client uploaded it, or it belongs to a client-visible message or
 * deliverable (the same rule as the attachments_client policy).
 */
#include <stdlib.h>
#include <string.h>

#include "attachments.h"
#include "audit.h"
#include "db.h"
#include "events.h"
#include "log.h"
#include "resource.h"
#include "router.h"
#include "store.h"

static bool
client_side(const struct request *r)
{
	return r->portal_user_id[0] != '\0';
}

static const char *
uploader_side(const struct request *r)
{
	return client_side(r) ? "client" : "team";
}

/* File names: anything printable.  C0 and C1 control characters would
 * only hurt (terminals, headers), and the bidirectional overrides and
 * isolates (U+202A-U+202E, U+2066-U+2069) let "invoice\u202Efdp.exe" pose
 * as a PDF. */
static const char *
check_filename(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < 0x20 || p[i] == 0x7f ||
		    (p[i] == 0xc2 && i + 1 < n && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f))
			return "must not contain control characters";
		if (p[i] == 0xe2 && i + 2 < n &&
		    ((p[i + 1] == 0x80 && p[i + 2] >= 0xaa && p[i + 2] <= 0xae) ||
		     (p[i + 1] == 0x81 && p[i + 2] >= 0xa6 && p[i + 2] <= 0xa9)))
			return "must not contain bidirectional control characters";
	}
	return NULL;
}

const struct field attachment_fields[] = {
        {"filename", FT_STRING, FF_REQUIRED | FF_NONBLANK, 1, LIMIT_FILENAME_CHARS, check_filename,
         NULL, NULL},
        {"content_type", FT_STRING, FF_REQUIRED, 3, 255, check_content_type, NULL, NULL},
        {"size", FT_INT, FF_REQUIRED, 1, LIMIT_UPLOAD_MAX, NULL, NULL, NULL},
        FIELD_END,
};

/* A client sees a project it is a member of; the team every project. */
static struct stmt q_client_project = {
        "attachment_client_project",
        "SELECT 1 FROM project_members WHERE tenant_id = $1 AND project_id = $2 AND client_id = $3",
        3, 0};
static struct stmt q_team_project = {
        "attachment_team_project", "SELECT 1 FROM projects WHERE tenant_id = $1 AND id = $2", 2, 0};
/* concurrent uploads of one tenant check the quota one after the other */
static struct stmt q_quota_lock = {
        "attachment_quota_lock",
        "SELECT 1 FROM tenant_branding WHERE tenant_id = $1 FOR NO KEY UPDATE", 1, 0};
static struct stmt q_usage = {"attachment_usage",
                              "SELECT coalesce(sum(size), 0) FROM attachments WHERE tenant_id = $1",
                              1, 0};
static struct stmt q_insert = {
        "attachment_insert",
        "WITH n AS (SELECT gen_random_uuid() AS id)"
        " INSERT INTO attachments AS a (tenant_id, id, project_id, uploader_kind,"
        " uploader_client_id, uploader_member_id, filename, content_type, size, object_key)"
        " SELECT $1, n.id, $2, $3, $4, $5, $6, $7, $8,"
        " 'tenants/' || $1::uuid::text || '/projects/' || $2::uuid::text || '/' || n.id FROM n"
        " RETURNING api_attachment(a), a.id, a.object_key",
        8, 0};

/* the client-surface visibility rule; $3 is the client */
#define CLIENT_SEES                                                                                \
	"(EXISTS (SELECT 1 FROM project_members pm WHERE pm.tenant_id = a.tenant_id"               \
	" AND pm.project_id = a.project_id AND pm.client_id = $3)"                                 \
	" AND (a.uploader_client_id = $3"                                                          \
	" OR EXISTS (SELECT 1 FROM messages m WHERE m.tenant_id = a.tenant_id"                     \
	" AND m.id = a.message_id AND m.visibility = 'client' AND m.deleted_at IS NULL)"           \
	" OR EXISTS (SELECT 1 FROM deliverable_attachments da JOIN deliverables d"                 \
	" ON d.tenant_id = da.tenant_id AND d.id = da.deliverable_id"                              \
	" WHERE da.tenant_id = a.tenant_id AND da.attachment_id = a.id AND d.client_visible)))"
#define ATTACHMENT_ROW                                                                             \
	"SELECT api_attachment(a), a.project_id, a.filename, a.content_type, a.size, a.status,"    \
	" a.object_key, a.uploader_client_id FROM attachments a"

static struct stmt q_client_get = {
        "attachment_client_get",
        ATTACHMENT_ROW " WHERE a.tenant_id = $1 AND a.id = $2 AND " CLIENT_SEES, 3, 0};
static struct stmt q_team_get = {"attachment_team_get",
                                 ATTACHMENT_ROW " WHERE a.tenant_id = $1 AND a.id = $2", 2, 0};
/* completing locks the row: two confirmations of one upload run in turn */
static struct stmt q_client_lock = {"attachment_client_lock",
                                    ATTACHMENT_ROW
                                    " WHERE a.tenant_id = $1 AND a.id = $2"
                                    " AND a.uploader_client_id = $3 AND EXISTS (SELECT 1"
                                    " FROM project_members pm WHERE pm.tenant_id = a.tenant_id"
                                    " AND pm.project_id = a.project_id AND pm.client_id = $3)"
                                    " FOR UPDATE OF a",
                                    3, 0};
static struct stmt q_team_lock = {"attachment_team_lock",
                                  ATTACHMENT_ROW " WHERE a.tenant_id = $1 AND a.id = $2 FOR UPDATE",
                                  2, 0};
static struct stmt q_ready = {
        "attachment_ready",
        "UPDATE attachments a SET status = 'ready', sha256 = $3, etag = $4, ready_at = now()"
        " WHERE a.tenant_id = $1 AND a.id = $2 RETURNING api_attachment(a)",
        4, 0};

enum { COL_JSON, COL_PROJECT, COL_FILENAME, COL_TYPE, COL_SIZE, COL_STATUS, COL_KEY, COL_CLIENT };

/* Loads one attachment the caller may see (locked for complete). */
static PGresult *
find(struct request *r, const char *id, bool lock)
{
	if (client_side(r)) {
		const char *p[3] = {r->tenant.id, id, r->portal_user_id};
		return db_exec(r, lock ? &q_client_lock : &q_client_get, p);
	}
	const char *p[2] = {r->tenant.id, id};
	return db_exec(r, lock ? &q_team_lock : &q_team_get, p);
}

static int
not_found(struct request *r)
{
	http_problem(r, 404, "not_found", "no such attachment");
	return 0;
}

/* Adds upload:{method, url, headers, expires_at} to an attachment object. */
static int
add_upload(struct request *r, const struct store *s, json_object *o, const char *key,
           const char *content_type, long long size)
{
	const char *expires;
	const char *url = store_upload_url(r, s, key, content_type, size, &expires);
	if (url == NULL) {
		log_error(r, "cannot sign an upload URL: check the store settings");
		http_add_header(r, "Retry-After", "60");
		http_problem(r, 503, "unavailable", "file storage is not usable right now");
		return ERR_UNAVAILABLE;
	}
	json_object *up = json_object_new_object(), *h = json_object_new_object();
	json_add_str(up, "method", "PUT");
	json_add_str(up, "url", url);
	json_add_str(h, "Content-Type", content_type);
	json_add_str(h, "Content-Length", arena_printf(r->arena, "%lld", size));
	json_add_take(up, "headers", h);
	json_add_str(up, "expires_at", expires);
	json_add_take(o, "upload", up);
	return 0;
}

int
h_attachments_create(struct request *r)
{
	const char *project = res_param(r, 0);
	PGresult *res;
	if (client_side(r)) {
		const char *p[3] = {r->tenant.id, project, r->portal_user_id};
		res = db_exec(r, &q_client_project, p);
	} else {
		const char *p[2] = {r->tenant.id, project};
		res = db_exec(r, &q_team_project, p);
	}
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1) {
		http_problem(r, 404, "not_found", "no such project");
		return 0;
	}
	struct store s;
	int rc = store_load(r, &s);
	if (rc != 0)
		return rc == ERR_UNAVAILABLE ? 0 : rc;
	const char *filename = json_get_string(r->json, "filename");
	const char *type = json_get_string(r->json, "content_type");
	long long size = json_object_get_int64(json_get(r->json, "size"));
	if (size > s.max_upload) {
		http_problem(
		        r, 413, "payload_too_large",
		        arena_printf(r->arena, "files may be at most %lld bytes", s.max_upload));
		return 0;
	}
	if (store_blocked(&s, type)) {
		http_problem(r, 415, "unsupported_media_type",
		             "files of this type cannot be uploaded to this portal");
		return 0;
	}
	if (s.quota >= 0) {
		const char *p[1] = {r->tenant.id};
		/* the sum is a statement of its own: it sees what the holder of
		 * the lock before us committed */
		if (db_exec(r, &q_quota_lock, p) == NULL || (res = db_exec(r, &q_usage, p)) == NULL)
			return ERR_DB;
		if (strtoll(db_get(res, 0, 0), NULL, 10) + size > s.quota) {
			http_problem(
			        r, 413, "payload_too_large",
			        "the portal's storage quota does not leave room for this file");
			return 0;
		}
	}
	const char *psize = arena_printf(r->arena, "%lld", size);
	const char *p[8] = {r->tenant.id,
	                    project,
	                    uploader_side(r),
	                    client_side(r) ? r->portal_user_id : NULL,
	                    !client_side(r) && r->team_member_id[0] ? r->team_member_id : NULL,
	                    filename,
	                    type,
	                    psize};
	if ((res = db_exec(r, &q_insert, p)) == NULL)
		return ERR_DB;
	const char *id = db_get(res, 0, 1);
	if (audit_record(r, "attachment.create", "attachment", id, NULL) != 0)
		return ERR_DB;
	json_object *o = json_own(r->arena, json_tokener_parse(db_get(res, 0, 0)));
	if (o == NULL)
		return ERR_INTERNAL;
	/* a replay signs a fresh URL (attachment_replay): the stored answer
	 * has none */
	r->replay_body = json_render(r->arena, o, NULL);
	if ((rc = add_upload(r, &s, o, db_get(res, 0, 2), type, size)) != 0)
		return rc == ERR_UNAVAILABLE ? 0 : rc;
	http_json(r, 201, o);
	return 0;
}

int
attachment_replay(struct request *r)
{
	json_object *stored = json_own(r->arena, json_tokener_parse(r->resp_body));
	const char *id = stored != NULL ? json_get_string(stored, "id") : NULL;
	if (id == NULL)
		return ERR_INTERNAL;
	PGresult *res = find(r, id, false);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1)
		return 0; /* gone (project deleted): the stored answer stands */
	json_object *o = json_own(r->arena, json_tokener_parse(db_get(res, 0, COL_JSON)));
	if (o == NULL)
		return ERR_INTERNAL;
	if (strcmp(db_get(res, 0, COL_STATUS), "pending") == 0) {
		struct store s;
		int rc = store_load(r, &s);
		if (rc == 0)
			rc = add_upload(r, &s, o, db_get(res, 0, COL_KEY), db_get(res, 0, COL_TYPE),
			                strtoll(db_get(res, 0, COL_SIZE), NULL, 10));
		if (rc != 0)
			return rc == ERR_UNAVAILABLE ? 0 : rc;
	} else {
		json_add_str(o, "upload", NULL); /* uploaded already: nothing to sign */
	}
	int status = r->status;
	http_json(r, status, o);
	r->replayed = true;
	return 0;
}

int
h_attachment_complete(struct request *r)
{
	const char *id = res_param(r, 0);
	PGresult *res = find(r, id, true), *find_res = res;
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1)
		return not_found(r);
	if (strcmp(db_get(res, 0, COL_STATUS), "ready") == 0) {
		http_json(r, 200, json_own(r->arena, json_tokener_parse(db_get(res, 0, COL_JSON))));
		return 0;
	}
	struct store s;
	int rc = store_load(r, &s);
	if (rc != 0)
		return rc == ERR_UNAVAILABLE ? 0 : rc;
	struct store_object obj;
	const char *why = NULL;
	long long size = strtoll(db_get(res, 0, COL_SIZE), NULL, 10);
	switch (store_check(r, &s, db_get(res, 0, COL_KEY), size, db_get(res, 0, COL_TYPE), &obj,
	                    &why)) {
	case STORE_OK:
		break;
	case STORE_MISSING:
	case STORE_MISMATCH:
		http_problem(r, 409, "upload_incomplete", why);
		return 0;
	case STORE_FAILED:
	default:
		http_add_header(r, "Retry-After", "5");
		http_problem(r, 503, "unavailable",
		             why != NULL ? why : "the file store did not answer");
		return 0;
	}
	const char *p[4] = {r->tenant.id, id, obj.sha256, obj.etag[0] ? obj.etag : NULL};
	if ((res = db_exec(r, &q_ready, p)) == NULL)
		return ERR_DB;
	if (audit_record(r, "attachment.complete", "attachment", id, NULL) != 0)
		return ERR_DB;
	store_forget_upload(r, &s, db_get(find_res, 0, COL_KEY));
	/* the team hears of every confirmed file; clients see a file once it is
	 * on a message or a deliverable (message.created, deliverable.updated) */
	if (events_add(r, "attachment.ready", db_get(find_res, 0, COL_PROJECT), db_get(res, 0, 0),
	               NULL) != 0)
		return ERR_DB;
	http_json(r, 200, json_own(r->arena, json_tokener_parse(db_get(res, 0, 0))));
	return 0;
}

int
h_attachment_download(struct request *r)
{
	bool dup = false;
	const char *redirect = http_query(r, "redirect", &dup);
	if (dup || (redirect != NULL && strcmp(redirect, "1") != 0 && strcmp(redirect, "0") != 0)) {
		http_problem(r, 400, "bad_query", "redirect must be 0 or 1");
		return 0;
	}
	PGresult *res = find(r, res_param(r, 0), false);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1)
		return not_found(r);
	if (strcmp(db_get(res, 0, COL_STATUS), "ready") != 0) {
		http_problem(r, 409, "upload_incomplete", "the file has not been uploaded yet");
		return 0;
	}
	struct store s;
	int rc = store_load(r, &s);
	if (rc != 0)
		return rc == ERR_UNAVAILABLE ? 0 : rc;
	const char *expires;
	const char *url =
	        store_download_url(r, &s, db_get(res, 0, COL_KEY), db_get(res, 0, COL_FILENAME),
	                           db_get(res, 0, COL_TYPE), &expires);
	if (url == NULL) {
		log_error(r, "cannot sign a download URL: check the store settings");
		http_add_header(r, "Retry-After", "60");
		http_problem(r, 503, "unavailable", "file storage is not usable right now");
		return 0;
	}
	json_object *o = json_new_object(r->arena);
	json_add_str(o, "url", url);
	json_add_str(o, "expires_at", expires);
	if (redirect != NULL && strcmp(redirect, "1") == 0) {
		http_add_header(r, "Location", url);
		http_json(r, 302, o);
	} else {
		http_json(r, 200, o);
	}
	return 0;
}

/* ---- links from messages and deliverables ------------------------------------ */

/* The ids among $3 that the caller's side may attach; $4 is the client (NULL
 * for the team), $5 requires no message yet. */
static struct stmt q_usable = {
        "attachment_usable",
        "SELECT a.id::text FROM attachments a WHERE a.tenant_id = $1 AND a.project_id = $2"
        " AND a.id = ANY ($3::uuid[]) AND a.status = 'ready'"
        " AND CASE WHEN $4::uuid IS NULL THEN a.uploader_kind = 'team'"
        " ELSE a.uploader_client_id = $4 END"
        " AND (NOT $5::boolean OR a.message_id IS NULL) FOR UPDATE",
        5, 0};
static struct stmt q_link = {
        "attachment_link",
        "UPDATE attachments SET message_id = $3 WHERE tenant_id = $1 AND id = ANY ($2::uuid[])"
        " AND message_id IS NULL",
        3, 0};

/* {a,b,c} for a uuid[] parameter (the ids passed check_uuid already) */
static const char *
uuid_array(struct request *r, json_object *ids)
{
	struct buf b;
	buf_init(&b, r->arena, 64);
	buf_putc(&b, '{');
	size_t n = json_object_array_length(ids);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			buf_putc(&b, ',');
		buf_puts(&b, json_object_get_string(json_object_array_get_idx(ids, i)));
	}
	buf_putc(&b, '}');
	return buf_cstr(&b);
}

/* Checks every id of ids against the usable set; 422 on the first that is
 * not usable or repeated. */
static int
check_ids(struct request *r, const char *project_id, json_object *ids, bool unlinked,
          const char *field)
{
	size_t n = ids != NULL ? json_object_array_length(ids) : 0;
	if (n == 0)
		return 0;
	const char *p[5] = {r->tenant.id, project_id, uuid_array(r, ids),
	                    client_side(r) ? r->portal_user_id : NULL, unlinked ? "true" : "false"};
	PGresult *res = db_exec(r, &q_usable, p);
	if (res == NULL)
		return ERR_DB;
	int rows = PQntuples(res);
	for (size_t i = 0; i < n; i++) {
		const char *id = json_object_get_string(json_object_array_get_idx(ids, i));
		bool found = false, repeated = false;
		for (int k = 0; k < rows && !found; k++)
			found = strcasecmp(db_get(res, k, 0), id) == 0;
		for (size_t j = 0; j < i && !repeated; j++)
			repeated = strcasecmp(json_object_get_string(
			                              json_object_array_get_idx(ids, j)),
			                      id) == 0;
		if (!found || repeated) {
			res_invalid(r, arena_printf(r->arena, "%s[%zu]", field, i),
			            "invalid_reference",
			            repeated ? "names an attachment twice"
			                     : "is not a ready attachment of this project that you "
			                       "uploaded"
			                       " and that is not part of a message yet");
			return ERR_INVALID;
		}
	}
	return 0;
}

int
attachments_link_message(struct request *r, const char *project_id, const char *message_id,
                         json_object *ids)
{
	int rc = check_ids(r, project_id, ids, true, "attachment_ids");
	if (rc != 0 || ids == NULL || json_object_array_length(ids) == 0)
		return rc;
	const char *p[3] = {r->tenant.id, uuid_array(r, ids), message_id};
	PGresult *res = db_exec(r, &q_link, p);
	if (res == NULL)
		return ERR_DB;
	/* the rows are locked since check_ids: every one is linked */
	if (strtol(PQcmdTuples(res), NULL, 10) != (long)json_object_array_length(ids))
		return ERR_INTERNAL;
	return 0;
}

int
attachments_check_team(struct request *r, const char *project_id, json_object *ids)
{
	return check_ids(r, project_id, ids, false, "attachment_ids");
}
