/*
 * work.h - a project's milestones, tasks and deliverables (team surface).
 */
#ifndef ATRIUM_WORK_H
#define ATRIUM_WORK_H

#include "http.h"
#include "json.h"

extern const struct field milestone_fields[];
extern const struct field task_fields[];
extern const struct field deliverable_fields[];

int h_milestones_list(struct request *r);
int h_milestones_create(struct request *r);
int h_milestone_get(struct request *r);
int h_milestone_patch(struct request *r);
int h_milestone_delete(struct request *r);

int h_tasks_list(struct request *r);
int h_tasks_create(struct request *r);
int h_task_get(struct request *r);
int h_task_patch(struct request *r);
int h_task_delete(struct request *r);

int h_deliverables_list(struct request *r);
int h_deliverables_create(struct request *r);
int h_deliverable_get(struct request *r);
int h_deliverable_patch(struct request *r);
int h_deliverable_delete(struct request *r);

#endif
