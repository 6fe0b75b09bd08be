/*
 * outbox.h - the notification deliveries on the team surface, and the
 * public one-click unsubscribe endpoint.
 */
#ifndef ATRIUM_OUTBOX_H
#define ATRIUM_OUTBOX_H

#include "http.h"

int h_team_outbox_list(struct request *r);
int h_unsubscribe_get(struct request *r);
int h_unsubscribe_post(struct request *r);

#endif
