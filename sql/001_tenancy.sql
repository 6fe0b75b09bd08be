-- Tenancy: tenants, their hosts, branding and settings, console API keys, audit log.
--
-- Every table carries tenant_id and has row-level security enabled and
-- forced.  The application role sees a row only when the transaction has set
-- app.tenant_id to the row's tenant (set_config(..., true)).  Two narrow
-- exceptions exist so that a tenant can be found before it is known:
--   * tenant_domains: a row is visible when app.host equals its host;
--   * tenants: a row is visible when app.tenant_code equals its code.
-- Both only reveal the row that the caller already names.

CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE FUNCTION app_tenant_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT nullif(current_setting('app.tenant_id', true), '')::uuid $$;

-- Times in API answers: RFC 3339 in UTC with second precision.
CREATE FUNCTION api_time(timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT to_char($1 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') $$;

CREATE TABLE tenants (
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    code        text        NOT NULL,
    name        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id),
    CONSTRAINT tenants_code_format CHECK (code ~ '^[a-z0-9][a-z0-9-]{1,39}$'),
    CONSTRAINT tenants_name_length CHECK (char_length(name) BETWEEN 1 AND 200)
);
CREATE UNIQUE INDEX tenants_code_key ON tenants (code);

CREATE TABLE tenant_domains (
    tenant_id   uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    host        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, host),
    CONSTRAINT tenant_domains_host_format CHECK (
        char_length(host) <= 253
        AND host ~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$')
);
-- A host belongs to at most one tenant across the whole deployment.
CREATE UNIQUE INDEX tenant_domains_host_key ON tenant_domains (host);

CREATE TABLE tenant_branding (
    tenant_id               uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    display_name            text        NOT NULL,
    logo_url                text,
    favicon_url             text,
    color_primary           text        NOT NULL DEFAULT '#4f46e5',
    color_accent            text        NOT NULL DEFAULT '#0ea5e9',
    color_background        text        NOT NULL DEFAULT '#ffffff',
    color_text              text        NOT NULL DEFAULT '#111827',
    support_email           text,
    locale                  text        NOT NULL DEFAULT 'en',
    max_upload_bytes        bigint      NOT NULL DEFAULT 52428800,
    blocked_content_types   text[]      NOT NULL DEFAULT ARRAY[
        'text/html', 'application/xhtml+xml', 'image/svg+xml',
        'application/javascript', 'text/javascript',
        'application/x-msdownload', 'application/x-sh'],
    store_endpoint          text,
    store_region            text,
    store_bucket            text,
    store_path_style        boolean     NOT NULL DEFAULT true,
    store_access_key_id     text,
    store_secret_access_key text,
    whatsapp_phone_number_id text,
    whatsapp_access_token   text,
    whatsapp_templates      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    updated_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id),
    CONSTRAINT tenant_branding_colors CHECK (
        color_primary ~ '^#[0-9a-f]{6}$' AND color_accent ~ '^#[0-9a-f]{6}$'
        AND color_background ~ '^#[0-9a-f]{6}$' AND color_text ~ '^#[0-9a-f]{6}$'),
    CONSTRAINT tenant_branding_upload CHECK (max_upload_bytes > 0)
);

CREATE TABLE api_keys (
    tenant_id    uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    name         text        NOT NULL,
    prefix       text        NOT NULL,
    key_sha256   bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT api_keys_hash_length CHECK (octet_length(key_sha256) = 32)
);
CREATE UNIQUE INDEX api_keys_prefix_key ON api_keys (tenant_id, prefix);

CREATE TABLE audit_log (
    tenant_id    uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           bigint      GENERATED ALWAYS AS IDENTITY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor_key_id uuid,
    actor_member_id uuid,
    action       text        NOT NULL,
    target_type  text        NOT NULL,
    target_id    text,
    request_id   text,
    ip           inet,
    detail       jsonb,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at DESC, id DESC);

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenants_scope ON tenants
    USING (id = app_tenant_id()
           OR code = nullif(current_setting('app.tenant_code', true), ''))
    WITH CHECK (id = app_tenant_id());

ALTER TABLE tenant_domains ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_domains FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_domains_scope ON tenant_domains
    USING (tenant_id = app_tenant_id()
           OR host = nullif(current_setting('app.host', true), ''))
    WITH CHECK (tenant_id = app_tenant_id());

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenant_branding', 'api_keys', 'audit_log'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I USING (tenant_id = app_tenant_id()) '
                       'WITH CHECK (tenant_id = app_tenant_id())', t || '_scope', t);
    END LOOP;
END $$;
