/*
 * template.c - {{placeholder}} rendering of the email templates.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "template.h"

/* Sections inside sections: enough for any sane template, and a bound on
 * the recursion whatever a template file holds. */
#define TEMPLATE_DEPTH_MAX 8
#define TEMPLATE_KEY_MAX   32

/* What a key names: a value of struct template_vars, a value of the current
 * struct template_message (inside the list only), or the list itself. */
enum key_kind { KEY_VAR, KEY_ITEM, KEY_LIST };

/* clang-format off */
#define VAR(k)  {#k, offsetof(struct template_vars, k), KEY_VAR}
#define ITEM(k) {#k, offsetof(struct template_message, k), KEY_ITEM}
/* clang-format on */

static const struct {
	const char *key;
	size_t off;
	enum key_kind kind;
} template_keys[] = {
        VAR(display_name),
        VAR(name),
        VAR(link),
        VAR(expires_at),
        VAR(support_email),
        VAR(color_primary),
        VAR(logo_url),
        VAR(unsubscribe_url),
        VAR(unsubscribe_page),
        VAR(project_name),
        VAR(deliverable_title),
        VAR(due_date),
        VAR(decision),
        VAR(decision_approved),
        VAR(comment),
        VAR(by_name),
        VAR(milestone_title),
        VAR(message_count),
        VAR(many_messages),
        VAR(more_messages),
        VAR(time_zone),
        {"messages", 0, KEY_LIST},
        ITEM(author_name),
        ITEM(time),
        ITEM(excerpt),
        ITEM(truncated),
        ITEM(files),
};

#undef VAR
#undef ITEM

struct render {
	struct buf *out;
	const struct template_vars *v;
	/* inside {{#messages}}: the message being rendered, NULL while the
	 * section is only checked (no message, or not shown) */
	const struct template_message *item;
	bool in_list;
	bool html;
	const char *start; /* the template, for line numbers in errors */
	const char *p;
	const char *end;
	char *err;
	size_t err_len;
};

static int fail(struct render *r, const char *at, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int
fail(struct render *r, const char *at, const char *fmt, ...)
{
	char msg[TEMPLATE_ERR_MAX];
	int line = 1;
	for (const char *q = r->start; q < at; q++)
		line += *q == '\n';
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		msg[0] = '\0';
	if (r->err_len > 0)
		snprintf(r->err, r->err_len, "line %d: %s", line, msg);
	return ERR_INVALID;
}

/* Index of the key (n bytes) in template_keys, or -1. */
static int
key_index(const char *k, size_t n)
{
	for (size_t i = 0; i < ARRAY_LEN(template_keys); i++)
		if (strlen(template_keys[i].key) == n && memcmp(template_keys[i].key, k, n) == 0)
			return (int)i;
	return -1;
}

/* The value of a KEY_VAR or KEY_ITEM key; "" for NULL, for the list key and
 * for an item key while no message is at hand. */
static const char *
key_value(const struct render *r, int idx)
{
	const void *base;
	switch (template_keys[idx].kind) {
	case KEY_VAR:
		base = r->v;
		break;
	case KEY_ITEM:
		base = r->item;
		break;
	default:
		return "";
	}
	if (base == NULL)
		return "";
	const char *const *field =
	        (const char *const *)(const void *)((const char *)base + template_keys[idx].off);
	return *field != NULL ? *field : "";
}

/* Appends a value: control characters become spaces (a value never breaks a
 * line, which matters in the subject and keeps text parts tidy), and in
 * HTML the five characters with a meaning in text and attributes become
 * entities. */
static void
put_value(struct buf *b, const char *s, bool html)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f) {
			buf_putc(b, ' ');
			continue;
		}
		if (html) {
			switch (c) {
			case '&':
				buf_puts(b, "&amp;");
				continue;
			case '<':
				buf_puts(b, "&lt;");
				continue;
			case '>':
				buf_puts(b, "&gt;");
				continue;
			case '"':
				buf_puts(b, "&quot;");
				continue;
			case '\'':
				buf_puts(b, "&#39;");
				continue;
			default:
				break;
			}
		}
		buf_putc(b, (char)c);
	}
}

