/*
 * json.c - strict JSON scanning, parsing and field-table validation.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json.h"
#include "limits.h"

/* ---- strict grammar scan ------------------------------------------------ */

struct scan {
	const char *p;
	const char *end;
	const char *base;
	char *copy; /* writable copy (lone surrogates neutralised), or NULL */
	int depth;
	int max_depth;
	const char *reason;
	/* keys of all open objects; each object owns the tail from its start */
	struct str *keys;
	size_t nkeys;
	size_t capkeys;
	struct arena *a;
};

static int scan_value(struct scan *s);

static void
skip_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int
fail(struct scan *s, const char *reason)
{
	if (s->reason == NULL)
		s->reason = reason;
	return ERR_INVALID;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Reads \uXXXX at p (p points at the backslash); returns the code unit or -1. */
static long
read_u_escape(const char *p, const char *end)
{
	if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
		return -1;
	long v = 0;
	for (int i = 2; i < 6; i++) {
		int h = hexval((unsigned char)p[i]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* Length of the valid UTF-8 sequence at p, or 0 when it is not valid. */
static size_t
utf8_seq(const unsigned char *p, const unsigned char *end)
{
	unsigned c = p[0];
	if (c < 0x80)
		return 1;
	size_t len;
	unsigned min;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		min = 0x10000;
	} else {
		return 0;
	}
	if ((size_t)(end - p) < len)
		return 0;
	unsigned cp = c & (0xff >> (len + 1));
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static void
neutralise(struct scan *s, const char *esc)
{
	/* same length: the copy stays aligned with the original */
	if (s->copy != NULL)
		memcpy(s->copy + (esc - s->base), "\\u0000", 6);
}

static int
scan_string(struct scan *s, struct str *content)
{
	s->p++; /* opening quote */
	const char *start = s->p;
	while (s->p < s->end) {
		unsigned char c = (unsigned char)*s->p;
		if (c == '"') {
			if (content != NULL) {
				content->p = start;
				content->n = (size_t)(s->p - start);
			}
			s->p++;
			return 0;
		}
		if (c < 0x20)
			return fail(s, "control character in string");
		if (c == '\\') {
			if (s->end - s->p < 2)
				return fail(s, "unterminated string");
			char e = s->p[1];
			if (e == 'u') {
				long u = read_u_escape(s->p, s->end);
				if (u < 0)
					return fail(s, "bad \\u escape");
				if (u >= 0xd800 && u <= 0xdbff) {
					long lo = read_u_escape(s->p + 6, s->end);
					if (lo >= 0xdc00 && lo <= 0xdfff) {
						s->p += 12;
						continue;
					}
					neutralise(s, s->p);
				} else if (u >= 0xdc00 && u <= 0xdfff) {
					neutralise(s, s->p);
				}
				s->p += 6;
				continue;
			}
			if (strchr("\"\\/bfnrt", e) == NULL || e == '\0')
				return fail(s, "bad escape in string");
			s->p += 2;
			continue;
		}
		size_t len = utf8_seq((const unsigned char *)s->p, (const unsigned char *)s->end);
		if (len == 0)
			return fail(s, "invalid UTF-8");
		s->p += len;
	}
	return fail(s, "unterminated string");
}

static int
scan_digits(struct scan *s)
{
	const char *start = s->p;
	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	return s->p > start ? 0 : fail(s, "bad number");
}

static int
scan_number(struct scan *s)
{
	if (*s->p == '-')
		s->p++;
	if (s->p >= s->end)
		return fail(s, "bad number");
	if (*s->p == '0') {
		s->p++;
	} else if (scan_digits(s) != 0) {
		return ERR_INVALID;
	}
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (scan_digits(s) != 0)
			return ERR_INVALID;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (scan_digits(s) != 0)
			return ERR_INVALID;
	}
	return 0;
}

static int
scan_literal(struct scan *s, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
		return fail(s, "unexpected token");
	s->p += n;
	return 0;
}

static int
key_cmp(const void *x, const void *y)
{
	const struct str *a = x, *b = y;
	size_t n = a->n < b->n ? a->n : b->n;
	int c = memcmp(a->p, b->p, n);
	if (c != 0)
		return c;
	return a->n < b->n ? -1 : a->n > b->n;
}

static int
push_key(struct scan *s, struct str k)
{
	if (s->nkeys == s->capkeys) {
		size_t cap = s->capkeys ? s->capkeys * 2 : 64;
		if (cap > LIMIT_JSON_KEYS)
			return fail(s, "too many object members");
		struct str *keys = arena_alloc(s->a, cap * sizeof(*keys));
		if (s->nkeys > 0)
			memcpy(keys, s->keys, s->nkeys * sizeof(*keys));
		s->keys = keys;
		s->capkeys = cap;
	}
	s->keys[s->nkeys++] = k;
	return 0;
}

static int
scan_object(struct scan *s)
{
	size_t first = s->nkeys;
	s->p++;
	skip_ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return 0;
	}
	for (;;) {
		skip_ws(s);
		if (s->p >= s->end || *s->p != '"')
			return fail(s, "expected a member name");
		struct str k;
		if (scan_string(s, &k) != 0 || push_key(s, k) != 0)
			return ERR_INVALID;
		skip_ws(s);
		if (s->p >= s->end || *s->p != ':')
			return fail(s, "expected ':'");
		s->p++;
		if (scan_value(s) != 0)
			return ERR_INVALID;
		skip_ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == '}') {
			s->p++;
			break;
		}
		return fail(s, "expected ',' or '}'");
	}
	size_t n = s->nkeys - first;
	if (n > 1) {
		qsort(s->keys + first, n, sizeof(*s->keys), key_cmp);
		for (size_t i = first + 1; i < s->nkeys; i++)
			if (key_cmp(&s->keys[i - 1], &s->keys[i]) == 0)
				return fail(s, "duplicate member name");
	}
	s->nkeys = first; /* this object's keys are done with */
	return 0;
}

static int
scan_array(struct scan *s)
{
	s->p++;
	skip_ws(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		return 0;
	}
	for (;;) {
		if (scan_value(s) != 0)
			return ERR_INVALID;
		skip_ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == ']') {
			s->p++;
			return 0;
		}
		return fail(s, "expected ',' or ']'");
	}
}

