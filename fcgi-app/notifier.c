/*
 * notifier.c - atrium-notifier: delivers the outbox.
 *
 * The workers write outbox rows in the transaction of the change that
 * causes them (invites, password resets); this daemon sends them.  It
 * connects as the atrium_notifier role (every tenant's outbox, read-only
 * branding, nothing else), LISTENs on atrium_outbox and loops:
 *
 *   claim one due email row (FOR UPDATE SKIP LOCKED) -> render -> send over
 *   SMTP -> record sent / retry at (backoff) / dead, all in the claim's
 *   transaction; repeat until nothing is due, then wait on the connection's
 *   socket for a NOTIFY, at most until the next retry is due (or
 *   ATRIUM_NOTIFY_POLL_S).
 *
 * The row lock is held while the mail is sent: another notifier skips the
 * row, so several instances never send one row twice while both are alive.
 * Delivery is at-least-once: if this process or its connection dies after
 * the SMTP server accepted a message and before COMMIT, the row is still
 * pending and is sent again.  Once a row is sent or dead its invite/reset
 * link (a one-time token) is removed from the payload.
 *
 * SIGTERM/SIGINT: the delivery in flight finishes and commits, then exit 0.
 * A lost database connection is retried with a short backoff, forever.
 * One JSON line per delivery attempt on stderr, never with the link or the
 * message body.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "arena.h"
#include "common.h"
#include "config.h"
#include "log.h"
#include "mail.h"
#include "template.h"

#define NOTIFY_BACKOFF_BASE_MS  2000L    /* first retry after ~2 s ... */
#define NOTIFY_BACKOFF_MAX_MS   3600000L /* ... doubling up to an hour */
#define NOTIFY_JITTER_PERCENT   20       /* +-20 %: retries of a burst spread out */
#define NOTIFY_RECONNECT_MIN_MS 250L
#define NOTIFY_RECONNECT_MAX_MS 5000L
#define NOTIFY_PARK_S           3600 /* a row whose outcome could not be recorded */
#define NOTIFY_SMTP_CONNECT_S   10
#define NOTIFY_SMTP_TOTAL_S     30
#define NOTIFY_SECRET_MAX       4096 /* bytes of the SMTP password file */
#define NOTIFY_URL_MAX          2048 /* bytes of a link or logo URL */
#define NOTIFY_LOG_LINE         2048

/* The templates this notifier sends; checked at start-up. */
static const char *const known_templates[] = {"invite", "password_reset"};

struct settings {
	const char *dsn;
	char template_dir[PATH_MAX];
	char mail_from[MAIL_ADDRESS_MAX + 1];
	char *smtp_password; /* heap, wiped at exit */
	struct mail_server smtp;
	int max_attempts;
	int poll_s;
};

/* One claimed outbox row with what its email needs (arena strings). */
struct row {
	const char *tenant_id;
	const char *id;
	const char *template;
	const char *address;
	int attempts; /* before this one */
	const char *name;
	const char *link;
	const char *expires_at;
	const char *tenant_code;
	const char *display_name;
	const char *support_email;
	const char *color_primary;
	const char *logo_url;
};

struct outcome {
	enum mail_status status;
	long smtp_code;
	long ms;
	char error[MAIL_ERROR_MAX + 64];
};

static volatile sig_atomic_t stopping;
static int wake_pipe[2] = {-1, -1};

/* ------------------------------------------------------------ logging */

