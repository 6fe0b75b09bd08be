-- The client portal: messages, attachments, read markers, deliverable
-- files, and the row-level policies of the client surface.
--
-- Client surface.  After the session check a request's transaction carries
-- app.portal_user_id (fcgi-app/auth.c).  With it set, RESTRICTIVE policies
-- (ANDed with the tenant policies) let through only rows of projects the
-- client is a member of and, within them, only what is client-visible:
-- client-visible milestones, tasks and deliverables, messages with
-- visibility 'client' that are not deleted, and attachments the client
-- uploaded or that hang off a visible message or deliverable.  The queries
-- of fcgi-app/portal.c, messages.c and attachments.c filter the same way:
-- the policies are the second wall, not the only one.

CREATE FUNCTION app_portal_user_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT nullif(current_setting('app.portal_user_id', true), '')::uuid $$;

-- ---- messages ------------------------------------------------------------

CREATE TABLE messages (
    tenant_id         uuid        NOT NULL,
    id                uuid        NOT NULL DEFAULT gen_random_uuid(),
    seq               bigint      GENERATED ALWAYS AS IDENTITY,
    project_id        uuid        NOT NULL,
    author_kind       text        NOT NULL CHECK (author_kind IN ('client', 'team')),
    author_client_id  uuid,
    author_member_id  uuid,
    -- the author's name when posting: a message keeps its signature when the
    -- author is renamed or removed
    author_name       text        NOT NULL,
    visibility        text        NOT NULL DEFAULT 'client'
                      CHECK (visibility IN ('client', 'internal')),
    body              text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, project_id, id),
    FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, author_client_id) REFERENCES portal_users (tenant_id, id)
        ON DELETE SET NULL (author_client_id),
    FOREIGN KEY (tenant_id, author_member_id) REFERENCES team_members (tenant_id, id)
        ON DELETE SET NULL (author_member_id),
    -- clients never write internal messages
    CHECK (author_kind = 'team' OR visibility = 'client')
);
CREATE INDEX messages_order ON messages (tenant_id, project_id, seq);
-- what clients read and count: newest first, unread counts (the author is
-- included so that counting "by others" reads the index, not the table)
CREATE INDEX messages_client ON messages (tenant_id, project_id, seq) INCLUDE (author_client_id)
    WHERE visibility = 'client' AND deleted_at IS NULL;

-- ---- attachments ----------------------------------------------------------

CREATE TABLE attachments (
    tenant_id           uuid        NOT NULL,
    id                  uuid        NOT NULL DEFAULT gen_random_uuid(),
    seq                 bigint      GENERATED ALWAYS AS IDENTITY,
    project_id          uuid        NOT NULL,
    uploader_kind       text        NOT NULL CHECK (uploader_kind IN ('client', 'team')),
    uploader_client_id  uuid,
    uploader_member_id  uuid,
    filename            text        NOT NULL,
    content_type        text        NOT NULL,
    size                bigint      NOT NULL CHECK (size > 0),
    -- tenants/{tenant}/projects/{project}/{id}: never a user-chosen name
    object_key          text        NOT NULL,
    status              text        NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'ready')),
    sha256              text        CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    etag                text,
    message_id          uuid,
    created_at          timestamptz NOT NULL DEFAULT now(),
    ready_at            timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, project_id, id),
    FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, uploader_client_id) REFERENCES portal_users (tenant_id, id)
        ON DELETE SET NULL (uploader_client_id),
    FOREIGN KEY (tenant_id, uploader_member_id) REFERENCES team_members (tenant_id, id)
        ON DELETE SET NULL (uploader_member_id),
    -- an attachment joins at most one message, of its own project
    FOREIGN KEY (tenant_id, project_id, message_id) REFERENCES messages (tenant_id, project_id, id)
        ON DELETE SET NULL (message_id),
    CHECK (status = 'ready' OR message_id IS NULL)
);
CREATE INDEX attachments_message ON attachments (tenant_id, message_id, seq)
    WHERE message_id IS NOT NULL;
CREATE INDEX attachments_project ON attachments (tenant_id, project_id, seq);

ALTER TABLE deliverables ADD UNIQUE (tenant_id, project_id, id);

-- The client policies below read client_visible: with it in the progress
-- indexes, counting a project's or milestone's tasks stays an index-only scan.
DROP INDEX tasks_progress;
CREATE INDEX tasks_progress ON tasks (tenant_id, project_id, status) INCLUDE (client_visible);
DROP INDEX tasks_milestone;
CREATE INDEX tasks_milestone ON tasks (tenant_id, milestone_id, status) INCLUDE (client_visible)
    WHERE milestone_id IS NOT NULL;

