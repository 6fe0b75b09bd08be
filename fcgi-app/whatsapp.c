/*
 * whatsapp.c - WhatsApp Cloud API template messages (see whatsapp.h).
 */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <openssl/crypto.h>

#include "common.h"
#include "whatsapp.h"

/* ------------------------------------------------------------ checks */

static bool
all_of(const char *s, size_t min, size_t max, bool (*ok)(unsigned char c))
{
	size_t n = strnlen(s, max + 1);
	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!ok((unsigned char)s[i]))
			return false;
	return true;
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_template_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || is_digit(c) || c == '_';
}

static bool
is_version_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '.' ||
	       c == '_' || c == '-';
}

bool
whatsapp_phone_valid(const char *phone)
{
	return phone != NULL && phone[0] == '+' && phone[1] >= '1' && phone[1] <= '9' &&
	       all_of(phone + 1, 8, 15, is_digit);
}

bool
whatsapp_template_name_valid(const char *name)
{
	return name != NULL && all_of(name, 1, 512, is_template_char);
}

bool
whatsapp_phone_number_id_valid(const char *id)
{
	return id != NULL && all_of(id, 1, 32, is_digit);
}

bool
whatsapp_version_valid(const char *version)
{
	return version != NULL && all_of(version, 1, 16, is_version_char);
}

bool
whatsapp_base_valid(const char *base)
{
	size_t skip;
	if (base == NULL)
		return false;
	if (strncmp(base, "https://", 8) == 0)
		skip = 8;
	else if (strncmp(base, "http://", 7) == 0)
		skip = 7;
	else
		return false;
	size_t n = strlen(base);
	if (n == skip || n > 512 || base[skip] == '/')
		return false;
	for (size_t i = skip; i < n; i++) {
		unsigned char c = (unsigned char)base[i];
		if (c <= 0x20 || c >= 0x7f || strchr("?#@\"'<>\\`{}|^", c) != NULL)
			return false;
	}
	return true;
}

/* "en", "pt_BR", "zh_Hant_TW": 2-3 letters, then _parts of 2-8 letters or
 * digits; a BCP 47 '-' is accepted and becomes '_'. */
static bool
language_copy(const char *s, char *out, size_t out_len)
{
	size_t n = s != NULL ? strlen(s) : 0, i = 0;
	if (n == 0 || n >= out_len || n >= WHATSAPP_LANGUAGE_MAX)
		return false;
	while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
		i++;
	if (i < 2 || i > 3)
		return false;
	while (i < n) {
		if (s[i] != '-' && s[i] != '_')
			return false;
		size_t start = ++i;
		while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		                 is_digit((unsigned char)s[i])))
			i++;
		if (i - start < 2 || i - start > 8)
			return false;
	}
	for (i = 0; i < n; i++)
		out[i] = s[i] == '-' ? '_' : s[i];
	out[n] = '\0';
	return true;
}

void
whatsapp_language(const char *locale, const char *tenant_default, char *out, size_t out_len)
{
	if (!language_copy(locale, out, out_len) && !language_copy(tenant_default, out, out_len))
		snprintf(out, out_len, "en");
}

/* ------------------------------------------------------------ parameters */

static bool
set(const char *s)
{
	return s != NULL && *s != '\0';
}

