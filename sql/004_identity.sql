-- Client identity: invites, password resets, portal sessions and their
-- rotating refresh tokens, login throttling, and the notification outbox.
--
-- Tokens (invite, reset, refresh) are 256-bit random values of which only
-- the SHA-256 is stored.  The outbox is written in the same transaction as
-- the change that causes a notification and read by atrium-notifier, which
-- connects as its own role (atrium_notifier, created by the stack bootstrap
-- before migrations run) and sees every tenant's pending rows through the
-- policies below; the application role still sees only its tenant's.

ALTER TABLE portal_users ADD COLUMN password_changed_at timestamptz;

CREATE TABLE invites (
    tenant_id       uuid        NOT NULL,
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    client_id       uuid        NOT NULL,
    token_sha256    bytea       NOT NULL CHECK (octet_length(token_sha256) = 32),
    delivery        text        NOT NULL CHECK (delivery IN ('email', 'link')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz,
    revoked_at      timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, client_id) REFERENCES portal_users (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX invites_token ON invites (tenant_id, token_sha256);
CREATE INDEX invites_client ON invites (tenant_id, client_id);

CREATE TABLE password_resets (
    tenant_id       uuid        NOT NULL,
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    user_id         uuid        NOT NULL,
    token_sha256    bytea       NOT NULL CHECK (octet_length(token_sha256) = 32),
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES portal_users (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX password_resets_token ON password_resets (tenant_id, token_sha256);
CREATE INDEX password_resets_user ON password_resets (tenant_id, user_id);

-- A session is the JWT's sid and the family of its refresh tokens.
CREATE TABLE portal_sessions (
    tenant_id       uuid        NOT NULL,
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    seq             bigint      GENERATED ALWAYS AS IDENTITY,
    user_id         uuid        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_used_at    timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    revoked_reason  text,
    user_agent      text,
    ip              inet,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES portal_users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX portal_sessions_user ON portal_sessions (tenant_id, user_id, seq);

-- Every refresh token a session ever had: the current one (rotated_at NULL)
-- and the rotated ones, so that reuse of an old token is recognised.
CREATE TABLE session_refresh_tokens (
    tenant_id       uuid        NOT NULL,
    token_sha256    bytea       NOT NULL CHECK (octet_length(token_sha256) = 32),
    session_id      uuid        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    rotated_at      timestamptz,
    PRIMARY KEY (tenant_id, token_sha256),
    FOREIGN KEY (tenant_id, session_id) REFERENCES portal_sessions (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX session_refresh_tokens_session ON session_refresh_tokens (tenant_id, session_id);

-- Failed logins per tenant and lower-cased email, whether or not an account
-- exists (so the lockout itself reveals nothing).
CREATE TABLE login_throttle (
    tenant_id           uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email_key           text        NOT NULL,
    failures            integer     NOT NULL DEFAULT 0,
    window_started_at   timestamptz NOT NULL DEFAULT now(),
    locked_until        timestamptz,
    lock_count          integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, email_key)
);

CREATE TABLE outbox (
    tenant_id       uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    seq             bigint      GENERATED ALWAYS AS IDENTITY,
    channel         text        NOT NULL CHECK (channel IN ('email', 'whatsapp')),
    template        text        NOT NULL,
    recipient_kind  text        NOT NULL CHECK (recipient_kind IN ('client', 'team')),
    recipient_id    uuid,
    address         text        NOT NULL,
    project_id      uuid,
    -- what the template needs; secrets in it (the invite or reset link) are
    -- removed by the notifier once the row is sent or dead
    payload         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    dedupe_key      text        NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    send_after      timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, dedupe_key)
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_list ON outbox (tenant_id, seq);

-- Wake the notifiers when rows arrive (delivered at commit).
CREATE FUNCTION outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('atrium_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['invites', 'password_resets', 'portal_sessions',
                             'session_refresh_tokens', 'login_throttle', 'outbox'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I USING (tenant_id = app_tenant_id()) '
                       'WITH CHECK (tenant_id = app_tenant_id())', t || '_scope', t);
    END LOOP;
END $$;

-- The notifier: every tenant's outbox, and read access to what an email
-- needs (branding, hosts, recipients).  Nothing else.
CREATE POLICY outbox_notifier ON outbox TO atrium_notifier USING (true) WITH CHECK (true);
CREATE POLICY tenants_notifier ON tenants FOR SELECT TO atrium_notifier USING (true);
CREATE POLICY tenant_branding_notifier ON tenant_branding FOR SELECT TO atrium_notifier USING (true);
CREATE POLICY tenant_domains_notifier ON tenant_domains FOR SELECT TO atrium_notifier USING (true);
CREATE POLICY portal_users_notifier ON portal_users FOR SELECT TO atrium_notifier USING (true);
CREATE POLICY team_members_notifier ON team_members FOR SELECT TO atrium_notifier USING (true);
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM atrium_notifier;
GRANT SELECT ON tenants, tenant_branding, tenant_domains, portal_users, team_members
    TO atrium_notifier;
GRANT SELECT, UPDATE ON outbox TO atrium_notifier;

-- The signed-in client's own view of their account (GET/PATCH /me).
CREATE FUNCTION api_me(u portal_users) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', u.id, 'email', u.email, 'name', u.name,
        'company', u.company, 'phone', u.phone, 'locale', u.locale, 'time_zone', u.time_zone,
        'notify', jsonb_build_object('email', u.notify_email, 'whatsapp', u.notify_whatsapp))
$$;
