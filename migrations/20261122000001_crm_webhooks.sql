-- Outbound event webhooks for CRMs ([6/6]): one endpoint per tenant, and an outbox of
-- deliveries. Events are written in the transaction of the change they report (the call's
-- lead moved on, the agent's wrap-up), only when the tenant has an enabled endpoint that
-- wants them; a worker on every instance claims due rows with FOR UPDATE SKIP LOCKED,
-- POSTs them signed with the endpoint's secret, and retries with backoff.

CREATE TABLE crm_webhooks (
    -- One endpoint per tenant.
    tenant_id   uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    url         text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2048),
    -- The HMAC-SHA256 key, `whsec_…`. Kept as given: the daemon needs it to sign.
    secret      text NOT NULL CHECK (secret LIKE 'whsec\_%'),
    events      text[] NOT NULL DEFAULT '{call.finished,disposition.set,lead.final}'
                CHECK (cardinality(events) > 0
                       AND events <@ '{call.finished,disposition.set,lead.final}'::text[]),
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE crm_deliveries (
    -- Sent as X-Dialer-Delivery.
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    event            text NOT NULL
                     CHECK (event IN ('call.finished', 'disposition.set', 'lead.final')),
    -- The event's natural key (the call id; the lead id and its attempt count), so an event
    -- written twice is stored once.
    event_id         text COLLATE "C" NOT NULL,
    -- The whole body as sent (envelope and data).
    payload          jsonb NOT NULL,
    -- pending: to be sent at next_attempt_at (while a worker holds it, next_attempt_at is
    -- its lease); delivered: a 2xx came back; failed: given up after the last attempt (or
    -- the endpoint was removed), kept for inspection.
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz,
    last_attempt_at  timestamptz,
    delivered_at     timestamptz,
    -- The endpoint's HTTP status of the last attempt (NULL: no answer), and what went wrong.
    last_status      integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, event, event_id),
    CHECK ((state = 'pending') = (next_attempt_at IS NOT NULL))
);

-- The worker's claim: due pending rows, oldest due first. Small: only pending rows.
CREATE INDEX crm_deliveries_due_idx ON crm_deliveries (next_attempt_at) WHERE state = 'pending';
-- A tenant's recent deliveries (the API's listing).
CREATE INDEX crm_deliveries_tenant_idx ON crm_deliveries (tenant_id, id DESC);
-- Pruning of settled rows past the retention (`crm_webhooks.retention_days`).
CREATE INDEX crm_deliveries_settled_idx ON crm_deliveries (created_at) WHERE state <> 'pending';
