/*
 * projects.h - projects, their client members and team watchers (team
 * surface).
 */
#ifndef ATRIUM_PROJECTS_H
#define ATRIUM_PROJECTS_H

#include "http.h"
#include "json.h"

extern const struct field project_fields[];

int h_projects_list(struct request *r);
int h_projects_create(struct request *r);
int h_project_get(struct request *r);
int h_project_patch(struct request *r);
int h_project_delete(struct request *r);

int h_project_members_list(struct request *r);
int h_project_member_put(struct request *r);
int h_project_member_delete(struct request *r);
int h_project_watchers_list(struct request *r);
int h_project_watcher_put(struct request *r);
int h_project_watcher_delete(struct request *r);

/* 0 when the project (path parameter 0) is the tenant's, else a 404 answer
 * and ERR_NOT_FOUND (or a database error). */
int project_check(struct request *r, const char *project_id);

/* Validates the date pair of a create or patch: due not before start. */
int dates_in_order(struct request *r, const char *start_field, const char *due_field);

#endif
