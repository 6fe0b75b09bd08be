/*
 * portal.h - what a signed-in client reads and decides: its projects,
 * their progress, tasks and deliverables, and deliverable sign-off.
 */
#ifndef ATRIUM_PORTAL_H
#define ATRIUM_PORTAL_H

#include "http.h"
#include "json.h"

extern const struct field approve_fields[];
extern const struct field request_changes_fields[];

/* 0 when the signed-in client is a member of project_id; otherwise a 404
 * answer and ERR_NOT_FOUND (or ERR_DB). */
int portal_member(struct request *r, const char *project_id);

int h_portal_projects_list(struct request *r);
int h_portal_project_get(struct request *r);
int h_portal_tasks_list(struct request *r);
int h_portal_deliverables_list(struct request *r);
int h_portal_deliverable_approve(struct request *r);
int h_portal_deliverable_request_changes(struct request *r);

#endif
