/*
 * tenant.c - Host -> tenant resolution, console API keys, tenant branding
 * and settings, tenant hosts.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "audit.h"
#include "config.h"
#include "db.h"
#include "json.h"
#include "log.h"
#include "page.h"
#include "router.h"
#include "tenant.h"
#include "util.h"

/* ---- Host -> tenant cache ---------------------------------------------- */

struct cache_entry {
	char host[LIMIT_HOST_MAX + 1];
	struct tenant t;
	uint64_t expires_us;
};

/* Direct-mapped: a collision simply replaces the older entry. */
static struct cache_entry cache[LIMIT_TENANT_CACHE];

static size_t
cache_slot(const char *host)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)host; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	return h % LIMIT_TENANT_CACHE;
}

static bool
cache_get(const char *host, struct tenant *t)
{
	struct cache_entry *e = &cache[cache_slot(host)];
	if (e->expires_us == 0 || e->expires_us < http_now_us() || strcmp(e->host, host) != 0)
		return false;
	*t = e->t;
	return true;
}

static void
cache_put(const char *host, const struct tenant *t)
{
	if (config.tenant_cache_ttl <= 0 || strlen(host) > LIMIT_HOST_MAX)
		return;
	struct cache_entry *e = &cache[cache_slot(host)];
	snprintf(e->host, sizeof(e->host), "%s", host);
	e->t = *t;
	e->expires_us = http_now_us() + (uint64_t)config.tenant_cache_ttl * 1000000u;
}

void
tenant_cache_forget(const char *host)
{
	struct cache_entry *e = &cache[cache_slot(host)];
	if (strcmp(e->host, host) == 0)
		e->expires_us = 0;
}

static struct stmt q_set_host = {"set_host", "SELECT set_config('app.host', $1, true)", 1, 0};
static struct stmt q_set_code = {"set_code", "SELECT set_config('app.tenant_code', $1, true)", 1,
                                 0};
static struct stmt q_set_tenant = {"set_tenant", "SELECT set_config('app.tenant_id', $1, true)", 1,
                                   0};
static struct stmt q_domain_tenant = {"domain_tenant",
                                      "SELECT tenant_id FROM tenant_domains WHERE host = $1", 1, 0};
static struct stmt q_tenant_code = {"tenant_code", "SELECT code FROM tenants WHERE id = $1", 1, 0};
static struct stmt q_tenant_by_code = {"tenant_by_code",
                                       "SELECT id, code FROM tenants WHERE code = $1", 1, 0};

static int
set_tenant(struct request *r, const struct tenant *t)
{
	const char *p[1] = {t->id};
	if (db_exec(r, &q_set_tenant, p) == NULL)
		return ERR_DB;
	r->tenant = *t;
	r->has_tenant = true;
	return 0;
}

/* Copies a database text value into a fixed field; the schema bounds both. */
static void
copy_field(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src != NULL ? src : "");
}

const char *
tenant_from_cache(struct request *r)
{
	if (config.api_host != NULL && strcmp(r->host, config.api_host) == 0) {
		r->api_host = true;
		return NULL;
	}
	if (r->host[0] == '\0' || !cache_get(r->host, &r->tenant))
		return NULL;
	return r->tenant.id;
}

int
tenant_resolve(struct request *r)
{
	struct tenant t;
	if (r->api_host || r->has_tenant)
		return 0; /* nothing to resolve, or set with BEGIN */
	if (r->host[0] == '\0') {
		http_problem(r, 404, "tenant_not_found", "No portal is configured for this host.");
		return ERR_NOT_FOUND;
	}
	const char *p[1] = {r->host};
	PGresult *res;
	if (db_exec(r, &q_set_host, p) == NULL || (res = db_exec(r, &q_domain_tenant, p)) == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1) {
		http_problem(r, 404, "tenant_not_found", "No portal is configured for this host.");
		return ERR_NOT_FOUND;
	}
	memset(&t, 0, sizeof(t));
	copy_field(t.id, sizeof(t.id), db_get(res, 0, 0));
	if (set_tenant(r, &t) != 0)
		return ERR_DB;
	const char *q[1] = {t.id};
	if ((res = db_exec(r, &q_tenant_code, q)) == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1)
		return ERR_INTERNAL;
	copy_field(t.code, sizeof(t.code), db_get(res, 0, 0));
	r->tenant = t;
	cache_put(r->host, &t);
	return 0;
}

