/*
 * people.h - team members and clients on the team surface.
 */
#ifndef ATRIUM_PEOPLE_H
#define ATRIUM_PEOPLE_H

#include "http.h"
#include "json.h"

extern const struct field member_fields[];
extern const struct field client_fields[];

int h_members_list(struct request *r);
int h_members_create(struct request *r);
int h_member_get(struct request *r);
int h_member_patch(struct request *r);
int h_member_delete(struct request *r);

int h_clients_list(struct request *r);
int h_clients_create(struct request *r);
int h_client_get(struct request *r);
int h_client_patch(struct request *r);
int h_client_delete(struct request *r);

#endif
