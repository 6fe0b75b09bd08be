/*
 * Unit tests: the notifier's template renderer and message builder.
 *
 * template.o and mail.o are not part of LIB_OBJS (they belong to
 * atrium-notifier only), so their sources are compiled into this test.
 */
#include <openssl/evp.h>

#include "../../fcgi-app/mail.c"
#include "tap.h"
#include "../../fcgi-app/template.c"

static const struct template_message two_messages[] = {
        {.author_name = "Ann <script>",
         .time = "4 Dec 2026, 19:05",
         .excerpt = "Looks <b>good</b> & ready",
         .truncated = NULL,
         .files = "+2 files"},
        {.author_name = "Bob",
         .time = "4 Dec 2026, 19:07",
         .excerpt = NULL,
         .truncated = NULL,
         .files = "+1 file"},
};

static const struct template_vars full = {
        .display_name = "Acme <Agency>",
        .name = "<b>Bob & \"Co\"</b>",
        .link = "https://acme.portal.localhost:8443/invite#token=abc_DEF-123",
        .expires_at = "11 December 2026, 14:05 UTC",
        .support_email = "help@acme.example",
        .color_primary = "#112233",
        .logo_url = NULL,
        .unsubscribe_url = "https://acme.portal.localhost:8443/api/portal/v1/unsubscribe?token=t.k",
        .unsubscribe_page = "https://acme.portal.localhost:8443/unsubscribe?token=t.k",
        .project_name = "Relaunch <2027>",
        .deliverable_title = "Home & \"About\"",
        .due_date = "11 December 2026",
        .decision = "changes requested",
        .decision_approved = NULL,
        .comment = "<img src=x onerror=alert(1)>",
        .by_name = "Ann",
        .milestone_title = "Launch",
        .message_count = "2",
        .many_messages = "yes",
        .more_messages = NULL,
        .time_zone = "Europe/Berlin",
        .messages = two_messages,
        .n_messages = 2,
};

static char *
render(struct arena *a, const char *t, bool html, const struct template_vars *v, char *err)
{
	char *out = NULL;
	if (template_render(a, t, strlen(t), html, v, &out, err, TEMPLATE_ERR_MAX) != 0)
		return NULL;
	return out;
}