-- The files of a deliverable (team uploads of the same project, in order).
CREATE TABLE deliverable_attachments (
    tenant_id       uuid    NOT NULL,
    project_id      uuid    NOT NULL,
    deliverable_id  uuid    NOT NULL,
    attachment_id   uuid    NOT NULL,
    position        integer NOT NULL,
    PRIMARY KEY (tenant_id, deliverable_id, attachment_id),
    FOREIGN KEY (tenant_id, project_id, deliverable_id)
        REFERENCES deliverables (tenant_id, project_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, project_id, attachment_id)
        REFERENCES attachments (tenant_id, project_id, id) ON DELETE CASCADE
);
CREATE INDEX deliverable_attachments_attachment ON deliverable_attachments (tenant_id, attachment_id);

-- ---- read markers ---------------------------------------------------------

CREATE TABLE message_reads (
    tenant_id   uuid        NOT NULL,
    project_id  uuid        NOT NULL,
    client_id   uuid        NOT NULL,
    last_seq    bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, project_id, client_id),
    -- a client who leaves the project leaves their marker behind
    FOREIGN KEY (tenant_id, project_id, client_id)
        REFERENCES project_members (tenant_id, project_id, client_id) ON DELETE CASCADE
);

-- ---- tenant limits, audit actors ------------------------------------------

-- One open digest per recipient, channel and project: a message posted while
-- one is pending and untried folds into it (INSERT ... ON CONFLICT), even
-- when posts race.  Once a notifier has tried it (attempts > 0) or sent it,
-- the next message opens a new one.
CREATE UNIQUE INDEX outbox_digest_open
    ON outbox (tenant_id, channel, recipient_kind, recipient_id, project_id)
    WHERE template = 'message_digest' AND status = 'pending' AND attempts = 0;

ALTER TABLE tenant_branding ADD COLUMN quota_bytes bigint CHECK (quota_bytes > 0);
ALTER TABLE audit_log ADD COLUMN actor_client_id uuid;

-- ---- row-level security ---------------------------------------------------

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['messages', 'attachments', 'deliverable_attachments',
                             'message_reads'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I USING (tenant_id = app_tenant_id()) '
                       'WITH CHECK (tenant_id = app_tenant_id())', t || '_scope', t);
    END LOOP;
END $$;

-- "Row r belongs to one of the signed-in client's projects" is written as
-- (tenant_id, project_id) IN (SELECT ... FROM project_members ...): an
-- uncorrelated sub-select that PostgreSQL runs once per statement and probes
-- as a hash per row.  (A correlated EXISTS per row made counting a 10,000-
-- message thread take 300 ms.)  On the team surface app_portal_user_id() is
-- NULL, the first arm of the OR holds, and the sub-select never runs.
-- The client id itself is read as (SELECT app_portal_user_id()): an init
-- plan, evaluated once per statement instead of once per row.
-- project_members is itself limited to the client's own rows below.
CREATE POLICY project_members_client ON project_members AS RESTRICTIVE
    USING ((SELECT app_portal_user_id()) IS NULL OR client_id = (SELECT app_portal_user_id()));
CREATE POLICY projects_client ON projects AS RESTRICTIVE
    USING ((SELECT app_portal_user_id()) IS NULL OR (tenant_id, id) IN (SELECT m.tenant_id, m.project_id FROM project_members m
                                 WHERE m.client_id = (SELECT app_portal_user_id())));
CREATE POLICY milestones_client ON milestones AS RESTRICTIVE
    USING ((SELECT app_portal_user_id()) IS NULL
           OR (client_visible AND (tenant_id, project_id) IN (SELECT m.tenant_id, m.project_id FROM project_members m
                                              WHERE m.client_id = (SELECT app_portal_user_id()))));
CREATE POLICY tasks_client ON tasks AS RESTRICTIVE
    USING ((SELECT app_portal_user_id()) IS NULL
           OR (client_visible AND (tenant_id, project_id) IN (SELECT m.tenant_id, m.project_id FROM project_members m
                                              WHERE m.client_id = (SELECT app_portal_user_id()))));
CREATE POLICY deliverables_client ON deliverables AS RESTRICTIVE
    USING ((SELECT app_portal_user_id()) IS NULL
           OR (client_visible AND (tenant_id, project_id) IN (SELECT m.tenant_id, m.project_id FROM project_members m
                                              WHERE m.client_id = (SELECT app_portal_user_id()))));
CREATE POLICY deliverable_decisions_client ON deliverable_decisions AS RESTRICTIVE
    USING ((SELECT app_portal_user_id()) IS NULL
           OR EXISTS (SELECT 1 FROM deliverables d
                      WHERE d.tenant_id = deliverable_decisions.tenant_id
                        AND d.id = deliverable_decisions.deliverable_id));
CREATE POLICY deliverable_attachments_client ON deliverable_attachments AS RESTRICTIVE
    USING ((SELECT app_portal_user_id()) IS NULL
           OR EXISTS (SELECT 1 FROM deliverables d
                      WHERE d.tenant_id = deliverable_attachments.tenant_id
                        AND d.id = deliverable_attachments.deliverable_id));
