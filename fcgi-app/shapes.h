/*
 * shapes.h - SQL that renders resources in the client surface's shapes
 * (portal.c for the API, events.c for the real-time events of the same
 * resources).  Client shapes carry no client_visible flag, name a milestone
 * only when it is client-visible, and count client-visible tasks only.
 */
#ifndef ATRIUM_SHAPES_H
#define ATRIUM_SHAPES_H

#define CLIENT_PROGRESS(cond)                                                                      \
	"(SELECT api_progress(count(*) FILTER (WHERE sub.status = 'done'), count(*))"              \
	" FROM tasks sub WHERE sub.client_visible AND " cond ")"
/* the next deliverable still to be signed off */
#define NEXT_DELIVERABLE(p)                                                                        \
	"(SELECT jsonb_build_object('id', nd.id, 'title', nd.title, 'due_date', nd.due_date,"      \
	" 'status', nd.status) FROM deliverables nd WHERE nd.tenant_id = " p ".tenant_id"          \
	" AND nd.project_id = " p ".id AND nd.client_visible AND nd.status <> 'approved'"          \
	" ORDER BY nd.due_date, nd.seq LIMIT 1)"
/* client-visible, undeleted messages by others after the client's marker
 * (the marker is a sub-select of its own so that it bounds the index scan) */
#define UNREAD(p, user)                                                                            \
	"(SELECT count(*) FROM messages um WHERE um.tenant_id = " p ".tenant_id"                   \
	" AND um.project_id = " p ".id AND um.visibility = 'client' AND um.deleted_at IS NULL"     \
	" AND um.author_client_id IS DISTINCT FROM " user " AND um.seq > "                         \
	"(SELECT coalesce(max(rd.last_seq), 0) FROM message_reads rd"                              \
	" WHERE rd.tenant_id = " p ".tenant_id AND rd.project_id = " p ".id"                       \
	" AND rd.client_id = " user "))"
#define CLIENT_PROJECT_JSON(p, user)                                                               \
	"api_client_project(" p                                                                    \
	", " CLIENT_PROGRESS("sub.tenant_id = " p ".tenant_id AND sub.project_id = " p             \
	                     ".id") ", " NEXT_DELIVERABLE(p) ", " UNREAD(p, user) ")"
/* a milestone id only when that milestone is client-visible */
#define VISIBLE_MILESTONE(x)                                                                       \
	"(SELECT vm.id FROM milestones vm WHERE vm.tenant_id = " x ".tenant_id"                    \
	" AND vm.id = " x ".milestone_id AND vm.client_visible)"
#define CLIENT_MILESTONE_JSON(m)                                                                   \
	"api_client_milestone(" m ", " CLIENT_PROGRESS(                                            \
	        "sub.tenant_id = " m ".tenant_id AND sub.milestone_id = " m ".id") ")"
#define CLIENT_TASK_JSON(t) "api_client_task(" t ", " VISIBLE_MILESTONE(t) ")"
#define CLIENT_DELIVERABLE_JSON(d)                                                                 \
	"api_client_deliverable(" d                                                                \
	", " VISIBLE_MILESTONE(d) ","                                                              \
	                          " (SELECT api_decision(dc) FROM deliverable_decisions dc WHERE " \
	                          "dc.tenant_id = " d ".tenant_id AND dc.id = " d ".decision_id)," \
	                          " (SELECT coalesce(jsonb_agg(da.attachment_id ORDER BY "         \
	                          "da.position), '[]'::jsonb)"                                     \
	                          " FROM deliverable_attachments da WHERE da.tenant_id = " d       \
	                          ".tenant_id"                                                     \
	                          " AND da.deliverable_id = " d ".id),"                            \
	                          " (SELECT coalesce(jsonb_agg(api_attachment_brief(fa) ORDER BY " \
	                          "da.position), '[]'::jsonb)"                                     \
	                          " FROM deliverable_attachments da JOIN attachments fa ON "       \
	                          "fa.tenant_id = da.tenant_id"                                    \
	                          " AND fa.id = da.attachment_id WHERE da.tenant_id = " d          \
	                          ".tenant_id"                                                     \
	                          " AND da.deliverable_id = " d ".id))"

#endif