static void
test_render(struct arena *a)
{
	char err[TEMPLATE_ERR_MAX];
	is_str(render(a, "Hello {{name}}!", true, &full, err),
	       "Hello &lt;b&gt;Bob &amp; &quot;Co&quot;&lt;/b&gt;!", "HTML escapes every value");
	is_str(render(a, "Hello {{name}}!", false, &full, err), "Hello <b>Bob & \"Co\"</b>!",
	       "text templates take values as they are");
	is_str(render(a, "<a href=\"{{link}}\">", true, &full, err),
	       "<a href=\"https://acme.portal.localhost:8443/invite#token=abc_DEF-123\">",
	       "a link survives escaping");
	is_str(render(a, "a{{#logo_url}}<img src=\"{{logo_url}}\">{{/logo_url}}b", true, &full,
	              err),
	       "ab", "section hidden when its value is empty");
	is_str(render(a, "{{#support_email}}[{{support_email}}]{{/support_email}}", true, &full,
	              err),
	       "[help@acme.example]", "section shown when its value is set");
	is_str(render(a, "{{^logo_url}}{{display_name}}{{/logo_url}}", true, &full, err),
	       "Acme &lt;Agency&gt;", "inverted section");
	is_str(render(a, "{{#name}}{{#link}}x{{/link}}{{/name}}", false, &full, err), "x",
	       "nested sections");
	is_str(render(a, "{ single } braces {and} }} stay", false, &full, err),
	       "{ single } braces {and} }} stay", "lone braces are text");

	struct template_vars ctl = full;
	ctl.name = "Eve\r\nBcc: x@y\x7f";
	is_str(render(a, "[{{name}}]", false, &ctl, err), "[Eve  Bcc: x@y ]",
	       "control characters in values become spaces");

	ok(render(a, "Hi {{nmae}}", false, &full, err) == NULL, "unknown placeholder refused");
	ok(strstr(err, "unknown placeholder 'nmae'") != NULL, "the error names it: %s", err);
	ok(render(a, "x\n{{#logo_url}}{{bogus}}{{/logo_url}}", false, &full, err) == NULL,
	   "unknown placeholder refused inside a hidden section too");
	ok(strstr(err, "line 2") != NULL, "the error names the line: %s", err);
	ok(render(a, "{{ name }}", false, &full, err) == NULL, "spaces inside a tag refused");
	ok(render(a, "{{Name}}", false, &full, err) == NULL, "upper case refused");
	ok(render(a, "{{name", false, &full, err) == NULL, "unterminated tag refused");
	ok(render(a, "{{}}", false, &full, err) == NULL, "empty tag refused");
	ok(render(a, "{{#name}}x", false, &full, err) == NULL, "unclosed section refused");
	ok(render(a, "{{#name}}x{{/link}}", false, &full, err) == NULL, "mismatched close refused");
	ok(render(a, "x{{/name}}", false, &full, err) == NULL, "stray close refused");
	ok(render(a, "{{logo_url}}", false, &full, err) == NULL,
	   "an empty value outside a section refused");
	ok(strstr(err, "'logo_url' has no value") != NULL, "and said so: %s", err);
	/* the digest's list */
	is_str(render(a,
	              "{{#messages}}[{{author_name}}|{{time}}|{{#excerpt}}{{excerpt}}{{/excerpt}}|"
	              "{{files}}]{{/messages}}",
	              true, &full, err),
	       "[Ann &lt;script&gt;|4 Dec 2026, 19:05|Looks &lt;b&gt;good&lt;/b&gt; &amp; ready|+2 "
	       "files][Bob|4 Dec 2026, 19:07||+1 file]",
	       "the list: once per message, every value escaped");
	ok(render(a, "{{#messages}}{{excerpt}}{{/messages}}", true, &full, err) == NULL &&
	           strstr(err, "'excerpt' has no value") != NULL,
	   "an empty message value outside a section refused: %s", err);
	is_str(render(a,
	              "{{#messages}}{{#excerpt}}{{excerpt}}{{/excerpt}}{{^excerpt}}files only"
	              "{{/excerpt}}{{#truncated}}...{{/truncated}};{{/messages}}",
	              false, &full, err),
	       "Looks <b>good</b> & ready;files only;", "sections on message values");
	is_str(render(a, "{{#messages}}{{project_name}}:{{author_name}} {{/messages}}", false,
	              &full, err),
	       "Relaunch <2027>:Ann <script> Relaunch <2027>:Bob ",
	       "the other values are known inside the list");
	struct template_vars none = full;
	none.messages = NULL;
	none.n_messages = 0;
	is_str(render(a,
	              "a{{#messages}}[{{author_name}}]{{/messages}}{{^messages}}none{{/messages}}b",
	              false, &none, err),
	       "anoneb", "an empty list: the inverted section");
	is_str(render(a, "{{^messages}}none{{/messages}}", false, &full, err), "",
	       "a list with messages hides the inverted section");
	ok(render(a, "{{#messages}}{{bogus}}{{/messages}}", false, &none, err) == NULL,
	   "tags inside an empty list are still checked");
	ok(render(a, "{{author_name}}", false, &full, err) == NULL &&
	           strstr(err, "only known inside {{#messages}}") != NULL,
	   "a message value outside the list refused: %s", err);
	ok(render(a, "{{#name}}{{author_name}}{{/name}}", false, &full, err) == NULL,
	   "also in a section that is not the list");
	ok(render(a, "{{messages}}", false, &full, err) == NULL && strstr(err, "is a list") != NULL,
	   "the list as a value refused: %s", err);
	ok(render(a, "{{#messages}}{{#messages}}x{{/messages}}{{/messages}}", false, &full, err) ==
	           NULL,
	   "the list inside itself refused");
	ok(render(a, "{{#messages}}x{{/author_name}}", false, &full, err) == NULL,
	   "the list closed by another key refused");
	ok(render(a, "{{#messages}}x", false, &none, err) == NULL, "an unclosed list refused");
	ok(render(a, "{{&name}}", true, &full, err) == NULL, "there is no raw tag");

	const char *deep = "{{#name}}{{#name}}{{#name}}{{#name}}{{#name}}{{#name}}{{#name}}"
	                   "{{#name}}{{#name}}x{{/name}}{{/name}}{{/name}}{{/name}}{{/name}}"
	                   "{{/name}}{{/name}}{{/name}}{{/name}}";
	ok(render(a, deep, false, &full, err) == NULL, "nesting is bounded");
}

