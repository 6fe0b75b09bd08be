/*
 * resource.c - get/create/patch/delete/list shared by the team resources.
 */
#include <string.h>
#include <time.h>

#include "audit.h"
#include "config.h"
#include "json.h"
#include "resource.h"
#include "router.h"

const char *
res_param(struct request *r, int i)
{
	return arena_strndup(r->arena, r->params[i].p, r->params[i].n);
}

void
res_send_raw(struct request *r, int status, const char *json)
{
	r->status = status;
	r->resp_type = "application/json";
	r->resp_body = json;
	r->resp_len = strlen(json);
}

static int
not_found(struct request *r)
{
	http_problem(r, 404, "not_found", "no such resource");
	return 0;
}

int
res_get(struct request *r, const struct resource *rs)
{
	const char *p[2] = {r->tenant.id, res_param(r, 0)};
	PGresult *res = db_exec(r, rs->get, p);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1)
		return not_found(r);
	res_send_raw(r, 200, db_get(res, 0, 0));
	return 0;
}

int
res_create(struct request *r, const struct resource *rs, const char *parent_id)
{
	const char *p[3] = {r->tenant.id, json_render(r->arena, r->json, NULL), parent_id};
	PGresult *res = db_exec(r, rs->insert, p);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1)
		return not_found(r); /* the parent is not the tenant's */
	const char *id = db_get(res, 0, 1);
	if (audit_record(r, arena_printf(r->arena, "%s.create", rs->name), rs->name, id, NULL) != 0)
		return ERR_DB;
	r->location = arena_printf(r->arena, "%s%s%s", API_BASE, rs->location, id);
	res_send_raw(r, 201, db_get(res, 0, 0));
	return 0;
}

/* {"fields":[the top-level keys of the patch]} (names only: values may be
 * personal data and the row has them anyway) */
static json_object *
patch_detail(struct request *r)
{
	json_object *d = json_new_object(r->arena);
	json_object *f = json_object_new_array();
	json_object_object_foreach(r->json, key, val)
	{
		(void)val;
		json_object_array_add(f, json_object_new_string(key));
	}
	json_add_take(d, "fields", f);
	return d;
}

int
res_patch(struct request *r, const struct resource *rs)
{
	const char *id = res_param(r, 0);
	const char *p[3] = {r->tenant.id, id, json_render(r->arena, r->json, NULL)};
	PGresult *res = db_exec(r, rs->update, p);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1)
		return not_found(r);
	if (audit_record(r, arena_printf(r->arena, "%s.update", rs->name), rs->name, id,
	                 patch_detail(r)) != 0)
		return ERR_DB;
	res_send_raw(r, 200, db_get(res, 0, 0));
	return 0;
}

int
res_delete(struct request *r, const struct resource *rs)
{
	const char *id = res_param(r, 0);
	const char *p[2] = {r->tenant.id, id};
	PGresult *res = db_exec(r, rs->del, p);
	if (res == NULL)
		return ERR_DB;
	if (strcmp(PQcmdTuples(res), "0") == 0)
		return not_found(r);
	if (audit_record(r, arena_printf(r->arena, "%s.delete", rs->name), rs->name, id, NULL) != 0)
		return ERR_DB;
	http_empty(r, 204);
	return 0;
}

int
res_send_list(struct request *r, PGresult *res, int limit)
{
	int n = PQntuples(res);
	int shown = n > limit ? limit : n;
	struct buf b;
	buf_init(&b, r->arena, 1024);
	buf_puts(&b, "{\"data\":[");
	for (int i = 0; i < shown; i++) {
		if (i > 0)
			buf_putc(&b, ',');
		buf_puts(&b, db_get(res, i, 0));
	}
	buf_puts(&b, "],\"next_cursor\":");
	if (n > limit)
		buf_printf(&b, "\"%s\"}", page_cursor(r, db_get(res, shown - 1, 1)));
	else
		buf_puts(&b, "null}");
	res_send_raw(r, 200, buf_cstr(&b));
	return 0;
}

