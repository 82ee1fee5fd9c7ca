-- [5/6] The warm transfer: every offer of a waiting person to an agent, and what the
-- agent made of the call afterwards.

-- One row per agent leg dialled for an attempt. At most one offer of an attempt rings at
-- a time; the agent stays reserved (agents.active_calls) from the offer until the offer
-- ends (declined, missed, canceled) or, once accepted, until the agent's leg ends.
CREATE TABLE agent_offers (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    call_id         bigint NOT NULL,
    agent_id        uuid NOT NULL,
    agent_call_sid  text COLLATE "C",
    state           text NOT NULL DEFAULT 'ringing'
                    CHECK (state IN ('ringing', 'accepted', 'declined', 'missed', 'canceled', 'ended')),
    offered_at      timestamptz NOT NULL DEFAULT now(),
    answered_at     timestamptz,
    ended_at        timestamptz,
    FOREIGN KEY (tenant_id, call_id) REFERENCES calls (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX agent_offers_call_idx ON agent_offers (call_id);
CREATE INDEX agent_offers_agent_idx ON agent_offers (agent_id, offered_at);
CREATE UNIQUE INDEX agent_offers_one_ringing_per_call ON agent_offers (call_id) WHERE state = 'ringing';

-- Wrap-up: when the agent gave the disposition, and their notes.
ALTER TABLE calls ADD COLUMN agent_disposition_at timestamptz;
ALTER TABLE calls ADD COLUMN agent_notes text;

-- A call-back the agent promised: the lead is dialled again at that time (within the
-- legal windows; leads.next_attempt_at), offered first to leads.callback_agent_id.
ALTER TABLE leads ADD COLUMN callback_at timestamptz;

-- The campaign's own wrap-up codes, on top of sale, callback, not_interested,
-- wrong_number and do_not_call.
ALTER TABLE campaigns ADD COLUMN disposition_codes text[] NOT NULL DEFAULT '{}';

-- The abandonment rate (abandoned ÷ answered by a person, rolling 30 days), read every
-- second per agent-paced campaign.
CREATE INDEX calls_person_answered_idx ON calls (campaign_id, created_at)
    WHERE disposition IN ('answered', 'abandoned');