/*
 * Parses the tag at r->p (which points at "{{") and moves past it.  *kind is
 * 0, '#', '^' or '/'; *idx the key's index.
 */
static int
parse_tag(struct render *r, char *kind, int *idx)
{
	const char *tag = r->p;
	const char *q = tag + 2;
	*kind = 0;
	if (q < r->end && (*q == '#' || *q == '^' || *q == '/'))
		*kind = *q++;
	const char *k = q;
	while (q < r->end && ((*q >= 'a' && *q <= 'z') || *q == '_') && q - k <= TEMPLATE_KEY_MAX)
		q++;
	size_t klen = (size_t)(q - k);
	if (klen == 0 || klen > TEMPLATE_KEY_MAX || r->end - q < 2 || q[0] != '}' || q[1] != '}')
		return fail(r, tag,
		            "malformed tag (expected {{key}}, {{#key}}, {{^key}} or {{/key}})");
	*idx = key_index(k, klen);
	if (*idx < 0)
		return fail(r, tag, "unknown placeholder '%.*s'", (int)klen, k);
	r->p = q + 2;
	return 0;
}

static int render_block(struct render *r, bool emit, int close, int depth);

/*
 * {{#messages}} (r->p just past it): the block once per message, or once
 * unseen when there is none or it is hidden, so that its tags are checked
 * all the same.
 */
static int
render_list(struct render *r, const char *tag, bool emit, int idx, int depth)
{
	if (r->in_list)
		return fail(r, tag, "'{{#%s}}' inside itself", template_keys[idx].key);
	const char *body = r->p;
	size_t n = emit && r->v->messages != NULL ? r->v->n_messages : 0;
	int rc = 0;
	r->in_list = true;
	if (n == 0)
		rc = render_block(r, false, idx, depth + 1);
	for (size_t i = 0; i < n && rc == 0; i++) {
		r->p = body;
		r->item = &r->v->messages[i];
		rc = render_block(r, true, idx, depth + 1);
	}
	r->item = NULL;
	r->in_list = false;
	return rc;
}

/*
 * Renders from r->p until the end of the template or, inside a section,
 * until its closing tag (close >= 0: the key index it must name).  Text and
 * values are written only when emit is set, but tags are checked either way.
 */
static int
render_block(struct render *r, bool emit, int close, int depth)
{
	for (;;) {
		const char *tag = memmem(r->p, (size_t)(r->end - r->p), "{{", 2);
		const char *stop = tag != NULL ? tag : r->end;
		if (emit)
			buf_append(r->out, r->p, (size_t)(stop - r->p));
		r->p = stop;
		if (tag == NULL) {
			if (close >= 0)
				return fail(r, r->end, "section '%s' is never closed",
				            template_keys[close].key);
			return 0;
		}
		char kind;
		int idx;
		if (parse_tag(r, &kind, &idx) != 0)
			return ERR_INVALID;
		enum key_kind kk = template_keys[idx].kind;
		if (kk == KEY_ITEM && !r->in_list)
			return fail(r, tag, "'%s' is only known inside {{#messages}}",
			            template_keys[idx].key);
		if (kk == KEY_LIST && kind == 0)
			return fail(r, tag, "'%s' is a list: use {{#%s}}...{{/%s}}",
			            template_keys[idx].key, template_keys[idx].key,
			            template_keys[idx].key);
		const char *val = key_value(r, idx);
		switch (kind) {
		case 0:
			if (!emit)
				break;
			if (*val == '\0')
				return fail(r, tag, "'%s' has no value", template_keys[idx].key);
			put_value(r->out, val, r->html);
			break;
		case '#':
		case '^': {
			if (depth >= TEMPLATE_DEPTH_MAX)
				return fail(r, tag, "sections nested too deeply");
			if (kk == KEY_LIST && kind == '#') {
				if (render_list(r, tag, emit, idx, depth) != 0)
					return ERR_INVALID;
				break;
			}
			bool set = kk == KEY_LIST ? r->v->messages != NULL && r->v->n_messages > 0
			                          : *val != '\0';
			bool shown = kind == '#' ? set : !set;
			if (render_block(r, emit && shown, idx, depth + 1) != 0)
				return ERR_INVALID;
			break;
		}
		default: /* '/' */
			if (idx != close)
				return fail(r, tag, "'{{/%s}}' closes no open section",
				            template_keys[idx].key);
			return 0;
		}
	}
}

