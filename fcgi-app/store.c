/*
 * store.c - a tenant's object store (see store.h).
 *
 * The worker talks to the store only to confirm uploads, with libcurl and
 * presigned URLs (the same signing path as the browser's).  One easy handle
 * per worker keeps the connection to the store alive between requests.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <strings.h>
#include <time.h>

#include "config.h"
#include "db.h"
#include "json.h"
#include "log.h"
#include "store.h"
#include "util.h"

static struct stmt q_store_settings = {
        "store_settings",
        "SELECT store_endpoint, store_region, store_bucket, store_path_style, store_access_key_id,"
        " store_secret_access_key, max_upload_bytes, quota_bytes,"
        " array_to_json(blocked_content_types)::text"
        " FROM tenant_branding WHERE tenant_id = $1",
        1, 0};

static bool
set(const char *s)
{
	return s != NULL && *s != '\0';
}

int
store_load(struct request *r, struct store *s)
{
	const char *p[1] = {r->tenant.id};
	PGresult *res = db_exec(r, &q_store_settings, p);
	if (res == NULL)
		return ERR_DB;
	if (PQntuples(res) != 1)
		return ERR_INTERNAL;
	memset(s, 0, sizeof(*s));
	const char *bucket = db_get(res, 0, 2), *akid = db_get(res, 0, 4);
	const char *secret = db_get(res, 0, 5);
	if (set(bucket) && set(akid) && set(secret)) {
		/* the tenant's own bucket: one endpoint for workers and browsers */
		const char *endpoint = db_get(res, 0, 0), *region = db_get(res, 0, 1);
		s->worker.endpoint = set(endpoint) ? endpoint : config.s3_public_endpoint;
		s->worker.region = set(region) ? region : config.s3_region;
		s->worker.bucket = bucket;
		s->worker.path_style = strcmp(db_get(res, 0, 3), "t") == 0;
		s->worker.access_key_id = akid;
		s->worker.secret_access_key = secret;
		s->browser = s->worker;
	} else {
		s->worker.endpoint = config.s3_endpoint;
		s->worker.region = config.s3_region;
		s->worker.bucket = config.s3_bucket;
		s->worker.path_style = config.s3_path_style != 0;
		s->worker.access_key_id = config.s3_access_key_id;
		s->worker.secret_access_key = config.s3_secret_access_key;
		s->browser = s->worker;
		s->browser.endpoint = config.s3_public_endpoint;
	}
	if (!set(s->worker.endpoint) || !set(s->worker.bucket) || !set(s->worker.access_key_id) ||
	    !set(s->worker.secret_access_key)) {
		http_add_header(r, "Retry-After", "60");
		http_problem(r, 503, "unavailable",
		             "file storage is not configured for this portal");
		return ERR_UNAVAILABLE;
	}
	s->max_upload = strtoll(db_get(res, 0, 6), NULL, 10);
	const char *quota = db_get(res, 0, 7);
	s->quota = quota != NULL ? strtoll(quota, NULL, 10) : -1;
	s->blocked = json_tokener_parse(db_get(res, 0, 8));
	if (s->blocked != NULL)
		json_own(r->arena, s->blocked);
	return 0;
}

bool
store_blocked(const struct store *s, const char *content_type)
{
	if (s->blocked == NULL || !json_object_is_type(s->blocked, json_type_array))
		return false;
	size_t n = json_object_array_length(s->blocked);
	for (size_t i = 0; i < n; i++) {
		const char *t = json_object_get_string(json_object_array_get_idx(s->blocked, i));
		if (t != NULL && strcmp(t, content_type) == 0)
			return true;
	}
	return false;
}

char *
store_object_key(struct request *r, const char *project_id, const char *attachment_id)
{
	return arena_printf(r->arena, "tenants/%s/projects/%s/%s", r->tenant.id, project_id,
	                    attachment_id);
}

static const char *
expiry(struct request *r, time_t now, int seconds)
{
	time_t t = now + seconds;
	struct tm tm;
	char *out = arena_alloc(r->arena, 32);
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return out;
}

char *
store_upload_url(struct request *r, const struct store *s, const char *key,
                 const char *content_type, long long size, const char **expires_at)
{
	time_t now = time(NULL);
	const struct s3_param h[2] = {
	        {"content-length", arena_printf(r->arena, "%lld", size)},
	        {"content-type", content_type},
	};
	*expires_at = expiry(r, now, LIMIT_UPLOAD_URL_S);
	return s3_presign(r->arena, &s->browser, "PUT", store_upload_key(r, key), now,
	                  LIMIT_UPLOAD_URL_S, h, 2, NULL, 0);
}