/* ---- console API keys --------------------------------------------------- */

static struct stmt q_key_get = {"key_get",
                                "SELECT id, encode(key_sha256, 'hex'), revoked_at IS NOT NULL"
                                " FROM api_keys WHERE tenant_id = $1 AND prefix = $2",
                                2, 0};
/* last_used_at is kept to the minute: one write per key per minute, not one
 * per request */
static struct stmt q_key_touch = {
        "key_touch",
        "UPDATE api_keys SET last_used_at = now() WHERE tenant_id = $1 AND id = $2"
        " AND (last_used_at IS NULL OR last_used_at < now() - interval '60 seconds')",
        2, 0};

#define KEY_PREFIX_LEN 12
#define KEY_SECRET_LEN 43

static const char *
header_alias(const struct request *r, const char *name, const char *alias)
{
	const char *v = http_header(r, name);
	return v != NULL ? v : http_header(r, alias);
}

/* "atr_" + 12 hex + "_" + 43 base64url characters. */
static bool
key_shape_ok(const char *key, char *prefix)
{
	size_t n = strlen(key);
	if (n != 4 + KEY_PREFIX_LEN + 1 + KEY_SECRET_LEN || memcmp(key, "atr_", 4) != 0 ||
	    key[4 + KEY_PREFIX_LEN] != '_')
		return false;
	for (size_t i = 4; i < 4 + KEY_PREFIX_LEN; i++)
		if (!isxdigit((unsigned char)key[i]) || isupper((unsigned char)key[i]))
			return false;
	for (size_t i = 5 + KEY_PREFIX_LEN; i < n; i++)
		if (!isalnum((unsigned char)key[i]) && key[i] != '-' && key[i] != '_')
			return false;
	memcpy(prefix, key + 4, KEY_PREFIX_LEN);
	prefix[KEY_PREFIX_LEN] = '\0';
	return true;
}

static int
unauthorized(struct request *r)
{
	http_problem(r, 401, "unauthorized", "a valid x-api-key and x-client-code are required");
	return ERR_INVALID;
}

/* On the API host the client code chooses the tenant. */
static int
tenant_from_code(struct request *r, const char *code)
{
	const char *p[1] = {code};
	PGresult *res;
	if (db_exec(r, &q_set_code, p) == NULL || (res = db_exec(r, &q_tenant_by_code, p)) == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1)
		return ERR_NOT_FOUND;
	struct tenant t;
	memset(&t, 0, sizeof(t));
	copy_field(t.id, sizeof(t.id), db_get(res, 0, 0));
	copy_field(t.code, sizeof(t.code), db_get(res, 0, 1));
	return set_tenant(r, &t);
}

static struct stmt q_team_member_known = {
        "team_member_known", "SELECT 1 FROM team_members WHERE tenant_id = $1 AND id = $2", 2, 0};

/* x-team-member names the author of the change among the tenant's team
 * members; anything else is an invalid reference, not an anonymous write. */
static int
team_member_header(struct request *r)
{
	const char *m = http_header(r, "x-team-member");
	if (m == NULL)
		return 0;
	if (check_uuid(m, strlen(m)) == NULL) {
		const char *p[2] = {r->tenant.id, m};
		PGresult *res = db_exec(r, &q_team_member_known, p);
		if (res == NULL)
			return ERR_DB;
		if (PQntuples(res) == 1) {
			copy_field(r->team_member_id, sizeof(r->team_member_id), m);
			return 0;
		}
	}
	struct json_errors e;
	json_errors_init(r->arena, &e);
	json_errors_add(&e, "x-team-member", "invalid_reference",
	                "is not a team member of this tenant");
	http_problem_errors(r, e.list);
	return ERR_INVALID;
}

