-- The whole data model. Postgres is the source of truth (DESIGN.md promise 1).
--
-- Conventions:
-- * Identifiers compared for equality (E.164 numbers, carrier SIDs, event keys) are
--   COLLATE "C": byte comparison, no linguistic rules.
-- * Every tenant-owned table carries tenant_id. Cross-table references go through
--   composite foreign keys (tenant_id, id), so a row can never point at another
--   tenant's row, whatever the application code does (promise 6).
-- * Closed sets are text with CHECK constraints (easy to extend in a later migration).
-- * Entities people name in URLs are uuid; high-volume rows (leads, calls, events,
--   DNC numbers) are bigint identities.

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(btrim(name)) > 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX tenants_name_key ON tenants (lower(name));

CREATE TABLE agent_groups (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(btrim(name)) > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE agents (
    id                    uuid PRIMARY KEY,
    tenant_id             uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                  text NOT NULL CHECK (length(btrim(name)) > 0),
    -- E.164 number, sip: URI or client: identity.
    endpoint              text NOT NULL CHECK (endpoint ~ '^(\+[1-9][0-9]{6,14}|sip:.+|client:.+)$'),
    status                text NOT NULL DEFAULT 'offline'
                          CHECK (status IN ('available', 'busy', 'wrap_up', 'break', 'offline')),
    status_changed_at     timestamptz NOT NULL DEFAULT now(),
    -- When the agent last became free; longest idle first = smallest value.
    idle_since            timestamptz,
    max_concurrent_calls  integer NOT NULL DEFAULT 1 CHECK (max_concurrent_calls >= 1),
    active_calls          integer NOT NULL DEFAULT 0 CHECK (active_calls >= 0),
    time_zone             text NOT NULL DEFAULT 'UTC',
    work_start            time NOT NULL DEFAULT '00:00',
    work_end              time NOT NULL DEFAULT '24:00',
    -- Bit 0 = Monday … bit 6 = Sunday.
    work_days             smallint NOT NULL DEFAULT 127 CHECK (work_days BETWEEN 1 AND 127),
    missed_offers         integer NOT NULL DEFAULT 0,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);
CREATE INDEX agents_available_idx ON agents (tenant_id, idle_since) WHERE status = 'available';

CREATE TABLE agent_group_members (
    tenant_id  uuid NOT NULL,
    group_id   uuid NOT NULL,
    agent_id   uuid NOT NULL,
    PRIMARY KEY (group_id, agent_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES agent_groups (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX agent_group_members_agent_idx ON agent_group_members (agent_id);

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'manager', 'agent')),
    -- The first characters of the key, to tell keys apart in listings; not secret.
    key_prefix    text NOT NULL,
    -- HMAC-SHA256(pepper, key). The key itself is shown once and never stored.
    key_hash      bytea NOT NULL UNIQUE,
    agent_id      uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE,
    CHECK ((role = 'agent') = (agent_id IS NOT NULL))
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id);

CREATE TABLE campaigns (
    id                       uuid PRIMARY KEY,
    tenant_id                uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                     text NOT NULL CHECK (length(btrim(name)) > 0),
    status                   text NOT NULL DEFAULT 'draft'
                             CHECK (status IN ('draft', 'active', 'paused', 'completed', 'stopped')),
    -- E.164; a draft may lack it, a campaign cannot start without it.
    caller_id                text CHECK (caller_id ~ '^\+[1-9][0-9]{6,14}$'),
    -- The campaign's own calling window, in its time zone.
    time_zone                text NOT NULL DEFAULT 'UTC',
    window_start             time NOT NULL DEFAULT '09:00',
    window_end               time NOT NULL DEFAULT '20:00',
    days                     smallint NOT NULL DEFAULT 31 CHECK (days BETWEEN 1 AND 127),
    start_date               date,
    end_date                 date,
    -- Region used to read national numbers in imports (ISO 3166-1 alpha-2).
    default_region           text NOT NULL DEFAULT 'US' CHECK (default_region ~ '^[A-Z]{2}$'),
    max_concurrent           integer NOT NULL DEFAULT 10 CHECK (max_concurrent >= 1),
    dial_ratio               double precision NOT NULL DEFAULT 1.0 CHECK (dial_ratio >= 1.0 AND dial_ratio <= 10.0),
    -- Ring time; the law's minimum is 15 s.
    dial_timeout_secs        integer NOT NULL DEFAULT 30 CHECK (dial_timeout_secs BETWEEN 15 AND 600),
    max_attempts             integer NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 50),
    -- Retry delays per outcome; NULL = do not retry after that outcome.
    retry_no_answer_secs     integer DEFAULT 3600 CHECK (retry_no_answer_secs >= 0),
    retry_busy_secs          integer DEFAULT 3600 CHECK (retry_busy_secs >= 0),
    retry_failed_secs        integer DEFAULT 3600 CHECK (retry_failed_secs >= 0),
    retry_voicemail_secs     integer CHECK (retry_voicemail_secs >= 0),
    amd_enabled              boolean NOT NULL DEFAULT true,
    voicemail_message        text,
    voicemail_audio_url      text,
    recording_enabled        boolean NOT NULL DEFAULT false,
    recording_consent_message text,
    agent_group_id           uuid,
    max_hold_ms              integer NOT NULL DEFAULT 2000 CHECK (max_hold_ms BETWEEN 500 AND 60000),
    abandon_cap_pct          double precision NOT NULL DEFAULT 3.0 CHECK (abandon_cap_pct >= 0 AND abandon_cap_pct <= 100),
    seller_name              text,
    callback_number          text CHECK (callback_number ~ '^\+[1-9][0-9]{6,14}$'),
    -- The lead-local legal window (default 08:00–21:00 in the lead's own zone) and
    -- per region/state overrides: {"US-FL": ["08:00", "20:00"], ...}.
    legal_window_start       time NOT NULL DEFAULT '08:00',
    legal_window_end         time NOT NULL DEFAULT '21:00',
    legal_window_overrides   jsonb NOT NULL DEFAULT '{}',
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, agent_group_id) REFERENCES agent_groups (tenant_id, id),
    CHECK (end_date IS NULL OR start_date IS NULL OR end_date >= start_date),
    CHECK (window_start < window_end),
    CHECK (legal_window_start < legal_window_end)
);
CREATE INDEX campaigns_tenant_idx ON campaigns (tenant_id, created_at);
CREATE INDEX campaigns_active_idx ON campaigns (id) WHERE status = 'active';

