-- The team surface's data: team members, clients (portal users), projects,
-- their members and watchers, milestones, tasks, deliverables, decisions,
-- idempotency keys.
--
-- Every table: primary key (tenant_id, id), tenant-inclusive foreign keys,
-- a bigint `seq` that orders rows by creation for keyset pagination, and
-- row-level security (enabled and forced) limiting rows to app.tenant_id.
-- API representations are built here, by api_* functions, so that every
-- handler renders a resource the same way.

CREATE TABLE team_members (
    tenant_id        uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id               uuid        NOT NULL DEFAULT gen_random_uuid(),
    seq              bigint      GENERATED ALWAYS AS IDENTITY,
    name             text        NOT NULL,
    email            text        NOT NULL,
    phone            text,
    notify_email     boolean     NOT NULL DEFAULT true,
    notify_whatsapp  boolean     NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX team_members_email_key ON team_members (tenant_id, lower(email));
CREATE INDEX team_members_seq ON team_members (tenant_id, seq);

CREATE TABLE portal_users (
    tenant_id        uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id               uuid        NOT NULL DEFAULT gen_random_uuid(),
    seq              bigint      GENERATED ALWAYS AS IDENTITY,
    email            text        NOT NULL,
    name             text        NOT NULL,
    company          text,
    phone            text,
    locale           text        NOT NULL DEFAULT 'en',
    time_zone        text        NOT NULL DEFAULT 'UTC',
    status           text        NOT NULL DEFAULT 'invited'
                     CHECK (status IN ('invited', 'active', 'disabled')),
    password_hash    text,
    activated_at     timestamptz,
    notify_email     boolean     NOT NULL DEFAULT true,
    notify_whatsapp  boolean     NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    last_login_at    timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX portal_users_email_key ON portal_users (tenant_id, lower(email));
CREATE INDEX portal_users_seq ON portal_users (tenant_id, seq);
CREATE INDEX portal_users_status ON portal_users (tenant_id, status, seq);

CREATE TABLE projects (
    tenant_id    uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    seq          bigint      GENERATED ALWAYS AS IDENTITY,
    name         text        NOT NULL,
    description  text,
    status       text        NOT NULL DEFAULT 'active'
                 CHECK (status IN ('active', 'on_hold', 'completed', 'archived')),
    start_date   date,
    due_date     date,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX projects_seq ON projects (tenant_id, seq);
CREATE INDEX projects_status ON projects (tenant_id, status, seq);

CREATE TABLE project_members (
    tenant_id   uuid        NOT NULL,
    project_id  uuid        NOT NULL,
    client_id   uuid        NOT NULL,
    seq         bigint      GENERATED ALWAYS AS IDENTITY,
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, project_id, client_id),
    FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, client_id) REFERENCES portal_users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX project_members_client ON project_members (tenant_id, client_id);
CREATE INDEX project_members_seq ON project_members (tenant_id, project_id, seq);

CREATE TABLE project_watchers (
    tenant_id   uuid        NOT NULL,
    project_id  uuid        NOT NULL,
    member_id   uuid        NOT NULL,
    seq         bigint      GENERATED ALWAYS AS IDENTITY,
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, project_id, member_id),
    FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, member_id) REFERENCES team_members (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX project_watchers_member ON project_watchers (tenant_id, member_id);
CREATE INDEX project_watchers_seq ON project_watchers (tenant_id, project_id, seq);

CREATE TABLE milestones (
    tenant_id       uuid        NOT NULL,
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    seq             bigint      GENERATED ALWAYS AS IDENTITY,
    project_id      uuid        NOT NULL,
    title           text        NOT NULL,
    description     text,
    due_date        date,
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'in_progress', 'done')),
    position        integer     NOT NULL DEFAULT 0,
    client_visible  boolean     NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    -- lets tasks and deliverables require a milestone of their own project
    UNIQUE (tenant_id, project_id, id),
    FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX milestones_order ON milestones (tenant_id, project_id, position, seq);

CREATE TABLE tasks (
    tenant_id       uuid        NOT NULL,
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    seq             bigint      GENERATED ALWAYS AS IDENTITY,
    project_id      uuid        NOT NULL,
    milestone_id    uuid,
    title           text        NOT NULL,
    status          text        NOT NULL DEFAULT 'todo'
                    CHECK (status IN ('todo', 'in_progress', 'done')),
    due_date        date,
    position        integer     NOT NULL DEFAULT 0,
    client_visible  boolean     NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT tasks_milestone_fkey FOREIGN KEY (tenant_id, project_id, milestone_id)
        REFERENCES milestones (tenant_id, project_id, id) ON DELETE SET NULL (milestone_id)
);
CREATE INDEX tasks_order ON tasks (tenant_id, project_id, position, seq);
CREATE INDEX tasks_milestone ON tasks (tenant_id, milestone_id) WHERE milestone_id IS NOT NULL;

CREATE TABLE deliverables (
    tenant_id       uuid        NOT NULL,
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    seq             bigint      GENERATED ALWAYS AS IDENTITY,
    project_id      uuid        NOT NULL,
    milestone_id    uuid,
    title           text        NOT NULL,
    description     text,
    due_date        date        NOT NULL,
    status          text        NOT NULL DEFAULT 'scheduled'
                    CHECK (status IN ('scheduled', 'in_progress', 'delivered', 'approved',
                                      'changes_requested')),
    delivered_at    timestamptz,
    client_visible  boolean     NOT NULL DEFAULT true,
    decision_id     uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT deliverables_milestone_fkey FOREIGN KEY (tenant_id, project_id, milestone_id)
        REFERENCES milestones (tenant_id, project_id, id) ON DELETE SET NULL (milestone_id)
);
CREATE INDEX deliverables_order ON deliverables (tenant_id, project_id, due_date, seq);
CREATE INDEX deliverables_milestone ON deliverables (tenant_id, milestone_id)
    WHERE milestone_id IS NOT NULL;

-- Every client decision ever taken; deliverables.decision_id names the one
-- that applies to the current version (NULL after a new delivery).
CREATE TABLE deliverable_decisions (
    tenant_id       uuid        NOT NULL,
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    deliverable_id  uuid        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('approved', 'changes_requested')),
    comment         text,
    by_kind         text        NOT NULL CHECK (by_kind IN ('client', 'team')),
    by_id           uuid,
    by_name         text        NOT NULL,
    attachments     jsonb       NOT NULL DEFAULT '[]'::jsonb,
    at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, deliverable_id) REFERENCES deliverables (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX deliverable_decisions_deliverable ON deliverable_decisions (tenant_id, deliverable_id, at);
ALTER TABLE deliverables ADD CONSTRAINT deliverables_decision_fkey
    FOREIGN KEY (tenant_id, decision_id) REFERENCES deliverable_decisions (tenant_id, id)
    ON DELETE SET NULL (decision_id);

-- Idempotency-Key: the first answer to a create, replayed for 24 hours to a
-- repeat with the same key, credential and path.
CREATE TABLE idempotency_keys (
    tenant_id       uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    credential      text        NOT NULL,
    path            text        NOT NULL,
    key             text        NOT NULL,
    request_sha256  bytea       NOT NULL,
    status          integer     NOT NULL,
    location        text,
    body            text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, credential, path, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);

CREATE INDEX audit_log_action ON audit_log (tenant_id, action, id DESC);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['team_members', 'portal_users', 'projects', 'project_members',
                             'project_watchers', 'milestones', 'tasks', 'deliverables',
                             'deliverable_decisions', 'idempotency_keys'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I USING (tenant_id = app_tenant_id()) '
                       'WITH CHECK (tenant_id = app_tenant_id())', t || '_scope', t);
    END LOOP;
END $$;

-- ---- API representations (team surface) --------------------------------

CREATE FUNCTION api_progress(done bigint, total bigint) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT jsonb_build_object('tasks_total', total, 'tasks_done', done,
        'percent', CASE WHEN total = 0 THEN 0 ELSE floor(100.0 * done / total)::int END)
$$;

CREATE FUNCTION api_team_member(m team_members) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', m.id, 'name', m.name, 'email', m.email, 'phone', m.phone,
        'notify', jsonb_build_object('email', m.notify_email, 'whatsapp', m.notify_whatsapp),
        'created_at', api_time(m.created_at), 'updated_at', api_time(m.updated_at))