int
whatsapp_params(const char *tmpl, const struct whatsapp_values *v,
                const char *params[WHATSAPP_PARAMS_MAX], size_t *n, const char **missing)
{
	struct {
		const char *name;
		const char *value;
	} want[WHATSAPP_PARAMS_MAX];
	size_t k = 0;
	*n = 0;
	*missing = NULL;
	want[k].name = "recipient name";
	want[k++].value = v->recipient_name;
	want[k].name = "project_name";
	want[k++].value = v->project_name;
	if (strcmp(tmpl, "message_digest") == 0) {
		want[k].name = "messages";
		want[k++].value = v->message_count;
		want[k].name = "link";
		want[k++].value = v->link;
	} else if (strcmp(tmpl, "deliverable_delivered") == 0) {
		want[k].name = "deliverable_title";
		want[k++].value = v->deliverable_title;
		want[k].name = "link";
		want[k++].value = v->link;
	} else if (strcmp(tmpl, "deliverable_decision") == 0) {
		const char *d = NULL;
		if (v->decision != NULL && strcmp(v->decision, "approved") == 0)
			d = "approved";
		else if (v->decision != NULL && strcmp(v->decision, "changes_requested") == 0)
			d = "changes requested";
		want[k].name = "deliverable_title";
		want[k++].value = v->deliverable_title;
		want[k].name = "decision";
		want[k++].value = d;
		want[k].name = "by_name";
		want[k++].value = v->by_name;
	} else if (strcmp(tmpl, "milestone_completed") == 0) {
		want[k].name = "milestone_title";
		want[k++].value = v->milestone_title;
		want[k].name = "link";
		want[k++].value = v->link;
	} else {
		return ERR_NOT_FOUND;
	}
	for (size_t i = 0; i < k; i++) {
		if (!set(want[i].value)) {
			*missing = want[i].name;
			return ERR_INVALID;
		}
		params[i] = want[i].value;
	}
	*n = k;
	return 0;
}

/* ------------------------------------------------------------ request */

/*
 * A parameter as the API takes it: control characters and white space runs
 * as one space, trimmed, at most max code points (never half a UTF-8
 * sequence).  Arena memory; "" when nothing is left.
 */
static char *
clean_text(struct arena *a, const char *s, size_t max)
{
	size_t n = strlen(s), o = 0, chars = 0;
	char *d = arena_alloc(a, n + 1);
	bool space = false;
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7f) {
			space = o > 0;
			i++;
			continue;
		}
		size_t len = 1;
		while (i + len < n && ((unsigned char)s[i + len] & 0xc0) == 0x80)
			len++;
		if (chars + (space ? 1 : 0) + 1 > max)
			break;
		if (space) {
			d[o++] = ' ';
			chars++;
		}
		space = false;
		memcpy(d + o, s + i, len);
		o += len;
		chars++;
		i += len;
	}
	d[o] = '\0';
	return d;
}

/* json-c: any allocation failure leaves a NULL that is checked at the end */
static void
add_str(json_object *o, const char *key, const char *value)
{
	json_object_object_add(o, key, json_object_new_string(value));
}