CREATE TABLE import_jobs (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- NULL for DNC list imports.
    campaign_id         uuid,
    kind                text NOT NULL DEFAULT 'leads' CHECK (kind IN ('leads', 'dnc')),
    file_name           text NOT NULL,
    status              text NOT NULL DEFAULT 'queued'
                        CHECK (status IN ('queued', 'running', 'completed', 'failed')),
    options             jsonb NOT NULL DEFAULT '{}',
    rows_total          bigint NOT NULL DEFAULT 0,
    rows_accepted       bigint NOT NULL DEFAULT 0,
    rows_rejected       bigint NOT NULL DEFAULT 0,
    -- {"invalid_phone": 12, "duplicate_in_file": 3, ...}
    rejected_by_reason  jsonb NOT NULL DEFAULT '{}',
    -- Why the whole file failed (not CSV, not UTF-8, no phone column …).
    error               text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    -- Written while an import runs; a running job with an old heartbeat was interrupted.
    heartbeat_at        timestamptz,
    finished_at         timestamptz,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, campaign_id) REFERENCES campaigns (tenant_id, id) ON DELETE CASCADE,
    CHECK ((kind = 'leads') = (campaign_id IS NOT NULL))
);
CREATE INDEX import_jobs_tenant_idx ON import_jobs (tenant_id, created_at);