static int
scan_value(struct scan *s)
{
	skip_ws(s);
	if (s->p >= s->end)
		return fail(s, "unexpected end of input");
	int rc;
	switch (*s->p) {
	case '{':
	case '[':
		if (++s->depth > s->max_depth)
			return fail(s, "nested too deeply");
		rc = *s->p == '{' ? scan_object(s) : scan_array(s);
		s->depth--;
		return rc;
	case '"':
		return scan_string(s, NULL);
	case 't':
		return scan_literal(s, "true");
	case 'f':
		return scan_literal(s, "false");
	case 'n':
		return scan_literal(s, "null");
	default:
		if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
			return scan_number(s);
		return fail(s, "unexpected character");
	}
}

int
json_scan(struct arena *a, const char *body, size_t n, int max_depth, char **out,
          const char **reason)
{
	struct scan s = {.p = body, .end = body + n, .base = body, .max_depth = max_depth, .a = a};
	if (out != NULL) {
		s.copy = arena_strndup(a, body, n);
		*out = s.copy;
	}
	skip_ws(&s);
	if (s.p == s.end) {
		*reason = "empty body";
		return ERR_INVALID;
	}
	if (scan_value(&s) != 0) {
		*reason = s.reason;
		return ERR_INVALID;
	}
	skip_ws(&s);
	if (s.p != s.end) {
		*reason = "trailing characters after the JSON value";
		return ERR_INVALID;
	}
	return 0;
}

static void
put_json(void *p)
{
	json_object_put(p);
}

static void
free_tokener(void *p)
{
	json_tokener_free(p);
}

int
json_parse_body(struct arena *a, const char *body, size_t n, struct json_parse *p)
{
	char *copy = NULL;
	p->root = NULL;
	p->reason = NULL;
	if (json_scan(a, body, n, LIMIT_JSON_DEPTH, &copy, &p->reason) != 0)
		return ERR_INVALID;
	/* the scan leaves no structure json-c could read differently, so its
	 * parse below succeeds; depth +1 because json-c counts the top level */
	struct json_tokener *tok = json_tokener_new_ex(LIMIT_JSON_DEPTH + 1);
	if (tok == NULL)
		return ERR_NOMEM;
	arena_defer(a, free_tokener, tok);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	json_object *root = json_tokener_parse_ex(tok, copy, (int)n);
	if (root == NULL || json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(root);
		p->reason = "malformed JSON";
		return ERR_INVALID;
	}
	arena_defer(a, put_json, root);
	if (!json_object_is_type(root, json_type_object)) {
		p->reason = "the body must be a JSON object";
		return ERR_INVALID;
	}
	p->root = root;
	return 0;
}