char *
store_download_url(struct request *r, const struct store *s, const char *key, const char *filename,
                   const char *content_type, const char **expires_at)
{
	time_t now = time(NULL);
	const struct s3_param q[2] = {
	        {"response-content-disposition", s3_content_disposition(r->arena, filename)},
	        {"response-content-type", content_type},
	};
	*expires_at = expiry(r, now, LIMIT_DOWNLOAD_URL_S);
	return s3_presign(r->arena, &s->browser, "GET", key, now, LIMIT_DOWNLOAD_URL_S, NULL, 0, q,
	                  2);
}

/* ---- the upload check ------------------------------------------------------ */

static CURL *curl; /* one per worker: keeps the connection to the store */

struct fetch {
	struct store_object *o;
	long long limit; /* body bytes accepted */
	long long got;
	bool too_long;
	EVP_MD_CTX *md; /* NULL: the body is not hashed */
};

/* Copies a header value (trimmed) when the line is "name: value". */
static void
header_value(const char *line, size_t n, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	if (n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return;
	const char *v = line + nl + 1, *end = line + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && isspace((unsigned char)end[-1]))
		end--;
	size_t len = (size_t)(end - v);
	if (len >= cap)
		len = cap - 1;
	memcpy(out, v, len);
	out[len] = '\0';
}

static size_t
on_header(char *line, size_t size, size_t count, void *userdata)
{
	struct fetch *f = userdata;
	size_t n = size * count;
	char length[32] = "";
	header_value(line, n, "content-type", f->o->content_type, sizeof(f->o->content_type));
	header_value(line, n, "etag", f->o->etag, sizeof(f->o->etag));
	header_value(line, n, "content-length", length, sizeof(length));
	if (length[0] != '\0' && config_parse_int(length, 0, INT64_MAX, &f->o->size) != 0)
		f->o->size = -1;
	return n;
}

static size_t
on_body(char *p, size_t size, size_t count, void *userdata)
{
	struct fetch *f = userdata;
	size_t n = size * count;
	if (f->got + (long long)n > f->limit) {
		f->too_long = true;
		return 0; /* aborts the transfer */
	}
	f->got += (long long)n;
	if (f->md != NULL && EVP_DigestUpdate(f->md, p, n) != 1)
		return 0;
	return n;
}

/* Runs one presigned request (copy_source: the signed x-amz-copy-source of a
 * server-side copy, else NULL); returns the HTTP status or -1. */
static long
perform(struct request *r, const char *method, const char *url, const char *copy_source,
        struct fetch *f)
{
	if (curl == NULL && (curl = curl_easy_init()) == NULL)
		return -1;
	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)config.s3_timeout);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, f);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, f);
	struct curl_slist *headers = NULL;
	if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
		if (copy_source != NULL) {
			/* an empty body: curl sends Content-Length: 0 */
			curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
			curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
			char h[1024];
			snprintf(h, sizeof(h), "x-amz-copy-source: %s", copy_source);
			headers = curl_slist_append(headers, h);
			/* no Content-Type of curl's choosing: it is not signed */
			headers = curl_slist_append(headers, "Content-Type:");
			if (headers == NULL)
				return -1;
			curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
		}
	}
	CURLcode rc = curl_easy_perform(curl);
	curl_slist_free_all(headers);
	if (rc != CURLE_OK) {
		if (!(rc == CURLE_WRITE_ERROR && f->too_long))
			log_error(r, "store %s failed: %s", method, curl_easy_strerror(rc));
		return f->too_long ? 200 : -1;
	}
	long status = 0;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	return status;
}

static void
md_free(void *p)
{
	EVP_MD_CTX_free(p);
}

/* Compares media types without parameters, case-insensitively. */
static bool
same_type(const char *stored, const char *declared)
{
	size_t n = strcspn(stored, "; ");
	return n == strlen(declared) && strncasecmp(stored, declared, n) == 0;
}

char *
store_upload_key(struct request *r, const char *key)
{
	return arena_printf(r->arena, "incoming/%s", key);
}