int
template_render(struct arena *a, const char *text, size_t n, bool html,
                const struct template_vars *v, char **out, char *err, size_t err_len)
{
	struct buf b;
	buf_init(&b, a, n + 256);
	struct render r = {
	        .out = &b,
	        .v = v,
	        .item = NULL,
	        .in_list = false,
	        .html = html,
	        .start = text,
	        .p = text,
	        .end = text + n,
	        .err = err,
	        .err_len = err_len,
	};
	if (err_len > 0)
		err[0] = '\0';
	if (render_block(&r, true, -1, 0) != 0)
		return ERR_INVALID;
	buf_cstr(&b); /* NUL-terminates b.p */
	*out = b.p;
	return 0;
}

bool
template_name_valid(const char *name)
{
	size_t n = strnlen(name, TEMPLATE_NAME_MAX);
	if (n == 0 || n >= TEMPLATE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

/* Reads a whole file of at most TEMPLATE_FILE_MAX bytes into arena memory. */
static int
read_file(struct arena *a, const char *path, char **data, size_t *len, char *err, size_t err_len)
{
	int rc = ERR_INVALID;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, err_len, "cannot open %s: %s", path, strerror(errno));
		return errno == ENOENT ? ERR_NOT_FOUND : ERR_INVALID;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, err_len, "%s is not a regular file", path);
		goto out;
	}
	if (st.st_size > TEMPLATE_FILE_MAX) {
		snprintf(err, err_len, "%s is larger than %d bytes", path, TEMPLATE_FILE_MAX);
		rc = ERR_TOO_LARGE;
		goto out;
	}
	/* one byte more than allowed: a file that grew since fstat is caught */
	char *p = arena_alloc(a, TEMPLATE_FILE_MAX + 2);
	size_t got = 0;
	while (got <= TEMPLATE_FILE_MAX) {
		ssize_t r = read(fd, p + got, TEMPLATE_FILE_MAX + 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, err_len, "cannot read %s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	if (got > TEMPLATE_FILE_MAX) {
		snprintf(err, err_len, "%s is larger than %d bytes", path, TEMPLATE_FILE_MAX);
		rc = ERR_TOO_LARGE;
		goto out;
	}
	p[got] = '\0';
	*data = p;
	*len = got;
	rc = 0;
out:
	close(fd);
	return rc;
}

/* The subject is one header line: whitespace runs (new lines included)
 * become one space, and none is left at either end. */
static char *
fold_line(struct arena *a, const char *s)
{
	size_t n = strlen(s), o = 0;
	char *d = arena_alloc(a, n + 1);
	bool space = false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			space = o > 0;
			continue;
		}
		if (space)
			d[o++] = ' ';
		space = false;
		d[o++] = c;
	}
	d[o] = '\0';
	return d;
}