int
tenant_auth_team(struct request *r)
{
	const char *key = header_alias(r, "x-api-key", "x-erix-api-key");
	const char *code = header_alias(r, "x-client-code", "x-erix-client-code");
	char prefix[KEY_PREFIX_LEN + 1], want[65];
	if (key == NULL || code == NULL || strlen(code) > 40)
		return unauthorized(r);
	/* the hash is computed for every attempt so that failures cost the same */
	util_sha256_hex(key, strlen(key), want);
	if (!key_shape_ok(key, prefix))
		return unauthorized(r);
	if (r->api_host) {
		int rc = tenant_from_code(r, code);
		if (rc == ERR_NOT_FOUND)
			return unauthorized(r);
		if (rc != 0)
			return rc;
	} else if (!r->has_tenant || strcmp(code, r->tenant.code) != 0) {
		/* a key of tenant A with the code of tenant B, or on B's host */
		return unauthorized(r);
	}
	const char *p[2] = {r->tenant.id, prefix};
	PGresult *res = db_exec(r, &q_key_get, p);
	if (res == NULL)
		return ERR_DB;
	const char *stored = PQntuples(res) == 1 ? db_get(res, 0, 1) : NULL;
	static const char zero[65] =
	        "0000000000000000000000000000000000000000000000000000000000000000";
	int same = CRYPTO_memcmp(want, stored != NULL && strlen(stored) == 64 ? stored : zero, 64);
	if (stored == NULL || same != 0 || strcmp(db_get(res, 0, 2), "t") == 0)
		return unauthorized(r);
	copy_field(r->api_key_id, sizeof(r->api_key_id), db_get(res, 0, 0));
	const char *u[2] = {r->tenant.id, r->api_key_id};
	if (db_exec(r, &q_key_touch, u) == NULL)
		return ERR_DB;
	return team_member_header(r);
}

/* ---- branding ----------------------------------------------------------- */

#define BRANDING_COLUMNS                                                                           \
	"t.code, b.display_name, b.logo_url, b.favicon_url, b.color_primary, b.color_accent,"      \
	" b.color_background, b.color_text, b.support_email, b.locale"

/* clang-format off */
static struct stmt q_branding_get = {
	"branding_get",
	"SELECT "
	BRANDING_COLUMNS
	" FROM tenant_branding b JOIN tenants t ON t.id = b.tenant_id WHERE b.tenant_id = $1",
	1, 0};
/* clang-format on */

/* clang-format off */
static struct stmt q_team_branding_get = {
	"team_branding_get",
	"SELECT "
	BRANDING_COLUMNS
	", b.max_upload_bytes, array_to_json(b.blocked_content_types), b.store_endpoint,"
	" b.store_region, b.store_bucket, b.store_path_style, b.store_access_key_id,"
	" b.store_secret_access_key IS NOT NULL, b.whatsapp_phone_number_id,"
	" b.whatsapp_access_token IS NOT NULL, b.whatsapp_templates::text, b.quota_bytes,"
	" b.whatsapp_fallback_email"
	" FROM tenant_branding"
	" b JOIN tenants t ON t.id = b.tenant_id WHERE b.tenant_id = $1",
	1, 0};
/* clang-format on */

/* $2 is a flat JSON object keyed by column: a key present sets the column
 * (JSON null clears it), an absent key leaves it. */
#define SET_TEXT(col)                                                                              \
	col " = CASE WHEN $2::jsonb ? '" col "' THEN $2::jsonb->>'" col "' ELSE " col " END"