-- One row per rejected CSV row.
CREATE TABLE import_errors (
    import_id    uuid NOT NULL,
    tenant_id    uuid NOT NULL,
    row_number   bigint NOT NULL,
    column_name  text,
    value        text,
    code         text NOT NULL,
    reason       text NOT NULL,
    PRIMARY KEY (import_id, row_number),
    FOREIGN KEY (tenant_id, import_id) REFERENCES import_jobs (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE leads (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id          uuid NOT NULL,
    campaign_id        uuid NOT NULL,
    import_id          uuid,
    phone_raw          text NOT NULL,
    -- COLLATE "C": compared byte by byte. Under the database's linguistic collation the
    -- unique index below cost ~8 µs a row in bulk imports (about as much as the row itself).
    phone_e164         text COLLATE "C" NOT NULL CHECK (phone_e164 ~ '^\+[1-9][0-9]{6,14}$'),
    -- ISO region the number belongs to, and its candidate IANA time zones.
    region             text,
    time_zones         text[] NOT NULL DEFAULT '{}',
    first_name         text,
    last_name          text,
    -- Line type as the CRM gave it (mobile, landline …).
    phone_type         text,
    -- 1 low, 2 normal, 3 high, 4 urgent: ORDER BY priority DESC.
    priority           smallint NOT NULL DEFAULT 2 CHECK (priority BETWEEN 1 AND 4),
    notes              text,
    custom             jsonb NOT NULL DEFAULT '{}',
    -- ready: waiting for next_attempt_at; dialing: an attempt is live; done: final.
    status             text NOT NULL DEFAULT 'ready' CHECK (status IN ('ready', 'dialing', 'done')),
    -- Why a lead is done: a disposition, 'attempts_exhausted', 'dnc', 'removed' …
    final_reason       text,
    attempts           integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at    timestamptz NOT NULL DEFAULT now(),
    callback_agent_id  uuid,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    UNIQUE (campaign_id, phone_e164),
    -- (tenant_id, campaign_id) must name a campaign of that tenant: enforced by the
    -- statement-level triggers below rather than a foreign key, whose row-by-row check
    -- halved bulk import speed (COPY of 179k leads: 5.5 s with it, 3.1 s without).
    FOREIGN KEY (tenant_id, callback_agent_id) REFERENCES agents (tenant_id, id) ON DELETE SET NULL (callback_agent_id),
    CHECK ((status = 'done') = (final_reason IS NOT NULL))
);
-- Every inserted lead belongs to a campaign of its own tenant: one set-based check per
-- statement. Like a foreign key, it locks the campaigns FOR KEY SHARE, so a campaign cannot
-- be deleted under an import that is adding leads to it.
CREATE FUNCTION leads_check_campaign_of_tenant() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    PERFORM 1 FROM campaigns c WHERE c.id IN (SELECT DISTINCT n.campaign_id FROM new_rows n) FOR KEY SHARE OF c;
    SELECT n.tenant_id, n.campaign_id INTO bad FROM new_rows n
     WHERE NOT EXISTS (SELECT 1 FROM campaigns c WHERE c.id = n.campaign_id AND c.tenant_id = n.tenant_id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'lead of tenant % refers to campaign %, which is not a campaign of that tenant',
            bad.tenant_id, bad.campaign_id
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'leads_campaign_of_tenant';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER leads_campaign_of_tenant AFTER INSERT ON leads
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION leads_check_campaign_of_tenant();

-- A lead never moves to another tenant or campaign.
CREATE FUNCTION leads_keep_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.tenant_id <> OLD.tenant_id OR NEW.campaign_id <> OLD.campaign_id THEN
        RAISE EXCEPTION 'a lead cannot move to another tenant or campaign'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'leads_campaign_of_tenant';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER leads_keep_owner BEFORE UPDATE OF tenant_id, campaign_id ON leads
    FOR EACH ROW EXECUTE FUNCTION leads_keep_owner();

-- Deleting a campaign deletes its leads (what ON DELETE CASCADE did).
CREATE FUNCTION campaigns_delete_leads() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM leads WHERE campaign_id = OLD.id;
    RETURN OLD;
END
$$;
CREATE TRIGGER campaigns_delete_leads BEFORE DELETE ON campaigns
    FOR EACH ROW EXECUTE FUNCTION campaigns_delete_leads();

-- The pacer's question: which ready leads of this campaign are due, best first.
CREATE INDEX leads_dialable_idx ON leads (campaign_id, priority DESC, next_attempt_at) WHERE status = 'ready';

CREATE TABLE calls (
    id                       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id                uuid NOT NULL,
    campaign_id              uuid NOT NULL,
    lead_id                  bigint NOT NULL,
    attempt                  integer NOT NULL CHECK (attempt >= 1),
    -- NULL until the carrier accepted the dial request.
    call_sid                 text COLLATE "C" UNIQUE,
    state                    text NOT NULL DEFAULT 'dialing'
                             CHECK (state IN ('dialing', 'queued', 'initiated', 'ringing', 'in-progress',
                                              'completed', 'busy', 'no-answer', 'failed', 'canceled')),
    is_final                 boolean GENERATED ALWAYS AS
                             (state IN ('completed', 'busy', 'no-answer', 'failed', 'canceled')) STORED,
    -- Highest SequenceNumber applied, so an older callback never overwrites a newer one.
    last_sequence            integer,
    answered_by              text,
    disposition              text CHECK (disposition IN ('answered', 'voicemail', 'no_answer', 'busy', 'failed',
                                                         'canceled', 'abandoned', 'invalid_number')),
    -- Set by the agent at wrap-up: sale, callback, not_interested, wrong_number, do_not_call, custom codes.
    agent_disposition        text,
    agent_id                 uuid,
    to_number                text NOT NULL,
    from_number              text NOT NULL,
    created_at               timestamptz NOT NULL DEFAULT now(),
    dialed_at                timestamptz,
    answered_at              timestamptz,
    human_detected_at        timestamptz,
    bridged_at               timestamptz,
    ended_at                 timestamptz,
    -- Deadlines acted on by the sweepers with compare-and-set.
    hold_deadline            timestamptz,
    final_deadline           timestamptz,
    duration_secs            integer,
    cost                     numeric(12, 5),
    cost_currency            text,
    error_code               integer,
    error_message            text,
    recording_sid            text,
    recording_url            text,
    recording_duration_secs  integer,
    UNIQUE (tenant_id, id),
    UNIQUE (lead_id, attempt),
    FOREIGN KEY (tenant_id, campaign_id) REFERENCES campaigns (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, lead_id) REFERENCES leads (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE SET NULL (agent_id)
);
-- Promise 3: never two live attempts for one lead, whatever the code does.
CREATE UNIQUE INDEX calls_one_live_attempt_per_lead ON calls (lead_id) WHERE NOT is_final;
-- Live calls per campaign (concurrency rebuild after Redis is lost) and stuck-call sweeps.
CREATE INDEX calls_live_idx ON calls (campaign_id, final_deadline) WHERE NOT is_final;
CREATE INDEX calls_hold_deadline_idx ON calls (hold_deadline) WHERE hold_deadline IS NOT NULL AND bridged_at IS NULL;
-- Reports and exports by campaign and date.
CREATE INDEX calls_report_idx ON calls (tenant_id, campaign_id, created_at);
CREATE INDEX calls_agent_idx ON calls (agent_id, created_at) WHERE agent_id IS NOT NULL;

-- Every webhook as received; (call_id, kind, event_key) makes a replay a no-op.
CREATE TABLE call_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    call_id      bigint NOT NULL,
    call_sid     text,
    -- status, amd, voice, conference, recording, gather …
    kind         text COLLATE "C" NOT NULL,
    -- What makes two deliveries the same event, e.g. "ringing:1" (status and SequenceNumber).
    event_key    text COLLATE "C" NOT NULL,
    sequence     integer,
    payload      jsonb NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (call_id, kind, event_key),
    FOREIGN KEY (tenant_id, call_id) REFERENCES calls (tenant_id, id) ON DELETE CASCADE
);

-- Do-not-call numbers: tenant_id NULL is the global list every tenant obeys.
CREATE TABLE dnc_numbers (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid REFERENCES tenants (id) ON DELETE CASCADE,
    phone_e164  text COLLATE "C" NOT NULL CHECK (phone_e164 ~ '^\+[1-9][0-9]{6,14}$'),
    -- manual, import, lead_flag, opt_out, agent …
    source      text NOT NULL DEFAULT 'manual',
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX dnc_numbers_tenant_key ON dnc_numbers (tenant_id, phone_e164) WHERE tenant_id IS NOT NULL;
CREATE UNIQUE INDEX dnc_numbers_global_key ON dnc_numbers (phone_e164) WHERE tenant_id IS NULL;
