/*
 * audit.h - one audit_log row for every mutation, written in the request's
 * transaction (a rolled-back change leaves no audit row, a committed one
 * always has one).
 */
#ifndef ATRIUM_AUDIT_H
#define ATRIUM_AUDIT_H

#include <json-c/json.h>

#include "http.h"

/* Records action on target for the authenticated caller; detail (may be
 * NULL) must not contain secrets.  Returns 0 or ERR_DB. */
int audit_record(struct request *r, const char *action, const char *target_type,
                 const char *target_id, json_object *detail);

/* GET /team/audit: newest first; ?actor= (key or member id), ?action=,
 * ?since=, ?until= (RFC 3339), keyset pagination. */
int h_team_audit_list(struct request *r);

#endif
