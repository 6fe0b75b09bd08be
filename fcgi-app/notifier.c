/*
 * notifier.c - atrium-notifier: delivers the outbox.
 *
 * The workers write outbox rows in the transaction of the change that
 * causes them (invites, password resets, message digests, deliverables,
 * milestones); this daemon sends them, by email (SMTP) or WhatsApp (Cloud
 * API).  It connects as the atrium_notifier role (every tenant's outbox,
 * read-only branding and recipients, nothing else), LISTENs on
 * atrium_outbox and loops:
 *
 *   claim one due row (FOR UPDATE SKIP LOCKED) -> re-check the recipient's
 *   preference -> render -> send -> record sent / retry at (backoff) / dead
 *   (and, for a WhatsApp message refused for good, the email that stands in
 *   for it), all in the claim's transaction; repeat until nothing is due,
 *   then wait on the connection's socket for a NOTIFY, at most until the
 *   next retry is due (or ATRIUM_NOTIFY_POLL_S).
 *
 * The row lock is held while the message is sent: another notifier skips
 * the row, so several instances never send one row twice while both are
 * alive.  Delivery is at-least-once: if this process or its connection dies
 * after the SMTP server (or the Cloud API) accepted a message and before
 * COMMIT, the row is still pending and is sent again.  Once an invite or
 * a reset is sent or dead its link (a one-time token) is removed from the
 * payload.
 *
 * Preferences: the workers write a row only for a recipient who wants it;
 * one who turned the topic off since (the one-click unsubscribe of an
 * earlier email) gets nothing: the row becomes dead, last_error
 * 'unsubscribed'.  Activity emails carry List-Unsubscribe (RFC 8058) with a
 * signed token (unsub.h) and the same URL as a visible link.
 *
 * SIGTERM/SIGINT: the delivery in flight finishes and commits, then exit 0.
 * A lost database connection is retried with a short backoff, forever.
 * One JSON line per delivery attempt on stderr, never with the link, the
 * message text or a credential.
 *
 * Settings (environment; the README lists them too):
 *   ATRIUM_NOTIFIER_DSN         libpq conninfo of atrium_notifier (required)
 *   ATRIUM_SMTP_URL             smtp://HOST[:PORT] or smtps://... (required)
 *   ATRIUM_SMTP_STARTTLS        off | try | required (try)
 *   ATRIUM_SMTP_CA_FILE         PEM bundle for the SMTP server (system CAs)
 *   ATRIUM_SMTP_USER, ATRIUM_SMTP_PASSWORD_FILE  SMTP AUTH (none)
 *   ATRIUM_MAIL_FROM            sender address (noreply@ATRIUM_BASE_DOMAIN)
 *   ATRIUM_TEMPLATE_DIR         the email templates (a development build: its
 *                               checkout's fcgi-app/templates)
 *   ATRIUM_NOTIFY_MAX_ATTEMPTS  attempts before a row is dead (8)
 *   ATRIUM_NOTIFY_POLL_S        longest sleep without a NOTIFY (5)
 *   ATRIUM_UNSUBSCRIBE_KEY_FILE the HMAC key of the unsubscribe tokens, shared
 *                               with the workers (required)
 *   ATRIUM_WHATSAPP_BASE        the WhatsApp Cloud API's base URL
 *                               (https://graph.facebook.com)
 *   ATRIUM_WHATSAPP_VERSION     the Graph API version in its path (v21.0)
 * Each tenant's WhatsApp phone number id, access token, template names and
 * email fallback live in tenant_branding.
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
#include "unsub.h"
#include "whatsapp.h"

#define NOTIFY_BACKOFF_BASE_MS  2000L    /* first retry after ~2 s ... */
#define NOTIFY_BACKOFF_MAX_MS   3600000L /* ... doubling up to an hour */
#define NOTIFY_JITTER_PERCENT   20       /* +-20 %: retries of a burst spread out */
#define NOTIFY_RECONNECT_MIN_MS 250L
#define NOTIFY_RECONNECT_MAX_MS 5000L
#define NOTIFY_PARK_S           3600 /* a row whose outcome could not be recorded */
#define NOTIFY_SMTP_CONNECT_S   10
#define NOTIFY_SMTP_TOTAL_S     30
#define NOTIFY_WA_CONNECT_S     10
#define NOTIFY_WA_TOTAL_S       30
#define NOTIFY_SECRET_MAX       4096 /* bytes of the SMTP password file */
#define NOTIFY_URL_MAX          2048 /* bytes of a link or logo URL */
#define NOTIFY_LOG_LINE         4096
#define NOTIFY_ERROR_MAX        (WHATSAPP_ERROR_MAX + 64) /* bytes of last_error */
#define NOTIFY_DIGEST_LIST_MAX  50 /* messages a digest email lists; then "N more" */
#define NOTIFY_TOPIC_MAP_MAX    512

/* The templates this notifier sends; checked at start-up.  Those with a
 * topic (unsub_topic_of) are activity notifications: subject to the
 * recipient's preferences, with List-Unsubscribe, and the only ones that go
 * by WhatsApp too. */
static const char *const known_templates[] = {
        "invite",
        "password_reset",
        "message_digest",
        "deliverable_delivered",
        "deliverable_decision",
        "milestone_completed",
};

/* {"message_digest":"messages",...}: every activity template and its topic,
 * from unsub_topic_of(); the claim's $1. */
static char topic_map[NOTIFY_TOPIC_MAP_MAX];

