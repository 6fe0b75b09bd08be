/*
 * token.h - portal access tokens (ES256 JWTs) and the JWKS.
 *
 * One function verifies, and it pins everything: the header must be exactly
 * {alg: ES256, typ: at+jwt, kid: <a configured key id>} (kid is looked up in
 * the key set loaded at start-up, never used as a path or query), the
 * signature is checked with ECDSA P-256/SHA-256 and that key only, then iss,
 * aud, exp, iat, nbf, the lifetime and the tenant.  (token.c says why this
 * uses OpenSSL and not libjwt 1.10.)
 */
#ifndef ATRIUM_TOKEN_H
#define ATRIUM_TOKEN_H

#include "http.h"

#define TOKEN_AUDIENCE  "atrium-portal"
#define TOKEN_MAX_BYTES 4096

struct token_claims {
	char sub[37]; /* portal user id */
	char tid[37]; /* tenant id */
	char sid[37]; /* session id */
	long exp;
};

/* Loads the signing key and the verification keys; 0 or -1 (stderr). */
int token_init(void);

/* Issues an access token; the string lives in r's arena.  0 or ERR_INTERNAL. */
int token_issue(struct request *r, const char *user_id, const char *session_id, const char **token);

/*
 * Verifies token (NUL-terminated) for r's tenant; fills c.  Returns 0, or
 * ERR_INVALID for any token that is not a valid, current access token of
 * this tenant (*expired set when only its time has passed).
 */
int token_verify(struct request *r, const char *token, struct token_claims *c, bool *expired);

/* The JWKS document (RFC 7517) of the verification keys. */
const char *token_jwks(void);

#endif
