/*
 * Unit tests: the WhatsApp Cloud API request and the meaning of its answers.
 *
 * whatsapp.o is not part of LIB_OBJS (it belongs to atrium-notifier only),
 * so its source is compiled into this test.
 */
#include "../../fcgi-app/whatsapp.c"
#include "json.h"
#include "tap.h"

static const struct whatsapp_values vals = {
        .recipient_name = "Bob",
        .project_name = "Website relaunch",
        .message_count = "3",
        .link = "https://acme.portal.localhost:8443/projects/p1",
        .deliverable_title = "Homepage design",
        .decision = "changes_requested",
        .by_name = "Ann",
        .milestone_title = "Launch",
};

/* The params of tmpl joined by '|', or the error. */
static const char *
params_of(struct arena *a, const char *tmpl, const struct whatsapp_values *v)
{
	const char *p[WHATSAPP_PARAMS_MAX], *missing = NULL;
	size_t n = 99;
	int rc = whatsapp_params(tmpl, v, p, &n, &missing);
	if (rc == ERR_NOT_FOUND)
		return "not found";
	if (rc != 0)
		return arena_printf(a, "missing %s", missing != NULL ? missing : "?");
	struct buf b;
	buf_init(&b, a, 64);
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, "%s%s", i > 0 ? "|" : "", p[i]);
	return buf_cstr(&b);
}

static void
test_params(struct arena *a)
{
	is_str(params_of(a, "message_digest", &vals),
	       "Bob|Website relaunch|3|https://acme.portal.localhost:8443/projects/p1",
	       "message_digest: recipient, project, count, link");
	is_str(params_of(a, "deliverable_delivered", &vals),
	       "Bob|Website relaunch|Homepage "
	       "design|https://acme.portal.localhost:8443/projects/p1",
	       "deliverable_delivered: recipient, project, deliverable, link");
	is_str(params_of(a, "deliverable_decision", &vals),
	       "Bob|Website relaunch|Homepage design|changes requested|Ann",
	       "deliverable_decision: recipient, project, deliverable, decision in words, by");
	struct whatsapp_values v = vals;
	v.decision = "approved";
	is_str(params_of(a, "deliverable_decision", &v),
	       "Bob|Website relaunch|Homepage design|approved|Ann", "approved");
	v.decision = "maybe";
	is_str(params_of(a, "deliverable_decision", &v), "missing decision",
	       "an unknown decision is refused");
	is_str(params_of(a, "milestone_completed", &vals),
	       "Bob|Website relaunch|Launch|https://acme.portal.localhost:8443/projects/p1",
	       "milestone_completed: recipient, project, milestone, link");
	is_str(params_of(a, "invite", &vals), "not found", "invites have no WhatsApp form");
	is_str(params_of(a, "password_reset", &vals), "not found", "nor resets");
	v = vals;
	v.link = NULL;
	is_str(params_of(a, "milestone_completed", &v), "missing link", "a missing link named");
	v = vals;
	v.recipient_name = "";
	is_str(params_of(a, "message_digest", &v), "missing recipient name",
	       "an empty value is missing");
	v = vals;
	v.message_count = NULL;
	is_str(params_of(a, "message_digest", &v), "missing messages", "a digest needs its count");
}

static void
test_checks(void)
{
	ok(whatsapp_phone_valid("+4915112345678"), "E.164 number");
	ok(whatsapp_phone_valid("+12025550123"), "US number");
	static const char *const bad_phones[] = {
	        "",
	        "+",
	        "4915112345678",
	        "+04915112345678",
	        "+49 151 12345678",
	        "+1234567",
	        "+1234567890123456",
	        "+49151123456x8",
	        "++4915112345678",
	        "+4915112345678\n",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad_phones); i++)
		ok(!whatsapp_phone_valid(bad_phones[i]), "refused number %zu", i);
	ok(!whatsapp_phone_valid(NULL), "NULL number");
	ok(whatsapp_template_name_valid("atrium_digest_v2"), "template name");
	ok(!whatsapp_template_name_valid("") && !whatsapp_template_name_valid("Digest") &&
	           !whatsapp_template_name_valid("a b") && !whatsapp_template_name_valid("a\"b"),
	   "bad template names");
	ok(whatsapp_phone_number_id_valid("106540352242922"), "phone number id");
	ok(!whatsapp_phone_number_id_valid("") && !whatsapp_phone_number_id_valid("12/../34") &&
	           !whatsapp_phone_number_id_valid("12?x=1"),
	   "a phone number id is digits only (it is a path segment)");
	ok(whatsapp_version_valid("v21.0") && !whatsapp_version_valid("v21.0/x") &&
	           !whatsapp_version_valid(""),
	   "versions");
	ok(whatsapp_base_valid("https://graph.facebook.com") &&
	           whatsapp_base_valid("http://127.0.0.1:8080") &&
	           whatsapp_base_valid("http://127.0.0.1:8080/prefix/"),
	   "bases");
	ok(!whatsapp_base_valid("ftp://x") && !whatsapp_base_valid("https://") &&
	           !whatsapp_base_valid("https://a b") &&
	           !whatsapp_base_valid("https://user:pw@host") &&
	           !whatsapp_base_valid("https://host/?q") && !whatsapp_base_valid("https:///x"),
	   "bad bases");
}

