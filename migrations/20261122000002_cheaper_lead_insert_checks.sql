-- Bulk imports spend most of their time in Postgres; two of the per-row checks on leads
-- cost more than they need to (1M-row import profile).

-- The E.164 check without the regex engine: the same rule (`+`, a digit 1-9, then 6 to 14
-- digits; bytes, so no other script's digits), in 0.45 µs a row instead of 1.0 µs.
ALTER TABLE leads DROP CONSTRAINT leads_phone_e164_check;
ALTER TABLE leads ADD CONSTRAINT leads_phone_e164_check CHECK (
    octet_length(phone_e164) BETWEEN 8 AND 16
    AND left(phone_e164, 2) BETWEEN '+1' AND '+9'
    AND ltrim(substr(phone_e164, 3), '0123456789') = ''
);

-- The campaign-of-tenant check reduces the statement's rows to their distinct
-- (tenant, campaign) pairs first (one per import), instead of probing campaigns per row.
CREATE OR REPLACE FUNCTION leads_check_campaign_of_tenant() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pairs uuid[][];
    bad record;
BEGIN
    SELECT array_agg(ARRAY[p.tenant_id, p.campaign_id]) INTO pairs
      FROM (SELECT DISTINCT n.tenant_id, n.campaign_id FROM new_rows n) p;
    PERFORM 1 FROM campaigns c
     WHERE c.id IN (SELECT pairs[i][2] FROM generate_subscripts(pairs, 1) i)
       FOR KEY SHARE OF c;
    SELECT pairs[i][1] AS tenant_id, pairs[i][2] AS campaign_id INTO bad
      FROM generate_subscripts(pairs, 1) i
     WHERE NOT EXISTS (SELECT 1 FROM campaigns c WHERE c.id = pairs[i][2] AND c.tenant_id = pairs[i][1])
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'lead of tenant % refers to campaign %, which is not a campaign of that tenant',
            bad.tenant_id, bad.campaign_id
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'leads_campaign_of_tenant';
    END IF;
    RETURN NULL;
END
$$;