/* ---- validation --------------------------------------------------------- */

void
json_errors_init(struct arena *a, struct json_errors *e)
{
	e->list = json_new_array(a);
	e->count = 0;
}

void
json_errors_add(struct json_errors *e, const char *field, const char *code, const char *message)
{
	e->count++;
	if (json_object_array_length(e->list) >= LIMIT_ERRORS)
		return;
	json_object *o = json_object_new_object();
	if (o == NULL)
		return;
	json_add_str(o, "field", field);
	json_add_str(o, "code", code);
	json_add_str(o, "message", message);
	json_object_array_add(e->list, o);
}

bool
utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	while (p < end) {
		size_t len = utf8_seq(p, end);
		if (len == 0 || *p < 0x20 || *p == 0x7f)
			return false;
		p += len;
	}
	return true;
}

size_t
utf8_chars(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			c++;
	return c;
}

/* Unicode White_Space (valid UTF-8 input). */
static bool
is_unicode_space(unsigned cp)
{
	return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 ||
	       cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
	       cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

static bool
all_space(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	while (p < end) {
		size_t len = utf8_seq(p, end);
		if (len == 0)
			return false;
		unsigned cp = len == 1 ? p[0] : p[0] & (0xff >> (len + 1));
		for (size_t i = 1; i < len; i++)
			cp = (cp << 6) | (p[i] & 0x3f);
		if (!is_unicode_space(cp))
			return false;
		p += len;
	}
	return true;
}

static const char *
join_path(struct arena *a, const char *prefix, const char *name)
{
	return prefix == NULL ? name : arena_printf(a, "%s.%s", prefix, name);
}

static void validate_object(struct arena *a, json_object *obj, const struct field *fields,
                            bool create, struct json_errors *e, const char *prefix);

static void
validate_string(struct arena *a, const struct field *f, json_object *v, const char *path,
                struct json_errors *e)
{
	if (!json_object_is_type(v, json_type_string)) {
		json_errors_add(e, path, "type", "must be a string");
		return;
	}
	const char *s = json_object_get_string(v);
	size_t n = (size_t)json_object_get_string_len(v);
	if (strlen(s) != n) {
		json_errors_add(e, path, "invalid_string",
		                "must not contain \\u0000 or unpaired surrogates");
		return;
	}
	size_t chars = utf8_chars(s, n);
	if ((long long)chars < f->min) {
		json_errors_add(e, path, "too_short",
		                arena_printf(a, "must be at least %lld characters", f->min));
		return;
	}
	if (f->max > 0 && (long long)chars > f->max) {
		json_errors_add(e, path, "too_long",
		                arena_printf(a, "must be at most %lld characters", f->max));
		return;
	}
	if ((f->flags & FF_NONBLANK) && all_space(s, n)) {
		json_errors_add(e, path, "too_short", "must not be blank");
		return;
	}
	if (f->enumv != NULL) {
		bool ok = false;
		for (const char *const *ev = f->enumv; *ev != NULL; ev++)
			if (strcmp(*ev, s) == 0)
				ok = true;
		if (!ok) {
			struct buf b;
			buf_init(&b, a, 64);
			buf_puts(&b, "must be one of:");
			for (const char *const *ev = f->enumv; *ev != NULL; ev++)
				buf_printf(&b, " %s", *ev);
			json_errors_add(e, path, "invalid_enum", buf_cstr(&b));
			return;
		}
	}
	if (f->check != NULL) {
		const char *msg = f->check(s, n);
		if (msg != NULL)
			json_errors_add(e, path, "invalid_format", msg);
	}
}

static void
validate_value(struct arena *a, const struct field *f, json_object *v, bool create,
               const char *path, struct json_errors *e)
{
	if (v == NULL) {
		if (!(f->flags & FF_NULLABLE))
			json_errors_add(e, path, "type", "may not be null");
		return;
	}
	switch (f->type) {
	case FT_STRING:
		validate_string(a, f, v, path, e);
		break;
	case FT_INT: {
		if (!json_object_is_type(v, json_type_int)) {
			json_errors_add(e, path, "type", "must be an integer");
			break;
		}
		errno = 0;
		int64_t x = json_object_get_int64(v);
		if (errno != 0 || x < f->min || x > f->max)
			json_errors_add(
			        e, path, "out_of_range",
			        arena_printf(a, "must be between %lld and %lld", f->min, f->max));
		break;
	}
	case FT_BOOL:
		if (!json_object_is_type(v, json_type_boolean))
			json_errors_add(e, path, "type", "must be true or false");
		break;
	case FT_OBJECT:
		if (!json_object_is_type(v, json_type_object)) {
			json_errors_add(e, path, "type", "must be an object");
			break;
		}
		validate_object(a, v, f->sub, create, e, path);
		break;
	case FT_STRING_ARRAY: {
		if (!json_object_is_type(v, json_type_array)) {
			json_errors_add(e, path, "type", "must be an array of strings");
			break;
		}
		size_t n = json_object_array_length(v);
		if ((long long)n > f->max) {
			json_errors_add(e, path, "too_long",
			                arena_printf(a, "must have at most %lld items", f->max));
			break;
		}
		for (size_t i = 0; i < n; i++) {
			json_object *item = json_object_array_get_idx(v, i);
			const char *ipath = arena_printf(a, "%s[%zu]", path, i);
			if (item == NULL)
				json_errors_add(e, ipath, "type", "must be a string");
			else
				validate_string(a, f->sub, item, ipath, e);
		}
		break;
	}
	case FT_STRING_MAP:
		if (!json_object_is_type(v, json_type_object)) {
			json_errors_add(e, path, "type", "must be an object");
			break;
		}
		validate_object(a, v, f->sub, false, e, path);
		break;
	}
}

static const struct field *
find_field(const struct field *fields, const char *name)
{
	for (const struct field *f = fields; f != NULL && f->name != NULL; f++)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

static void
validate_object(struct arena *a, json_object *obj, const struct field *fields, bool create,
                struct json_errors *e, const char *prefix)
{
	json_object_object_foreach(obj, key, val)
	{
		const char *path = join_path(a, prefix, key);
		const struct field *f = find_field(fields, key);
		if (f == NULL) {
			json_errors_add(e, path, "unknown_field",
			                "is not a field of this resource");
			continue;
		}
		if (f->flags & FF_READ_ONLY) {
			json_errors_add(e, path, "read_only", "cannot be written");
			continue;
		}
		validate_value(a, f, val, create, path, e);
	}
	if (!create)
		return;
	for (const struct field *f = fields; f != NULL && f->name != NULL; f++)
		if ((f->flags & FF_REQUIRED) && !json_has(obj, f->name))
			json_errors_add(e, join_path(a, prefix, f->name), "required",
			                "is required");
}

int
json_validate(struct arena *a, json_object *obj, const struct field *fields, bool create,
              struct json_errors *e)
{
	validate_object(a, obj, fields, create, e, NULL);
	return e->count == 0 ? 0 : ERR_INVALID;
}

/* ---- building ----------------------------------------------------------- */

json_object *
json_get(json_object *obj, const char *key)
{
	json_object *v = NULL;
	if (obj == NULL || !json_object_object_get_ex(obj, key, &v))
		return NULL;
	return v;
}

const char *
json_get_string(json_object *obj, const char *key)
{
	json_object *v = json_get(obj, key);
	return v != NULL && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
	                                                             : NULL;
}

bool
json_has(json_object *obj, const char *key)
{
	return obj != NULL && json_object_object_get_ex(obj, key, NULL);
}

static json_object *
owned(struct arena *a, json_object *o)
{
	if (o == NULL) {
		fputs("atrium: out of memory (json), exiting\n", stderr);
		abort();
	}
	arena_defer(a, put_json, o);
	return o;
}

json_object *
json_own(struct arena *a, json_object *o)
{
	return owned(a, o);
}

json_object *
json_new_object(struct arena *a)
{
	return owned(a, json_object_new_object());
}

json_object *
json_new_array(struct arena *a)
{
	return owned(a, json_object_new_array());
}

void
json_add_str(json_object *obj, const char *key, const char *s)
{
	json_object_object_add(obj, key, s == NULL ? NULL : json_object_new_string(s));
}

void
json_add_int(json_object *obj, const char *key, int64_t v)
{
	json_object_object_add(obj, key, json_object_new_int64(v));
}

void
json_add_bool(json_object *obj, const char *key, bool v)
{
	json_object_object_add(obj, key, json_object_new_boolean(v));
}

void
json_add_take(json_object *obj, const char *key, json_object *child)
{
	json_object_object_add(obj, key, child);
}

const char *
json_render(struct arena *a, json_object *obj, size_t *len)
{
	size_t n = 0;
	const char *s = json_object_to_json_string_length(
	        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	/* json-c keeps the string inside obj; copy it so obj may go first */
	char *copy = arena_strndup(a, s, n);
	if (len != NULL)
		*len = n;
	return copy;
}

/* ---- formats ------------------------------------------------------------ */

static bool
is_label_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

const char *
check_hostname(const char *s, size_t n)
{
	if (n == 0 || n > LIMIT_HOST_MAX)
		return "must be a DNS name of at most 253 characters";
	size_t label = 0, dots = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return "must be a lowercase DNS name (labels of a-z, 0-9, -)";
			label = 0;
			dots++;
			continue;
		}
		if (!is_label_char(c) || (label == 0 && c == '-') || ++label > 63)
			return "must be a lowercase DNS name (labels of a-z, 0-9, -)";
	}
	if (label == 0 || s[n - 1] == '-' || dots == 0)
		return "must be a lowercase DNS name with at least two labels";
	return NULL;
}

const char *
check_email(const char *s, size_t n)
{
	const char *at = memchr(s, '@', n);
	if (at == NULL || at == s || memchr(at + 1, '@', n - (size_t)(at - s) - 1) != NULL)
		return "must be an email address";
	size_t local = (size_t)(at - s);
	if (local > 64)
		return "must be an email address";
	for (size_t i = 0; i < local; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c >= 0x7f || strchr("\"(),:;<>[\\]", c) != NULL)
			return "must be an email address";
	}
	if (s[0] == '.' || s[local - 1] == '.')
		return "must be an email address";
	/* the domain is checked case-insensitively as a DNS name */
	size_t dn = n - local - 1;
	if (dn == 0 || dn > LIMIT_HOST_MAX)
		return "must be an email address";
	char dom[LIMIT_HOST_MAX + 1];
	for (size_t i = 0; i < dn; i++)
		dom[i] = (char)tolower((unsigned char)at[1 + i]);
	return check_hostname(dom, dn) == NULL ? NULL : "must be an email address";
}

