/*
 * json.h - strict JSON input and field-table validation on top of json-c.
 *
 * json-c is lenient (single quotes, duplicate keys, lone surrogates become
 * U+FFFD), so bodies first pass json_scan(), a strict RFC 8259 grammar check
 * that also refuses duplicate keys and excessive nesting.  Lone surrogate
 * escapes are rewritten to \u0000 in the copy handed to json-c so that the
 * validator reports them, with their field, as invalid_string like a real
 * \u0000.
 */
#ifndef ATRIUM_JSON_H
#define ATRIUM_JSON_H

#include <json-c/json.h>
#include <stdbool.h>

#include "arena.h"
#include "common.h"

/* Result of json_parse_body(): on failure reason names the problem. */
struct json_parse {
	json_object *root; /* owned by the arena (released on reset) */
	const char *reason;
};

/*
 * Checks body (n bytes) against the strict grammar; returns 0 or ERR_INVALID
 * with *reason set to a static message.  Writes a copy with lone surrogates
 * neutralised to *out (arena memory, NUL-terminated) when out is not NULL.
 */
int json_scan(struct arena *a, const char *body, size_t n, int max_depth, char **out,
              const char **reason);

/*
 * Parses a request body that must be a JSON object.  Returns 0 with
 * p->root set, or ERR_INVALID with p->reason (-> 400 bad_json).
 */
int json_parse_body(struct arena *a, const char *body, size_t n, struct json_parse *p);

/* Field types of a validation table. */
enum field_type {
	FT_STRING,
	FT_INT,
	FT_BOOL,
	FT_OBJECT,       /* nested table in .sub */
	FT_STRING_ARRAY, /* array of at most .max strings, each checked by .sub[0] */
	FT_STRING_MAP,   /* object whose keys are listed in .sub, values strings */
};

enum field_flags {
	FF_REQUIRED = 1 << 0,  /* must be present on create */
	FF_NULLABLE = 1 << 1,  /* null clears it */
	FF_READ_ONLY = 1 << 2, /* exists but may not be written: 422 read_only */
	FF_NONBLANK = 1 << 3,  /* a string made only of whitespace is invalid */
};

/* A format check returns NULL when s is acceptable, else a message. */
typedef const char *(*field_check_fn)(const char *s, size_t n);

struct field {
	const char *name;
	enum field_type type;
	unsigned flags;
	long long min; /* chars for strings, value for ints, items for arrays */
	long long max;
	field_check_fn check;
	const char *const *enumv; /* NULL-terminated allowed values */
	const struct field *sub;  /* FT_OBJECT / FT_STRING_MAP members; ends with name NULL */
};

/* The end of a field table, and a field that exists but cannot be written
 * (a write is 422 read_only). */
#define FIELD_END                                                                                  \
	{                                                                                          \
		NULL, 0, 0, 0, 0, NULL, NULL, NULL                                                 \
	}
#define FIELD_READ_ONLY(name)                                                                      \
	{                                                                                          \
		name, FT_STRING, FF_READ_ONLY, 0, 0, NULL, NULL, NULL                              \
	}

/* Collected validation errors -> one 422 answer. */
struct json_errors {
	json_object *list; /* array of {field, code, message}; owned by arena */
	int count;
};

void json_errors_init(struct arena *a, struct json_errors *e);
void json_errors_add(struct json_errors *e, const char *field, const char *code,
                     const char *message);

/*
 * Validates obj against fields.  create=true enforces FF_REQUIRED.  Every
 * problem is added to e (field paths joined with '.').  Returns 0 when e is
 * still empty.
 */
int json_validate(struct arena *a, json_object *obj, const struct field *fields, bool create,
                  struct json_errors *e);

/* True when s is valid UTF-8 without control characters. */
bool utf8_valid(const char *s, size_t n);
/* Counts Unicode code points of valid UTF-8. */
size_t utf8_chars(const char *s, size_t n);

/* Borrowed member lookups; NULL when absent. */
json_object *json_get(json_object *obj, const char *key);
/* The string member key; NULL when absent, null or not a string. */
const char *json_get_string(json_object *obj, const char *key);
/* True when key is present (even as null). */
bool json_has(json_object *obj, const char *key);

/* New json-c objects owned by the arena (put on reset). */
json_object *json_new_object(struct arena *a);
json_object *json_new_array(struct arena *a);
/* Hands an unowned json-c object to the arena; returns it. */
json_object *json_own(struct arena *a, json_object *o);
/* Adds s (or null when s is NULL) under key; the value is owned by obj. */
void json_add_str(json_object *obj, const char *key, const char *s);
void json_add_int(json_object *obj, const char *key, int64_t v);
void json_add_bool(json_object *obj, const char *key, bool v);
/* Adds an owned child (not arena-registered) under key. */
void json_add_take(json_object *obj, const char *key, json_object *child);
/* Serializes compactly; the string lives until the arena resets. */
const char *json_render(struct arena *a, json_object *obj, size_t *len);

/* Common format checks. */
const char *check_email(const char *s, size_t n);
const char *check_http_url(const char *s, size_t n);
const char *check_color(const char *s, size_t n);
const char *check_locale(const char *s, size_t n);
const char *check_hostname(const char *s, size_t n);
const char *check_content_type(const char *s, size_t n);
const char *check_date(const char *s, size_t n); /* YYYY-MM-DD, a real day */
const char *check_e164(const char *s, size_t n); /* +15551234567 */
const char *check_uuid(const char *s, size_t n);
const char *check_time_zone(const char *s, size_t n); /* an IANA name known here */
const char *check_timestamp(const char *s, size_t n); /* RFC 3339 date-time */

#endif
