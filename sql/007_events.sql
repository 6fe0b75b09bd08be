-- Real-time events: one-time subscription tokens for browser consoles, and
-- the member list the publisher needs whatever the caller may see.

-- POST /team/events/token: a 60-second, single-use token (only its SHA-256
-- is kept) that opens GET /team/events?token= where a browser cannot send the
-- API key.
CREATE TABLE team_event_tokens (
    tenant_id     uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    token_sha256  bytea       NOT NULL,
    project_id    uuid,
    api_key_id    uuid,
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, token_sha256),
    FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX team_event_tokens_age ON team_event_tokens (expires_at);
ALTER TABLE team_event_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE team_event_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY team_event_tokens_scope ON team_event_tokens USING (tenant_id = app_tenant_id())
    WITH CHECK (tenant_id = app_tenant_id());

-- A client's change (a message, a sign-off) is announced to every member
-- client of the project, while the client-surface policies let the client
-- see only its own membership row: this function reads the memberships as
-- the team surface does (app.portal_user_id cleared for the one query, then
-- restored), and returns nothing but ids, which name channels and never
-- reach a client.
CREATE FUNCTION project_member_ids(t uuid, p uuid) RETURNS SETOF uuid
LANGUAGE plpgsql AS $$
DECLARE
    saved text := coalesce(current_setting('app.portal_user_id', true), '');
BEGIN
    PERFORM set_config('app.portal_user_id', '', true);
    RETURN QUERY SELECT m.client_id FROM project_members m
                  WHERE m.tenant_id = t AND m.project_id = p;
    PERFORM set_config('app.portal_user_id', saved, true);
END $$;
