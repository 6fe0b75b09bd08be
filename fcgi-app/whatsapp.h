/*
 * whatsapp.h - template messages through the WhatsApp Cloud API.
 *
 * atrium-notifier sends the activity notifications of WhatsApp outbox rows
 * as template messages:
 *
 *   POST {base}/{version}/{phone_number_id}/messages
 *   Authorization: Bearer {access_token}
 *   {"messaging_product":"whatsapp","recipient_type":"individual",
 *    "to":"4915112345678","type":"template",
 *    "template":{"name":"...","language":{"code":"en"},
 *                "components":[{"type":"body","parameters":[
 *                    {"type":"text","text":"..."}, ...]}]}}
 *
 * Everything but whatsapp_send() is a pure function (the unit tests drive
 * them): which body parameters a template has, the request body, the URL,
 * and what an answer means.  2xx is sent; 429, 5xx and no answer at all
 * are worth retrying; any other 4xx is final for this message (a refused
 * number, template or parameter stays refused).  Nothing here logs; the
 * access token and the message text never leave the request.
 */
#ifndef ATRIUM_WHATSAPP_H
#define ATRIUM_WHATSAPP_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"

#define WHATSAPP_PARAMS_MAX   5           /* body parameters of a template */
#define WHATSAPP_PARAM_CHARS  300         /* code points kept of one parameter */
#define WHATSAPP_ERROR_CHARS  200         /* code points kept of the API's error.message */
#define WHATSAPP_ERROR_MAX    1024        /* bytes of whatsapp_result.error */
#define WHATSAPP_RESPONSE_MAX (64 * 1024) /* bytes of an answer that are read */
#define WHATSAPP_LANGUAGE_MAX 16          /* bytes of a language code with its NUL */
#define WHATSAPP_JSON_DEPTH   16          /* nesting of an answer that is parsed */

/* The values the body parameters are made of (UTF-8; NULL or "" missing). */
struct whatsapp_values {
	const char *recipient_name;
	const char *project_name;
	const char *message_count; /* message_digest: "3" */
	const char *link;          /* the project's page */
	const char *deliverable_title;
	const char *decision; /* as in the payload: "approved" or "changes_requested" */
	const char *by_name;
	const char *milestone_title;
};

/*
 * The body parameters of outbox template tmpl, in the contract's order:
 *   message_digest        recipient, project, number of messages, link
 *   deliverable_delivered recipient, project, deliverable, link
 *   deliverable_decision  recipient, project, deliverable,
 *                         "approved" | "changes requested", by whom
 *   milestone_completed   recipient, project, milestone, link
 * into params (borrowed from v or static) and *n.  Returns 0,
 * ERR_NOT_FOUND for a template that has no WhatsApp form, or ERR_INVALID
 * when a value is missing (or the decision unknown): *missing names it.
 */
int whatsapp_params(const char *tmpl, const struct whatsapp_values *v,
                    const char *params[WHATSAPP_PARAMS_MAX], size_t *n, const char **missing);

/* True for an E.164 number: '+', then 8 to 15 digits, the first not 0. */
bool whatsapp_phone_valid(const char *phone);
/* True for a WhatsApp template name: 1 to 512 bytes of [a-z0-9_]. */
bool whatsapp_template_name_valid(const char *name);
/* True for a phone number id: 1 to 32 digits (it becomes a path segment). */
bool whatsapp_phone_number_id_valid(const char *id);
/* True for ATRIUM_WHATSAPP_BASE: http(s)://host[:port][/path], printable,
 * no query, fragment or user info. */
bool whatsapp_base_valid(const char *base);
/* True for ATRIUM_WHATSAPP_VERSION: 1 to 16 bytes of [A-Za-z0-9._-]. */
bool whatsapp_version_valid(const char *version);

/*
 * The template language: the recipient's locale (BCP 47 "pt-BR" becomes
 * WhatsApp's "pt_BR"), else the tenant's default, else "en" - the first
 * that looks like a language code (2-3 letters, optional _REGION parts).
 * out holds at least WHATSAPP_LANGUAGE_MAX bytes.
 */
void whatsapp_language(const char *locale, const char *tenant_default, char *out, size_t out_len);

struct whatsapp_message {
	const char *to;            /* E.164 with its '+' */
	const char *template_name; /* the tenant's name of the template */
	const char *language;      /* from whatsapp_language() */
	const char *const *params; /* n_params body parameters */
	size_t n_params;
};

/*
 * The request body, NUL-terminated JSON in arena memory (*len bytes).
 * Parameters are cleaned as the API wants them: control characters and
 * runs of white space become one space (it refuses new lines, tabs and more
 * than four spaces in a row), trimmed, cut to WHATSAPP_PARAM_CHARS code
 * points.  Returns 0, or ERR_INVALID for a number that is not E.164, an
 * invalid template name or language, or a parameter left empty.
 */
int whatsapp_body(struct arena *a, const struct whatsapp_message *m, char **out, size_t *len);

/* {base}/{version}/{phone_number_id}/messages in arena memory (a trailing
 * '/' of base is dropped); NULL when a part is not valid. */
char *whatsapp_url(struct arena *a, const char *base, const char *version,
                   const char *phone_number_id);

enum whatsapp_status {
	WHATSAPP_SENT,      /* 2xx */
	WHATSAPP_TEMPORARY, /* 429, 5xx, no answer, timeout: try again later */
	WHATSAPP_PERMANENT, /* any other 4xx: this message is refused for good */
};

struct whatsapp_result {
	enum whatsapp_status status;
	long http_status;               /* 0 when there was no answer */
	char error[WHATSAPP_ERROR_MAX]; /* "" when sent, else for last_error */
	char message_id[128];           /* messages[0].id of a 2xx answer, or "" */
};

/*
 * What an answer (HTTP status, body of n bytes, need not be NUL-terminated)
 * means.  The error is "whatsapp STATUS: error.message" (the message cut to
 * WHATSAPP_ERROR_CHARS code points, control characters as spaces).
 */
void whatsapp_classify(long http_status, const char *body, size_t n, struct whatsapp_result *res);

struct whatsapp_server {
	long connect_timeout_s;
	long timeout_s; /* the whole request */
};

/*
 * POSTs body (len bytes, from whatsapp_body) to url with the access token
 * as Bearer credentials.  Always fills *res.  Needs curl_global_init().
 * Redirects are not followed; only http and https are spoken.
 */
void whatsapp_send(const struct whatsapp_server *s, const char *url, const char *token,
                   const char *body, size_t len, struct whatsapp_result *res);

#endif