const char *
check_http_url(const char *s, size_t n)
{
	size_t skip;
	if (n > 8 && strncmp(s, "https://", 8) == 0)
		skip = 8;
	else if (n > 7 && strncmp(s, "http://", 7) == 0)
		skip = 7;
	else
		return "must be an http(s) URL";
	if (s[skip] == '/' || s[skip] == '?' || s[skip] == '#')
		return "must be an http(s) URL with a host";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c >= 0x7f || strchr("\"'<>\\^`{|}", c) != NULL)
			return "must be an http(s) URL without spaces or quotes (percent-encode "
			       "them)";
	}
	return NULL;
}

const char *
check_color(const char *s, size_t n)
{
	if (n != 7 || s[0] != '#')
		return "must be a color #rrggbb";
	for (size_t i = 1; i < 7; i++)
		if (!isxdigit((unsigned char)s[i]))
			return "must be a color #rrggbb";
	return NULL;
}

const char *
check_locale(const char *s, size_t n)
{
	/* BCP 47 shape: a 2-3 letter language, then -subtags of 2-8 alphanumerics */
	size_t i = 0;
	while (i < n && s[i] >= 'a' && s[i] <= 'z')
		i++;
	if (i < 2 || i > 3)
		return "must be a language tag such as en or pt-BR";
	while (i < n) {
		if (s[i] != '-')
			return "must be a language tag such as en or pt-BR";
		size_t start = ++i;
		while (i < n && isalnum((unsigned char)s[i]))
			i++;
		if (i - start < 2 || i - start > 8)
			return "must be a language tag such as en or pt-BR";
	}
	return NULL;
}

