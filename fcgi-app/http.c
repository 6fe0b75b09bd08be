/*
 * http.c - request parsing from FastCGI parameters, bodies, problem answers.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/rand.h>

#include "config.h"
#include "http.h"
#include "json.h"
#include "util.h"

struct problem_kind {
	const char *code;
	const char *title;
};

/* The stable codes of the API; anything else is a bug, logged as internal. */
static const struct problem_kind problem_kinds[] = {
        {"bad_json", "Malformed JSON body"},
        {"bad_query", "Malformed query string"},
        {"bad_header", "Malformed header"},
        {"validation_failed", "Validation failed"},
        {"unauthorized", "Authentication required"},
        {"token_expired", "Token expired"},
        {"invalid_credentials", "Invalid credentials"},
        {"account_locked", "Account temporarily locked"},
        {"account_disabled", "Account disabled"},
        {"forbidden", "Forbidden"},
        {"not_found", "Not found"},
        {"tenant_not_found", "Tenant not found"},
        {"method_not_allowed", "Method not allowed"},
        {"conflict", "Conflict"},
        {"invalid_state", "Invalid state"},
        {"idempotency_conflict", "Idempotency key reused with a different request"},
        {"idempotency_in_progress", "Request with this idempotency key in progress"},
        {"refresh_conflict", "Refresh token already rotated"},
        {"payload_too_large", "Payload too large"},
        {"unsupported_media_type", "Unsupported media type"},
        {"rate_limited", "Too many requests"},
        {"invite_invalid", "Invite invalid or expired"},
        {"token_invalid", "Token invalid or expired"},
        {"upload_incomplete", "Upload incomplete"},
        {"unavailable", "Service unavailable"},
        {"internal", "Internal error"},
};

uint64_t
http_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

bool
http_request_id_valid(const char *s)
{
	if (s == NULL)
		return false;
	size_t n = 0;
	for (; s[n] != '\0'; n++) {
		unsigned char c = (unsigned char)s[n];
		if (n >= LIMIT_REQUEST_ID ||
		    !(isalnum(c) || c == '.' || c == '_' || c == ':' || c == '-'))
			return false;
	}
	return n > 0;
}

const char *
http_param(const struct request *r, const char *name)
{
	return FCGX_GetParam(name, r->envp);
}

const char *
http_header(const struct request *r, const char *name)
{
	/* FastCGI passes headers as HTTP_<NAME> with '-' -> '_', upper case */
	char key[96];
	size_t n = strlen(name);
	if (n + 6 > sizeof(key))
		return NULL;
	memcpy(key, "HTTP_", 5);
	for (size_t i = 0; i < n; i++)
		key[5 + i] = name[i] == '-' ? '_' : (char)toupper((unsigned char)name[i]);
	key[5 + n] = '\0';
	return FCGX_GetParam(key, r->envp);
}

static void
new_request_id(char *out)
{
	unsigned char rnd[16];
	static const char hex[] = "0123456789abcdef";
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0, sizeof(rnd));
	for (size_t i = 0; i < sizeof(rnd); i++) {
		out[2 * i] = hex[rnd[i] >> 4];
		out[2 * i + 1] = hex[rnd[i] & 15];
	}
	out[32] = '\0';
}

/* Parses a non-negative decimal without overflow; -1 when invalid. */
static long long
parse_length(const char *s)
{
	if (s == NULL || *s == '\0')
		return -1;
	long long v = 0;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10)
			return -2;
		v = v * 10 + (*s - '0');
	}
	return v;
}