static bool
all_digits(const char *s, size_t n)
{
	if (n == 0 || n > 18)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Splits "key.seq" at the last '.', checking both halves for kind. */
static bool
parse_cursor(struct request *r, const char *c, enum cursor_kind kind, const char **key,
             const char **seq)
{
	if (kind == CURSOR_SEQ) {
		*key = NULL;
		*seq = c;
		return all_digits(c, strlen(c));
	}
	const char *dot = strrchr(c, '.');
	if (dot == NULL || !all_digits(dot + 1, strlen(dot + 1)))
		return false;
	size_t kn = (size_t)(dot - c);
	*key = arena_strndup(r->arena, c, kn);
	*seq = dot + 1;
	if (kind == CURSOR_DATE_SEQ)
		return check_date(*key, kn) == NULL;
	/* positions are integers within +-LIMIT_POSITION */
	long long v = 0;
	return config_parse_int(*key, -LIMIT_POSITION, LIMIT_POSITION, &v) == 0 &&
	       all_digits(*key + (**key == '-'), kn - (**key == '-'));
}

int
res_page(struct request *r, enum cursor_kind kind, const char **key, const char **seq, int *limit,
         const char **limit_text)
{
	struct page pg;
	*key = NULL;
	*seq = NULL;
	if (page_parse(r, &pg) != 0)
		return ERR_INVALID;
	if (pg.after != NULL && !parse_cursor(r, pg.after, kind, key, seq)) {
		http_problem(r, 400, "bad_query", "cursor is not a cursor this API returned");
		return ERR_INVALID;
	}
	*limit = pg.limit;
	*limit_text = arena_printf(r->arena, "%d", pg.limit + 1);
	return 0;
}

static int
bad_query(struct request *r, const char *name, const char *what)
{
	http_problem(r, 400, "bad_query", arena_printf(r->arena, "%s %s", name, what));
	return ERR_INVALID;
}

/* The single value of ?name, or NULL; a repeated parameter is refused. */
static int
query_one(struct request *r, const char *name, const char **out)
{
	bool dup = false;
	*out = http_query(r, name, &dup);
	if (dup)
		return bad_query(r, name, "may be given once");
	return 0;
}

int
query_enum(struct request *r, const char *name, const char *const *allowed, const char **out)
{
	if (query_one(r, name, out) != 0 || *out == NULL)
		return *out == NULL && r->status == 0 ? 0 : ERR_INVALID;
	for (const char *const *a = allowed; *a != NULL; a++)
		if (strcmp(*a, *out) == 0)
			return 0;
	return bad_query(r, name, "has an unknown value");
}

int
query_date(struct request *r, const char *name, const char **out)
{
	if (query_one(r, name, out) != 0 || *out == NULL)
		return *out == NULL && r->status == 0 ? 0 : ERR_INVALID;
	return check_date(*out, strlen(*out)) == NULL ? 0
	                                              : bad_query(r, name, "must be YYYY-MM-DD");
}

int
query_uuid(struct request *r, const char *name, const char **out)
{
	if (query_one(r, name, out) != 0 || *out == NULL)
		return *out == NULL && r->status == 0 ? 0 : ERR_INVALID;
	return check_uuid(*out, strlen(*out)) == NULL ? 0 : bad_query(r, name, "must be a UUID");
}

/* RFC 3339 with any offset (up to +-23:59, which PostgreSQL's input would
 * refuse above 15:59) -> the same instant in UTC, fraction kept. */
static const char *
timestamp_utc(struct arena *a, const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = (int)strtol(s, NULL, 10) - 1900;
	tm.tm_mon = (int)strtol(s + 5, NULL, 10) - 1;
	tm.tm_mday = (int)strtol(s + 8, NULL, 10);
	tm.tm_hour = (int)strtol(s + 11, NULL, 10);
	tm.tm_min = (int)strtol(s + 14, NULL, 10);
	tm.tm_sec = (int)strtol(s + 17, NULL, 10);
	const char *p = s + 19, *frac = "";
	size_t fn = 0;
	if (*p == '.') {
		frac = p;
		fn = 1;
		while (p[fn] >= '0' && p[fn] <= '9')
			fn++;
		p += fn;
	}
	time_t t = timegm(&tm);
	if (*p == '+' || *p == '-') {
		long off = strtol(p + 1, NULL, 10) * 3600 + strtol(p + 4, NULL, 10) * 60;
		t += *p == '+' ? -off : off;
	}
	struct tm u;
	gmtime_r(&t, &u);
	return arena_printf(a, "%04d-%02d-%02dT%02d:%02d:%02d%.*sZ", u.tm_year + 1900, u.tm_mon + 1,
	                    u.tm_mday, u.tm_hour, u.tm_min, u.tm_sec, (int)fn, frac);
}

int
query_timestamp(struct request *r, const char *name, const char **out)
{
	if (query_one(r, name, out) != 0 || *out == NULL)
		return *out == NULL && r->status == 0 ? 0 : ERR_INVALID;
	if (check_timestamp(*out, strlen(*out)) != NULL)
		return bad_query(r, name, "must be an RFC 3339 date-time");
	*out = timestamp_utc(r->arena, *out);
	return 0;
}

int
query_text(struct request *r, const char *name, size_t max_chars, const char **out)
{
	if (query_one(r, name, out) != 0 || *out == NULL)
		return *out == NULL && r->status == 0 ? 0 : ERR_INVALID;
	size_t n = strlen(*out);
	/* the decoded bytes must be UTF-8 text like every other string */
	if (!utf8_valid(*out, n))
		return bad_query(r, name, "must be UTF-8 text without control characters");
	if (n == 0 || utf8_chars(*out, n) > max_chars)
		return bad_query(r, name,
		                 arena_printf(r->arena, "must be 1-%zu characters", max_chars));
	return 0;
}

void
res_invalid(struct request *r, const char *field, const char *code, const char *message)
{
	struct json_errors e;
	json_errors_init(r->arena, &e);
	json_errors_add(&e, field, code, message);
	http_problem_errors(r, e.list);
}

int
res_reference_error(struct request *r, const char *constraint, const char *field)
{
	if (strcmp(db_sqlstate(), "23503") != 0 || strcmp(db_constraint(), constraint) != 0)
		return 0;
	res_invalid(r, field, "invalid_reference", "does not name a usable row of this project");
	return 1;
}