struct settings {
	const char *dsn;
	char template_dir[PATH_MAX];
	char mail_from[MAIL_ADDRESS_MAX + 1];
	char *smtp_password; /* heap, wiped at exit */
	struct mail_server smtp;
	int max_attempts;
	int poll_s;
	const char *wa_base;    /* ATRIUM_WHATSAPP_BASE */
	const char *wa_version; /* ATRIUM_WHATSAPP_VERSION */
	struct whatsapp_server wa;
};

/* One claimed outbox row with what its message needs (arena strings; the
 * columns of Q_CLAIM in order). */
struct row {
	const char *tenant_id;
	const char *id;
	const char *channel; /* "email" or "whatsapp" */
	const char *template;
	const char *address; /* email address or E.164 number */
	int attempts;        /* before this one */
	const char *recipient_kind;
	const char *recipient_id;
	/* the payload */
	const char *name;
	const char *link;
	const char *expires_at;
	const char *project_name;
	const char *deliverable_title;
	const char *milestone_title;
	const char *decision;
	const char *comment;
	const char *by_name;
	const char *due_date;
	long n_messages; /* length of payload.messages, -1 when it is no array */
	/* the tenant */
	const char *tenant_code;
	const char *display_name;
	const char *support_email;
	const char *color_primary;
	const char *logo_url;
	/* the recipient, as they are now */
	bool recipient_found;
	const char *recipient_name;
	const char *recipient_email;
	const char *locale; /* clients only */
	const char *time_zone;
	bool wanted; /* notify_on(channel switch, topics, topic, channel) */
	/* WhatsApp rows: the tenant's settings */
	const char *wa_phone_number_id;
	char *wa_token; /* a secret: wiped once the attempt is over */
	const char *wa_template;
	const char *wa_language;
	bool wa_fallback_email;
};

enum delivery {
	DELIVERY_SENT,
	DELIVERY_TEMPORARY, /* retried with backoff until max attempts */
	DELIVERY_PERMANENT, /* dead at once */
};

struct outcome {
	enum delivery status;
	long smtp_code;   /* email: the last SMTP reply code */
	long http_status; /* WhatsApp: the Cloud API's answer */
	long ms;
	bool no_fallback; /* dead for a reason an email cannot help with */
	bool fell_back;   /* the email that stands in was queued */
	char error[NOTIFY_ERROR_MAX];
};