int
template_render_file(struct arena *a, const char *dir, const char *name, enum template_part part,
                     const struct template_vars *v, char **out, char *err, size_t err_len)
{
	static const char *const ext[] = {"subject", "txt", "html"};
	char path[4096];
	char *text = NULL;
	size_t len = 0;
	if (err_len > 0)
		err[0] = '\0';
	if (!template_name_valid(name)) {
		snprintf(err, err_len, "invalid template name");
		return ERR_INVALID;
	}
	int n = snprintf(path, sizeof(path), "%s/%s.%s", dir, name, ext[part]);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, err_len, "template path too long");
		return ERR_INVALID;
	}
	int rc = read_file(a, path, &text, &len, err, err_len);
	if (rc != 0)
		return rc;
	char msg[TEMPLATE_ERR_MAX];
	if (template_render(a, text, len, part == TEMPLATE_HTML, v, out, msg, sizeof(msg)) != 0) {
		snprintf(err, err_len, "%s.%s: %s", name, ext[part], msg);
		return ERR_INVALID;
	}
	if (part == TEMPLATE_SUBJECT) {
		*out = fold_line(a, *out);
		if (**out == '\0') {
			snprintf(err, err_len, "%s.subject: the subject is empty", name);
			return ERR_INVALID;
		}
	}
	return 0;
}

/* Parses exactly n decimal digits at *p and moves past them. */
static bool
digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool
expect(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

int
template_human_time(const char *s, char *out, size_t out_len)
{
	static const char *const months[] = {"January",   "February", "March",    "April",
	                                     "May",       "June",     "July",     "August",
	                                     "September", "October",  "November", "December"};
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	const char *p = s;
	if (!digits(&p, 4, &y) || !expect(&p, '-') || !digits(&p, 2, &mo) || !expect(&p, '-') ||
	    !digits(&p, 2, &d))
		return ERR_INVALID;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return ERR_INVALID;
	p++;
	if (!digits(&p, 2, &h) || !expect(&p, ':') || !digits(&p, 2, &mi) || !expect(&p, ':') ||
	    !digits(&p, 2, &sec))
		return ERR_INVALID;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return ERR_INVALID;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		p++;
		if (!digits(&p, 2, &oh) || !expect(&p, ':') || !digits(&p, 2, &om) || oh > 23 ||
		    om > 59)
			return ERR_INVALID;
	} else {
		return ERR_INVALID;
	}
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return ERR_INVALID;
	struct tm tm = {.tm_year = y - 1900,
	                .tm_mon = mo - 1,
	                .tm_mday = d,
	                .tm_hour = h,
	                .tm_min = mi,
	                .tm_sec = sec > 59 ? 59 : sec};
	time_t t = timegm(&tm);
	/* timegm normalises 31 February into March: refuse such dates */
	if (t == (time_t)-1 || tm.tm_mday != d || tm.tm_mon != mo - 1)
		return ERR_INVALID;
	t -= (time_t)sign * (oh * 3600 + om * 60);
	struct tm u;
	if (gmtime_r(&t, &u) == NULL)
		return ERR_INVALID;
	int n = snprintf(out, out_len, "%d %s %d, %02d:%02d UTC", u.tm_mday, months[u.tm_mon],
	                 u.tm_year + 1900, u.tm_hour, u.tm_min);
	if (n < 0 || (size_t)n >= out_len)
		return ERR_INVALID;
	return 0;
}

int
template_human_date(const char *s, char *out, size_t out_len)
{
	static const char *const months[] = {"January",   "February", "March",    "April",
	                                     "May",       "June",     "July",     "August",
	                                     "September", "October",  "November", "December"};
	int y, mo, d;
	const char *p = s;
	if (!digits(&p, 4, &y) || !expect(&p, '-') || !digits(&p, 2, &mo) || !expect(&p, '-') ||
	    !digits(&p, 2, &d) || *p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31)
		return ERR_INVALID;
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = 12};
	/* timegm normalises 31 April into May: refuse such dates */
	if (timegm(&tm) == (time_t)-1 || tm.tm_mday != d || tm.tm_mon != mo - 1)
		return ERR_INVALID;
	int n = snprintf(out, out_len, "%d %s %d", d, months[mo - 1], y);
	if (n < 0 || (size_t)n >= out_len)
		return ERR_INVALID;
	return 0;
}