/* clang-format off */
static struct stmt q_branding_update = {
	"branding_update",
	"UPDATE tenant_branding SET "
	SET_TEXT("display_name") ", " SET_TEXT("logo_url") ", " SET_TEXT("favicon_url") ", "
	SET_TEXT("color_primary") ", " SET_TEXT("color_accent") ", " SET_TEXT("color_background") ", "
	SET_TEXT("color_text") ", " SET_TEXT("support_email") ", " SET_TEXT("locale") ", "
	SET_TEXT("store_endpoint") ", " SET_TEXT("store_region") ", " SET_TEXT("store_bucket") ", "
	SET_TEXT("store_access_key_id") ", " SET_TEXT("store_secret_access_key") ", "
	SET_TEXT("whatsapp_phone_number_id") ", " SET_TEXT("whatsapp_access_token") ","
	" max_upload_bytes = CASE WHEN $2::jsonb ? 'max_upload_bytes'"
	"   THEN ($2::jsonb->>'max_upload_bytes')::bigint ELSE max_upload_bytes END,"
	" quota_bytes = CASE WHEN $2::jsonb ? 'quota_bytes'"
	"   THEN ($2::jsonb->>'quota_bytes')::bigint ELSE quota_bytes END,"
	" whatsapp_fallback_email = CASE WHEN $2::jsonb ? 'whatsapp_fallback_email'"
	"   THEN ($2::jsonb->>'whatsapp_fallback_email')::boolean ELSE whatsapp_fallback_email END,"
	" store_path_style = CASE WHEN $2::jsonb ? 'store_path_style'"
	"   THEN ($2::jsonb->>'store_path_style')::boolean ELSE store_path_style END,"
	" blocked_content_types = CASE WHEN $2::jsonb ? 'blocked_content_types'"
	"   THEN ARRAY(SELECT DISTINCT jsonb_array_elements_text($2::jsonb->'blocked_content_types'))"
	"   ELSE blocked_content_types END,"
	" whatsapp_templates = CASE WHEN $2::jsonb ? 'whatsapp_templates'"
	"   THEN jsonb_strip_nulls(whatsapp_templates || ($2::jsonb->'whatsapp_templates'))"
	"   ELSE whatsapp_templates END,"
	" updated_at = now()"
	" WHERE tenant_id = $1",
	2, 0};
/* clang-format on */

static const struct field color_fields[] = {
        {"primary", FT_STRING, 0, 0, 0, check_color, NULL, NULL},
        {"accent", FT_STRING, 0, 0, 0, check_color, NULL, NULL},
        {"background", FT_STRING, 0, 0, 0, check_color, NULL, NULL},
        {"text", FT_STRING, 0, 0, 0, check_color, NULL, NULL},
        FIELD_END,
};

/* for FT_STRING_ARRAY, .sub describes one item and the field's max is the item count */
static const struct field content_type_items[] = {
        {"item", FT_STRING, 0, 3, 255, check_content_type, NULL, NULL},
        FIELD_END,
};

static const struct field limit_fields[] = {
        {"max_upload_bytes", FT_INT, 0, 1, LIMIT_UPLOAD_MAX, NULL, NULL, NULL},
        {"quota_bytes", FT_INT, FF_NULLABLE, 1, LIMIT_QUOTA_MAX, NULL, NULL, NULL},
        {"blocked_content_types", FT_STRING_ARRAY, 0, 0, LIMIT_CONTENT_TYPES, NULL, NULL,
         content_type_items},
        FIELD_END,
};

static const struct field store_fields[] = {
        {"endpoint", FT_STRING, FF_NULLABLE, 1, LIMIT_URL_CHARS, check_http_url, NULL, NULL},
        {"region", FT_STRING, FF_NULLABLE | FF_NONBLANK, 1, 64, NULL, NULL, NULL},
        {"bucket", FT_STRING, FF_NULLABLE | FF_NONBLANK, 3, 63, NULL, NULL, NULL},
        {"path_style", FT_BOOL, 0, 0, 0, NULL, NULL, NULL},
        {"access_key_id", FT_STRING, FF_NULLABLE | FF_NONBLANK, 1, 256, NULL, NULL, NULL},
        {"secret_access_key", FT_STRING, FF_NULLABLE | FF_NONBLANK, 1, LIMIT_SECRET_CHARS, NULL,
         NULL, NULL},
        FIELD_END,
};