$$;

CREATE FUNCTION api_client(u portal_users) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', u.id, 'email', u.email, 'name', u.name,
        'company', u.company, 'phone', u.phone, 'locale', u.locale, 'time_zone', u.time_zone,
        'status', u.status,
        'notify', jsonb_build_object('email', u.notify_email, 'whatsapp', u.notify_whatsapp),
        'created_at', api_time(u.created_at), 'updated_at', api_time(u.updated_at),
        'last_login_at', api_time(u.last_login_at))
$$;

CREATE FUNCTION api_project(p projects) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', p.id, 'name', p.name, 'description', p.description,
        'status', p.status, 'start_date', p.start_date, 'due_date', p.due_date,
        'created_at', api_time(p.created_at), 'updated_at', api_time(p.updated_at),
        'progress', (SELECT api_progress(count(*) FILTER (WHERE t.status = 'done'), count(*))
                     FROM tasks t WHERE t.tenant_id = p.tenant_id AND t.project_id = p.id))
$$;

CREATE FUNCTION api_milestone(m milestones) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', m.id, 'project_id', m.project_id, 'title', m.title,
        'description', m.description, 'due_date', m.due_date, 'status', m.status,
        'position', m.position, 'client_visible', m.client_visible,
        'created_at', api_time(m.created_at), 'updated_at', api_time(m.updated_at),
        'percent', (SELECT (api_progress(count(*) FILTER (WHERE t.status = 'done'), count(*)))->'percent'
                    FROM tasks t WHERE t.tenant_id = m.tenant_id AND t.milestone_id = m.id))
$$;

CREATE FUNCTION api_task(t tasks) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', t.id, 'project_id', t.project_id,
        'milestone_id', t.milestone_id, 'title', t.title, 'status', t.status,
        'due_date', t.due_date, 'position', t.position, 'client_visible', t.client_visible,
        'created_at', api_time(t.created_at), 'updated_at', api_time(t.updated_at))
$$;

CREATE FUNCTION api_decision(d deliverable_decisions) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN d.id IS NULL THEN NULL ELSE jsonb_build_object('status', d.status,
        'comment', d.comment,
        'by', jsonb_build_object('kind', d.by_kind, 'id', d.by_id, 'name', d.by_name),
        'at', api_time(d.at), 'attachments', d.attachments) END
$$;

CREATE FUNCTION api_deliverable(d deliverables) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', d.id, 'project_id', d.project_id,
        'milestone_id', d.milestone_id, 'title', d.title, 'description', d.description,
        'due_date', d.due_date, 'status', d.status, 'delivered_at', api_time(d.delivered_at),
        'client_visible', d.client_visible, 'attachment_ids', '[]'::jsonb,
        'decision', (SELECT api_decision(x) FROM deliverable_decisions x
                     WHERE x.tenant_id = d.tenant_id AND x.id = d.decision_id),
        'created_at', api_time(d.created_at), 'updated_at', api_time(d.updated_at))
$$;
