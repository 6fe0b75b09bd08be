/*
 * routes.c - the route table: every endpoint of the API in one place
 * (docs/openapi.yaml describes the same set; a test compares them).
 */
#include "db.h"
#include "json.h"
#include "router.h"
#include "tenant.h"
#include "audit.h"
#include "auth.h"
#include "people.h"
#include "projects.h"
#include "work.h"
#include "attachments.h"
#include "messages.h"
#include "portal.h"
#include "outbox.h"
#include "events.h"

static struct stmt q_health = {"health", "SELECT 1", 0, 0};

/* GET /healthz: the transaction is open, so the database answered BEGIN;
 * one real statement proves it can execute too. */
static int
h_healthz(struct request *r)
{
	if (db_exec(r, &q_health, NULL) == NULL)
		return ERR_DB;
	json_object *o = json_new_object(r->arena);
	json_add_str(o, "status", "ok");
	json_add_str(o, "db", "ok");
	http_json(r, 200, o);
	return 0;
}

#define LIST "limit cursor"
#define DUE  "due_from due_to"

const struct route routes[] = {
        {"GET", "/healthz", SURFACE_HEALTH, BODY_NONE, NULL, h_healthz, NULL, NULL},
        {"GET", "/branding", SURFACE_PUBLIC, BODY_NONE, NULL, h_branding_get, NULL, NULL},
        {"GET", "/.well-known/jwks.json", SURFACE_PUBLIC, BODY_NONE, NULL, h_jwks, NULL, NULL},

        {"GET", "/unsubscribe", SURFACE_PUBLIC, BODY_NONE, NULL, h_unsubscribe_get, "token", NULL},
        {"POST", "/unsubscribe", SURFACE_PUBLIC, BODY_FORM, NULL, h_unsubscribe_post, "token",
         NULL},

        {"POST", "/auth/invite/inspect", SURFACE_PUBLIC, BODY_ACTION, token_fields,
         h_invite_inspect, NULL, NULL},
        {"POST", "/auth/invite/accept", SURFACE_PUBLIC, BODY_ACTION, accept_fields, h_invite_accept,
         NULL, NULL},
        {"POST", "/auth/login", SURFACE_PUBLIC, BODY_ACTION, login_fields, h_login, NULL, NULL},
        {"POST", "/auth/refresh", SURFACE_PUBLIC, BODY_OPTIONAL, NULL, h_refresh, NULL, NULL},
        {"POST", "/auth/logout", SURFACE_CLIENT, BODY_OPTIONAL, NULL, h_logout, NULL, NULL},
        {"POST", "/auth/password/forgot", SURFACE_PUBLIC, BODY_ACTION, forgot_fields,
         h_password_forgot, NULL, NULL},
        {"POST", "/auth/password/reset", SURFACE_PUBLIC, BODY_ACTION, reset_fields,
         h_password_reset, NULL, NULL},
        {"GET", "/auth/sessions", SURFACE_CLIENT, BODY_NONE, NULL, h_sessions_list, LIST, NULL},
        {"DELETE", "/auth/sessions/{id}", SURFACE_CLIENT, BODY_NONE, NULL, h_session_delete, NULL,
         NULL},

        {"GET", "/me", SURFACE_CLIENT, BODY_NONE, NULL, h_me_get, NULL, NULL},
        {"PATCH", "/me", SURFACE_CLIENT, BODY_PATCH, me_fields, h_me_patch, NULL, NULL},
        {"POST", "/me/password", SURFACE_CLIENT, BODY_ACTION, me_password_fields, h_me_password,
         NULL, NULL},

        {"GET", "/projects", SURFACE_CLIENT, BODY_NONE, NULL, h_portal_projects_list,
         LIST " status", NULL},
        {"GET", "/projects/{id}", SURFACE_CLIENT, BODY_NONE, NULL, h_portal_project_get, NULL,
         NULL},
        {"GET", "/projects/{id}/tasks", SURFACE_CLIENT, BODY_NONE, NULL, h_portal_tasks_list,
         LIST " status milestone_id", NULL},
        {"GET", "/projects/{id}/deliverables", SURFACE_CLIENT, BODY_NONE, NULL,
         h_portal_deliverables_list, LIST " status milestone_id", NULL},
        {"POST", "/projects/{id}/deliverables/{deliverable_id}/approve", SURFACE_CLIENT,
         BODY_OPTIONAL, approve_fields, h_portal_deliverable_approve, NULL, NULL},
        {"POST", "/projects/{id}/deliverables/{deliverable_id}/request-changes", SURFACE_CLIENT,
         BODY_ACTION, request_changes_fields, h_portal_deliverable_request_changes, NULL, NULL},
        {"GET", "/projects/{id}/messages", SURFACE_CLIENT, BODY_NONE, NULL, h_client_messages_list,
         LIST " after", NULL},
        {"POST", "/projects/{id}/messages", SURFACE_CLIENT, BODY_CREATE, client_message_fields,
         h_client_messages_create, NULL, NULL},
        {"POST", "/projects/{id}/messages/read", SURFACE_CLIENT, BODY_ACTION, read_marker_fields,
         h_client_messages_read, NULL, NULL},
        {"POST", "/projects/{id}/attachments", SURFACE_CLIENT, BODY_CREATE, attachment_fields,
         h_attachments_create, NULL, attachment_replay},
        {"POST", "/attachments/{id}/complete", SURFACE_CLIENT, BODY_OPTIONAL, NULL,
         h_attachment_complete, NULL, NULL},
        {"GET", "/attachments/{id}/download", SURFACE_CLIENT, BODY_NONE, NULL,
         h_attachment_download, "redirect", NULL},

        {"GET", "/events", SURFACE_CLIENT, BODY_NONE, NULL, h_events, "project_id access_token",
         NULL},

        {"GET", "/team/branding", SURFACE_TEAM, BODY_NONE, NULL, h_team_branding_get, NULL, NULL},
        {"PATCH", "/team/branding", SURFACE_TEAM, BODY_PATCH, branding_patch_fields,
         h_team_branding_patch, NULL, NULL},
        {"GET", "/team/domains", SURFACE_TEAM, BODY_NONE, NULL, h_team_domains_list, LIST, NULL},
        {"POST", "/team/domains", SURFACE_TEAM, BODY_CREATE, domain_create_fields,
         h_team_domains_create, NULL, NULL},
        {"DELETE", "/team/domains/{host}", SURFACE_TEAM, BODY_NONE, NULL, h_team_domains_delete,
         NULL, NULL},

        {"GET", "/team/members", SURFACE_TEAM, BODY_NONE, NULL, h_members_list,
         LIST " q project_id", NULL},
        {"POST", "/team/members", SURFACE_TEAM, BODY_CREATE, member_fields, h_members_create, NULL,
         NULL},
        {"GET", "/team/members/{id}", SURFACE_TEAM, BODY_NONE, NULL, h_member_get, NULL, NULL},
        {"PATCH", "/team/members/{id}", SURFACE_TEAM, BODY_PATCH, member_fields, h_member_patch,
         NULL, NULL},
        {"DELETE", "/team/members/{id}", SURFACE_TEAM, BODY_NONE, NULL, h_member_delete, NULL,
         NULL},

        {"GET", "/team/clients", SURFACE_TEAM, BODY_NONE, NULL, h_clients_list,
         LIST " status q project_id", NULL},
        {"POST", "/team/clients", SURFACE_TEAM, BODY_CREATE, client_fields, h_clients_create, NULL,
         NULL},
        {"GET", "/team/clients/{id}", SURFACE_TEAM, BODY_NONE, NULL, h_client_get, NULL, NULL},
        {"PATCH", "/team/clients/{id}", SURFACE_TEAM, BODY_PATCH, client_fields, h_client_patch,
         NULL, NULL},
        {"DELETE", "/team/clients/{id}", SURFACE_TEAM, BODY_NONE, NULL, h_client_delete, NULL,
         NULL},
        {"POST", "/team/clients/{id}/invite", SURFACE_TEAM, BODY_CREATE_OPTIONAL, invite_fields,
         h_client_invite, NULL, NULL},

        {"GET", "/team/projects", SURFACE_TEAM, BODY_NONE, NULL, h_projects_list,
         LIST " status q client_id " DUE, NULL},
        {"POST", "/team/projects", SURFACE_TEAM, BODY_CREATE, project_fields, h_projects_create,
         NULL, NULL},
        {"GET", "/team/projects/{id}", SURFACE_TEAM, BODY_NONE, NULL, h_project_get, NULL, NULL},
        {"PATCH", "/team/projects/{id}", SURFACE_TEAM, BODY_PATCH, project_fields, h_project_patch,
         NULL, NULL},
        {"DELETE", "/team/projects/{id}", SURFACE_TEAM, BODY_NONE, NULL, h_project_delete, NULL,
         NULL},

        {"GET", "/team/projects/{id}/members", SURFACE_TEAM, BODY_NONE, NULL,
         h_project_members_list, LIST, NULL},
        {"PUT", "/team/projects/{id}/members/{client_id}", SURFACE_TEAM, BODY_NONE, NULL,
         h_project_member_put, NULL, NULL},
        {"DELETE", "/team/projects/{id}/members/{client_id}", SURFACE_TEAM, BODY_NONE, NULL,
         h_project_member_delete, NULL, NULL},
        {"GET", "/team/projects/{id}/watchers", SURFACE_TEAM, BODY_NONE, NULL,
         h_project_watchers_list, LIST, NULL},
        {"PUT", "/team/projects/{id}/watchers/{member_id}", SURFACE_TEAM, BODY_NONE, NULL,
         h_project_watcher_put, NULL, NULL},
        {"DELETE", "/team/projects/{id}/watchers/{member_id}", SURFACE_TEAM, BODY_NONE, NULL,
         h_project_watcher_delete, NULL, NULL},

        {"GET", "/team/projects/{id}/milestones", SURFACE_TEAM, BODY_NONE, NULL, h_milestones_list,
         LIST " status " DUE, NULL},
        {"POST", "/team/projects/{id}/milestones", SURFACE_TEAM, BODY_CREATE, milestone_fields,
         h_milestones_create, NULL, NULL},
        {"GET", "/team/milestones/{id}", SURFACE_TEAM, BODY_NONE, NULL, h_milestone_get, NULL,
         NULL},
        {"PATCH", "/team/milestones/{id}", SURFACE_TEAM, BODY_PATCH, milestone_fields,
         h_milestone_patch, NULL, NULL},
        {"DELETE", "/team/milestones/{id}", SURFACE_TEAM, BODY_NONE, NULL, h_milestone_delete, NULL,
         NULL},

        {"GET", "/team/projects/{id}/tasks", SURFACE_TEAM, BODY_NONE, NULL, h_tasks_list,
         LIST " status milestone_id " DUE, NULL},
        {"POST", "/team/projects/{id}/tasks", SURFACE_TEAM, BODY_CREATE, task_fields,
         h_tasks_create, NULL, NULL},
        {"GET", "/team/tasks/{id}", SURFACE_TEAM, BODY_NONE, NULL, h_task_get, NULL, NULL},
        {"PATCH", "/team/tasks/{id}", SURFACE_TEAM, BODY_PATCH, task_fields, h_task_patch, NULL,
         NULL},
        {"DELETE", "/team/tasks/{id}", SURFACE_TEAM, BODY_NONE, NULL, h_task_delete, NULL, NULL},

        {"GET", "/team/projects/{id}/deliverables", SURFACE_TEAM, BODY_NONE, NULL,
         h_deliverables_list, LIST " status milestone_id " DUE, NULL},
        {"POST", "/team/projects/{id}/deliverables", SURFACE_TEAM, BODY_CREATE, deliverable_fields,
         h_deliverables_create, NULL, NULL},
        {"GET", "/team/deliverables/{id}", SURFACE_TEAM, BODY_NONE, NULL, h_deliverable_get, NULL,
         NULL},
        {"PATCH", "/team/deliverables/{id}", SURFACE_TEAM, BODY_PATCH, deliverable_fields,
         h_deliverable_patch, NULL, NULL},
        {"DELETE", "/team/deliverables/{id}", SURFACE_TEAM, BODY_NONE, NULL, h_deliverable_delete,
         NULL, NULL},

        {"GET", "/team/projects/{id}/messages", SURFACE_TEAM, BODY_NONE, NULL, h_team_messages_list,
         LIST " after visibility include_deleted", NULL},
        {"POST", "/team/projects/{id}/messages", SURFACE_TEAM, BODY_CREATE, team_message_fields,
         h_team_messages_create, NULL, NULL},
        {"GET", "/team/messages/{id}", SURFACE_TEAM, BODY_NONE, NULL, h_team_message_get, NULL,
         NULL},
        {"DELETE", "/team/messages/{id}", SURFACE_TEAM, BODY_NONE, NULL, h_team_message_delete,
         NULL, NULL},
        {"POST", "/team/projects/{id}/attachments", SURFACE_TEAM, BODY_CREATE, attachment_fields,
         h_attachments_create, NULL, attachment_replay},
        {"POST", "/team/attachments/{id}/complete", SURFACE_TEAM, BODY_OPTIONAL, NULL,
         h_attachment_complete, NULL, NULL},
        {"GET", "/team/attachments/{id}/download", SURFACE_TEAM, BODY_NONE, NULL,
         h_attachment_download, "redirect", NULL},

        {"GET", "/team/events", SURFACE_TEAM, BODY_NONE, NULL, h_team_events, "project_id token",
         NULL},
        {"POST", "/team/events/token", SURFACE_TEAM, BODY_CREATE_OPTIONAL, events_token_fields,
         h_team_events_token, NULL, NULL},
        {"GET", "/team/outbox", SURFACE_TEAM, BODY_NONE, NULL, h_team_outbox_list,
         LIST " status channel template project_id recipient_id", NULL},
        {"GET", "/team/audit", SURFACE_TEAM, BODY_NONE, NULL, h_team_audit_list,
         LIST " actor action since until", NULL},
};

const size_t routes_count = sizeof(routes) / sizeof(routes[0]);
