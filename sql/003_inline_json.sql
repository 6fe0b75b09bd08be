-- Rendering speed: let the planner inline the api_* functions.
--
-- A SQL function is inlined into the calling query only when its body is a
-- single expression without sub-selects and no more volatile than declared.
-- api_time was declared IMMUTABLE over to_char (STABLE), and api_project,
-- api_milestone and api_deliverable contained sub-selects, so every row of
-- a list paid a function call (about 70 us each).  Now api_time is STABLE,
-- and the derived parts (progress, percent, decision) are computed by the
-- caller's query (fcgi-app/resource.h: PROJECT_JSON and friends) and passed in.

CREATE OR REPLACE FUNCTION api_time(timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT to_char($1 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') $$;

DROP FUNCTION api_project(projects);
CREATE FUNCTION api_project(p projects, progress jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', p.id, 'name', p.name, 'description', p.description,
        'status', p.status, 'start_date', p.start_date, 'due_date', p.due_date,
        'created_at', api_time(p.created_at), 'updated_at', api_time(p.updated_at),
        'progress', progress)
$$;

DROP FUNCTION api_milestone(milestones);
CREATE FUNCTION api_milestone(m milestones, progress jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', m.id, 'project_id', m.project_id, 'title', m.title,
        'description', m.description, 'due_date', m.due_date, 'status', m.status,
        'position', m.position, 'client_visible', m.client_visible,
        'created_at', api_time(m.created_at), 'updated_at', api_time(m.updated_at),
        'percent', progress->'percent')
$$;

DROP FUNCTION api_deliverable(deliverables);
CREATE FUNCTION api_deliverable(d deliverables, decision jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', d.id, 'project_id', d.project_id,
        'milestone_id', d.milestone_id, 'title', d.title, 'description', d.description,
        'due_date', d.due_date, 'status', d.status, 'delivered_at', api_time(d.delivered_at),
        'client_visible', d.client_visible, 'attachment_ids', '[]'::jsonb,
        'decision', decision,
        'created_at', api_time(d.created_at), 'updated_at', api_time(d.updated_at))
$$;

-- progress counts read only these indexes
CREATE INDEX tasks_progress ON tasks (tenant_id, project_id, status);
DROP INDEX tasks_milestone;
CREATE INDEX tasks_milestone ON tasks (tenant_id, milestone_id, status)
    WHERE milestone_id IS NOT NULL;