/* The activity templates: branded, the project link and a visible
 * unsubscribe link in both parts, every value escaped in the HTML. */
static void
test_activity_files(struct arena *a, const char *dir, const char *const *names, size_t n)
{
	char err[TEMPLATE_ERR_MAX + 64], *out = NULL;
	for (size_t i = 0; i < n; i++) {
		char *txt = NULL, *html = NULL, *subject = NULL;
		ok(template_render_file(a, dir, names[i], TEMPLATE_TEXT, &full, &txt, err,
		                        sizeof(err)) == 0 &&
		           template_render_file(a, dir, names[i], TEMPLATE_HTML, &full, &html, err,
		                                sizeof(err)) == 0 &&
		           template_render_file(a, dir, names[i], TEMPLATE_SUBJECT, &full, &subject,
		                                err, sizeof(err)) == 0,
		   "%s renders %s", names[i], err);
		if (txt == NULL || html == NULL || subject == NULL)
			continue;
		ok(strstr(txt, full.unsubscribe_page) != NULL &&
		           strstr(html, "href=\"https://acme.portal.localhost:8443/"
		                        "unsubscribe?token=t.k\"") != NULL &&
		           strstr(html, ">Unsubscribe</a>") != NULL,
		   "%s: a visible unsubscribe link in both parts", names[i]);
		ok(strstr(txt, full.link) != NULL &&
		           strstr(html, "href=\"https://acme.portal") != NULL,
		   "%s: the project link in both parts", names[i]);
		ok(strstr(html, "#112233") != NULL && strstr(html, "Acme &lt;Agency&gt;") != NULL &&
		           strstr(html, "Relaunch &lt;2027&gt;") != NULL,
		   "%s: branded, values escaped", names[i]);
		ok(strstr(html, "<script") == NULL && strstr(html, "<img src=x") == NULL &&
		           strstr(html, "<2027>") == NULL,
		   "%s: no markup from a value", names[i]);
		ok(strstr(txt, "Relaunch <2027>") != NULL ||
		           strstr(subject, "Relaunch <2027>") != NULL,
		   "%s: the text as written in the text part", names[i]);
	}
	ok(template_render_file(a, dir, "message_digest", TEMPLATE_SUBJECT, &full, &out, err,
	                        sizeof(err)) == 0,
	   "digest subject");
	is_str(out, "2 new messages in Relaunch <2027>", "digest subject: count and project");
	ok(template_render_file(a, dir, "message_digest", TEMPLATE_TEXT, &full, &out, err,
	                        sizeof(err)) == 0 &&
	           strstr(out, "Ann <script>, 4 Dec 2026, 19:05:\nLooks <b>good</b> & ready +2 "
	                       "files\n") != NULL &&
	           strstr(out, "Bob, 4 Dec 2026, 19:07:\n(files only) +1 file\n") != NULL &&
	           strstr(out, "Times are in Europe/Berlin.") != NULL,
	   "digest text: every message, its local time, excerpt and files");
	struct template_vars one = full;
	one.message_count = "1";
	one.many_messages = NULL;
	one.n_messages = 1;
	one.more_messages = "7";
	ok(template_render_file(a, dir, "message_digest", TEMPLATE_SUBJECT, &one, &out, err,
	                        sizeof(err)) == 0 &&
	           strcmp(out, "1 new message in Relaunch <2027>") == 0,
	   "digest subject in the singular: %s", out);
	ok(template_render_file(a, dir, "message_digest", TEMPLATE_HTML, &one, &out, err,
	                        sizeof(err)) == 0 &&
	           strstr(out, "and 7 more") != NULL && strstr(out, "19:07") == NULL,
	   "digest: a message count beyond the list");
	ok(template_render_file(a, dir, "deliverable_decision", TEMPLATE_SUBJECT, &full, &out, err,
	                        sizeof(err)) == 0 &&
	           strcmp(out, "Changes requested: Home & \"About\" (Relaunch <2027>)") == 0,
	   "decision subject: %s", out);
	ok(template_render_file(a, dir, "deliverable_decision", TEMPLATE_HTML, &full, &out, err,
	                        sizeof(err)) == 0 &&
	           strstr(out, "&lt;img src=x onerror=alert(1)&gt;") != NULL,
	   "the decision's comment escaped");
	struct template_vars approved = full;
	approved.decision = "approved";
	approved.decision_approved = "yes";
	approved.comment = NULL;
	ok(template_render_file(a, dir, "deliverable_decision", TEMPLATE_TEXT, &approved, &out, err,
	                        sizeof(err)) == 0 &&
	           strstr(out, "Ann approved \"Home & \"About\"\"") != NULL &&
	           strstr(out, "wrote:") == NULL,
	   "an approval without a comment");
	ok(template_render_file(a, dir, "deliverable_delivered", TEMPLATE_TEXT, &full, &out, err,
	                        sizeof(err)) == 0 &&
	           strstr(out, "(due 11 December 2026)") != NULL,
	   "delivered: the due date");
	struct template_vars nounsub = full;
	nounsub.unsubscribe_page = NULL;
	ok(template_render_file(a, dir, "milestone_completed", TEMPLATE_HTML, &nounsub, &out, err,
	                        sizeof(err)) == ERR_INVALID &&
	           strstr(err, "'unsubscribe_page' has no value") != NULL,
	   "an activity email without its unsubscribe link is refused: %s", err);
}