/* the notification templates a tenant can map to its approved WhatsApp names */
static const struct field template_fields[] = {
        {"invite", FT_STRING, FF_NULLABLE | FF_NONBLANK, 1, 512, NULL, NULL, NULL},
        {"password_reset", FT_STRING, FF_NULLABLE | FF_NONBLANK, 1, 512, NULL, NULL, NULL},
        {"message_digest", FT_STRING, FF_NULLABLE | FF_NONBLANK, 1, 512, NULL, NULL, NULL},
        {"deliverable_delivered", FT_STRING, FF_NULLABLE | FF_NONBLANK, 1, 512, NULL, NULL, NULL},
        {"deliverable_decision", FT_STRING, FF_NULLABLE | FF_NONBLANK, 1, 512, NULL, NULL, NULL},
        {"milestone_completed", FT_STRING, FF_NULLABLE | FF_NONBLANK, 1, 512, NULL, NULL, NULL},
        /* the templates' language code when the recipient's locale has none
         * (WhatsApp spells them en_US, pt_BR) */
        {"language", FT_STRING, FF_NULLABLE | FF_NONBLANK, 2, 15, NULL, NULL, NULL},
        FIELD_END,
};

static const struct field whatsapp_fields[] = {
        {"phone_number_id", FT_STRING, FF_NULLABLE | FF_NONBLANK, 1, 64, NULL, NULL, NULL},
        {"access_token", FT_STRING, FF_NULLABLE | FF_NONBLANK, 1, LIMIT_SECRET_CHARS, NULL, NULL,
         NULL},
        {"templates", FT_STRING_MAP, 0, 0, 0, NULL, NULL, template_fields},
        {"fallback_email", FT_BOOL, 0, 0, 0, NULL, NULL, NULL},
        FIELD_END,
};

const struct field branding_patch_fields[] = {
        FIELD_READ_ONLY("tenant_code"),
        {"display_name", FT_STRING, FF_NONBLANK, 1, LIMIT_NAME_CHARS, NULL, NULL, NULL},
        {"logo_url", FT_STRING, FF_NULLABLE, 1, LIMIT_URL_CHARS, check_http_url, NULL, NULL},
        {"favicon_url", FT_STRING, FF_NULLABLE, 1, LIMIT_URL_CHARS, check_http_url, NULL, NULL},
        {"colors", FT_OBJECT, 0, 0, 0, NULL, NULL, color_fields},
        {"support_email", FT_STRING, FF_NULLABLE, 3, LIMIT_EMAIL_CHARS, check_email, NULL, NULL},
        {"locale", FT_STRING, 0, 2, 35, check_locale, NULL, NULL},
        {"limits", FT_OBJECT, 0, 0, 0, NULL, NULL, limit_fields},
        {"store", FT_OBJECT, 0, 0, 0, NULL, NULL, store_fields},
        {"whatsapp", FT_OBJECT, 0, 0, 0, NULL, NULL, whatsapp_fields},
        FIELD_END,
};

static json_object *
colors_json(const PGresult *res)
{
	json_object *c = json_object_new_object();
	json_add_str(c, "primary", db_get(res, 0, 4));
	json_add_str(c, "accent", db_get(res, 0, 5));
	json_add_str(c, "background", db_get(res, 0, 6));
	json_add_str(c, "text", db_get(res, 0, 7));
	return c;
}

static json_object *
public_branding(struct request *r, const PGresult *res)
{
	json_object *o = json_new_object(r->arena);
	json_add_str(o, "tenant_code", db_get(res, 0, 0));
	json_add_str(o, "display_name", db_get(res, 0, 1));
	json_add_str(o, "logo_url", db_get(res, 0, 2));
	json_add_str(o, "favicon_url", db_get(res, 0, 3));
	json_add_take(o, "colors", colors_json(res));
	json_add_str(o, "support_email", db_get(res, 0, 8));
	json_add_str(o, "locale", db_get(res, 0, 9));
	return o;
}

int
h_branding_get(struct request *r)
{
	const char *p[1] = {r->tenant.id};
	PGresult *res = db_exec(r, &q_branding_get, p);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1) {
		http_problem(r, 404, "tenant_not_found", "No portal is configured for this host.");
		return 0;
	}
	/* public and identical for every visitor of the host: let browsers
	 * revalidate it instead of refetching on every page load */
	r->cache_control = "public, max-age=60";
	http_json(r, 200, public_branding(r, res));
	return 0;
}

