/*
 * attachments.h - files uploaded straight to the object store (both
 * surfaces): presigned upload, confirmation, presigned download.
 */
#ifndef ATRIUM_ATTACHMENTS_H
#define ATRIUM_ATTACHMENTS_H

#include "http.h"
#include "json.h"

extern const struct field attachment_fields[];

int h_attachments_create(struct request *r);
int h_attachment_complete(struct request *r);
int h_attachment_download(struct request *r);
/* Idempotency-Key replays of a create: a fresh upload URL while pending. */
int attachment_replay(struct request *r);

/*
 * Links the attachments named in ids (a JSON array of UUID strings, may be
 * NULL or empty) to message_id: each must be ready, of project_id, uploaded
 * by the caller's side (the calling client itself on the client surface, the
 * team on the team surface) and not part of a message yet.  Returns 0,
 * ERR_INVALID with a 422 naming field[i], or ERR_DB.
 */
int attachments_link_message(struct request *r, const char *project_id, const char *message_id,
                             json_object *ids);

/*
 * Checks ids (JSON array or NULL) for a deliverable of project_id: ready team
 * attachments of the project, no duplicates.  Returns 0, ERR_INVALID with a
 * 422 on attachment_ids[i], or ERR_DB.
 */
int attachments_check_team(struct request *r, const char *project_id, json_object *ids);

#endif