static void
test_files(struct arena *a)
{
	char err[TEMPLATE_ERR_MAX + 64], *out = NULL;
	const char *dir = ATRIUM_REPO_DIR "/fcgi-app/templates";
	static const char *const names[] = {"invite",
	                                    "password_reset",
	                                    "message_digest",
	                                    "deliverable_delivered",
	                                    "deliverable_decision",
	                                    "milestone_completed"};
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		for (int p = TEMPLATE_SUBJECT; p <= TEMPLATE_HTML; p++) {
			int rc = template_render_file(a, dir, names[i], (enum template_part)p,
			                              &full, &out, err, sizeof(err));
			ok(rc == 0, "%s part %d renders %s", names[i], p, err);
		}
	}
	ok(template_render_file(a, dir, "invite", TEMPLATE_SUBJECT, &full, &out, err,
	                        sizeof(err)) == 0 &&
	           strchr(out, '\n') == NULL && out[strlen(out) - 1] != ' ',
	   "the subject is one trimmed line: %s", out);
	ok(template_render_file(a, dir, "invite", TEMPLATE_HTML, &full, &out, err, sizeof(err)) ==
	                   0 &&
	           strstr(out, "&lt;b&gt;Bob &amp; &quot;Co&quot;&lt;/b&gt;") != NULL &&
	           strstr(out, "<b>Bob") == NULL && strstr(out, "#112233") != NULL,
	   "invite.html escapes the name and uses the tenant's colour");
	struct template_vars nolink = full;
	nolink.link = NULL;
	ok(template_render_file(a, dir, "invite", TEMPLATE_TEXT, &nolink, &out, err, sizeof(err)) ==
	                   ERR_INVALID &&
	           strstr(err, "'link' has no value") != NULL,
	   "an invite without a link is refused: %s", err);
	struct template_vars minimal = {
	        .display_name = "A", .link = "https://x.example/", .color_primary = "#000000"};
	ok(template_render_file(a, dir, "password_reset", TEMPLATE_HTML, &minimal, &out, err,
	                        sizeof(err)) == 0,
	   "every optional value may be missing %s", err);
	test_activity_files(a, dir, names + 2, ARRAY_LEN(names) - 2);
	ok(template_render_file(a, dir, "no_such", TEMPLATE_TEXT, &full, &out, err, sizeof(err)) ==
	           ERR_NOT_FOUND,
	   "a missing template is ERR_NOT_FOUND");
	ok(template_render_file(a, dir, "../templates/invite", TEMPLATE_TEXT, &full, &out, err,
	                        sizeof(err)) == ERR_INVALID,
	   "a path is not a template name");
	ok(template_name_valid("password_reset") && !template_name_valid("") &&
	           !template_name_valid("Invite") && !template_name_valid("a/b") &&
	           !template_name_valid("a.b"),
	   "template names");
}

