-- The dialing engine ([4/6]).

-- Why the pacer last passed over a lead at dial time (outside the lead's window, DNC …).
ALTER TABLE leads ADD COLUMN last_skip_reason text;
ALTER TABLE leads ADD COLUMN last_skipped_at timestamptz;

-- Leads with a live attempt: the sweeper finds those whose attempt ended without the lead
-- being moved on (a crash between the final callback and the retry decision). Small: only
-- leads being dialled are in it.
CREATE INDEX leads_dialing_idx ON leads (campaign_id) WHERE status = 'dialing';

-- Why a campaign stopped dialling on its own (completed, caller id refused …).
ALTER TABLE campaigns ADD COLUMN status_reason text;
ALTER TABLE campaigns ADD COLUMN status_changed_at timestamptz NOT NULL DEFAULT now();

-- Attempts that never reached the carrier are deleted, not kept: the attempt number is
-- reused, and an outage never burns an attempt. Attempts the carrier may have received
-- stay until the sweeper reconciles them.
CREATE INDEX calls_final_deadline_idx ON calls (final_deadline) WHERE NOT is_final;