static void say(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
say(const char *level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmessage(level, NULL, fmt, ap);
	va_end(ap);
}

/* The delivery line: ids, template, result, SMTP code, error.  The row's
 * payload (the link) and the message never appear. */
static void
log_delivery(const struct row *r, const char *result, const struct outcome *o, long retry_ms)
{
	char ts[40], id[80], tenant[100], tmpl[160], err[700], line[NOTIFY_LOG_LINE];
	log_timestamp(ts, sizeof(ts));
	log_escape(id, sizeof(id), r->id);
	log_escape(tenant, sizeof(tenant), r->tenant_code);
	log_escape(tmpl, sizeof(tmpl), r->template);
	log_escape(err, sizeof(err), o->error);
	const char *level = strcmp(result, "sent") == 0    ? "info"
	                    : strcmp(result, "retry") == 0 ? "warn"
	                                                   : "error";
	int n = snprintf(line, sizeof(line),
	                 "{\"t\":\"%s\",\"level\":\"%s\",\"event\":\"delivery\",\"pid\":%ld,"
	                 "\"outbox_id\":\"%s\",\"tenant\":\"%s\",\"template\":\"%s\","
	                 "\"attempt\":%d,\"result\":\"%s\",\"smtp_code\":%ld,\"ms\":%ld,"
	                 "\"retry_in_ms\":%ld,\"error\":\"%s\"}",
	                 ts, level, (long)getpid(), id, tenant, tmpl, r->attempts + 1, result,
	                 o->smtp_code, o->ms, retry_ms, err);
	log_write_line(line, n, sizeof(line));
}

/* ------------------------------------------------------------ signals */

static void
on_term(int sig)
{
	(void)sig;
	int saved = errno;
	stopping = 1;
	/* wakes a poll() that is already waiting (the flag alone would race) */
	ssize_t w = write(wake_pipe[1], "x", 1);
	(void)w;
	errno = saved;
}

static int
install_signals(void)
{
	if (pipe2(wake_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
		return -1;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART; /* the wake pipe interrupts what must stop */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static void
drain_wake_pipe(void)
{
	char b[64];
	while (read(wake_pipe[0], b, sizeof(b)) > 0)
		;
}

/* Sleeps ms milliseconds or until a signal asks us to stop. */
static void
pause_ms(long ms)
{
	struct pollfd p = {.fd = wake_pipe[0], .events = POLLIN};
	if (!stopping && poll(&p, 1, (int)ms) > 0)
		drain_wake_pipe();
}

static uint64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------------ settings */

static int
int_setting(const char *name, long long def, long long min, long long max, int *out)
{
	const char *s = getenv(name);
	long long v = def;
	if (s != NULL && *s != '\0' && config_parse_int(s, min, max, &v) != 0) {
		say("error", "%s must be an integer in [%lld, %lld]", name, min, max);
		return -1;
	}
	*out = (int)v;
	return 0;
}

/* Reads a secret file (the SMTP password) without its trailing newline. */
static char *
read_secret(const char *path)
{
	char *p = NULL;
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		say("error", "cannot open ATRIUM_SMTP_PASSWORD_FILE %s: %s", path, strerror(errno));
		return NULL;
	}
	if ((p = calloc(1, NOTIFY_SECRET_MAX + 1)) == NULL)
		goto out;
	size_t n = fread(p, 1, NOTIFY_SECRET_MAX + 1, f);
	if (ferror(f) || n > NOTIFY_SECRET_MAX) {
		say("error", "ATRIUM_SMTP_PASSWORD_FILE %s is unreadable or over %d bytes", path,
		    NOTIFY_SECRET_MAX);
		OPENSSL_cleanse(p, NOTIFY_SECRET_MAX + 1);
		free(p);
		p = NULL;
		goto out;
	}
	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		p[--n] = '\0';
out:
	fclose(f);
	return p;
}

/* ATRIUM_TEMPLATE_DIR; a development build defaults to its own checkout's
 * fcgi-app/templates (as config.c finds the common-password list). */
static int
template_dir_setting(struct settings *s)
{
	const char *dir = getenv("ATRIUM_TEMPLATE_DIR");
#ifdef ATRIUM_REPO_DIR
	if (dir == NULL || *dir == '\0')
		dir = ATRIUM_REPO_DIR "/fcgi-app/templates";
#endif
	if (dir == NULL || *dir == '\0') {
		say("error",
		    "ATRIUM_TEMPLATE_DIR is not set (the directory of the email templates)");
		return -1;
	}
	int n = snprintf(s->template_dir, sizeof(s->template_dir), "%s", dir);
	if (n < 0 || (size_t)n >= sizeof(s->template_dir)) {
		say("error", "ATRIUM_TEMPLATE_DIR is too long");
		return -1;
	}
	return 0;
}

static int
settings_load(struct settings *s)
{
	memset(s, 0, sizeof(*s));
	s->dsn = getenv("ATRIUM_NOTIFIER_DSN");
	if (s->dsn == NULL || *s->dsn == '\0') {
		say("error", "ATRIUM_NOTIFIER_DSN is not set (libpq conninfo of atrium_notifier)");
		return -1;
	}
	s->smtp.url = getenv("ATRIUM_SMTP_URL");
	if (s->smtp.url == NULL ||
	    (strncmp(s->smtp.url, "smtp://", 7) != 0 && strncmp(s->smtp.url, "smtps://", 8) != 0)) {
		say("error", "ATRIUM_SMTP_URL must be smtp://HOST[:PORT] or smtps://HOST[:PORT]");
		return -1;
	}
	const char *tls = getenv("ATRIUM_SMTP_STARTTLS");
	if (mail_starttls_parse(tls != NULL && *tls != '\0' ? tls : "try", &s->smtp.starttls) !=
	    0) {
		say("error", "ATRIUM_SMTP_STARTTLS must be off, try or required");
		return -1;
	}
	const char *ca = getenv("ATRIUM_SMTP_CA_FILE");
	s->smtp.ca_file = ca != NULL && *ca != '\0' ? ca : NULL;
	s->smtp.connect_timeout_s = NOTIFY_SMTP_CONNECT_S;
	s->smtp.timeout_s = NOTIFY_SMTP_TOTAL_S;
	const char *user = getenv("ATRIUM_SMTP_USER");
	if (user != NULL && *user != '\0') {
		const char *pwfile = getenv("ATRIUM_SMTP_PASSWORD_FILE");
		if (pwfile == NULL || *pwfile == '\0') {
			say("error", "ATRIUM_SMTP_USER needs ATRIUM_SMTP_PASSWORD_FILE");
			return -1;
		}
		if ((s->smtp_password = read_secret(pwfile)) == NULL)
			return -1;
		s->smtp.user = user;
		s->smtp.password = s->smtp_password;
		if (strncmp(s->smtp.url, "smtps://", 8) != 0 &&
		    s->smtp.starttls != MAIL_STARTTLS_REQUIRED)
			say("warn", "SMTP credentials may travel in the clear: use smtps:// or "
			            "ATRIUM_SMTP_STARTTLS=required");
	}
	const char *from = getenv("ATRIUM_MAIL_FROM");
	const char *base = getenv("ATRIUM_BASE_DOMAIN");
	int n;
	if (from != NULL && *from != '\0')
		n = snprintf(s->mail_from, sizeof(s->mail_from), "%s", from);
	else
		n = snprintf(s->mail_from, sizeof(s->mail_from), "noreply@%s",
		             base != NULL && *base != '\0' ? base : "localhost");
	if (n < 0 || (size_t)n >= sizeof(s->mail_from) || !mail_address_valid(s->mail_from)) {
		say("error",
		    "the sender address '%s' (ATRIUM_MAIL_FROM, or noreply@ + "
		    "ATRIUM_BASE_DOMAIN) is not a valid address",
		    s->mail_from);
		return -1;
	}
	if (int_setting("ATRIUM_NOTIFY_MAX_ATTEMPTS", 8, 1, 100, &s->max_attempts) != 0 ||
	    int_setting("ATRIUM_NOTIFY_POLL_S", 5, 1, 3600, &s->poll_s) != 0)
		return -1;
	return template_dir_setting(s);
}

static void
settings_free(struct settings *s)
{
	if (s->smtp_password != NULL) {
		OPENSSL_cleanse(s->smtp_password, NOTIFY_SECRET_MAX + 1);
		free(s->smtp_password);
		s->smtp_password = NULL;
	}
}

/* Every known template renders with every value set: a missing file or a
 * bad tag stops the start instead of killing rows one by one. */
static int
check_templates(const struct settings *s)
{
	const struct template_vars v = {
	        .display_name = "Check",
	        .name = "Check",
	        .link = "https://check.invalid/",
	        .expires_at = "1 January 2030, 00:00 UTC",
	        .support_email = "support@check.invalid",
	        .color_primary = "#4f46e5",
	        .logo_url = "https://check.invalid/logo.png",
	};
	struct arena *a = arena_new(16 * 1024);
	int rc = 0;
	for (size_t i = 0; i < ARRAY_LEN(known_templates) && rc == 0; i++) {
		for (int part = TEMPLATE_SUBJECT; part <= TEMPLATE_HTML && rc == 0; part++) {
			char *out, err[TEMPLATE_ERR_MAX + 64];
			if (template_render_file(a, s->template_dir, known_templates[i],
			                         (enum template_part)part, &v, &out, err,
			                         sizeof(err)) != 0) {
				say("error", "template check failed in %s: %s", s->template_dir,
				    err);
				rc = -1;
			}
		}
	}
	arena_free(a);
	return rc;
}

/* ------------------------------------------------------------ database */

/* clang-format off */
/* The due email rows, oldest due first; a row another notifier holds is
 * skipped, not waited for.  Only the outbox row is locked (the notifier may
 * not lock branding, and needs not). */
static const char Q_CLAIM[] =
	"SELECT o.tenant_id, o.id, o.template, o.address, o.attempts,"
	"       o.payload ->> 'name', o.payload ->> 'link', o.payload ->> 'expires_at',"
	"       t.code, coalesce(b.display_name, t.name), b.support_email,"
	"       b.color_primary, b.logo_url"
	"  FROM outbox o"
	"  JOIN tenants t ON t.id = o.tenant_id"
	"  LEFT JOIN tenant_branding b ON b.tenant_id = o.tenant_id"
	" WHERE o.status = 'pending' AND o.channel = 'email'"
	"   AND o.next_attempt_at <= now() AND o.send_after <= now()"
	" ORDER BY o.next_attempt_at"
	" LIMIT 1"
	"   FOR UPDATE OF o SKIP LOCKED";

/* Milliseconds until the next email row falls due (NULL: none pending).
 * Run in the transaction of a claim that found nothing, so that "due"
 * means the same now(): rows due but locked by another notifier are its
 * business and do not make us spin. */
static const char Q_NEXT_DUE[] =
	"SELECT ceil(extract(epoch FROM min(greatest(next_attempt_at, send_after)) - now())"
	"            * 1000)::bigint"
	"  FROM outbox"
	" WHERE status = 'pending' AND channel = 'email'"
	"   AND greatest(next_attempt_at, send_after) > now()";

/* The secret link goes once the row is final.  (A payload that is not an
 * object has no link, and '-' would fail on a scalar.) */
#define DROP_LINK \
	"payload = CASE WHEN jsonb_typeof(payload) = 'object' THEN payload - 'link'" \
	"               ELSE payload END"

static const char Q_SENT[] =
	"UPDATE outbox SET status = 'sent', sent_at = now(), attempts = attempts + 1,"
	"       last_error = NULL, " DROP_LINK
	" WHERE tenant_id = $1 AND id = $2";

static const char Q_RETRY[] =
	"UPDATE outbox SET attempts = attempts + 1, last_error = $4,"
	"       next_attempt_at = now() + make_interval(secs => $3::double precision)"
	" WHERE tenant_id = $1 AND id = $2";

static const char Q_DEAD[] =
	"UPDATE outbox SET status = 'dead', attempts = attempts + 1,"
	"       last_error = $3, " DROP_LINK
	" WHERE tenant_id = $1 AND id = $2";

/* Last resort when the outcome could not be recorded: without it the row
 * would be claimed again at once and the recipient mailed in a loop. */
static const char Q_PARK[] =
	"UPDATE outbox SET status = $3, attempts = attempts + 1, last_error = $4,"
	"       sent_at = CASE WHEN $3 = 'sent' THEN now() ELSE sent_at END,"
	"       next_attempt_at = now() + make_interval(secs => $5::double precision)"
	" WHERE tenant_id = $1 AND id = $2";
/* clang-format on */

static void
notice_quiet(void *arg, const PGresult *res)
{
	(void)arg;
	(void)res;
}

static PGconn *
db_connect(const struct settings *s)
{
	/* earlier keywords are defaults the DSN may override */
	const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
	const char *const vals[] = {"5", "atrium-notifier", s->dsn, NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	PGresult *res = NULL;
	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		say("error", "database connection failed: %s",
		    c != NULL ? PQerrorMessage(c) : "out of memory");
		goto fail;
	}
	PQsetNoticeReceiver(c, notice_quiet, NULL);
	res = PQexec(c, "LISTEN atrium_outbox");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		say("error", "LISTEN atrium_outbox failed: %s", PQerrorMessage(c));
		goto fail;
	}
	PQclear(res);
	return c;
fail:
	PQclear(res);
	PQfinish(c);
	return NULL;
}

/* Logs a failed statement, rolls back what can be, and says whether the
 * connection is gone (ERR_UNAVAILABLE) or only the statement (ERR_DB). */
static int
db_failed(PGconn *c, const PGresult *res, const char *what)
{
	say("error", "%s failed: %s", what,
	    res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(c));
	if (PQstatus(c) != CONNECTION_OK)
		return ERR_UNAVAILABLE;
	if (PQtransactionStatus(c) != PQTRANS_IDLE) {
		PGresult *rb = PQexec(c, "ROLLBACK");
		PQclear(rb);
	}
	return PQstatus(c) == CONNECTION_OK ? ERR_DB : ERR_UNAVAILABLE;
}

static int
exec_command(PGconn *c, const char *sql, int n, const char *const *params)
{
	PGresult *res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	int rc = 0;
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = db_failed(c, res, n == 0 ? sql : "UPDATE outbox");
	PQclear(res);
	return rc;
}

static const char *
dup_value(struct arena *a, const PGresult *res, int col)
{
	return PQgetisnull(res, 0, col) ? NULL : arena_strdup(a, PQgetvalue(res, 0, col));
}

/* ------------------------------------------------------------ one delivery */

/* An absolute http(s) URL that can go into an href/src unchanged. */
static bool
url_ok(const char *u)
{
	if (u == NULL || (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0))
		return false;
	size_t n = strlen(u);
	if (n > NOTIFY_URL_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)u[i];
		if (c <= 0x20 || c == 0x7f || strchr("\"'<>\\`", c) != NULL)
			return false;
	}
	return true;
}

static bool
color_ok(const char *c)
{
	if (c == NULL || strlen(c) != 7 || c[0] != '#')
		return false;
	for (int i = 1; i < 7; i++)
		if (!((c[i] >= '0' && c[i] <= '9') || (c[i] >= 'a' && c[i] <= 'f')))
			return false;
	return true;
}

static void permanent(struct outcome *o, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void
permanent(struct outcome *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(o->error, sizeof(o->error), fmt, ap);
	va_end(ap);
	o->status = MAIL_PERMANENT;
}

/*
 * Renders the row's email and sends it.  Anything wrong with the row itself
 * (an address we will not write, an unknown template, a value the template
 * needs and the payload lacks) is permanent: retrying cannot fix it.
 */
static void
attempt(const struct row *r, const struct settings *s, struct arena *a, struct outcome *o)
{
	char when[64];
	char err[TEMPLATE_ERR_MAX + 64];
	memset(o, 0, sizeof(*o));
	if (!template_name_valid(r->template)) {
		permanent(o, "invalid template name");
		return;
	}
	if (!mail_address_valid(r->address)) {
		permanent(o, "recipient address not supported");
		return;
	}
	struct template_vars v = {
	        .display_name = r->display_name,
	        .name = r->name,
	        .link = url_ok(r->link) ? r->link : NULL,
	        .expires_at = r->expires_at != NULL && template_human_time(r->expires_at, when,
	                                                                   sizeof(when)) == 0
	                              ? when
	                              : NULL,
	        .support_email = r->support_email != NULL && mail_address_valid(r->support_email)
	                                 ? r->support_email
	                                 : NULL,
	        .color_primary = color_ok(r->color_primary) ? r->color_primary : "#4f46e5",
	        .logo_url = url_ok(r->logo_url) ? r->logo_url : NULL,
	};
	char *parts[3];
	for (int p = TEMPLATE_SUBJECT; p <= TEMPLATE_HTML; p++) {
		int rc =
		        template_render_file(a, s->template_dir, r->template, (enum template_part)p,
		                             &v, &parts[p], err, sizeof(err));
		if (rc == ERR_NOT_FOUND) {
			permanent(o, "unknown template '%s'", r->template);
			return;
		}
		if (rc != 0) {
			permanent(o, "template: %s", err);
			return;
		}
	}
	struct mail_message m = {
	        .from_name = r->display_name,
	        .from_addr = s->mail_from,
	        .reply_to = v.support_email,
	        .to_addr = r->address,
	        .subject = parts[TEMPLATE_SUBJECT],
	        .text = parts[TEMPLATE_TEXT],
	        .html = parts[TEMPLATE_HTML],
	};
	char *msg;
	size_t len;
	if (mail_build(a, &m, time(NULL), &msg, &len) != 0) {
		permanent(o, "message could not be built");
		return;
	}
	struct mail_result res;
	uint64_t t0 = now_ms();
	mail_send(&s->smtp, s->mail_from, r->address, msg, len, &res);
	o->ms = (long)(now_ms() - t0);
	o->status = res.status;
	o->smtp_code = res.smtp_code;
	snprintf(o->error, sizeof(o->error), "%s", res.error);
}

/* Exponential backoff from the attempts made so far, with jitter. */
static long
backoff_ms(int attempts)
{
	long ms = NOTIFY_BACKOFF_BASE_MS;
	for (int i = 0; i < attempts && ms < NOTIFY_BACKOFF_MAX_MS; i++)
		ms *= 2;
	if (ms > NOTIFY_BACKOFF_MAX_MS)
		ms = NOTIFY_BACKOFF_MAX_MS;
	unsigned int r = 0;
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (unsigned int)rand();
	long span = 2 * NOTIFY_JITTER_PERCENT + 1; /* -20..+20 % */
	long pct = 100 - NOTIFY_JITTER_PERCENT + (long)(r % (unsigned int)span);
	return ms / 100 * pct;
}

/*
 * Writes the outcome in the claim's transaction and commits.  Returns 0 or
 * the database error; *result is what the log says.
 */
static int
record(PGconn *c, const struct row *r, const struct settings *s, struct outcome *o,
       const char **result, long *retry_ms)
{
	char secs[32];
	const char *params[5] = {r->tenant_id, r->id, NULL, NULL, NULL};
	int rc;
	*retry_ms = 0;
	if (o->status == MAIL_SENT) {
		*result = "sent";
		rc = exec_command(c, Q_SENT, 2, params);
	} else if (o->status == MAIL_TEMPORARY && r->attempts + 1 < s->max_attempts) {
		*result = "retry";
		*retry_ms = backoff_ms(r->attempts);
		snprintf(secs, sizeof(secs), "%ld.%03ld", *retry_ms / 1000, *retry_ms % 1000);
		params[2] = secs;
		params[3] = o->error;
		rc = exec_command(c, Q_RETRY, 4, params);
	} else {
		*result = "dead";
		if (o->status == MAIL_TEMPORARY) {
			/* room for the prefix: the reason is cut, never the line */
			char e[sizeof(o->error) - 64];
			size_t n = strnlen(o->error, sizeof(e) - 1);
			memcpy(e, o->error, n);
			e[n] = '\0';
			snprintf(o->error, sizeof(o->error), "gave up after %d attempts: %s",
			         r->attempts + 1, e);
		}
		params[2] = o->error;
		rc = exec_command(c, Q_DEAD, 3, params);
	}
	if (rc == 0)
		rc = exec_command(c, "COMMIT", 0, NULL);
	return rc;
}

/* record() failed but the connection lives: park the row so it is not
 * claimed (and mailed) again at once. */
static void
park(PGconn *c, const struct row *r, const char *result)
{
	char err[128];
	snprintf(err, sizeof(err), "notifier: the outcome (%s) could not be recorded", result);
	const char *status = strcmp(result, "sent") == 0   ? "sent"
	                     : strcmp(result, "dead") == 0 ? "dead"
	                                                   : "pending";
	char secs[16];
	snprintf(secs, sizeof(secs), "%d", NOTIFY_PARK_S);
	const char *params[5] = {r->tenant_id, r->id, status, err, secs};
	if (exec_command(c, "BEGIN", 0, NULL) == 0 && exec_command(c, Q_PARK, 5, params) == 0 &&
	    exec_command(c, "COMMIT", 0, NULL) == 0)
		say("warn", "outbox row %s parked as %s", r->id, status);
}

/*
 * Claims one due row and delivers it.  Returns 1 when a row was handled, 0
 * when none is due (*due_ms: until the next one, -1 when none is pending),
 * or a negative error (ERR_UNAVAILABLE: the connection is gone).
 */
static int
deliver_one(PGconn *c, const struct settings *s, struct arena *a, long *due_ms)
{
	PGresult *res = NULL;
	int rc = exec_command(c, "BEGIN", 0, NULL);
	if (rc != 0)
		return rc;
	res = PQexecParams(c, Q_CLAIM, 0, NULL, NULL, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = db_failed(c, res, "claim");
		goto out;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		res = PQexecParams(c, Q_NEXT_DUE, 0, NULL, NULL, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
			rc = db_failed(c, res, "next due");
			goto out;
		}
		long long ms = -1;
		if (!PQgetisnull(res, 0, 0) &&
		    config_parse_int(PQgetvalue(res, 0, 0), 0, LLONG_MAX, &ms) != 0)
			ms = 0;
		*due_ms = ms > LONG_MAX ? LONG_MAX : (long)ms;
		rc = exec_command(c, "COMMIT", 0, NULL);
		goto out;
	}
	long long attempts = 0;
	if (config_parse_int(PQgetvalue(res, 0, 4), 0, INT_MAX - 1, &attempts) != 0)
		attempts = 0;
	struct row r = {
	        .tenant_id = dup_value(a, res, 0),
	        .id = dup_value(a, res, 1),
	        .template = dup_value(a, res, 2),
	        .address = dup_value(a, res, 3),
	        .attempts = (int)attempts,
	        .name = dup_value(a, res, 5),
	        .link = dup_value(a, res, 6),
	        .expires_at = dup_value(a, res, 7),
	        .tenant_code = dup_value(a, res, 8),
	        .display_name = dup_value(a, res, 9),
	        .support_email = dup_value(a, res, 10),
	        .color_primary = dup_value(a, res, 11),
	        .logo_url = dup_value(a, res, 12),
	};
	PQclear(res);
	res = NULL;

	struct outcome o;
	const char *result = "retry";
	long retry_ms = 0;
	attempt(&r, s, a, &o);
	rc = record(c, &r, s, &o, &result, &retry_ms);
	log_delivery(&r, result, &o, retry_ms);
	if (rc == ERR_DB) {
		if (o.status == MAIL_SENT)
			say("error", "outbox row %s was sent but could not be recorded", r.id);
		park(c, &r, result);
	} else if (rc == ERR_UNAVAILABLE && o.status == MAIL_SENT) {
		say("error",
		    "outbox row %s was sent but the connection was lost before the commit: "
		    "it will be sent again",
		    r.id);
	}
	if (rc == 0)
		rc = 1;
out:
	PQclear(res);
	return rc;
}

/* ------------------------------------------------------------ main loop */

/*
 * Delivers every due row.  Notifications received so far are dropped first:
 * the claims that follow see every row they announced.  On return *wait_ms
 * is how long the loop may sleep.
 */
static int
drain(PGconn *c, const struct settings *s, struct arena *a, long *wait_ms)
{
	PGnotify *n;
	if (PQconsumeInput(c) != 1)
		return db_failed(c, NULL, "reading from the database");
	while ((n = PQnotifies(c)) != NULL)
		PQfreemem(n);
	long poll_ms = (long)s->poll_s * 1000;
	*wait_ms = poll_ms;
	while (!stopping) {
		long due_ms = -1;
		int rc = deliver_one(c, s, a, &due_ms);
		arena_reset(a);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			if (due_ms >= 0 && due_ms < poll_ms)
				*wait_ms = due_ms;
			return 0;
		}
	}
	return 0;
}

/* Sleeps until a NOTIFY arrives, ms pass, or a signal asks us to stop. */
static int
wait_for_work(PGconn *c, long ms)
{
	/* a notification read along with a query result is already buffered */
	PGnotify *n = PQnotifies(c);
	if (n != NULL) {
		PQfreemem(n);
		return 0;
	}
	struct pollfd p[2] = {
	        {.fd = PQsocket(c), .events = POLLIN},
	        {.fd = wake_pipe[0], .events = POLLIN},
	};
	if (p[0].fd < 0)
		return ERR_UNAVAILABLE;
	if (stopping)
		return 0;
	int r = poll(p, 2, (int)(ms > INT_MAX ? INT_MAX : ms));
	if (r < 0 && errno != EINTR) {
		say("error", "poll: %s", strerror(errno));
		pause_ms(1000);
		return 0;
	}
	if (r > 0 && (p[1].revents & POLLIN))
		drain_wake_pipe();
	/* readable: a notification, or the server closing the connection */
	if (r > 0 && p[0].revents != 0 && PQconsumeInput(c) != 1)
		return db_failed(c, NULL, "reading from the database");
	return 0;
}

/* The SMTP URL for the log, without user:password@ should it carry one. */
static void
redact_url(const char *url, char *out, size_t n)
{
	const char *host = strstr(url, "://");
	host = host != NULL ? host + 3 : url;
	const char *end = host + strcspn(host, "/?#");
	const char *at = memchr(host, '@', (size_t)(end - host));
	if (at == NULL)
		snprintf(out, n, "%s", url);
	else
		snprintf(out, n, "%.*s***@%s", (int)(host - url), url, at + 1);
}

int
main(void)
{
	struct settings s;
	if (install_signals() != 0) {
		say("error", "pipe: %s", strerror(errno));
		return 1;
	}
	if (settings_load(&s) != 0) {
		settings_free(&s);
		return 2;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		say("error", "curl_global_init failed");
		settings_free(&s);
		return 1;
	}
	if (check_templates(&s) != 0) {
		curl_global_cleanup();
		settings_free(&s);
		return 2;
	}
	char url[256];
	redact_url(s.smtp.url, url, sizeof(url));
	say("info", "started: smtp %s, from %s, templates %s, max attempts %d", url, s.mail_from,
	    s.template_dir, s.max_attempts);

	struct arena *a = arena_new(64 * 1024);
	PGconn *c = NULL;
	long reconnect_ms = NOTIFY_RECONNECT_MIN_MS;
	while (!stopping) {
		if (c == NULL) {
			if ((c = db_connect(&s)) == NULL) {
				pause_ms(reconnect_ms);
				reconnect_ms *= 2;
				if (reconnect_ms > NOTIFY_RECONNECT_MAX_MS)
					reconnect_ms = NOTIFY_RECONNECT_MAX_MS;
				continue;
			}
			reconnect_ms = NOTIFY_RECONNECT_MIN_MS;
			say("info", "listening on atrium_outbox");
		}
		long wait_ms = (long)s.poll_s * 1000;
		int rc = drain(c, &s, a, &wait_ms);
		if (rc == 0 && !stopping)
			rc = wait_for_work(c, wait_ms);
		else if (rc == ERR_DB)
			pause_ms(wait_ms); /* a failing statement must not spin */
		if (rc == ERR_UNAVAILABLE) {
			say("warn", "database connection lost; reconnecting");
			PQfinish(c);
			c = NULL;
		}
	}
	PQfinish(c);
	arena_free(a);
	curl_global_cleanup();
	settings_free(&s);
	close(wake_pipe[0]);
	close(wake_pipe[1]);
	say("info", "stopped");
	return 0;
}