/* A digest's messages, read for its email. */
struct digest {
	struct template_message *items;
	size_t n;
	const char *time_zone; /* the zone the times are in */
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

/* The delivery line: ids, channel, template, result, SMTP code or HTTP
 * status, error.  The row's payload (the link), the message and the
 * WhatsApp access token never appear. */
static void
log_delivery(const struct row *r, const char *result, const struct outcome *o, long retry_ms)
{
	char ts[40], id[80], tenant[100], tmpl[160], chan[40], err[1200], line[NOTIFY_LOG_LINE];
	log_timestamp(ts, sizeof(ts));
	log_escape(id, sizeof(id), r->id);
	log_escape(tenant, sizeof(tenant), r->tenant_code);
	log_escape(tmpl, sizeof(tmpl), r->template);
	log_escape(chan, sizeof(chan), r->channel);
	log_escape(err, sizeof(err), o->error);
	const char *level = strcmp(result, "sent") == 0    ? "info"
	                    : strcmp(result, "retry") == 0 ? "warn"
	                                                   : "error";
	int n = snprintf(line, sizeof(line),
	                 "{\"t\":\"%s\",\"level\":\"%s\",\"event\":\"delivery\",\"pid\":%ld,"
	                 "\"outbox_id\":\"%s\",\"tenant\":\"%s\",\"channel\":\"%s\","
	                 "\"template\":\"%s\",\"attempt\":%d,\"result\":\"%s\",\"smtp_code\":%ld,"
	                 "\"http_status\":%ld,\"ms\":%ld,\"retry_in_ms\":%ld,\"fallback\":%s,"
	                 "\"error\":\"%s\"}",
	                 ts, level, (long)getpid(), id, tenant, chan, tmpl, r->attempts + 1, result,
	                 o->smtp_code, o->http_status, o->ms, retry_ms,
	                 o->fell_back ? "true" : "false", err);
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

/* ATRIUM_WHATSAPP_BASE and ATRIUM_WHATSAPP_VERSION (the tenants bring the
 * rest). */
static int
whatsapp_settings(struct settings *s)
{
	s->wa_base = getenv("ATRIUM_WHATSAPP_BASE");
	if (s->wa_base == NULL || *s->wa_base == '\0')
		s->wa_base = "https://graph.facebook.com";
	if (!whatsapp_base_valid(s->wa_base)) {
		say("error", "ATRIUM_WHATSAPP_BASE must be http(s)://HOST[:PORT][/PATH]");
		return -1;
	}
	s->wa_version = getenv("ATRIUM_WHATSAPP_VERSION");
	if (s->wa_version == NULL || *s->wa_version == '\0')
		s->wa_version = "v21.0";
	if (!whatsapp_version_valid(s->wa_version)) {
		say("error", "ATRIUM_WHATSAPP_VERSION must be a version such as v21.0");
		return -1;
	}
	s->wa.connect_timeout_s = NOTIFY_WA_CONNECT_S;
	s->wa.timeout_s = NOTIFY_WA_TOTAL_S;
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
	if (whatsapp_settings(s) != 0)
		return -1;
	/* every activity email needs its unsubscribe token: without the key
	 * none could go out, so do not start rather than fail row by row */
	if (unsub_load_key(getenv("ATRIUM_UNSUBSCRIBE_KEY_FILE")) != 0) {
		say("error", "ATRIUM_UNSUBSCRIBE_KEY_FILE must name the unsubscribe key (shared "
		             "with the workers)");
		return -1;
	}
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

/* The claim's template -> topic map, from unsub_topic_of(). */
static int
build_topic_map(void)
{
	struct arena *a = arena_new(1024);
	struct buf b;
	buf_init(&b, a, 256);
	buf_putc(&b, '{');
	for (size_t i = 0; i < ARRAY_LEN(known_templates); i++) {
		const char *topic = unsub_topic_of(known_templates[i]);
		if (topic != NULL)
			buf_printf(&b, "%s\"%s\":\"%s\"", b.len > 1 ? "," : "", known_templates[i],
			           topic);
	}
	buf_putc(&b, '}');
	int n = snprintf(topic_map, sizeof(topic_map), "%s", buf_cstr(&b));
	arena_free(a);
	return n < 0 || (size_t)n >= sizeof(topic_map) ? -1 : 0;
}

/* Every known template renders with every value set (a digest of one
 * message), and every activity template has its WhatsApp parameters: a
 * missing file or a bad tag stops the start instead of killing rows one by
 * one. */
static int
check_templates(const struct settings *s)
{
	static const struct template_message msg = {
	        .author_name = "Check",
	        .time = "1 Jan 2030, 00:00",
	        .excerpt = "Check",
	        .truncated = "yes",
	        .files = "+1 file",
	};
	const struct template_vars v = {
	        .display_name = "Check",
	        .name = "Check",
	        .link = "https://check.invalid/",
	        .expires_at = "1 January 2030, 00:00 UTC",
	        .support_email = "support@check.invalid",
	        .color_primary = "#4f46e5",
	        .logo_url = "https://check.invalid/logo.png",
	        .unsubscribe_url = "https://check.invalid/api/portal/v1/unsubscribe?token=x",
	        .unsubscribe_page = "https://check.invalid/unsubscribe?token=x",
	        .project_name = "Check",
	        .deliverable_title = "Check",
	        .due_date = "1 January 2030",
	        .decision = "approved",
	        .decision_approved = "yes",
	        .comment = "Check",
	        .by_name = "Check",
	        .milestone_title = "Check",
	        .message_count = "2",
	        .many_messages = "yes",
	        .more_messages = "1",
	        .time_zone = "UTC",
	        .messages = &msg,
	        .n_messages = 1,
	};
	const struct whatsapp_values wv = {
	        .recipient_name = "Check",
	        .project_name = "Check",
	        .message_count = "2",
	        .link = "https://check.invalid/",
	        .deliverable_title = "Check",
	        .decision = "approved",
	        .by_name = "Check",
	        .milestone_title = "Check",
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
		const char *params[WHATSAPP_PARAMS_MAX], *missing;
		size_t n;
		if (rc == 0 && unsub_topic_of(known_templates[i]) != NULL &&
		    whatsapp_params(known_templates[i], &wv, params, &n, &missing) != 0) {
			say("error", "no WhatsApp parameters for template %s", known_templates[i]);
			rc = -1;
		}
	}
	arena_free(a);
	return rc;
}

/* ------------------------------------------------------------ database */

/* clang-format off */
/*
 * The due rows, oldest due first; a row another notifier holds is skipped,
 * not waited for.  Only the outbox row is locked (the notifier may not lock
 * branding or recipients, and needs not).  $1 is topic_map: every email row
 * is claimed (an unknown template is dead at once), a WhatsApp row only for
 * an activity template (invites and resets have no WhatsApp form; such a
 * row is left alone).  With the row come the tenant's branding and
 * WhatsApp settings (the access token only for WhatsApp rows) and the
 * recipient as they are now: name, email, locale, time zone, and whether
 * they still want this topic on this channel.
 */
static const char Q_CLAIM[] =
	"SELECT o.tenant_id, o.id, o.channel, o.template, o.address, o.attempts,"
	"       o.recipient_kind, o.recipient_id,"
	"       o.payload ->> 'name', o.payload ->> 'link', o.payload ->> 'expires_at',"
	"       o.payload ->> 'project_name', o.payload ->> 'deliverable_title',"
	"       o.payload ->> 'milestone_title', o.payload ->> 'decision',"
	"       o.payload ->> 'comment', o.payload ->> 'by_name', o.payload ->> 'due_date',"
	"       CASE WHEN jsonb_typeof(o.payload -> 'messages') = 'array'"
	"            THEN jsonb_array_length(o.payload -> 'messages') END,"
	"       t.code, coalesce(b.display_name, t.name), b.support_email,"
	"       b.color_primary, b.logo_url,"
	"       coalesce(pu.id, tm.id) IS NOT NULL,"
	"       coalesce(pu.name, tm.name), coalesce(pu.email, tm.email), pu.locale,"
	"       coalesce(pu.time_zone, tm.time_zone),"
	"       CASE o.recipient_kind"
	"         WHEN 'client' THEN notify_on(CASE o.channel WHEN 'whatsapp' THEN pu.notify_whatsapp"
	"                                      ELSE pu.notify_email END,"
	"                                 pu.notify_topics, $1::jsonb ->> o.template, o.channel)"
	"         ELSE notify_on(CASE o.channel WHEN 'whatsapp' THEN tm.notify_whatsapp"
	"                        ELSE tm.notify_email END,"
	"                   tm.notify_topics, $1::jsonb ->> o.template, o.channel) END,"
	"       CASE WHEN o.channel = 'whatsapp' THEN b.whatsapp_phone_number_id END,"
	"       CASE WHEN o.channel = 'whatsapp' THEN b.whatsapp_access_token END,"
	"       CASE WHEN o.channel = 'whatsapp' THEN b.whatsapp_templates ->> o.template END,"
	"       CASE WHEN o.channel = 'whatsapp' THEN b.whatsapp_templates ->> 'language' END,"
	"       coalesce(b.whatsapp_fallback_email, false)"
	"  FROM outbox o"
	"  JOIN tenants t ON t.id = o.tenant_id"
	"  LEFT JOIN tenant_branding b ON b.tenant_id = o.tenant_id"
	"  LEFT JOIN portal_users pu ON o.recipient_kind = 'client'"
	"        AND pu.tenant_id = o.tenant_id AND pu.id = o.recipient_id"
	"  LEFT JOIN team_members tm ON o.recipient_kind = 'team'"
	"        AND tm.tenant_id = o.tenant_id AND tm.id = o.recipient_id"
	" WHERE o.status = 'pending' AND (o.channel = 'email' OR $1::jsonb ? o.template)"
	"   AND o.next_attempt_at <= now() AND o.send_after <= now()"
	" ORDER BY o.next_attempt_at"
	" LIMIT 1"
	"   FOR UPDATE OF o SKIP LOCKED";

/* The columns of Q_CLAIM. */
enum {
	C_TENANT_ID, C_ID, C_CHANNEL, C_TEMPLATE, C_ADDRESS, C_ATTEMPTS,
	C_RECIPIENT_KIND, C_RECIPIENT_ID,
	C_NAME, C_LINK, C_EXPIRES_AT, C_PROJECT_NAME, C_DELIVERABLE_TITLE,
	C_MILESTONE_TITLE, C_DECISION, C_COMMENT, C_BY_NAME, C_DUE_DATE, C_N_MESSAGES,
	C_TENANT_CODE, C_DISPLAY_NAME, C_SUPPORT_EMAIL, C_COLOR_PRIMARY, C_LOGO_URL,
	C_RECIPIENT_FOUND, C_RECIPIENT_NAME, C_RECIPIENT_EMAIL, C_LOCALE, C_TIME_ZONE,
	C_WANTED,
	C_WA_PHONE_NUMBER_ID, C_WA_TOKEN, C_WA_TEMPLATE, C_WA_LANGUAGE, C_WA_FALLBACK,
	C_COUNT
};

/* Milliseconds until the next row falls due (NULL: none pending).  Run in
 * the transaction of a claim that found nothing, so that "due" means the
 * same now(): rows due but locked by another notifier are its business and
 * do not make us spin.  $1 as in Q_CLAIM. */
static const char Q_NEXT_DUE[] =
	"SELECT ceil(extract(epoch FROM min(greatest(next_attempt_at, send_after)) - now())"
	"            * 1000)::bigint"
	"  FROM outbox"
	" WHERE status = 'pending' AND (channel = 'email' OR $1::jsonb ? template)"
	"   AND greatest(next_attempt_at, send_after) > now()";

/*
 * A digest's messages for its email, in the order they were folded in, at
 * most $4: author, local time in zone $3 (PostgreSQL knows the zones),
 * excerpt, whether it was cut, files.  Run under a savepoint: a zone
 * PostgreSQL does not know or a payload it cannot read fails only this
 * statement.
 */
static const char Q_DIGEST[] =
	"SELECT x.e ->> 'author_name',"
	"       to_char((x.e ->> 'created_at')::timestamptz AT TIME ZONE $3,"
	"               'FMDD Mon YYYY, HH24:MI'),"
	"       x.e ->> 'excerpt',"
	"       coalesce((x.e ->> 'truncated')::boolean, false),"
	"       coalesce((x.e ->> 'attachments')::integer, 0)"
	"  FROM outbox o"
	" CROSS JOIN LATERAL jsonb_array_elements("
	"       CASE WHEN jsonb_typeof(o.payload -> 'messages') = 'array'"
	"            THEN o.payload -> 'messages' ELSE '[]'::jsonb END) WITH ORDINALITY AS x(e, n)"
	" WHERE o.tenant_id = $1 AND o.id = $2"
	" ORDER BY x.n"
	" LIMIT $4";

/* The email that stands in for a WhatsApp message refused for good: same
 * recipient, template and payload, due now.  The dedupe key makes it once
 * only; one already there (or an open digest of the recipient's that would
 * clash) wins. */
static const char Q_FALLBACK[] =
	"INSERT INTO outbox (tenant_id, channel, template, recipient_kind, recipient_id,"
	"                    address, project_id, payload, dedupe_key, send_after) "
	"SELECT tenant_id, 'email', template, recipient_kind, recipient_id,"
	"       $3, project_id, payload, dedupe_key || ':fallback', now()"
	"  FROM outbox WHERE tenant_id = $1 AND id = $2"
	"    ON CONFLICT DO NOTHING";

/* The secret link (an invite's or a reset's) goes once the row is final;
 * an activity row ($TOPICS: topic_map) keeps its project link, which is
 * no secret.  (A payload that is not an object has no link, and '-' would
 * fail on a scalar.) */
#define DROP_LINK(TOPICS) \
	"payload = CASE WHEN jsonb_typeof(payload) = 'object'" \
	"                AND NOT (" TOPICS "::jsonb ? template)" \
	"               THEN payload - 'link' ELSE payload END"

static const char Q_SENT[] =
	"UPDATE outbox SET status = 'sent', sent_at = now(), attempts = attempts + 1,"
	"       last_error = NULL, " DROP_LINK("$3")
	" WHERE tenant_id = $1 AND id = $2";

static const char Q_RETRY[] =
	"UPDATE outbox SET attempts = attempts + 1, last_error = $4,"
	"       next_attempt_at = now() + make_interval(secs => $3::double precision)"
	" WHERE tenant_id = $1 AND id = $2";

static const char Q_DEAD[] =
	"UPDATE outbox SET status = 'dead', attempts = attempts + 1,"
	"       last_error = $3, " DROP_LINK("$4")
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
		rc = db_failed(c, res, n == 0 ? sql : "outbox write");
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
	o->status = DELIVERY_PERMANENT;
}

/* Copies s into a fixed field of struct unsub; false when it does not fit. */
static bool
unsub_field(char *dst, size_t cap, const char *s)
{
	if (s == NULL)
		return false;
	int n = snprintf(dst, cap, "%s", s);
	return n > 0 && (size_t)n < cap;
}

/*
 * The one-click unsubscribe URL of an activity email: the portal of the
 * row's link (scheme, host and port of payload.link) with a token that
 * turns topic off on email for this recipient.  NULL when the link is not
 * usable or the recipient cannot be named in a token.
 */
static const char *
unsubscribe_url(struct arena *a, const struct row *r, const char *topic)
{
	if (!url_ok(r->link))
		return NULL;
	const char *host = strstr(r->link, "://") + 3;
	size_t hlen = strcspn(host, "/?#");
	if (hlen == 0)
		return NULL;
	struct unsub u;
	memset(&u, 0, sizeof(u));
	if (!unsub_field(u.tenant_id, sizeof(u.tenant_id), r->tenant_id) ||
	    !unsub_field(u.kind, sizeof(u.kind), r->recipient_kind) ||
	    !unsub_field(u.recipient_id, sizeof(u.recipient_id), r->recipient_id) ||
	    !unsub_field(u.topic, sizeof(u.topic), topic) ||
	    !unsub_field(u.channel, sizeof(u.channel), "email"))
		return NULL;
	u.expires = time(NULL) + UNSUB_TTL_S;
	const char *token = unsub_sign(a, &u);
	if (token == NULL)
		return NULL;
	return arena_printf(a, "%.*s/api/portal/v1/unsubscribe?token=%s",
	                    (int)(host + hlen - r->link), r->link, token);
}

/* The page a person opens from the email's visible link: the portal app's
 * /unsubscribe, which shows what the link turns off and asks before it does
 * (mail scanners follow links; only the List-Unsubscribe POST acts at once). */
static const char *
unsubscribe_page(struct arena *a, const char *api_url)
{
	const char *at = api_url != NULL ? strstr(api_url, "/api/portal/v1/unsubscribe?") : NULL;
	if (at == NULL)
		return NULL;
	return arena_printf(a, "%.*s/unsubscribe?%s", (int)(at - api_url), api_url,
	                    at + strlen("/api/portal/v1/unsubscribe?"));
}

/* Runs a constant statement of the digest's savepoint dance; 0, or the
 * connection is gone. */
static int
savepoint_cmd(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);
	int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : db_failed(c, res, sql);
	PQclear(res);
	return rc;
}

/*
 * Reads the messages of a digest row for its email, times in the
 * recipient's zone (UTC when PostgreSQL does not know theirs).  A payload
 * that cannot be read makes the outcome permanent; returns 0, or a
 * database error that ended the transaction.
 */
static int
load_digest(PGconn *c, struct arena *a, const struct row *r, struct digest *d, struct outcome *o)
{
	char limit[16];
	snprintf(limit, sizeof(limit), "%d", NOTIFY_DIGEST_LIST_MAX);
	const char *zone = r->time_zone != NULL && *r->time_zone != '\0' ? r->time_zone : "UTC";
	char state[8] = "?";
	PGresult *res = NULL;
	int rc = savepoint_cmd(c, "SAVEPOINT digest");
	if (rc != 0)
		return rc;
	for (int pass = 0; pass < 2; pass++) {
		const char *params[4] = {r->tenant_id, r->id, zone, limit};
		res = PQexecParams(c, Q_DIGEST, 4, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
			break;
		if (PQstatus(c) != CONNECTION_OK)
			return db_failed(c, res, "digest");
		/* the SQLSTATE only: the message may quote the payload */
		const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		snprintf(state, sizeof(state), "%s", st != NULL ? st : "?");
		bool bad_zone = strcmp(state, "22023") == 0;
		PQclear(res);
		res = NULL;
		if ((rc = savepoint_cmd(c, "ROLLBACK TO SAVEPOINT digest")) != 0)
			return rc;
		if (!bad_zone || strcmp(zone, "UTC") == 0)
			break;
		zone = "UTC"; /* a zone PostgreSQL does not know: say times in UTC */
	}
	if (res == NULL) {
		permanent(o, "digest: its messages could not be read (SQLSTATE %s)", state);
		return savepoint_cmd(c, "RELEASE SAVEPOINT digest");
	}
	int n = PQntuples(res);
	d->items = arena_alloc(a, sizeof(*d->items) * (size_t)(n > 0 ? n : 1));
	d->n = (size_t)n;
	d->time_zone = arena_strdup(a, zone);
	for (int i = 0; i < n; i++) {
		struct template_message *m = &d->items[i];
		long long files = 0;
		m->author_name =
		        PQgetisnull(res, i, 0) ? NULL : arena_strdup(a, PQgetvalue(res, i, 0));
		m->time = PQgetisnull(res, i, 1) ? NULL : arena_strdup(a, PQgetvalue(res, i, 1));
		m->excerpt = PQgetisnull(res, i, 2) ? NULL : arena_strdup(a, PQgetvalue(res, i, 2));
		m->truncated = strcmp(PQgetvalue(res, i, 3), "t") == 0 ? "yes" : NULL;
		if (config_parse_int(PQgetvalue(res, i, 4), 0, INT_MAX, &files) != 0)
			files = 0;
		m->files = files == 0   ? NULL
		           : files == 1 ? "+1 file"
		                        : arena_printf(a, "+%lld files", files);
	}
	PQclear(res);
	return savepoint_cmd(c, "RELEASE SAVEPOINT digest");
}

/* The template's words for a decision; NULL for one it does not know. */
static const char *
decision_words(const char *decision)
{
	if (decision == NULL)
		return NULL;
	if (strcmp(decision, "approved") == 0)
		return "approved";
	if (strcmp(decision, "changes_requested") == 0)
		return "changes requested";
	return NULL;
}

/*
 * Renders the row's email and sends it.  Anything wrong with the row itself
 * (an address we will not write, an unknown template, a value the template
 * needs and the payload lacks) is permanent: retrying cannot fix it.
 */
static void
attempt_email(const struct row *r, const struct settings *s, const struct digest *d,
              struct arena *a, struct outcome *o)
{
	char when[64], due[64], count[24], more[24];
	char err[TEMPLATE_ERR_MAX + 64];
	if (!template_name_valid(r->template)) {
		permanent(o, "invalid template name");
		return;
	}
	if (!mail_address_valid(r->address)) {
		permanent(o, "recipient address not supported");
		return;
	}
	const char *topic = unsub_topic_of(r->template);
	const char *unsub = NULL;
	if (topic != NULL && url_ok(r->link) &&
	    ((unsub = unsubscribe_url(a, r, topic)) == NULL || !mail_list_url_valid(unsub))) {
		permanent(o, "no unsubscribe link could be made for this recipient");
		return;
	}
	if (strcmp(r->template, "deliverable_decision") == 0 &&
	    decision_words(r->decision) == NULL) {
		permanent(o, "deliverable_decision: unknown decision");
		return;
	}
	long total = r->n_messages;
	if (strcmp(r->template, "message_digest") == 0 && (total <= 0 || d->n == 0)) {
		permanent(o, "message_digest: no messages");
		return;
	}
	snprintf(count, sizeof(count), "%ld", total > 0 ? total : 0);
	snprintf(more, sizeof(more), "%ld", total - (long)d->n);
	struct template_vars v = {
	        .display_name = r->display_name,
	        .name = r->name != NULL ? r->name : r->recipient_name,
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
	        .unsubscribe_url = unsub,
	        .unsubscribe_page = unsubscribe_page(a, unsub),
	        .project_name = r->project_name,
	        .deliverable_title = r->deliverable_title,
	        .due_date = r->due_date != NULL &&
	                                    template_human_date(r->due_date, due, sizeof(due)) == 0
	                            ? due
	                            : NULL,
	        .decision = decision_words(r->decision),
	        .decision_approved =
	                r->decision != NULL && strcmp(r->decision, "approved") == 0 ? "yes" : NULL,
	        .comment = r->comment,
	        .by_name = r->by_name,
	        .milestone_title = r->milestone_title,
	        .message_count = total > 0 ? count : NULL,
	        .many_messages = total > 1 ? "yes" : NULL,
	        .more_messages = total > (long)d->n && d->n > 0 ? more : NULL,
	        .time_zone = d->time_zone,
	        .messages = d->items,
	        .n_messages = d->n,
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
	        .list_unsubscribe = unsub,
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
	o->status = res.status == MAIL_SENT        ? DELIVERY_SENT
	            : res.status == MAIL_TEMPORARY ? DELIVERY_TEMPORARY
	                                           : DELIVERY_PERMANENT;
	o->smtp_code = res.smtp_code;
	snprintf(o->error, sizeof(o->error), "%s", res.error);
}

/*
 * Sends the row as a WhatsApp template message with the tenant's number,
 * token and template name.  What the row or the tenant's settings lack is
 * permanent; the Cloud API's answer says the rest (whatsapp.h).
 */
static void
attempt_whatsapp(const struct row *r, const struct settings *s, struct arena *a, struct outcome *o)
{
	if (r->wa_phone_number_id == NULL || r->wa_token == NULL || *r->wa_token == '\0') {
		permanent(o, "whatsapp is not configured for this tenant");
		return;
	}
	const char *url = whatsapp_url(a, s->wa_base, s->wa_version, r->wa_phone_number_id);
	if (url == NULL) {
		permanent(o, "whatsapp: the tenant's phone number id is not valid");
		return;
	}
	if (r->wa_template == NULL) {
		permanent(o,
		          "whatsapp: no template name for '%s' in the tenant's whatsapp templates",
		          r->template);
		return;
	}
	if (!whatsapp_template_name_valid(r->wa_template)) {
		permanent(o, "whatsapp: the template name for '%s' is not valid", r->template);
		return;
	}
	if (!whatsapp_phone_valid(r->address)) {
		permanent(o, "recipient phone number not supported");
		return;
	}
	char count[24];
	snprintf(count, sizeof(count), "%ld", r->n_messages);
	const struct whatsapp_values wv = {
	        .recipient_name = r->recipient_name,
	        .project_name = r->project_name,
	        .message_count = r->n_messages > 0 ? count : NULL,
	        .link = url_ok(r->link) ? r->link : NULL,
	        .deliverable_title = r->deliverable_title,
	        .decision = r->decision,
	        .by_name = r->by_name,
	        .milestone_title = r->milestone_title,
	};
	const char *params[WHATSAPP_PARAMS_MAX], *missing = NULL;
	size_t n = 0;
	int rc = whatsapp_params(r->template, &wv, params, &n, &missing);
	if (rc != 0) {
		if (rc == ERR_NOT_FOUND)
			permanent(o, "whatsapp: '%s' has no WhatsApp form", r->template);
		else
			permanent(o, "whatsapp: '%s' has no value",
			          missing != NULL ? missing : "?");
		return;
	}
	char lang[WHATSAPP_LANGUAGE_MAX];
	whatsapp_language(r->locale, r->wa_language, lang, sizeof(lang));
	const struct whatsapp_message m = {
	        .to = r->address,
	        .template_name = r->wa_template,
	        .language = lang,
	        .params = params,
	        .n_params = n,
	};
	char *body;
	size_t len;
	if (whatsapp_body(a, &m, &body, &len) != 0) {
		permanent(o, "whatsapp: the message could not be built (an empty value?)");
		return;
	}
	struct whatsapp_result res;
	uint64_t t0 = now_ms();
	whatsapp_send(&s->wa, url, r->wa_token, body, len, &res);
	o->ms = (long)(now_ms() - t0);
	/* the body holds the message text: gone with the attempt */
	OPENSSL_cleanse(body, len);
	o->status = res.status == WHATSAPP_SENT        ? DELIVERY_SENT
	            : res.status == WHATSAPP_TEMPORARY ? DELIVERY_TEMPORARY
	                                               : DELIVERY_PERMANENT;
	o->http_status = res.http_status;
	snprintf(o->error, sizeof(o->error), "%s", res.error);
}

/*
 * One attempt at the claimed row: the recipient must still be there and
 * still want it (activity templates), a digest's messages are read, then
 * the channel sends.  Returns 0 with *o filled, or a database error that
 * ended the transaction.
 */
static int
attempt(PGconn *c, const struct row *r, const struct settings *s, struct arena *a,
        struct outcome *o)
{
	memset(o, 0, sizeof(*o));
	o->status = DELIVERY_TEMPORARY;
	const char *topic = unsub_topic_of(r->template);
	if (topic != NULL && !r->recipient_found) {
		permanent(o, "recipient not found");
		o->no_fallback = true;
		return 0;
	}
	if (topic != NULL && !r->wanted) {
		permanent(o, "unsubscribed");
		o->no_fallback = true;
		return 0;
	}
	bool email = strcmp(r->channel, "email") == 0;
	struct digest d = {.items = NULL, .n = 0, .time_zone = NULL};
	if (email && strcmp(r->template, "message_digest") == 0) {
		int rc = load_digest(c, a, r, &d, o);
		if (rc != 0 || o->error[0] != '\0')
			return rc;
	}
	if (email)
		attempt_email(r, s, &d, a, o);
	else if (strcmp(r->channel, "whatsapp") == 0)
		attempt_whatsapp(r, s, a, o);
	else
		permanent(o, "unknown channel");
	return 0;
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

/* A dead WhatsApp row of a tenant that wants it: the same notification by
 * email, in this transaction. */
static int
fall_back(PGconn *c, const struct row *r, struct outcome *o)
{
	if (strcmp(r->channel, "whatsapp") != 0 || !r->wa_fallback_email || o->no_fallback)
		return 0;
	if (r->recipient_email == NULL || !mail_address_valid(r->recipient_email)) {
		say("warn", "outbox row %s: no email address to fall back to", r->id);
		return 0;
	}
	const char *params[3] = {r->tenant_id, r->id, r->recipient_email};
	int rc = exec_command(c, Q_FALLBACK, 3, params);
	o->fell_back = rc == 0;
	return rc;
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
	if (o->status == DELIVERY_SENT) {
		*result = "sent";
		params[2] = topic_map;
		rc = exec_command(c, Q_SENT, 3, params);
	} else if (o->status == DELIVERY_TEMPORARY && r->attempts + 1 < s->max_attempts) {
		*result = "retry";
		*retry_ms = backoff_ms(r->attempts);
		snprintf(secs, sizeof(secs), "%ld.%03ld", *retry_ms / 1000, *retry_ms % 1000);
		params[2] = secs;
		params[3] = o->error;
		rc = exec_command(c, Q_RETRY, 4, params);
	} else {
		*result = "dead";
		if (o->status == DELIVERY_TEMPORARY) {
			/* room for the prefix: the reason is cut, never the line */
			char e[sizeof(o->error) - 64];
			size_t n = strnlen(o->error, sizeof(e) - 1);
			memcpy(e, o->error, n);
			e[n] = '\0';
			snprintf(o->error, sizeof(o->error), "gave up after %d attempts: %s",
			         r->attempts + 1, e);
		}
		params[2] = o->error;
		params[3] = topic_map;
		rc = fall_back(c, r, o);
		if (rc == 0)
			rc = exec_command(c, Q_DEAD, 4, params);
	}
	if (rc == 0)
		rc = exec_command(c, "COMMIT", 0, NULL);
	if (rc != 0)
		o->fell_back = false;
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

/* Fills *r from the claimed row (arena copies); the access token's copy
 * in the result is wiped. */
static void
read_row(struct arena *a, PGresult *res, struct row *r)
{
	long long attempts = 0, n_messages = -1;
	if (config_parse_int(PQgetvalue(res, 0, C_ATTEMPTS), 0, INT_MAX - 1, &attempts) != 0)
		attempts = 0;
	if (PQgetisnull(res, 0, C_N_MESSAGES) ||
	    config_parse_int(PQgetvalue(res, 0, C_N_MESSAGES), 0, LONG_MAX, &n_messages) != 0)
		n_messages = -1;
	*r = (struct row){
	        .tenant_id = dup_value(a, res, C_TENANT_ID),
	        .id = dup_value(a, res, C_ID),
	        .channel = dup_value(a, res, C_CHANNEL),
	        .template = dup_value(a, res, C_TEMPLATE),
	        .address = dup_value(a, res, C_ADDRESS),
	        .attempts = (int)attempts,
	        .recipient_kind = dup_value(a, res, C_RECIPIENT_KIND),
	        .recipient_id = dup_value(a, res, C_RECIPIENT_ID),
	        .name = dup_value(a, res, C_NAME),
	        .link = dup_value(a, res, C_LINK),
	        .expires_at = dup_value(a, res, C_EXPIRES_AT),
	        .project_name = dup_value(a, res, C_PROJECT_NAME),
	        .deliverable_title = dup_value(a, res, C_DELIVERABLE_TITLE),
	        .milestone_title = dup_value(a, res, C_MILESTONE_TITLE),
	        .decision = dup_value(a, res, C_DECISION),
	        .comment = dup_value(a, res, C_COMMENT),
	        .by_name = dup_value(a, res, C_BY_NAME),
	        .due_date = dup_value(a, res, C_DUE_DATE),
	        .n_messages = (long)n_messages,
	        .tenant_code = dup_value(a, res, C_TENANT_CODE),
	        .display_name = dup_value(a, res, C_DISPLAY_NAME),
	        .support_email = dup_value(a, res, C_SUPPORT_EMAIL),
	        .color_primary = dup_value(a, res, C_COLOR_PRIMARY),
	        .logo_url = dup_value(a, res, C_LOGO_URL),
	        .recipient_found = strcmp(PQgetvalue(res, 0, C_RECIPIENT_FOUND), "t") == 0,
	        .recipient_name = dup_value(a, res, C_RECIPIENT_NAME),
	        .recipient_email = dup_value(a, res, C_RECIPIENT_EMAIL),
	        .locale = dup_value(a, res, C_LOCALE),
	        .time_zone = dup_value(a, res, C_TIME_ZONE),
	        .wanted = strcmp(PQgetvalue(res, 0, C_WANTED), "t") == 0,
	        .wa_phone_number_id = dup_value(a, res, C_WA_PHONE_NUMBER_ID),
	        .wa_token = PQgetisnull(res, 0, C_WA_TOKEN)
	                            ? NULL
	                            : arena_strdup(a, PQgetvalue(res, 0, C_WA_TOKEN)),
	        .wa_template = dup_value(a, res, C_WA_TEMPLATE),
	        .wa_language = dup_value(a, res, C_WA_LANGUAGE),
	        .wa_fallback_email = strcmp(PQgetvalue(res, 0, C_WA_FALLBACK), "t") == 0,
	};
	OPENSSL_cleanse(PQgetvalue(res, 0, C_WA_TOKEN), (size_t)PQgetlength(res, 0, C_WA_TOKEN));
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
	const char *const claim_params[1] = {topic_map};
	int rc = exec_command(c, "BEGIN", 0, NULL);
	if (rc != 0)
		return rc;
	res = PQexecParams(c, Q_CLAIM, 1, NULL, claim_params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK ||
	    (PQntuples(res) == 1 && PQnfields(res) != C_COUNT)) {
		rc = db_failed(c, res, "claim");
		goto out;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		res = PQexecParams(c, Q_NEXT_DUE, 1, NULL, claim_params, NULL, NULL, 0);
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
	struct row r;
	read_row(a, res, &r);
	PQclear(res);
	res = NULL;

	struct outcome o;
	const char *result = "retry";
	long retry_ms = 0;
	rc = attempt(c, &r, s, a, &o);
	if (r.wa_token != NULL)
		OPENSSL_cleanse(r.wa_token, strlen(r.wa_token));
	if (rc != 0)
		goto out; /* the transaction is gone, the row pending as it was */
	rc = record(c, &r, s, &o, &result, &retry_ms);
	log_delivery(&r, result, &o, retry_ms);
	if (rc == ERR_DB) {
		if (o.status == DELIVERY_SENT)
			say("error", "outbox row %s was sent but could not be recorded", r.id);
		park(c, &r, result);
	} else if (rc == ERR_UNAVAILABLE && o.status == DELIVERY_SENT) {
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
	if (build_topic_map() != 0 || check_templates(&s) != 0) {
		curl_global_cleanup();
		settings_free(&s);
		return 2;
	}
	char url[256];
	redact_url(s.smtp.url, url, sizeof(url));
	say("info", "started: smtp %s, from %s, templates %s, max attempts %d, whatsapp %s %s", url,
	    s.mail_from, s.template_dir, s.max_attempts, s.wa_base, s.wa_version);

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