static void
test_time(void)
{
	char out[64];
	ok(template_human_time("2026-12-11T14:05:00Z", out, sizeof(out)) == 0, "RFC 3339 Z");
	is_str(out, "11 December 2026, 14:05 UTC", "human-readable UTC");
	ok(template_human_time("2026-01-01T00:30:00.123456+01:00", out, sizeof(out)) == 0,
	   "offset and fraction");
	is_str(out, "31 December 2025, 23:30 UTC", "converted to UTC");
	ok(template_human_time("2026-03-01T01:00:00-02:30", out, sizeof(out)) == 0,
	   "negative offset");
	is_str(out, "1 March 2026, 03:30 UTC", "negative offset converted");
	ok(template_human_time("2026-02-30T00:00:00Z", out, sizeof(out)) != 0, "30 February");
	ok(template_human_time("2026-12-11T14:05:00", out, sizeof(out)) != 0, "no zone");
	ok(template_human_time("2026-12-11", out, sizeof(out)) != 0, "date only");
	ok(template_human_time("2026-12-11T24:00:00Z", out, sizeof(out)) != 0, "hour 24");
	ok(template_human_time("2026-12-11T14:05:00Zjunk", out, sizeof(out)) != 0, "trailing junk");
	ok(template_human_time("", out, sizeof(out)) != 0, "empty");
	ok(template_human_time("2026-12-11T14:05:00Z", out, 8) != 0, "too small a buffer");
	ok(template_human_date("2026-12-11", out, sizeof(out)) == 0, "a date");
	is_str(out, "11 December 2026", "human-readable date");
	ok(template_human_date("2028-02-29", out, sizeof(out)) == 0, "29 February of a leap year");
	ok(template_human_date("2026-02-29", out, sizeof(out)) != 0, "29 February of another");
	ok(template_human_date("2026-12-11T00:00:00Z", out, sizeof(out)) != 0, "not a date-time");
	ok(template_human_date("2026-13-01", out, sizeof(out)) != 0, "month 13");
	ok(template_human_date("", out, sizeof(out)) != 0, "empty date");
}

static void
test_addresses(void)
{
	ok(mail_address_valid("bob@client.example"), "plain address");
	ok(mail_address_valid("bob.o'neil+tag@sub.client-x.example"), "dots, quote, plus");
	ok(mail_address_valid("x@localhost"), "single-label domain");
	static const char *const bad[] = {
	        "",
	        "bob",
	        "@x.example",
	        "bob@",
	        "bob@@x.example",
	        ".bob@x.example",
	        "bob.@x.example",
	        "bo..b@x.example",
	        "bob@x..example",
	        "bob@-x.example",
	        "bob@x-.example",
	        "bob@x.example.",
	        "bob smith@x.example",
	        "bob@x.example\r\nBcc: eve@y.example",
	        "<bob@x.example>",
	        "\"bob\"@x.example",
	        "bob@[127.0.0.1]",
	        "b\xc3\xa9@x.example",
	        "bob@x_y.example",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		ok(!mail_address_valid(bad[i]), "refused address %zu", i);
	char longer[300];
	memset(longer, 'a', 65);
	memcpy(longer + 65, "@x.example", 11);
	ok(!mail_address_valid(longer), "local part over 64 bytes");
}

/* Every line ends in CRLF, no bare CR or LF, none longer than max. */
static bool
lines_ok(const char *s, size_t n, size_t max)
{
	size_t col = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r') {
			if (i + 1 >= n || s[i + 1] != '\n')
				return false;
			i++;
			col = 0;
			continue;
		}
		if (s[i] == '\n' || ++col > max)
			return false;
	}
	return col == 0;
}