const char *
check_content_type(const char *s, size_t n)
{
	static const char tchar[] = "abcdefghijklmnopqrstuvwxyz0123456789!#$&^_.+-";
	size_t slash = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '/' && slash == 0 && i > 0) {
			slash = i;
			continue;
		}
		if (s[i] == '\0' || strchr(tchar, s[i]) == NULL)
			return "must be a lowercase media type such as image/png";
	}
	if (slash == 0 || slash == n - 1)
		return "must be a lowercase media type such as image/png";
	return NULL;
}

static bool
digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int
num(const char *s, size_t n)
{
	int v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

const char *
check_date(const char *s, size_t n)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (n != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4) || !digits(s + 5, 2) ||
	    !digits(s + 8, 2))
		return "must be a date YYYY-MM-DD";
	int y = num(s, 4), m = num(s + 5, 2), d = num(s + 8, 2);
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (y < 1 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] || (m == 2 && d == 29 && !leap))
		return "must be a real calendar date YYYY-MM-DD";
	return NULL;
}

const char *
check_timestamp(const char *s, size_t n)
{
	/* YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM) */
	if (n < 20 || check_date(s, 10) != NULL || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
	    s[16] != ':' || !digits(s + 11, 2) || !digits(s + 14, 2) || !digits(s + 17, 2) ||
	    num(s + 11, 2) > 23 || num(s + 14, 2) > 59 || num(s + 17, 2) > 60)
		return "must be an RFC 3339 date-time such as 2026-12-04T15:04:05Z";
	size_t i = 19;
	if (i < n && s[i] == '.') {
		size_t start = ++i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == start || i - start > 9)
			return "must be an RFC 3339 date-time such as 2026-12-04T15:04:05Z";
	}
	if (i + 1 == n && (s[i] == 'Z' || s[i] == 'z'))
		return NULL;
	if (i + 6 == n && (s[i] == '+' || s[i] == '-') && digits(s + i + 1, 2) && s[i + 3] == ':' &&
	    digits(s + i + 4, 2) && num(s + i + 1, 2) <= 23 && num(s + i + 4, 2) <= 59)
		return NULL;
	return "must be an RFC 3339 date-time such as 2026-12-04T15:04:05Z";
}