/* HEAD key: STORE_OK with o filled, STORE_MISSING, or STORE_FAILED. */
static enum store_check_result
head(struct request *r, const struct store *s, const char *key, struct store_object *o)
{
	memset(o, 0, sizeof(*o));
	o->size = -1;
	struct fetch f = {o, 0, 0, false, NULL};
	const char *url =
	        s3_presign(r->arena, &s->worker, "HEAD", key, time(NULL), 60, NULL, 0, NULL, 0);
	long status = url != NULL ? perform(r, "HEAD", url, NULL, &f) : -1;
	if (status == 404 || status == 403)
		return STORE_MISSING;
	return status >= 200 && status <= 299 ? STORE_OK : STORE_FAILED;
}

static enum store_check_result
matches(const struct store_object *o, long long size, const char *content_type, const char **why)
{
	if (o->size != size) {
		*why = "the uploaded file's size differs from the declared size";
		return STORE_MISMATCH;
	}
	if (!same_type(o->content_type, content_type)) {
		*why = "the uploaded file's content type differs from the declared type";
		return STORE_MISMATCH;
	}
	return STORE_OK;
}

enum store_check_result
store_check(struct request *r, const struct store *s, const char *key, long long size,
            const char *content_type, struct store_object *o, const char **why)
{
	const char *incoming = store_upload_key(r, key);
	*why = "the file store did not answer";
	/* 1. the upload, as the browser left it */
	enum store_check_result rc = head(r, s, incoming, o);
	if (rc == STORE_FAILED)
		return rc;
	bool copied = false;
	if (rc == STORE_MISSING) {
		/* an earlier confirmation may have copied it already and died
		 * before its commit */
		if ((rc = head(r, s, key, o)) != STORE_OK) {
			if (rc == STORE_MISSING)
				*why = "the file has not been uploaded";
			return rc;
		}
		copied = true;
	}
	if ((rc = matches(o, size, content_type, why)) != STORE_OK)
		return rc;
	/* 2. a server-side copy to the final key, which no upload URL can
	 * write: what is confirmed now is what every download returns */
	struct fetch f = {o, 64 * 1024, 0, false, NULL};
	if (!copied) {
		const char *source = arena_printf(r->arena, "/%s/%s", s->worker.bucket,
		                                  s3_uri_encode(r->arena, incoming, true));
		const struct s3_param h[1] = {{"x-amz-copy-source", source}};
		const char *url =
		        s3_presign(r->arena, &s->worker, "PUT", key, time(NULL), 60, h, 1, NULL, 0);
		long status = url != NULL ? perform(r, "PUT", url, source, &f) : -1;
		if (status < 200 || status > 299)
			return STORE_FAILED;
	}
	/* 3. read the final object back: the sha256 names what was stored */
	struct store_object fin;
	if ((rc = head(r, s, key, &fin)) != STORE_OK ||
	    (rc = matches(&fin, size, content_type, why)) != STORE_OK)
		return rc == STORE_MISSING ? STORE_FAILED : rc;
	memset(&f, 0, sizeof(f));
	f.o = &fin;
	f.limit = size;
	if ((f.md = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(f.md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(f.md);
		return STORE_FAILED;
	}
	arena_defer(r->arena, md_free, f.md);
	char etag[sizeof(fin.etag)];
	memcpy(etag, fin.etag, sizeof(etag));
	const char *get =
	        s3_presign(r->arena, &s->worker, "GET", key, time(NULL), 60, NULL, 0, NULL, 0);
	long status = get != NULL ? perform(r, "GET", get, NULL, &f) : -1;
	if (status < 200 || status > 299)
		return STORE_FAILED;
	if (f.too_long || f.got != size) {
		*why = "the file changed while it was being checked";
		return STORE_MISMATCH;
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (EVP_DigestFinal_ex(f.md, md, &mdlen) != 1 || mdlen != 32)
		return STORE_FAILED;
	*o = fin;
	memcpy(o->etag, etag, sizeof(o->etag));
	util_hex(md, 32, o->sha256);
	*why = NULL;
	return STORE_OK;
}

void
store_forget_upload(struct request *r, const struct store *s, const char *key)
{
	struct store_object o;
	struct fetch f = {&o, 64 * 1024, 0, false, NULL};
	const char *url = s3_presign(r->arena, &s->worker, "DELETE", store_upload_key(r, key),
	                             time(NULL), 60, NULL, 0, NULL, 0);
	long status = url != NULL ? perform(r, "DELETE", url, NULL, &f) : -1;
	if (status != 204 && status != 200 && status != 404)
		log_error(r, "store: the upload copy %s stays (DELETE answered %ld)", key, status);
}
