/*
 * notify.h - notifications written by the workers (transactional outbox).
 *
 * An activity writes its outbox rows in its own transaction: committed
 * activity always notifies, rolled-back activity never does.  Who hears of
 * it, and on which channel, is decided here (sql/006_notify.sql:
 * outbox_recipients, with everyone's preferences); atrium-notifier renders
 * and delivers.
 */
#ifndef ATRIUM_NOTIFY_H
#define ATRIUM_NOTIFY_H

#include <stdbool.h>

#include "http.h"
#include "json.h"

/* The notify object of clients, team members and /me: channel switches and
 * per-topic switches. */
extern const struct field notify_fields[];

/* SQL of an update statement ($3 the patch, table alias t): the notify
 * object's channel switches and topics (merged, not replaced). */
#define PATCH_NOTIFY                                                                               \
	"notify_email = CASE WHEN $3::jsonb->'notify' ? 'email'"                                   \
	" THEN ($3::jsonb->'notify'->>'email')::boolean ELSE t.notify_email END,"                  \
	" notify_whatsapp = CASE WHEN $3::jsonb->'notify' ? 'whatsapp'"                            \
	" THEN ($3::jsonb->'notify'->>'whatsapp')::boolean ELSE t.notify_whatsapp END,"            \
	" notify_topics = CASE WHEN $3::jsonb->'notify' ? 'topics'"                                \
	" THEN notify_merge(t.notify_topics, $3::jsonb->'notify'->'topics') ELSE t.notify_topics " \
	"END"

/* https://{host}[:port] of the tenant's portal: the request's host, or the
 * tenant's first host when the request came through the API host.  NULL on
 * a database failure. */
const char *notify_portal_base(struct request *r);

/* The portal page of a project: {base}/projects/{id}. */
const char *notify_project_link(struct request *r, const char *project_id);

/*
 * Queues template (deliverable_delivered, deliverable_decision,
 * milestone_completed) about project_id to its watchers and/or member
 * clients on every channel they want topic on.  payload gets project_name
 * and link added.  event names the activity once (dedupe keys are event +
 * recipient + channel).  Returns 0 or ERR_DB.
 */
int notify_queue(struct request *r, const char *template, const char *topic, const char *project_id,
                 bool watchers, bool clients, json_object *payload, const char *event);

#endif