static void
test_language(void)
{
	char out[WHATSAPP_LANGUAGE_MAX];
	whatsapp_language("pt-BR", "de", out, sizeof(out));
	is_str(out, "pt_BR", "BCP 47 pt-BR becomes pt_BR");
	whatsapp_language("de", "fr", out, sizeof(out));
	is_str(out, "de", "the recipient's locale first");
	whatsapp_language(NULL, "fr", out, sizeof(out));
	is_str(out, "fr", "then the tenant's default");
	whatsapp_language("not a locale", "en_US", out, sizeof(out));
	is_str(out, "en_US", "an unusable locale is skipped");
	whatsapp_language(NULL, NULL, out, sizeof(out));
	is_str(out, "en", "then en");
	whatsapp_language("x", "\"}", out, sizeof(out));
	is_str(out, "en", "nothing odd passes");
}

static json_object *
parse(const char *s)
{
	return json_tokener_parse(s);
}

/* A path step that indexes an array. */
static size_t
index_of(const char *s)
{
	return (size_t)strtoul(s, NULL, 10);
}

static const char *
path_str(json_object *o, const char *const *path, size_t n)
{
	for (size_t i = 0; i < n && o != NULL; i++) {
		json_object *next = NULL;
		if (json_object_is_type(o, json_type_array))
			next = json_object_array_get_idx(o, index_of(path[i]));
		else if (!json_object_object_get_ex(o, path[i], &next))
			return NULL;
		o = next;
	}
	return o != NULL && json_object_is_type(o, json_type_string) ? json_object_get_string(o)
	                                                             : NULL;
}

