/*
 * template.h - the email templates of atrium-notifier.
 *
 * A template NAME is three files in one directory: NAME.subject (one line),
 * NAME.txt (the text/plain part) and NAME.html (the text/html part).  They
 * name values with placeholders:
 *
 *   {{key}}              the value; it must not be empty
 *   {{#key}}...{{/key}}  the enclosed text only when the value is not empty
 *   {{^key}}...{{/key}}  the enclosed text only when the value is empty
 *
 * Keys are the fields of struct template_vars.  One key is a list:
 *
 *   {{#messages}}...{{/messages}}  the enclosed text once per message of a
 *                                  digest, where the keys of struct
 *                                  template_message name that message's
 *                                  values (and only there)
 *   {{^messages}}...{{/messages}}  the enclosed text when there is none
 *
 * An unknown key, a malformed or unbalanced tag, a message key outside the
 * list, is an error, whether or not the text around it is rendered: a typo
 * in a template fails the first delivery (and the notifier's start-up
 * check), never silently sends an email with a hole in it.  In .html
 * templates every value is HTML-escaped (there is no raw tag: the list is a
 * section, not markup built in C); control characters in values become
 * spaces everywhere (a value never starts a new line of its own).
 */
#ifndef ATRIUM_TEMPLATE_H
#define ATRIUM_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"

#define TEMPLATE_FILE_MAX (64 * 1024) /* bytes of one template file */
#define TEMPLATE_NAME_MAX 64          /* bytes of a template name */
#define TEMPLATE_ERR_MAX  160         /* bytes of an error message */

enum template_part {
	TEMPLATE_SUBJECT, /* NAME.subject: plain text, folded into one line */
	TEMPLATE_TEXT,    /* NAME.txt: plain text */
	TEMPLATE_HTML,    /* NAME.html: values HTML-escaped */
};

/* One message of a digest: the keys inside {{#messages}}. */
struct template_message {
	const char *author_name; /* who wrote it */
	const char *time;        /* when, in the recipient's time zone, human-readable */
	const char *excerpt;     /* its text (cut); empty for an attachment-only message */
	const char *truncated;   /* non-empty when the excerpt was cut */
	const char *files;       /* "+2 files", or empty */
};

/* The values templates may name; NULL and "" are both empty.  All UTF-8. */
struct template_vars {
	const char *display_name;  /* the tenant's display name */
	const char *name;          /* the recipient's name */
	const char *link;          /* the invite or reset link (a secret), or the
	                              project's page for activity emails */
	const char *expires_at;    /* human-readable, see template_human_time */
	const char *support_email; /* the tenant's support address */
	const char *color_primary; /* #rrggbb */
	const char *logo_url;      /* the tenant's logo, an http(s) URL */

	/* activity emails (templates with a topic) */
	const char *unsubscribe_url;   /* one-click unsubscribe of this topic */
	const char *unsubscribe_page;  /* the portal page that asks first (for people) */
	const char *project_name;      /* the project the activity happened in */
	const char *deliverable_title; /* deliverable_delivered, deliverable_decision */
	const char *due_date;          /* human-readable, see template_human_date */
	const char *decision;          /* "approved" or "changes requested" */
	const char *decision_approved; /* non-empty when the decision is an approval */
	const char *comment;           /* the decision's comment */
	const char *by_name;           /* who decided */
	const char *milestone_title;   /* milestone_completed */
	const char *message_count;     /* message_digest: how many messages ("3") */
	const char *many_messages;     /* non-empty when more than one */
	const char *more_messages;     /* how many are not listed ("12"), or empty */
	const char *time_zone;         /* the zone of the digest's times */

	/* the list {{#messages}} walks; NULL when n_messages is 0 */
	const struct template_message *messages;
	size_t n_messages;
};

/*
 * Renders the template text (n bytes, need not be NUL-terminated) with the
 * values of v; with html set every value is HTML-escaped.  On success *out is
 * the NUL-terminated result in arena memory and 0 is returned; otherwise
 * ERR_INVALID with a message naming the line in err (err_len bytes).
 */
int template_render(struct arena *a, const char *text, size_t n, bool html,
                    const struct template_vars *v, char **out, char *err, size_t err_len);

/*
 * Reads DIR/NAME.{subject,txt,html} and renders it (the subject folded into
 * one trimmed line).  NAME must satisfy template_name_valid().  Returns 0,
 * ERR_NOT_FOUND when the file does not exist, ERR_TOO_LARGE over
 * TEMPLATE_FILE_MAX, or ERR_INVALID; err says why.
 */
int template_render_file(struct arena *a, const char *dir, const char *name,
                         enum template_part part, const struct template_vars *v, char **out,
                         char *err, size_t err_len);

/* True for 1 to TEMPLATE_NAME_MAX - 1 bytes of [a-z0-9_] (never a path). */
bool template_name_valid(const char *name);

/*
 * Turns an RFC 3339 time ("2026-12-11T14:05:00Z", "...+01:00", with optional
 * fraction) into "11 December 2026, 14:05 UTC" (English, whatever the
 * locale).  Returns 0, or ERR_INVALID for anything else.
 */
int template_human_time(const char *rfc3339, char *out, size_t out_len);

/*
 * Turns a date ("2026-12-11") into "11 December 2026".  Returns 0, or
 * ERR_INVALID for anything but a real day.
 */
int template_human_date(const char *date, char *out, size_t out_len);

#endif
