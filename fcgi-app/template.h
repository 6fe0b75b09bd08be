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
 * Keys are the fields of struct template_vars.  An unknown key, a malformed
 * or unbalanced tag is an error, whether or not the text around it is
 * rendered: a typo in a template fails the first delivery (and the notifier's
 * start-up check), never silently sends an email with a hole in it.  In .html
 * templates every value is HTML-escaped; control characters in values become
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

/* The values templates may name; NULL and "" are both empty.  All UTF-8. */
struct template_vars {
	const char *display_name;  /* the tenant's display name */
	const char *name;          /* the recipient's name */
	const char *link;          /* the invite or reset link (a secret) */
	const char *expires_at;    /* human-readable, see template_human_time */
	const char *support_email; /* the tenant's support address */
	const char *color_primary; /* #rrggbb */
	const char *logo_url;      /* the tenant's logo, an http(s) URL */
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

#endif