/* Decodes a header made of RFC 2047 B words (folded) back to UTF-8. */
static char *
decode_words(struct arena *a, const char *h)
{
	struct buf b;
	buf_init(&b, a, 256);
	const char *p = h;
	while ((p = strstr(p, "=?UTF-8?B?")) != NULL) {
		p += 10;
		const char *e = strstr(p, "?=");
		if (e == NULL)
			return NULL;
		unsigned char out[128];
		int n = EVP_DecodeBlock(out, (const unsigned char *)p, (int)(e - p));
		if (n < 0)
			return NULL;
		/* EVP_DecodeBlock counts padding bytes as zeros */
		while (e - p >= 1 && e[-1] == '=' && n > 0) {
			n--;
			e--;
		}
		buf_append(&b, out, (size_t)n);
		p = strstr(p, "?=") + 2;
	}
	buf_cstr(&b);
	return b.p;
}

static void
test_encodings(struct arena *a)
{
	struct buf b;
	buf_init(&b, a, 64);
	mail_put_qp(&b, "a=b caf\xc3\xa9 \nFrom here\ttab\t\r\nend ");
	is_str(buf_cstr(&b), "a=3Db caf=C3=A9=20\r\n=46rom here\ttab=09\r\nend=20",
	       "quoted-printable: =, UTF-8, trailing space, From, CRLF");

	char long_line[400];
	memset(long_line, 'x', sizeof(long_line) - 1);
	long_line[sizeof(long_line) - 1] = '\0';
	long_line[100] = '=';
	buf_init(&b, a, 64);
	mail_put_qp(&b, long_line);
	buf_append(&b, "\r\n", 2);
	ok(lines_ok(b.p, b.len, 76), "quoted-printable lines at most 76 bytes");

	buf_init(&b, a, 64);
	mail_put_phrase(&b, "Acme \"Best\" \\ Co", 6);
	is_str(buf_cstr(&b), "\"Acme \\\"Best\\\" \\\\ Co\"", "ASCII display name quoted");

	const char *utf = "Agence \xc3\x89toile \xe2\x80\x94 Caf\xc3\xa9 & Co, "
	                  "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80 and a long tail "
	                  "that needs folding";
	buf_init(&b, a, 64);
	buf_puts(&b, "From: ");
	mail_put_phrase(&b, utf, 6);
	buf_append(&b, "\r\n", 2);
	ok(strncmp(b.p, "From: =?UTF-8?B?", 16) == 0, "non-ASCII display name encoded");
	ok(lines_ok(b.p, b.len, 76), "encoded words folded to 76 columns");
	is_str(decode_words(a, b.p), utf, "encoded words decode to the name");

	buf_init(&b, a, 64);
	mail_put_unstructured(&b, "Plain subject", 9);
	is_str(buf_cstr(&b), "Plain subject", "short ASCII subject left as it is");
	buf_init(&b, a, 64);
	mail_put_unstructured(&b, "looks =?like?= a word", 9);
	ok(strncmp(buf_cstr(&b), "=?UTF-8?B?", 10) == 0, "=? in a subject is encoded");
}

/* The header block of msg (up to the blank line), NUL-terminated. */
static char *
head_of(struct arena *a, const char *msg)
{
	const char *end = strstr(msg, "\r\n\r\n");
	return arena_strndup(a, msg, end != NULL ? (size_t)(end - msg) + 2 : strlen(msg));
}