CREATE POLICY messages_client ON messages AS RESTRICTIVE
    USING ((SELECT app_portal_user_id()) IS NULL
           OR (visibility = 'client' AND deleted_at IS NULL
               AND (tenant_id, project_id) IN (SELECT m.tenant_id, m.project_id FROM project_members m
                                              WHERE m.client_id = (SELECT app_portal_user_id()))));
CREATE POLICY attachments_client ON attachments AS RESTRICTIVE
    USING ((SELECT app_portal_user_id()) IS NULL
           OR ((tenant_id, project_id) IN (SELECT m.tenant_id, m.project_id FROM project_members m
                                          WHERE m.client_id = (SELECT app_portal_user_id()))
               AND (uploader_client_id = (SELECT app_portal_user_id())
                    OR EXISTS (SELECT 1 FROM messages m
                               WHERE m.tenant_id = attachments.tenant_id
                                 AND m.id = attachments.message_id)
                    OR EXISTS (SELECT 1 FROM deliverable_attachments da
                               WHERE da.tenant_id = attachments.tenant_id
                                 AND da.attachment_id = attachments.id))));
CREATE POLICY message_reads_client ON message_reads AS RESTRICTIVE
    USING ((SELECT app_portal_user_id()) IS NULL OR client_id = (SELECT app_portal_user_id()));

-- ---- API representations --------------------------------------------------

-- the short form inside messages and deliverables
CREATE FUNCTION api_attachment_brief(a attachments) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', a.id, 'filename', a.filename,
        'content_type', a.content_type, 'size', a.size, 'sha256', a.sha256)
$$;

CREATE FUNCTION api_attachment(a attachments) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', a.id, 'project_id', a.project_id, 'filename', a.filename,
        'content_type', a.content_type, 'size', a.size, 'status', a.status,
        'sha256', a.sha256, 'message_id', a.message_id,
        'uploaded_by', a.uploader_kind, 'created_at', api_time(a.created_at))
$$;

-- the client's view of a message: no visibility, no deletion time
CREATE FUNCTION api_client_message(m messages, attachments jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', m.id, 'project_id', m.project_id,
        'author', jsonb_build_object('kind', m.author_kind,
            'id', coalesce(m.author_client_id, m.author_member_id), 'name', m.author_name),
        'body', m.body, 'attachments', attachments, 'created_at', api_time(m.created_at))
$$;

CREATE FUNCTION api_team_message(m messages, attachments jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', m.id, 'project_id', m.project_id,
        'author', jsonb_build_object('kind', m.author_kind,
            'id', coalesce(m.author_client_id, m.author_member_id), 'name', m.author_name),
        'visibility', m.visibility, 'body', m.body, 'attachments', attachments,
        'created_at', api_time(m.created_at), 'deleted_at', api_time(m.deleted_at))
$$;

-- team deliverables now list their files
DROP FUNCTION api_deliverable(deliverables, jsonb);
CREATE FUNCTION api_deliverable(d deliverables, decision jsonb, attachment_ids jsonb)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', d.id, 'project_id', d.project_id,
        'milestone_id', d.milestone_id, 'title', d.title, 'description', d.description,
        'due_date', d.due_date, 'status', d.status, 'delivered_at', api_time(d.delivered_at),
        'client_visible', d.client_visible, 'attachment_ids', attachment_ids,
        'decision', decision,
        'created_at', api_time(d.created_at), 'updated_at', api_time(d.updated_at))
$$;

-- ---- client shapes (no client_visible flag, no internal milestone ids) ----

CREATE FUNCTION api_client_project(p projects, progress jsonb, next_deliverable jsonb,
                                   unread bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', p.id, 'name', p.name, 'description', p.description,
        'status', p.status, 'start_date', p.start_date, 'due_date', p.due_date,
        'progress', progress, 'next_deliverable', next_deliverable,
        'unread_messages', unread, 'updated_at', api_time(p.updated_at))
$$;

CREATE FUNCTION api_client_milestone(m milestones, progress jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', m.id, 'project_id', m.project_id, 'title', m.title,
        'description', m.description, 'due_date', m.due_date, 'status', m.status,
        'position', m.position, 'percent', progress->'percent', 'progress', progress)
$$;

CREATE FUNCTION api_client_task(t tasks, milestone_id uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', t.id, 'project_id', t.project_id,
        'milestone_id', milestone_id, 'title', t.title, 'status', t.status,
        'due_date', t.due_date, 'position', t.position,
        'updated_at', api_time(t.updated_at))
$$;

CREATE FUNCTION api_client_deliverable(d deliverables, milestone_id uuid, decision jsonb,
                                       attachment_ids jsonb, attachments jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', d.id, 'project_id', d.project_id,
        'milestone_id', milestone_id, 'title', d.title, 'description', d.description,
        'due_date', d.due_date, 'status', d.status, 'delivered_at', api_time(d.delivered_at),
        'attachment_ids', attachment_ids,
        'attachments', attachments, 'decision', decision,
        'updated_at', api_time(d.updated_at))
$$;
