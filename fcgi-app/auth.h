/*
 * auth.h - client identity: invites, login, sessions, refresh, password
 * reset, the signed-in client's account, and the client surface's
 * credential check.
 */
#ifndef ATRIUM_AUTH_H
#define ATRIUM_AUTH_H

#include "http.h"
#include "json.h"

/*
 * Authenticates a client-surface request: Authorization: Bearer <access
 * token> for this Host's tenant, and a live session of an active account,
 * checked in the request's transaction (which also sets app.portal_user_id).
 * A console API key is refused here.  Returns 0 or a negative code with the
 * 401 answer set.
 */
int auth_client(struct request *r);

/* Revokes every live session of a client (disabled, password reset). */
int auth_revoke_user_sessions(struct request *r, const char *user_id, const char *reason,
                              const char *except_session);

extern const struct field invite_fields[];
extern const struct field token_fields[];
extern const struct field accept_fields[];
extern const struct field login_fields[];
extern const struct field forgot_fields[];
extern const struct field reset_fields[];
extern const struct field me_fields[];
extern const struct field me_password_fields[];

int h_client_invite(struct request *r);
int h_invite_inspect(struct request *r);
int h_invite_accept(struct request *r);
int h_login(struct request *r);
int h_refresh(struct request *r);
int h_logout(struct request *r);
int h_sessions_list(struct request *r);
int h_session_delete(struct request *r);
int h_password_forgot(struct request *r);
int h_password_reset(struct request *r);
int h_me_get(struct request *r);
int h_me_patch(struct request *r);
int h_me_password(struct request *r);
int h_jwks(struct request *r);

#endif