static void
test_list_unsubscribe(struct arena *a, const struct mail_message *base)
{
	struct mail_message m = *base;
	char *msg;
	size_t len;
	const char *url = "https://acme.portal.localhost:8443/api/portal/v1/unsubscribe?token="
	                  "djF8YWJjfGNsaWVudHx4eXp8bWVzc2FnZXN8ZW1haWx8MTgxMjAwMDAwMA.abcDEF_-"
	                  "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
	m.list_unsubscribe = url;
	ok(mail_build(a, &m, 0, &msg, &len) == 0, "a message with List-Unsubscribe");
	char *head = head_of(a, msg);
	char want[1024];
	snprintf(want, sizeof(want), "\r\nList-Unsubscribe: <%s>\r\n", url);
	ok(strstr(head, want) != NULL, "List-Unsubscribe: <URL> in the header, on one line");
	ok(strstr(head, "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n") != NULL,
	   "List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058)");
	ok(strstr(msg + strlen(head), "List-Unsubscribe") == NULL, "only in the header");
	ok(lines_ok(msg, len, 998), "every line within RFC 5322's 998 bytes");

	m.list_unsubscribe = NULL;
	ok(mail_build(a, &m, 0, &msg, &len) == 0 && strstr(msg, "List-Unsubscribe") == NULL,
	   "no List-Unsubscribe without a URL (invites, resets)");

	static const char *const bad[] = {
	        "https://x.example/u?t=a\r\nBcc: eve@evil.example",
	        "https://x.example/u?t=a>, <https://evil.example/",
	        "https://x.example/u t",
	        "https://x.example/u?t=\"a",
	        "https://x.example/u?t=a,b",
	        "mailto:unsub@x.example",
	        "javascript:alert(1)",
	        "https://",
	        "https://x.example/\xc3\xa9",
	        "",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		m.list_unsubscribe = bad[i];
		ok(!mail_list_url_valid(bad[i]) && mail_build(a, &m, 0, &msg, &len) == ERR_INVALID,
		   "a List-Unsubscribe URL that could break the header refused (%zu)", i);
	}
	char longer[MAIL_LIST_URL_MAX + 2];
	memcpy(longer, "https://", 8);
	memset(longer + 8, 'a', sizeof(longer) - 9);
	longer[sizeof(longer) - 1] = '\0';
	ok(!mail_list_url_valid(longer), "over MAIL_LIST_URL_MAX bytes refused");
	longer[MAIL_LIST_URL_MAX] = '\0';
	ok(mail_list_url_valid(longer), "MAIL_LIST_URL_MAX bytes accepted");
	m.list_unsubscribe = longer;
	ok(mail_build(a, &m, 0, &msg, &len) == 0 && lines_ok(msg, len, 998),
	   "and its header line stays within 998 bytes");
}