static void
test_body(struct arena *a)
{
	const char *params[] = {"Bob\r\nSmith", "Web\tsite     relaunch ", "3",
	                        "https://acme.portal.localhost:8443/projects/p1"};
	struct whatsapp_message m = {
	        .to = "+4915112345678",
	        .template_name = "atrium_digest",
	        .language = "pt_BR",
	        .params = params,
	        .n_params = 4,
	};
	char *body = NULL;
	size_t len = 0;
	ok(whatsapp_body(a, &m, &body, &len) == 0 && len == strlen(body), "body built");
	json_object *o = parse(body);
	ok(o != NULL, "it is JSON: %s", body);
	const char *const mp[] = {"messaging_product"};
	is_str(path_str(o, mp, 1), "whatsapp", "messaging_product");
	const char *const rt[] = {"recipient_type"};
	is_str(path_str(o, rt, 1), "individual", "recipient_type");
	const char *const to[] = {"to"};
	is_str(path_str(o, to, 1), "4915112345678", "to: the number without its +");
	const char *const ty[] = {"type"};
	is_str(path_str(o, ty, 1), "template", "type template");
	const char *const nm[] = {"template", "name"};
	is_str(path_str(o, nm, 2), "atrium_digest", "template name");
	const char *const lc[] = {"template", "language", "code"};
	is_str(path_str(o, lc, 3), "pt_BR", "language code");
	const char *const ct[] = {"template", "components", "0", "type"};
	is_str(path_str(o, ct, 4), "body", "one body component");
	static const char *const want[] = {"Bob Smith", "Web site relaunch", "3",
	                                   "https://acme.portal.localhost:8443/projects/p1"};
	for (size_t i = 0; i < 4; i++) {
		char idx[4];
		snprintf(idx, sizeof(idx), "%zu", i);
		const char *const pt[] = {"template", "components", "0", "parameters", idx, "type"};
		const char *const px[] = {"template", "components", "0", "parameters", idx, "text"};
		ok(path_str(o, pt, 6) != NULL && strcmp(path_str(o, pt, 6), "text") == 0,
		   "parameter %zu is text", i);
		is_str(path_str(o, px, 6), want[i], "parameter %zu cleaned as the API wants it", i);
	}
	json_object *comps = NULL, *tmpl = NULL, *plist = NULL;
	json_object_object_get_ex(o, "template", &tmpl);
	json_object_object_get_ex(tmpl, "components", &comps);
	json_object_object_get_ex(json_object_array_get_idx(comps, 0), "parameters", &plist);
	ok(plist != NULL && json_object_array_length(plist) == 4, "exactly 4 parameters");
	ok(strstr(body, "\\/") == NULL, "slashes are not escaped");
	json_object_put(o);

	const char *quoted[] = {"\"}],\"to\":\"1\"", "x"};
	m.params = quoted;
	m.n_params = 2;
	ok(whatsapp_body(a, &m, &body, &len) == 0, "quotes in a value");
	o = parse(body);
	const char *const p0[] = {"template", "components", "0", "parameters", "0", "text"};
	is_str(path_str(o, p0, 6), "\"}],\"to\":\"1\"", "stay inside their string");
	is_str(path_str(o, to, 1), "4915112345678", "and cannot change the recipient");
	json_object_put(o);

	char longer[1200];
	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	/* a 3-byte character across the cut */
	memcpy(longer + 298, "\xe2\x82\xac", 3);
	const char *lp[] = {longer};
	m.params = lp;
	m.n_params = 1;
	ok(whatsapp_body(a, &m, &body, &len) == 0, "a long value");
	o = parse(body);
	const char *t = path_str(o, p0, 6);
	ok(t != NULL && utf8_chars(t, strlen(t)) == WHATSAPP_PARAM_CHARS &&
	           utf8_valid(t, strlen(t)),
	   "cut to %d code points, never inside a character", WHATSAPP_PARAM_CHARS);
	json_object_put(o);

	const char *blank[] = {" \r\n\t "};
	m.params = blank;
	ok(whatsapp_body(a, &m, &body, &len) == ERR_INVALID, "an empty parameter is refused");
	m.params = params;
	m.n_params = 4;
	m.to = "4915112345678";
	ok(whatsapp_body(a, &m, &body, &len) == ERR_INVALID, "a number without + is refused");
	m.to = "+4915112345678";
	m.template_name = "bad name";
	ok(whatsapp_body(a, &m, &body, &len) == ERR_INVALID, "a bad template name is refused");
	m.template_name = "atrium_digest";
	m.language = "\"en";
	ok(whatsapp_body(a, &m, &body, &len) == ERR_INVALID, "a bad language is refused");
}

static void
test_url(struct arena *a)
{
	is_str(whatsapp_url(a, "https://graph.facebook.com", "v21.0", "106540352242922"),
	       "https://graph.facebook.com/v21.0/106540352242922/messages", "URL");
	is_str(whatsapp_url(a, "http://127.0.0.1:9/", "v21.0", "1"),
	       "http://127.0.0.1:9/v21.0/1/messages", "a trailing slash of the base is dropped");
	ok(whatsapp_url(a, "https://graph.facebook.com", "v21.0", "1/../2") == NULL,
	   "no path in the phone number id");
	ok(whatsapp_url(a, "https://graph.facebook.com", "v21.0?", "1") == NULL, "bad version");
	ok(whatsapp_url(a, "graph.facebook.com", "v21.0", "1") == NULL, "base without scheme");
}

static struct whatsapp_result
classify_str(long status, const char *body)
{
	struct whatsapp_result r;
	whatsapp_classify(status, body, body != NULL ? strlen(body) : 0, &r);
	return r;
}