static json_object *
parse_json_text(const char *s)
{
	return s != NULL ? json_tokener_parse(s) : NULL;
}

/* Renders the team view of the settings; secrets read back as null. */
static int
render_team_branding(struct request *r, int status)
{
	const char *p[1] = {r->tenant.id};
	PGresult *res = db_exec(r, &q_team_branding_get, p);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1)
		return ERR_INTERNAL;
	json_object *o = public_branding(r, res);
	json_object *limits = json_object_new_object();
	json_add_int(limits, "max_upload_bytes", strtoll(db_get(res, 0, 10), NULL, 10));
	json_object *types = parse_json_text(db_get(res, 0, 11));
	json_add_take(limits, "blocked_content_types",
	              types != NULL ? types : json_object_new_array());
	const char *quota = db_get(res, 0, 21);
	if (quota != NULL)
		json_add_int(limits, "quota_bytes", strtoll(quota, NULL, 10));
	else
		json_add_str(limits, "quota_bytes", NULL);
	json_add_take(o, "limits", limits);

	json_object *store = json_object_new_object();
	json_add_str(store, "endpoint", db_get(res, 0, 12));
	json_add_str(store, "region", db_get(res, 0, 13));
	json_add_str(store, "bucket", db_get(res, 0, 14));
	json_add_bool(store, "path_style", strcmp(db_get(res, 0, 15), "t") == 0);
	json_add_str(store, "access_key_id", db_get(res, 0, 16));
	json_add_str(store, "secret_access_key", NULL); /* write-only */
	json_add_bool(store, "secret_access_key_set", strcmp(db_get(res, 0, 17), "t") == 0);
	json_add_take(o, "store", store);

	json_object *wa = json_object_new_object();
	json_add_str(wa, "phone_number_id", db_get(res, 0, 18));
	json_add_str(wa, "access_token", NULL); /* write-only */
	json_add_bool(wa, "access_token_set", strcmp(db_get(res, 0, 19), "t") == 0);
	json_object *tpl = parse_json_text(db_get(res, 0, 20));
	json_add_take(wa, "templates", tpl != NULL ? tpl : json_object_new_object());
	json_add_bool(wa, "fallback_email", strcmp(db_get(res, 0, 22), "t") == 0);
	json_add_take(o, "whatsapp", wa);
	http_json(r, status, o);
	return 0;
}

int
h_team_branding_get(struct request *r)
{
	return render_team_branding(r, 200);
}

/* Copies member key of src (when present) to dst under column, noting the
 * field name in changed. */
static void
patch_copy(json_object *dst, json_object *src, const char *key, const char *column,
           json_object *changed, const char *field)
{
	json_object *v;
	if (src == NULL || !json_object_object_get_ex(src, key, &v))
		return;
	json_object_object_add(dst, column, json_object_get(v));
	json_object_array_add(changed, json_object_new_string(field));
}

static void
lower_colors(json_object *colors)
{
	if (colors == NULL)
		return;
	json_object_object_foreach(colors, key, val)
	{
		char tmp[8];
		const char *s = json_object_get_string(val);
		size_t n = strlen(s);
		(void)key;
		if (n != 7)
			continue;
		for (size_t i = 0; i < n; i++)
			tmp[i] = (char)tolower((unsigned char)s[i]);
		tmp[7] = '\0';
		json_object_set_string(val, tmp);
	}
}