const char *
check_e164(const char *s, size_t n)
{
	if (n < 8 || n > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9' || !digits(s + 1, n - 1))
		return "must be an E.164 phone number such as +15551234567";
	return NULL;
}

const char *
check_uuid(const char *s, size_t n)
{
	if (n != 36)
		return "must be a UUID";
	for (size_t i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return "must be a UUID";
		} else if (!isxdigit((unsigned char)s[i])) {
			return "must be a UUID";
		}
	}
	return NULL;
}

const char *
check_time_zone(const char *s, size_t n)
{
	/* IANA names: Area/Location, letters, digits, '_', '-', '+'; the name
	 * must exist in the system's zoneinfo, which PostgreSQL also uses */
	static const char msg[] = "must be an IANA time zone such as Europe/Paris or UTC";
	if (n == 0 || n > 64 || s[0] == '/' || s[0] == '.')
		return msg;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!(isalnum(c) || c == '/' || c == '_' || c == '-' || c == '+'))
			return msg;
		if (c == '/' && (i + 1 == n || s[i + 1] == '/' || s[i + 1] == '.'))
			return msg;
	}
	if (strcmp(s, "UTC") == 0)
		return NULL;
	/* zoneinfo also holds files that are not zone names */
	if (strncmp(s, "posix/", 6) == 0 || strncmp(s, "right/", 6) == 0 ||
	    strcmp(s, "localtime") == 0 || strcmp(s, "posixrules") == 0 ||
	    strcmp(s, "Factory") == 0)
		return msg;
	char path[128];
	int w = snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", s);
	struct stat st;
	if (w < 0 || (size_t)w >= sizeof(path) || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return msg;
	return NULL;
}
