/* Unit tests: strict scan, parse, field validation, formats. */
#include "json.h"
#include "tap.h"

static const char *
scan(struct arena *a, const char *s)
{
	const char *reason = NULL;
	char *copy = NULL;
	return json_scan(a, s, strlen(s), 32, &copy, &reason) == 0 ? "ok" : reason;
}

static const char *enum_status[] = {"active", "on_hold", NULL};
static const struct field sub[] = {
        {"primary", FT_STRING, 0, 7, 7, check_color, NULL, NULL},
        {NULL, 0, 0, 0, 0, NULL, NULL, NULL},
};
static const struct field items[] = {
        {"item", FT_STRING, 0, 1, 5, NULL, NULL, NULL},
        {NULL, 0, 0, 0, 0, NULL, NULL, NULL},
};
static const struct field fields[] = {
        {"name", FT_STRING, FF_REQUIRED | FF_NONBLANK, 1, 5, NULL, NULL, NULL},
        {"note", FT_STRING, FF_NULLABLE, 0, 10, NULL, NULL, NULL},
        {"status", FT_STRING, 0, 1, 20, NULL, enum_status, NULL},
        {"size", FT_INT, 0, 1, 100, NULL, NULL, NULL},
        {"flag", FT_BOOL, 0, 0, 0, NULL, NULL, NULL},
        {"colors", FT_OBJECT, 0, 0, 0, NULL, NULL, sub},
        {"tags", FT_STRING_ARRAY, 0, 0, 2, NULL, NULL, items},
        {"id", FT_STRING, FF_READ_ONLY, 0, 0, NULL, NULL, NULL},
        {NULL, 0, 0, 0, 0, NULL, NULL, NULL},
};

/* Returns "field:code" of the first error, or "ok". */
static const char *
validate(struct arena *a, const char *body, bool create)
{
	struct json_parse p;
	if (json_parse_body(a, body, strlen(body), &p) != 0)
		return arena_printf(a, "bad:%s", p.reason);
	struct json_errors e;
	json_errors_init(a, &e);
	if (json_validate(a, p.root, fields, create, &e) == 0)
		return "ok";
	json_object *first = json_object_array_get_idx(e.list, 0);
	return arena_printf(a, "%s:%s", json_object_get_string(json_get(first, "field")),
	                    json_object_get_string(json_get(first, "code")));
}