int
http_request_init(struct request *r, struct arena *a, FCGX_Stream *in, FCGX_Stream *out,
                  char **envp)
{
	memset(r, 0, sizeof(*r));
	r->arena = a;
	r->in = in;
	r->out = out;
	r->envp = envp;
	r->start_us = http_now_us();
	r->status = 0;
	buf_init(&r->headers, a, 256);

	const char *rid = http_param(r, "ATRIUM_REQUEST_ID");
	if (!http_request_id_valid(rid))
		rid = http_header(r, "x-request-id");
	if (http_request_id_valid(rid)) {
		size_t n = strlen(rid);
		memcpy(r->request_id, rid, n + 1);
	} else {
		new_request_id(r->request_id);
	}

	const char *m = http_param(r, "REQUEST_METHOD");
	r->method = m != NULL ? m : "GET";
	const char *uri = http_param(r, "DOCUMENT_URI");
	if (uri == NULL)
		uri = "/";
	r->path = (struct str){uri, strlen(uri)};
	const char *q = http_param(r, "QUERY_STRING");
	r->query = (struct str){q != NULL ? q : "", q != NULL ? strlen(q) : 0};
	r->remote_addr = http_param(r, "REMOTE_ADDR");
	r->content_type = http_param(r, "CONTENT_TYPE");

	/* ATRIUM_HOST is nginx's $host: lower-cased, port removed */
	const char *h = http_param(r, "ATRIUM_HOST");
	if (h == NULL)
		h = http_param(r, "SERVER_NAME");
	if (h != NULL && strlen(h) <= LIMIT_HOST_MAX) {
		char *lh = arena_strdup(a, h);
		for (char *p = lh; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		r->host = lh;
	} else {
		r->host = "";
	}

	const char *cl = http_param(r, "CONTENT_LENGTH");
	r->content_length = cl == NULL || *cl == '\0' ? -1 : parse_length(cl);
	if (r->content_length < -1) {
		http_problem(r, 400, "bad_header", "Content-Length is not a number");
		return ERR_INVALID;
	}
#ifdef ATRIUM_FAULTS
	const char *fault = http_header(r, "x-atrium-fault");
	long long n = 0;
	if (fault != NULL && strncmp(fault, "db=", 3) == 0 &&
	    config_parse_int(fault + 3, 1, 1000, &n) == 0)
		r->fault_db = (int)n;
#endif
	if (r->path.n > LIMIT_PATH_MAX || r->query.n > LIMIT_QUERY_MAX) {
		http_problem(r, 400, "bad_query", "the request URI is too long");
		return ERR_INVALID;
	}
	return 0;
}

bool
http_has_body(const struct request *r)
{
	return r->content_length > 0;
}

int
http_read_body(struct request *r, size_t max)
{
	r->body = (struct str){"", 0};
	if (r->content_length <= 0)
		return 0;
	if ((unsigned long long)r->content_length > max) {
		http_problem(
		        r, 413, "payload_too_large",
		        arena_printf(r->arena, "request bodies are limited to %zu bytes", max));
		return ERR_TOO_LARGE;
	}
	size_t want = (size_t)r->content_length;
	char *p = arena_alloc(r->arena, want + 1);
	size_t got = 0;
	while (got < want) {
		int n = FCGX_GetStr(p + got, (int)(want - got), r->in);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got != want) {
		http_problem(r, 400, "bad_json", "the body is shorter than its Content-Length");
		return ERR_INVALID;
	}
	p[got] = '\0';
	r->body = (struct str){p, got};
	return 0;
}

static bool
is_json_type(const char *ct)
{
	static const char base[] = "application/json";
	size_t n = sizeof(base) - 1;
	if (ct == NULL || strncasecmp(ct, base, n) != 0)
		return false;
	const char *rest = ct + n;
	while (*rest == ' ')
		rest++;
	if (*rest == '\0')
		return true;
	if (*rest != ';')
		return false;
	rest++;
	while (*rest == ' ')
		rest++;
	/* the only parameter JSON has is charset, and it must be UTF-8 */
	return strcasecmp(rest, "charset=utf-8") == 0 || strcasecmp(rest, "charset=\"utf-8\"") == 0;
}

int
http_read_json(struct request *r, bool required)
{
	r->json = NULL;
	if (!http_has_body(r)) {
		if (required) {
			http_problem(r, 400, "bad_json", "a JSON object body is required");
			return ERR_INVALID;
		}
		return 0;
	}
	if (!is_json_type(r->content_type)) {
		http_problem(r, 415, "unsupported_media_type",
		             "bodies must be sent as Content-Type: application/json");
		return ERR_INVALID;
	}
	int rc = http_read_body(r, LIMIT_BODY_MAX);
	if (rc != 0)
		return rc;
	struct json_parse jp;
	if (json_parse_body(r->arena, r->body.p, r->body.n, &jp) != 0) {
		http_problem(r, 400, "bad_json", jp.reason);
		return ERR_INVALID;
	}
	r->json = jp.root;
	return 0;
}

void
http_add_header(struct request *r, const char *name, const char *value)
{
	buf_printf(&r->headers, "%s: %s\r\n", name, value);
}

void
http_json(struct request *r, int status, json_object *obj)
{
	r->status = status;
	if (obj == NULL) {
		r->resp_type = NULL;
		r->resp_body = NULL;
		r->resp_len = 0;
		return;
	}
	r->resp_type = "application/json";
	r->resp_body = json_render(r->arena, obj, &r->resp_len);
}

void
http_empty(struct request *r, int status)
{
	http_json(r, status, NULL);
}

/* True when the If-None-Match list names tag (weak comparison, RFC 9110
 * 13.1.2: W/ prefixes are ignored) or is "*". */
static bool
etag_listed(const char *list, const char *tag)
{
	size_t tn = strlen(tag);
	const char *p = list;
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		size_t n = strcspn(p, ",");
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == tn && memcmp(p, tag, n) == 0)
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

void
http_etag(struct request *r)
{
	if (r->status != 200 || r->resp_body == NULL)
		return;
	char hex[65], tag[36];
	util_sha256_hex(r->resp_body, r->resp_len, hex);
	snprintf(tag, sizeof(tag), "\"%.32s\"", hex);
	http_add_header(r, "ETag", tag);
	const char *inm = http_header(r, "if-none-match");
	if (inm != NULL && etag_listed(inm, tag)) {
		r->status = 304;
		r->resp_body = NULL;
		r->resp_len = 0;
	}
}

static const char *
problem_title(const char *code)
{
	for (size_t i = 0; i < ARRAY_LEN(problem_kinds); i++)
		if (strcmp(problem_kinds[i].code, code) == 0)
			return problem_kinds[i].title;
	return NULL;
}

static void
problem(struct request *r, int status, const char *code, const char *detail, json_object *errors)
{
	const char *title = problem_title(code);
	if (title == NULL) {
		/* an unknown code is a programming error: never invent codes */
		code = "internal";
		status = 500;
		title = problem_title(code);
		detail = NULL;
	}
	json_object *o = json_new_object(r->arena);
	json_add_str(o, "type", arena_printf(r->arena, "urn:problem:atrium:%s", code));
	json_add_str(o, "title", title);
	json_add_int(o, "status", status);
	json_add_str(o, "detail", detail != NULL ? detail : title);
	json_add_str(o, "code", code);
	json_add_str(o, "request_id", r->request_id);
	if (errors != NULL)
		json_add_take(o, "errors", json_object_get(errors));
	r->status = status;
	r->problem_code = code;
	r->cache_control = NULL; /* an error is never cacheable */
	r->location = NULL;
	r->resp_type = "application/problem+json";
	r->resp_body = json_render(r->arena, o, &r->resp_len);
}

void
http_problem(struct request *r, int status, const char *code, const char *detail)
{
	problem(r, status, code, detail, NULL);
}

void
http_problem_errors(struct request *r, json_object *errors)
{
	problem(r, 422, "validation_failed", "the request body has invalid fields", errors);
}

static const char *
reason_phrase(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 302:
		return "Found";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 413:
		return "Content Too Large";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Content";
	case 429:
		return "Too Many Requests";
	case 503:
		return "Service Unavailable";
	default:
		return status >= 500 ? "Internal Server Error" : "Status";
	}
}