int
h_team_branding_patch(struct request *r)
{
	json_object *in = r->json;
	json_object *patch = json_new_object(r->arena);
	json_object *changed = json_new_array(r->arena);
	json_object *colors = json_get(in, "colors"), *limits = json_get(in, "limits");
	json_object *store = json_get(in, "store"), *wa = json_get(in, "whatsapp");
	lower_colors(colors);

	patch_copy(patch, in, "display_name", "display_name", changed, "display_name");
	patch_copy(patch, in, "logo_url", "logo_url", changed, "logo_url");
	patch_copy(patch, in, "favicon_url", "favicon_url", changed, "favicon_url");
	patch_copy(patch, in, "support_email", "support_email", changed, "support_email");
	patch_copy(patch, in, "locale", "locale", changed, "locale");
	patch_copy(patch, colors, "primary", "color_primary", changed, "colors.primary");
	patch_copy(patch, colors, "accent", "color_accent", changed, "colors.accent");
	patch_copy(patch, colors, "background", "color_background", changed, "colors.background");
	patch_copy(patch, colors, "text", "color_text", changed, "colors.text");
	patch_copy(patch, limits, "max_upload_bytes", "max_upload_bytes", changed,
	           "limits.max_upload_bytes");
	patch_copy(patch, limits, "blocked_content_types", "blocked_content_types", changed,
	           "limits.blocked_content_types");
	patch_copy(patch, limits, "quota_bytes", "quota_bytes", changed, "limits.quota_bytes");
	patch_copy(patch, store, "endpoint", "store_endpoint", changed, "store.endpoint");
	patch_copy(patch, store, "region", "store_region", changed, "store.region");
	patch_copy(patch, store, "bucket", "store_bucket", changed, "store.bucket");
	patch_copy(patch, store, "path_style", "store_path_style", changed, "store.path_style");
	patch_copy(patch, store, "access_key_id", "store_access_key_id", changed,
	           "store.access_key_id");
	patch_copy(patch, store, "secret_access_key", "store_secret_access_key", changed,
	           "store.secret_access_key");
	patch_copy(patch, wa, "phone_number_id", "whatsapp_phone_number_id", changed,
	           "whatsapp.phone_number_id");
	patch_copy(patch, wa, "access_token", "whatsapp_access_token", changed,
	           "whatsapp.access_token");
	patch_copy(patch, wa, "templates", "whatsapp_templates", changed, "whatsapp.templates");
	patch_copy(patch, wa, "fallback_email", "whatsapp_fallback_email", changed,
	           "whatsapp.fallback_email");

	const char *p[2] = {r->tenant.id, json_render(r->arena, patch, NULL)};
	if (db_exec(r, &q_branding_update, p) == NULL)
		return ERR_DB;
	json_object *detail = json_new_object(r->arena);
	json_add_take(detail, "fields", json_object_get(changed));
	if (audit_record(r, "branding.update", "tenant_branding", r->tenant.id, detail) != 0)
		return ERR_DB;
	return render_team_branding(r, 200);
}

/* ---- tenant hosts --------------------------------------------------------- */

static struct stmt q_domains_list = {
        "domains_list",
        "SELECT host, api_time(created_at) FROM tenant_domains"
        " WHERE tenant_id = $1 AND ($2::text IS NULL OR host > $2) ORDER BY host LIMIT $3",
        3, 0};
static struct stmt q_domains_count = {
        "domains_count", "SELECT count(*) FROM tenant_domains WHERE tenant_id = $1", 1, 0};
static struct stmt q_domain_insert = {"domain_insert",
                                      "INSERT INTO tenant_domains (tenant_id, host) VALUES ($1, $2)"
                                      " RETURNING host, api_time(created_at)",
                                      2, 0};
static struct stmt q_domain_delete = {
        "domain_delete", "DELETE FROM tenant_domains WHERE tenant_id = $1 AND host = $2", 2, 0};
/* serialises host changes of one tenant so the last host cannot be removed
 * by two concurrent deletes */
