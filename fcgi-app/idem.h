/*
 * idem.h - Idempotency-Key for creates.
 *
 * Scope: tenant + credential + concrete path + key, kept 24 hours.  The
 * stored answer is written in the same transaction as the create itself, so
 * a key is recorded exactly when its effect is.  A repeat with the same body
 * replays status, Location and body (Idempotent-Replayed: true); another body
 * is 409 idempotency_conflict; a repeat while the first still runs (its
 * transaction holds the key's advisory lock) is 409 idempotency_in_progress.
 */
#ifndef ATRIUM_IDEM_H
#define ATRIUM_IDEM_H

#include "http.h"

/* Runs handler under the request's Idempotency-Key, if it sent one. */
int idem_run(struct request *r, int (*handler)(struct request *r));

#endif