void
http_send(struct request *r)
{
	struct buf h;
	buf_init(&h, r->arena, 512);
	buf_printf(&h, "Status: %d %s\r\n", r->status, reason_phrase(r->status));
	buf_printf(&h, "X-Request-Id: %s\r\n", r->request_id);
	if (r->resp_type != NULL)
		buf_printf(&h, "Content-Type: %s\r\n", r->resp_type);
	if (r->status != 204 && r->status != 304)
		buf_printf(&h, "Content-Length: %zu\r\n", r->resp_len);
	if (r->location != NULL && r->status < 300)
		buf_printf(&h, "Location: %s\r\n", r->location);
	if (r->replayed)
		buf_puts(&h, "Idempotent-Replayed: true\r\n");
	/* API answers are per caller unless a handler says otherwise */
	buf_printf(&h, "Cache-Control: %s\r\n",
	           r->cache_control != NULL ? r->cache_control : "no-store");
	buf_append(&h, r->headers.p, r->headers.len);
	buf_puts(&h, "\r\n");
	FCGX_PutStr(h.p, (int)h.len, r->out);
	if (r->resp_len > 0 && r->status != 204 && r->status != 304 &&
	    strcmp(r->method, "HEAD") != 0)
		FCGX_PutStr(r->resp_body, (int)r->resp_len, r->out);
}

