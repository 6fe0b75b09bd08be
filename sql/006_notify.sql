-- Notifications: preferences per channel and topic, team members' time
-- zones, the WhatsApp email fallback, who a notification goes to, and what
-- the notifier may write.

-- Topics a recipient may switch off per channel: {"messages":{"email":false}}.
-- A missing entry is on; the channel switches (notify_email,
-- notify_whatsapp) still apply on top.
ALTER TABLE portal_users ADD COLUMN notify_topics jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE team_members ADD COLUMN notify_topics jsonb NOT NULL DEFAULT '{}'::jsonb;
-- digests show times in the recipient's zone
ALTER TABLE team_members ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';
-- when WhatsApp refuses a message for good, send it by email instead
ALTER TABLE tenant_branding ADD COLUMN whatsapp_fallback_email boolean NOT NULL DEFAULT false;

CREATE FUNCTION notify_on(master boolean, topics jsonb, topic text, channel text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT master AND coalesce((topics -> topic ->> channel)::boolean, true) $$;

-- PATCH of the topics: {"messages":{"email":false}} changes that one switch
CREATE FUNCTION notify_merge(cur jsonb, patch jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(cur, '{}'::jsonb) || coalesce((SELECT jsonb_object_agg(e.k,
               coalesce(cur -> e.k, '{}'::jsonb) || e.v) FROM jsonb_each(patch) AS e(k, v)),
           '{}'::jsonb)
$$;

-- The API's notify object: the channel switches and every topic's switches.
CREATE FUNCTION api_notify(email boolean, whatsapp boolean, topics jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT jsonb_build_object('email', email, 'whatsapp', whatsapp, 'topics', jsonb_build_object(
        'messages', jsonb_build_object('email', notify_on(true, topics, 'messages', 'email'),
                                       'whatsapp', notify_on(true, topics, 'messages', 'whatsapp')),
        'deliverables', jsonb_build_object('email', notify_on(true, topics, 'deliverables', 'email'),
                                           'whatsapp', notify_on(true, topics, 'deliverables', 'whatsapp')),
        'milestones', jsonb_build_object('email', notify_on(true, topics, 'milestones', 'email'),
                                         'whatsapp', notify_on(true, topics, 'milestones', 'whatsapp'))))
$$;

CREATE OR REPLACE FUNCTION api_team_member(m team_members) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', m.id, 'name', m.name, 'email', m.email, 'phone', m.phone,
        'time_zone', m.time_zone,
        'notify', api_notify(m.notify_email, m.notify_whatsapp, m.notify_topics),
        'created_at', api_time(m.created_at), 'updated_at', api_time(m.updated_at))
$$;

CREATE OR REPLACE FUNCTION api_client(u portal_users) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', u.id, 'email', u.email, 'name', u.name,
        'company', u.company, 'phone', u.phone, 'locale', u.locale, 'time_zone', u.time_zone,
        'status', u.status,
        'notify', api_notify(u.notify_email, u.notify_whatsapp, u.notify_topics),
        'created_at', api_time(u.created_at), 'updated_at', api_time(u.updated_at),
        'last_login_at', api_time(u.last_login_at))
$$;

CREATE OR REPLACE FUNCTION api_me(u portal_users) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', u.id, 'email', u.email, 'name', u.name,
        'company', u.company, 'phone', u.phone, 'locale', u.locale, 'time_zone', u.time_zone,
        'notify', api_notify(u.notify_email, u.notify_whatsapp, u.notify_topics))
$$;

-- Who hears of an activity of project p on topic: its watchers and/or its
-- member clients (active), on every channel they want it on, never the
-- excluded member (the author).  WhatsApp only with a phone, and only when
-- the tenant has WhatsApp configured.  Row-level security applies (the
-- caller's tenant).
CREATE FUNCTION outbox_recipients(t uuid, p uuid, watchers boolean, clients boolean, topic text,
                                  exclude uuid)
RETURNS TABLE (kind text, id uuid, channel text, address text)
LANGUAGE sql STABLE AS $$
    WITH wa AS (
        SELECT coalesce((SELECT b.whatsapp_phone_number_id IS NOT NULL
                                AND b.whatsapp_access_token IS NOT NULL
                         FROM tenant_branding b WHERE b.tenant_id = t), false) AS on
    ), team AS (
        SELECT tm.* FROM project_watchers w
        JOIN team_members tm ON tm.tenant_id = w.tenant_id AND tm.id = w.member_id
        WHERE watchers AND w.tenant_id = t AND w.project_id = p
          AND tm.id IS DISTINCT FROM exclude
    ), members AS (
        SELECT u.* FROM project_members pm
        JOIN portal_users u ON u.tenant_id = pm.tenant_id AND u.id = pm.client_id
        WHERE clients AND pm.tenant_id = t AND pm.project_id = p AND u.status = 'active'
    )
    SELECT 'team', team.id, 'email', team.email FROM team
     WHERE notify_on(team.notify_email, team.notify_topics, topic, 'email')
    UNION ALL
    SELECT 'team', team.id, 'whatsapp', team.phone FROM team, wa
     WHERE wa.on AND team.phone IS NOT NULL
       AND notify_on(team.notify_whatsapp, team.notify_topics, topic, 'whatsapp')
    UNION ALL
    SELECT 'client', members.id, 'email', members.email FROM members
     WHERE notify_on(members.notify_email, members.notify_topics, topic, 'email')
    UNION ALL
    SELECT 'client', members.id, 'whatsapp', members.phone FROM members, wa
     WHERE wa.on AND members.phone IS NOT NULL
       AND notify_on(members.notify_whatsapp, members.notify_topics, topic, 'whatsapp')
$$;

-- GET /team/outbox filters
CREATE INDEX outbox_project ON outbox (tenant_id, project_id, seq) WHERE project_id IS NOT NULL;
CREATE INDEX outbox_recipient ON outbox (tenant_id, recipient_id, seq) WHERE recipient_id IS NOT NULL;

-- The notifier writes the email that stands in for a WhatsApp message
-- refused for good (when the tenant asks for it).
GRANT INSERT ON outbox TO atrium_notifier;