static struct stmt q_tenant_lock = {"tenant_lock",
                                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", 1, 0};

const struct field domain_create_fields[] = {
        {"host", FT_STRING, FF_REQUIRED, 1, LIMIT_HOST_MAX, check_hostname, NULL, NULL},
        FIELD_READ_ONLY("created_at"),
        FIELD_END,
};

static json_object *
domain_json(const PGresult *res, int row)
{
	json_object *d = json_object_new_object();
	json_add_str(d, "host", db_get(res, row, 0));
	json_add_str(d, "created_at", db_get(res, row, 1));
	return d;
}

int
h_team_domains_list(struct request *r)
{
	struct page pg;
	if (page_parse(r, &pg) != 0)
		return 0;
	if (pg.after != NULL && check_hostname(pg.after, strlen(pg.after)) != NULL) {
		http_problem(r, 400, "bad_query", "cursor is not a cursor this API returned");
		return 0;
	}
	char lim[16];
	snprintf(lim, sizeof(lim), "%d", pg.limit + 1);
	const char *p[3] = {r->tenant.id, pg.after, lim};
	PGresult *res = db_exec(r, &q_domains_list, p);
	if (res == NULL)
		return ERR_DB;
	int n = PQntuples(res);
	int shown = n > pg.limit ? pg.limit : n;
	json_object *o = json_new_object(r->arena);
	json_object *data = json_object_new_array();
	for (int i = 0; i < shown; i++)
		json_object_array_add(data, domain_json(res, i));
	json_add_take(o, "data", data);
	json_add_str(o, "next_cursor",
	             n > pg.limit ? page_cursor(r, db_get(res, shown - 1, 0)) : NULL);
	http_json(r, 200, o);
	return 0;
}

static int
lock_tenant_hosts(struct request *r)
{
	const char *p[1] = {r->tenant.id};
	return db_exec(r, &q_tenant_lock, p) != NULL ? 0 : ERR_DB;
}

static int
domain_count(struct request *r, long long *count)
{
	const char *p[1] = {r->tenant.id};
	PGresult *res = db_exec(r, &q_domains_count, p);
	if (res == NULL)
		return ERR_DB;
	*count = strtoll(db_get(res, 0, 0), NULL, 10);
	return 0;
}

int
h_team_domains_create(struct request *r)
{
	const char *host = json_object_get_string(json_get(r->json, "host"));
	long long count = 0;
	if (config.api_host != NULL && strcmp(host, config.api_host) == 0) {
		struct json_errors e;
		json_errors_init(r->arena, &e);
		json_errors_add(&e, "host", "invalid_format", "is reserved for the API host");
		http_problem_errors(r, e.list);
		return 0;
	}
	if (lock_tenant_hosts(r) != 0 || domain_count(r, &count) != 0)
		return ERR_DB;
	if (count >= LIMIT_DOMAINS) {
		http_problem(r, 409, "conflict", "a tenant can have at most 100 hosts");
		return 0;
	}
	const char *p[2] = {r->tenant.id, host};
	PGresult *res = db_exec(r, &q_domain_insert, p);
	if (res == NULL) {
		if (strcmp(db_sqlstate(), "23505") == 0) {
			http_problem(r, 409, "conflict", "this host is already in use");
			return 0;
		}
		return ERR_DB;
	}
	if (audit_record(r, "domain.create", "domain", host, NULL) != 0)
		return ERR_DB;
	http_json(r, 201, json_own(r->arena, domain_json(res, 0)));
	return 0;
}

int
h_team_domains_delete(struct request *r)
{
	const char *host = arena_strndup(r->arena, r->params[0].p, r->params[0].n);
	long long count = 0;
	if (check_hostname(host, strlen(host)) != NULL) {
		http_problem(r, 404, "not_found", "no such host for this tenant");
		return 0;
	}
	if (lock_tenant_hosts(r) != 0 || domain_count(r, &count) != 0)
		return ERR_DB;
	const char *p[2] = {r->tenant.id, host};
	PGresult *res = db_exec(r, &q_domain_delete, p);
	if (res == NULL)
		return ERR_DB;
	if (strcmp(PQcmdTuples(res), "1") != 0) {
		http_problem(r, 404, "not_found", "no such host for this tenant");
		return 0;
	}
	if (count <= 1) {
		/* the delete above rolls back with this answer */
		http_problem(r, 409, "invalid_state", "a tenant keeps at least one host");
		return 0;
	}
	if (audit_record(r, "domain.delete", "domain", host, NULL) != 0)
		return ERR_DB;
	tenant_cache_forget(host);
	http_empty(r, 204);
	return 0;
}