static int
unhex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Percent-decodes [p, p+n) into arena memory; NULL when malformed. */
static char *
url_decode(struct arena *a, const char *p, size_t n)
{
	char *out = arena_alloc(a, n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '+') {
			out[o++] = ' ';
		} else if (p[i] == '%') {
			if (i + 2 >= n)
				return NULL;
			int hi = unhex((unsigned char)p[i + 1]),
			    lo = unhex((unsigned char)p[i + 2]);
			if (hi < 0 || lo < 0)
				return NULL;
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			out[o++] = p[i];
		}
	}
	out[o] = '\0';
	if (strlen(out) != o)
		return NULL; /* %00 */
	return out;
}

const char *
http_query(struct request *r, const char *name, bool *dup)
{
	const char *found = NULL;
	size_t nlen = strlen(name);
	const char *p = r->query.p, *end = r->query.p + r->query.n;
	if (dup != NULL)
		*dup = false;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pe = amp != NULL ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(pe - p));
		const char *ke = eq != NULL ? eq : pe;
		if ((size_t)(ke - p) == nlen && memcmp(p, name, nlen) == 0) {
			if (found != NULL && dup != NULL)
				*dup = true;
			const char *vs = eq != NULL ? eq + 1 : pe;
			const char *v = url_decode(r->arena, vs, (size_t)(pe - vs));
			found = v != NULL ? v : "\x01"; /* malformed: no valid value matches */
		}
		p = pe + 1;
	}
	return found;
}

const char *
http_query_unknown(struct request *r, const char *allowed)
{
	const char *p = r->query.p, *end = r->query.p + r->query.n;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pe = amp != NULL ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(pe - p));
		size_t kn = (size_t)((eq != NULL ? eq : pe) - p);
		bool ok = kn == 0 && pe == p; /* an empty pair ("a=1&&b=2") is harmless */
		for (const char *a = allowed; !ok && a != NULL && *a != '\0';) {
			const char *sp = strchr(a, ' ');
			size_t an = sp != NULL ? (size_t)(sp - a) : strlen(a);
			if (an == kn && memcmp(a, p, kn) == 0)
				ok = true;
			a = sp != NULL ? sp + 1 : a + an;
		}
		if (!ok)
			return arena_strndup(r->arena, p, kn);
		p = pe + 1;
	}
	return NULL;
}
