/*
 * messages.h - a project's message thread (both surfaces).
 */
#ifndef ATRIUM_MESSAGES_H
#define ATRIUM_MESSAGES_H

#include "http.h"
#include "json.h"

extern const struct field client_message_fields[];
extern const struct field team_message_fields[];
extern const struct field read_marker_fields[];

int h_client_messages_list(struct request *r);
int h_client_messages_create(struct request *r);
int h_client_messages_read(struct request *r);

int h_team_messages_list(struct request *r);
int h_team_messages_create(struct request *r);
int h_team_message_get(struct request *r);
int h_team_message_delete(struct request *r);

#endif