static void
test_build(struct arena *a)
{
	struct mail_message m = {
	        .from_name = "Caf\xc3\xa9 Agency",
	        .from_addr = "noreply@portal.localhost",
	        .reply_to = "help@acme.example",
	        .to_addr = "bob@client.example",
	        .subject = "Your invitation to the Caf\xc3\xa9 Agency client portal",
	        .text = "Hello,\n\nhttps://x.example/invite#token=abc\n",
	        .html = "<p>Hello</p>\n",
	};
	char *msg;
	size_t len;
	ok(mail_build(a, &m, 1796220000, &msg, &len) == 0, "message built");
	ok(lines_ok(msg, len, 78), "every line CRLF-terminated and at most 78 bytes");
	ok(strstr(msg, "Date: Wed, 02 Dec 2026 14:00:00 +0000\r\n") != NULL, "Date header");
	ok(strstr(msg, "\r\nFrom: =?UTF-8?B?") != NULL, "From with an encoded name");
	ok(strstr(msg, " <noreply@portal.localhost>\r\n") != NULL, "From address");
	m.from_name = "A fairly long agency name, long enough to need folding";
	ok(mail_build(a, &m, 1796220000, &msg, &len) == 0 && lines_ok(msg, len, 78) &&
	           strstr(msg,
	                  "From: \"A fairly long agency name, long enough to need folding\"\r\n "
	                  "<noreply@portal.localhost>\r\n") != NULL,
	   "From folded before the address");
	m.from_name = "Caf\xc3\xa9 Agency";
	ok(mail_build(a, &m, 1796220000, &msg, &len) == 0, "message built again");
	ok(strstr(msg, "\r\nReply-To: <help@acme.example>\r\n") != NULL, "Reply-To");
	ok(strstr(msg, "\r\nTo: <bob@client.example>\r\n") != NULL, "To");
	ok(strstr(msg, "\r\nMessage-ID: <") != NULL && strstr(msg, "@portal.localhost>\r\n"),
	   "Message-ID in the sender's domain");
	ok(strstr(msg, "\r\nMIME-Version: 1.0\r\n") != NULL, "MIME-Version");
	ok(strstr(msg, "multipart/alternative;") != NULL, "multipart/alternative");
	ok(strstr(msg, "Content-Type: text/plain; charset=utf-8") != NULL &&
	           strstr(msg, "Content-Type: text/html; charset=utf-8") != NULL,
	   "both parts");
	ok(strstr(msg, "https://x.example/invite#token=3Dabc") != NULL, "link quoted-printable");
	const char *bd = strstr(msg, "boundary=\"");
	ok(bd != NULL, "boundary");
	if (bd != NULL) {
		char delim[80];
		const char *e = strchr(bd + 10, '"');
		snprintf(delim, sizeof(delim), "\r\n--%.*s--\r\n", (int)(e - bd - 10), bd + 10);
		ok(strstr(msg, delim) != NULL, "closing delimiter");
	}
	m.from_name = "Eve\r\nBcc: x@y.example";
	m.subject = "Hi\r\nBcc: x@y.example";
	ok(mail_build(a, &m, 0, &msg, &len) == 0 && strstr(msg, "\nBcc") == NULL &&
	           strstr(msg, "From: \"Eve  Bcc: x@y.example\" <") != NULL &&
	           strstr(msg, "Subject: Hi  Bcc: x@y.example\r\n") != NULL,
	   "line breaks in the display name and subject become spaces");
	m.from_name = "Caf\xc3\xa9 Agency";
	m.to_addr = "bob@client.example\r\nBcc: eve@evil.example";
	ok(mail_build(a, &m, 0, &msg, &len) == ERR_INVALID, "header injection refused");
	m.to_addr = "bob@client.example";
	m.reply_to = "not an address";
	ok(mail_build(a, &m, 0, &msg, &len) == ERR_INVALID, "invalid Reply-To refused");
	m.reply_to = NULL;
	m.from_name = NULL;
	ok(mail_build(a, &m, 0, &msg, &len) == 0 &&
	           strstr(msg, "\r\nFrom: <noreply@portal.localhost>\r\n") != NULL &&
	           strstr(msg, "Reply-To") == NULL,
	   "no display name, no Reply-To");
	test_list_unsubscribe(a, &m);
	enum mail_starttls st;
	ok(mail_starttls_parse("required", &st) == 0 && st == MAIL_STARTTLS_REQUIRED &&
	           mail_starttls_parse("yes", &st) == ERR_INVALID,
	   "ATRIUM_SMTP_STARTTLS values");
	ok(classify(CURLE_SEND_ERROR, 550) == MAIL_PERMANENT, "550 to RCPT is permanent");
	ok(classify(CURLE_SEND_ERROR, 451) == MAIL_TEMPORARY, "451 is temporary");
	ok(classify(CURLE_COULDNT_CONNECT, 0) == MAIL_TEMPORARY, "refused connection temporary");
	ok(classify(CURLE_LOGIN_DENIED, 535) == MAIL_TEMPORARY,
	   "a wrong SMTP password is ours to fix, not the message's");
	ok(classify(CURLE_OK, 250) == MAIL_SENT, "250 sent");
}

int
main(void)
{
	struct arena *a = arena_new(64 * 1024);
	test_render(a);
	test_files(a);
	test_time();
	test_addresses();
	test_encodings(a);
	test_build(a);
	arena_free(a);
	return done_testing();
}