static void
test_classify(void)
{
	struct whatsapp_result r = classify_str(
	        200,
	        "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"4915112345678\","
	        "\"wa_id\":\"4915112345678\"}],\"messages\":[{\"id\":\"wamid.HBgL\"}]}");
	ok(r.status == WHATSAPP_SENT && r.http_status == 200 && r.error[0] == '\0', "200 sent");
	is_str(r.message_id, "wamid.HBgL", "the message id is read");
	r = classify_str(201, "not json");
	ok(r.status == WHATSAPP_SENT && r.message_id[0] == '\0', "any 2xx is sent");
	r = classify_str(429,
	                 "{\"error\":{\"message\":\"(#130429) Rate limit hit\",\"code\":130429}}");
	ok(r.status == WHATSAPP_TEMPORARY, "429 is retried");
	is_str(r.error, "whatsapp 429: (#130429) Rate limit hit", "429 error");
	r = classify_str(500, "{\"error\":{\"message\":\"Internal\"}}");
	ok(r.status == WHATSAPP_TEMPORARY, "500 retried");
	is_str(r.error, "whatsapp 500: Internal", "500 error");
	r = classify_str(503, "<html>Service Unavailable</html>");
	ok(r.status == WHATSAPP_TEMPORARY, "503 with HTML retried");
	is_str(r.error, "whatsapp 503: no error message in the answer", "503 error without JSON");
	r = classify_str(400, "{\"error\":{\"message\":\"(#132001) Template name does not exist "
	                      "in the translation\",\"type\":\"OAuthException\",\"code\":132001}}");
	ok(r.status == WHATSAPP_PERMANENT, "400 is final");
	is_str(r.error, "whatsapp 400: (#132001) Template name does not exist in the translation",
	       "400: error.message");
	r = classify_str(401, "{\"error\":{\"message\":\"Invalid OAuth access token.\"}}");
	ok(r.status == WHATSAPP_PERMANENT, "401 is final");
	r = classify_str(404, "");
	ok(r.status == WHATSAPP_PERMANENT && strcmp(r.error, "whatsapp 404: no error message in "
	                                                     "the answer") == 0,
	   "404 with no body");
	r = classify_str(302, "");
	ok(r.status == WHATSAPP_TEMPORARY, "a redirect (not followed) is retried");
	r = classify_str(400, "{\"error\":{\"message\":\"line1\\nline2\\u0000x\"}}");
	ok(r.status == WHATSAPP_PERMANENT && strchr(r.error, '\n') == NULL,
	   "control characters in the message become spaces: %s", r.error);
	r = classify_str(400, "{\"error\":\"just a string\"}");
	is_str(r.error, "whatsapp 400: no error message in the answer", "an odd error shape");

	char big[4096];
	struct buf b;
	struct arena *a = arena_new(8192);
	buf_init(&b, a, 4096);
	buf_puts(&b, "{\"error\":{\"message\":\"");
	for (int i = 0; i < 300; i++)
		buf_puts(&b, "\xc3\xa9"); /* é, two bytes */
	buf_puts(&b, "\"}}");
	snprintf(big, sizeof(big), "%s", buf_cstr(&b));
	r = classify_str(400, big);
	const char *msg = r.error + strlen("whatsapp 400: ");
	ok(strncmp(r.error, "whatsapp 400: ", 14) == 0 && utf8_valid(msg, strlen(msg)) &&
	           utf8_chars(msg, strlen(msg)) == WHATSAPP_ERROR_CHARS,
	   "the message is cut to %d code points, whole characters", WHATSAPP_ERROR_CHARS);
	arena_free(a);

	/* deeply nested JSON is not parsed (and does not crash) */
	char deep[2100];
	memset(deep, '[', 1000);
	memset(deep + 1000, ']', 1000);
	deep[2000] = '\0';
	r = classify_str(400, deep);
	ok(r.status == WHATSAPP_PERMANENT, "deep JSON: still classified by the status");
}

static void
test_send(void)
{
	/* nothing listens on port 9 of the loopback: no answer, try later */
	struct whatsapp_server s = {.connect_timeout_s = 2, .timeout_s = 5};
	struct whatsapp_result r;
	whatsapp_send(&s, "http://127.0.0.1:9/v21.0/1/messages", "secret-token", "{}", 2, &r);
	ok(r.status == WHATSAPP_TEMPORARY && r.http_status == 0, "no answer is temporary");
	ok(strncmp(r.error, "whatsapp: ", 10) == 0 && strstr(r.error, "secret-token") == NULL,
	   "the error says why, never the token: %s", r.error);
	whatsapp_send(&s, "http://127.0.0.1:9/x", "tok\r\nX-Evil: 1", "{}", 2, &r);
	ok(r.status == WHATSAPP_PERMANENT, "a token with a line break is never sent");
}

int
main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct arena *a = arena_new(64 * 1024);
	test_params(a);
	test_checks();
	test_language();
	test_body(a);
	test_url(a);
	test_classify();
	test_send();
	arena_free(a);
	curl_global_cleanup();
	return done_testing();
}
