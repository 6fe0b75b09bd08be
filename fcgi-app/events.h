/*
 * events.h - real-time portal events through nginx's nchan module.
 *
 * Subscriptions: GET /events (a client: its member projects, or one) and
 * GET /team/events (the team: the tenant, or one project) are authorized
 * here and handed to nchan with X-Accel-Redirect to /internal/events/<the
 * channels this code chose>.  A stream reads one channel that carries events
 * (plus its session's, which carries none), so a reconnect with
 * Last-Event-ID replays in publication order.  Channels:
 *
 *   c-<tenant>-<client>             what a client sees of all its projects
 *   cp-<tenant>-<project>-<client>  what a member client sees of one project
 *   s-<tenant>-<session>            nothing is published: deleting it ends
 *                                   the subscriptions of a revoked session
 *   tp-<tenant>-<project>           a project's team channel (internal too)
 *   tt-<tenant>                     every project's team events
 *
 * Publication: handlers queue events during the request; they are POSTed to
 * nchan's publisher (a unix socket) only after the transaction committed,
 * so an event never announces a change that was rolled back.  A worker that
 * dies between the commit and the publication loses those events (the
 * portal app also polls with ETags, and reconnects catch up from nchan's
 * buffer of the last 1,000 events per channel).
 */
#ifndef ATRIUM_EVENTS_H
#define ATRIUM_EVENTS_H

#include "http.h"
#include "json.h"

extern const struct field events_token_fields[];

/*
 * Queues event type about project_id: team_json (the team shape) goes to the
 * project's and the tenant's team channels; client_json (the client shape,
 * NULL when the change is not client-visible) to each member client's
 * channel of the project.  Returns 0 or ERR_DB.
 */
int events_add(struct request *r, const char *type, const char *project_id, const char *team_json,
               const char *client_json);

enum events_kind { EVENTS_TASK, EVENTS_MILESTONE, EVENTS_DELIVERABLE, EVENTS_PROJECT };

/* After a successful create or update whose answer (r->resp_body) is the
 * team shape of a resource: queues type with that shape for the team and the
 * client shape, when client-visible, for the project's member clients. */
int events_resource(struct request *r, const char *type, enum events_kind kind);

/* Queues the end of a session's subscriptions / of a client's subscription
 * to one project (after the commit). */
void events_end_session(struct request *r, const char *session_id);
void events_end_member(struct request *r, const char *project_id, const char *client_id);

/* After the commit: publishes what the request queued (best effort, logged). */
void events_flush(struct request *r);

int h_events(struct request *r);
int h_team_events(struct request *r);
int h_team_events_token(struct request *r);

#endif