int
main(void)
{
	struct arena *a = arena_new(8192);
	is_str(scan(a, "{\"a\":[1,2.5,-3e2,true,false,null,\"x\"]}"), "ok", "valid document");
	is_str(scan(a, ""), "empty body", "empty");
	is_str(scan(a, "   "), "empty body", "blank");
	is_str(scan(a, "{\"a\":1} x"), "trailing characters after the JSON value", "trailing");
	is_str(scan(a, "{\"a\":1,\"a\":2}"), "duplicate member name", "duplicate keys");
	is_str(scan(a, "{\"a\":{\"b\":1},\"b\":{\"b\":2}}"), "ok", "same key in sibling objects");
	is_str(scan(a, "{'a':1}"), "expected a member name", "single quotes");
	is_str(scan(a, "{\"a\":1,}"), "expected a member name", "trailing comma");
	is_str(scan(a, "{\"a\":01}"), "expected ',' or '}'", "leading zero");
	is_str(scan(a, "{\"a\":\"\xff\"}"), "invalid UTF-8", "invalid UTF-8");
	is_str(scan(a, "{\"a\":\"\xc0\xaf\"}"), "invalid UTF-8", "overlong UTF-8");
	is_str(scan(a, "{\"a\":\"\xed\xa0\x80\"}"), "invalid UTF-8", "UTF-8 encoded surrogate");
	is_str(scan(a, "{\"a\":\"x\ny\"}"), "control character in string", "raw newline");
	is_str(scan(a, "{\"a\":\"\\x\"}"), "bad escape in string", "bad escape");
	is_str(scan(a, "{\"a\":\"\\u12\"}"), "bad \\u escape", "short \\u");
	is_str(scan(a, "{\"a\":NaN}"), "unexpected character", "NaN");
	is_str(scan(a, "{\"a\":tru}"), "unexpected token", "bad literal");

	char deep[200];
	memset(deep, '[', 33);
	memset(deep + 33, ']', 33);
	deep[66] = '\0';
	is_str(scan(a, deep), "nested too deeply", "33 levels refused");
	deep[32] = ']';
	memset(deep, '[', 32);
	memset(deep + 32, ']', 32);
	deep[64] = '\0';
	is_str(scan(a, deep), "ok", "32 levels accepted");

	struct json_parse p;
	ok(json_parse_body(a, "[1]", 3, &p) != 0, "top level array refused");
	is_str(p.reason, "the body must be a JSON object", "reason");
	ok(json_parse_body(a, "{\"a\":\"\\ud83d\\ude00\"}", 20, &p) == 0, "surrogate pair ok");
	is_str(json_object_get_string(json_get(p.root, "a")), "\xf0\x9f\x98\x80", "pair decoded");

	is_str(validate(a, "{\"name\":\"abc\"}", true), "ok", "minimal create");
	is_str(validate(a, "{}", true), "name:required", "required");
	is_str(validate(a, "{}", false), "ok", "patch needs nothing");
	is_str(validate(a, "{\"name\":\"   \"}", true), "name:too_short", "blank");
	is_str(validate(a, "{\"name\":\"\"}", true), "name:too_short", "empty");
	is_str(validate(a, "{\"name\":\"abcdef\"}", true), "name:too_long", "too long");
	is_str(validate(a, "{\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}", true), "ok",
	       "length counts code points");
	is_str(validate(a, "{\"name\":5}", true), "name:type", "wrong type");
	is_str(validate(a, "{\"name\":null}", true), "name:type", "null on non-nullable");
	is_str(validate(a, "{\"name\":\"a\",\"note\":null}", true), "ok", "null on nullable");
	is_str(validate(a, "{\"name\":\"a\\u0000b\"}", true), "name:invalid_string", "NUL");
	is_str(validate(a, "{\"name\":\"a\\ud800\"}", true), "name:invalid_string",
	       "lone high surrogate");
	is_str(validate(a, "{\"name\":\"\\udc00\"}", true), "name:invalid_string",
	       "lone low surrogate");
	is_str(validate(a, "{\"name\":\"a\",\"status\":\"gone\"}", true), "status:invalid_enum",
	       "enum");
	is_str(validate(a, "{\"name\":\"a\",\"size\":0}", true), "size:out_of_range", "range low");
	is_str(validate(a, "{\"name\":\"a\",\"size\":1.5}", true), "size:type", "float for int");
	is_str(validate(a, "{\"name\":\"a\",\"size\":99999999999999999999}", true),
	       "size:out_of_range", "huge int");
	is_str(validate(a, "{\"name\":\"a\",\"flag\":\"true\"}", true), "flag:type", "bool");
	is_str(validate(a, "{\"name\":\"a\",\"bogus\":1}", true), "bogus:unknown_field",
	       "unknown field");
	is_str(validate(a, "{\"name\":\"a\",\"id\":\"x\"}", true), "id:read_only", "read only");
	is_str(validate(a, "{\"name\":\"a\",\"colors\":{\"primary\":\"#12345g\"}}", true),
	       "colors.primary:invalid_format", "nested path");
	is_str(validate(a, "{\"name\":\"a\",\"colors\":{\"x\":1}}", true), "colors.x:unknown_field",
	       "nested unknown");
	is_str(validate(a, "{\"name\":\"a\",\"tags\":[\"a\",\"b\",\"c\"]}", true), "tags:too_long",
	       "array count");
	is_str(validate(a, "{\"name\":\"a\",\"tags\":[\"a\",7]}", true), "tags[1]:type",
	       "array item type");

	ok(check_email("a.b+c@example.com", 17) == NULL, "email ok");
	ok(check_email("a@b", 3) != NULL, "email needs a dotted domain");
	ok(check_email("a b@example.com", 15) != NULL, "email space");
	ok(check_email("@example.com", 12) != NULL, "email empty local");
	ok(check_email("a@@example.com", 14) != NULL, "email two @");
	ok(check_hostname("acme.portal.localhost", 21) == NULL, "host ok");
	ok(check_hostname("Acme.com", 8) != NULL, "host upper case");
	ok(check_hostname("-a.com", 6) != NULL, "host leading dash");
	ok(check_hostname("a..com", 6) != NULL, "host empty label");
	ok(check_hostname("localhost", 9) != NULL, "host single label");
	ok(check_http_url("https://cdn.example.com/logo.png", 32) == NULL, "url ok");
	ok(check_http_url("javascript:alert(1)", 19) != NULL, "url scheme");
	ok(check_http_url("https://x/\"onload", 17) != NULL, "url quote");
	ok(check_color("#A0b1C2", 7) == NULL, "color");
	ok(check_color("#abc", 4) != NULL, "short color");
	ok(check_locale("pt-BR", 5) == NULL, "locale");
	ok(check_locale("english", 7) != NULL, "locale shape");
	ok(check_content_type("image/svg+xml", 13) == NULL, "content type");
	ok(check_content_type("text/html; charset=x", 20) != NULL, "content type params");
	ok(utf8_chars("\xe2\x82\xac"
	              "a",
	              4) == 2,
	   "utf8_chars");
	arena_free(a);
	return done_testing();
}