int
whatsapp_body(struct arena *a, const struct whatsapp_message *m, char **out, size_t *len)
{
	char lang[WHATSAPP_LANGUAGE_MAX];
	if (!whatsapp_phone_valid(m->to) || !whatsapp_template_name_valid(m->template_name) ||
	    !language_copy(m->language, lang, sizeof(lang)) || m->n_params > WHATSAPP_PARAMS_MAX)
		return ERR_INVALID;
	const char *texts[WHATSAPP_PARAMS_MAX];
	for (size_t i = 0; i < m->n_params; i++) {
		texts[i] = clean_text(a, m->params[i] != NULL ? m->params[i] : "",
		                      WHATSAPP_PARAM_CHARS);
		if (*texts[i] == '\0')
			return ERR_INVALID;
	}
	int rc = ERR_NOMEM;
	json_object *root = json_object_new_object();
	json_object *tmpl = json_object_new_object();
	json_object *language = json_object_new_object();
	json_object *components = json_object_new_array();
	json_object *body = json_object_new_object();
	json_object *params = json_object_new_array();
	if (root == NULL || tmpl == NULL || language == NULL || components == NULL ||
	    body == NULL || params == NULL) {
		json_object_put(root);
		json_object_put(tmpl);
		json_object_put(language);
		json_object_put(components);
		json_object_put(body);
		json_object_put(params);
		return ERR_NOMEM;
	}
	add_str(root, "messaging_product", "whatsapp");
	add_str(root, "recipient_type", "individual");
	add_str(root, "to", m->to + 1);
	add_str(root, "type", "template");
	add_str(tmpl, "name", m->template_name);
	add_str(language, "code", lang);
	json_object_object_add(tmpl, "language", language);
	add_str(body, "type", "body");
	for (size_t i = 0; i < m->n_params; i++) {
		json_object *p = json_object_new_object();
		if (p == NULL)
			continue;
		add_str(p, "type", "text");
		add_str(p, "text", texts[i]);
		json_object_array_add(params, p);
	}
	json_object_object_add(body, "parameters", params);
	json_object_array_add(components, body);
	json_object_object_add(tmpl, "components", components);
	json_object_object_add(root, "template", tmpl);
	size_t n = 0;
	const char *s = json_object_to_json_string_length(
	        root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	/* every parameter must have made it (a failed allocation would not) */
	if (s != NULL && json_object_array_length(params) == m->n_params) {
		*out = arena_strndup(a, s, n);
		*len = n;
		rc = 0;
	}
	json_object_put(root);
	return rc;
}

char *
whatsapp_url(struct arena *a, const char *base, const char *version, const char *phone_number_id)
{
	if (!whatsapp_base_valid(base) || !whatsapp_version_valid(version) ||
	    !whatsapp_phone_number_id_valid(phone_number_id))
		return NULL;
	size_t n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		n--;
	return arena_printf(a, "%.*s/%s/%s/messages", (int)n, base, version, phone_number_id);
}

/* ------------------------------------------------------------ answers */

/* Copies s into out as printable text: control characters as spaces, at
 * most max code points, invalid UTF-8 bytes as '?'. */
static void
copy_message(char *out, size_t out_len, const char *s, size_t max)
{
	size_t o = 0, chars = 0, n = strlen(s);
	for (size_t i = 0; i < n && chars < max;) {
		unsigned char c = (unsigned char)s[i];
		size_t len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
		bool valid = len > 0 && i + len <= n;
		for (size_t k = 1; valid && k < len; k++)
			valid = ((unsigned char)s[i + k] & 0xc0) == 0x80;
		if (!valid)
			len = 1;
		if (o + len + 1 > out_len)
			break;
		if (!valid)
			out[o++] = '?';
		else if (c < 0x20 || c == 0x7f)
			out[o++] = ' ';
		else {
			memcpy(out + o, s + i, len);
			o += len;
		}
		i += len;
		chars++;
	}
	out[o] = '\0';
}

/* The answer as JSON (NULL when it is not); owned by the caller. */
static json_object *
parse_answer(const char *body, size_t n)
{
	if (body == NULL || n == 0 || n > WHATSAPP_RESPONSE_MAX)
		return NULL;
	json_tokener *tok = json_tokener_new_ex(WHATSAPP_JSON_DEPTH);
	if (tok == NULL)
		return NULL;
	json_object *o = json_tokener_parse_ex(tok, body, (int)n);
	if (json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

static const char *
string_at(json_object *o, const char *key)
{
	json_object *v;
	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

void
whatsapp_classify(long http_status, const char *body, size_t n, struct whatsapp_result *res)
{
	memset(res, 0, sizeof(*res));
	res->http_status = http_status;
	json_object *answer = parse_answer(body, n);
	if (http_status >= 200 && http_status <= 299) {
		res->status = WHATSAPP_SENT;
		json_object *msgs = NULL;
		if (answer != NULL && json_object_is_type(answer, json_type_object) &&
		    json_object_object_get_ex(answer, "messages", &msgs) &&
		    json_object_is_type(msgs, json_type_array) &&
		    json_object_array_length(msgs) > 0) {
			const char *id = string_at(json_object_array_get_idx(msgs, 0), "id");
			if (id != NULL)
				copy_message(res->message_id, sizeof(res->message_id), id,
				             sizeof(res->message_id) - 1);
		}
		json_object_put(answer);
		return;
	}
	if (http_status == 429 || http_status >= 500 || http_status < 400)
		res->status = WHATSAPP_TEMPORARY;
	else
		res->status = WHATSAPP_PERMANENT;
	json_object *err = NULL;
	const char *msg = NULL;
	if (answer != NULL && json_object_is_type(answer, json_type_object) &&
	    json_object_object_get_ex(answer, "error", &err))
		msg = string_at(err, "message");
	char text[WHATSAPP_ERROR_MAX - 32];
	copy_message(text, sizeof(text), msg != NULL ? msg : "no error message in the answer",
	             WHATSAPP_ERROR_CHARS);
	snprintf(res->error, sizeof(res->error), "whatsapp %ld: %s", http_status, text);
	json_object_put(answer);
}

/* ------------------------------------------------------------ HTTP */

struct answer {
	char *p;
	size_t len;
};

static size_t
write_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct answer *a = userdata;
	size_t n = size * nmemb;
	/* what goes beyond the limit is dropped, the transfer goes on */
	size_t room = WHATSAPP_RESPONSE_MAX - a->len;
	memcpy(a->p + a->len, data, n < room ? n : room);
	a->len += n < room ? n : room;
	return n;
}

void
whatsapp_send(const struct whatsapp_server *s, const char *url, const char *token, const char *body,
              size_t len, struct whatsapp_result *res)
{
	CURL *h = NULL;
	struct curl_slist *headers = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	char auth[2048];
	struct answer ans = {.p = NULL, .len = 0};

	memset(res, 0, sizeof(*res));
	res->status = WHATSAPP_TEMPORARY;
	int na = snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	if (na < 0 || (size_t)na >= sizeof(auth) || strpbrk(token, "\r\n") != NULL) {
		res->status = WHATSAPP_PERMANENT;
		snprintf(res->error, sizeof(res->error),
		         "whatsapp: the access token is not usable");
		goto out;
	}
	if ((ans.p = malloc(WHATSAPP_RESPONSE_MAX)) == NULL || (h = curl_easy_init()) == NULL) {
		snprintf(res->error, sizeof(res->error), "whatsapp: out of memory");
		goto out;
	}
	struct curl_slist *t;
	const char *const lines[] = {auth, "Content-Type: application/json",
	                             "Accept: application/json",
	                             /* no 100-continue round trip for larger bodies */
	                             "Expect:"};
	for (size_t i = 0; i < ARRAY_LEN(lines); i++) {
		if ((t = curl_slist_append(headers, lines[i])) == NULL) {
			snprintf(res->error, sizeof(res->error), "whatsapp: out of memory");
			goto out;
		}
		headers = t;
	}
	CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (rc == CURLE_OK)                                                                \
			rc = curl_easy_setopt(h, opt, val);                                        \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_POST, 1L);
	SET(CURLOPT_POSTFIELDS, body);
	SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	SET(CURLOPT_WRITEFUNCTION, write_cb);
	SET(CURLOPT_WRITEDATA, &ans);
	/* signals belong to the daemon: SIGTERM must not abort a transfer */
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_CONNECTTIMEOUT, s->connect_timeout_s);
	SET(CURLOPT_TIMEOUT, s->timeout_s);
	SET(CURLOPT_ERRORBUFFER, errbuf);
#undef SET
	if (rc != CURLE_OK) {
		snprintf(res->error, sizeof(res->error), "whatsapp: curl setup: %s",
		         curl_easy_strerror(rc));
		goto out;
	}
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		/* no answer (refused, reset, timeout, TLS): try again later */
		snprintf(res->error, sizeof(res->error), "whatsapp: %.200s",
		         errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
		goto out;
	}
	long code = 0;
	if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK)
		code = 0;
	whatsapp_classify(code, ans.p, ans.len, res);
out:
	OPENSSL_cleanse(auth, sizeof(auth));
	/* the list holds a copy of the token */
	for (struct curl_slist *l = headers; l != NULL; l = l->next)
		OPENSSL_cleanse(l->data, strlen(l->data));
	curl_slist_free_all(headers);
	curl_easy_cleanup(h);
	free(ans.p);
}
