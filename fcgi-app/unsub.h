/*
 * unsub.h - signed one-click unsubscribe tokens (RFC 8058).
 *
 * atrium-notifier puts a token into the List-Unsubscribe URL of every
 * activity email; POST /api/portal/v1/unsubscribe?token=... (no login)
 * turns that topic off on that channel for that recipient.  The token is
 * base64url("v1|tenant|kind|recipient|topic|channel|expires") "."
 * base64url(HMAC-SHA256(key, that text)), so it names exactly one
 * preference, cannot be altered, and expires.  The key is shared by the
 * workers and the notifiers (ATRIUM_UNSUBSCRIBE_KEY_FILE).
 */
#ifndef ATRIUM_UNSUB_H
#define ATRIUM_UNSUB_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "arena.h"

#define UNSUB_TTL_S     (180 * 86400) /* tokens live 180 days */
#define UNSUB_TOKEN_MAX 512           /* bytes of a token */
#define UNSUB_KEY_MIN   32            /* bytes of key material at least */

struct unsub {
	char tenant_id[37];
	char kind[8]; /* "client" or "team" */
	char recipient_id[37];
	char topic[16];   /* "messages", "deliverables", "milestones" */
	char channel[16]; /* "email" or "whatsapp" */
	time_t expires;
};

/* Reads the key file (at least UNSUB_KEY_MIN bytes; surrounding whitespace
 * is ignored).  Returns 0 or -1 with a message on stderr. */
int unsub_load_key(const char *path);
/* True once a key is loaded. */
bool unsub_have_key(void);

/* The token for u (u->expires set by the caller), in arena memory; NULL
 * without a key or for fields that do not fit the format. */
char *unsub_sign(struct arena *a, const struct unsub *u);

/* Checks token at time now; fills *u and returns 0, or returns -1 for a
 * token that is malformed, forged or expired. */
int unsub_verify(struct arena *a, const char *token, time_t now, struct unsub *u);

/* The topic an outbox template belongs to, or NULL for templates that are
 * not subject to preferences (invite, password_reset). */
const char *unsub_topic_of(const char *template_name);

#endif
