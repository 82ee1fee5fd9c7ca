//! Writing events: one `INSERT … SELECT` each, inside the caller's transaction, that
//! inserts nothing unless the tenant has an enabled endpoint wanting the event. It runs
//! under a savepoint: if it fails, the savepoint is rolled back, the failure logged and
//! counted, and the caller's change commits as if no endpoint existed. An event written
//! twice is stored once (`UNIQUE (tenant_id, event, event_id)`).
//!
//! Every body has the same envelope: `{"id", "event", "created_at", "tenant_id", "data"}`,
//! `id` being `<event>:<event_id>` (stable across retries: the receiver's dedup key).

use chrono::{DateTime, Utc};
use sqlx::{Acquire, PgConnection};

use crate::call::CallId;

/// The attempts' leads moved on (`engine::repo::finish`): `call.finished` for each call of
/// `$1`, and `lead.final` when `$2` gives the lead's final reason.
const CALLS_FINISHED: &str = "
WITH k AS (
    SELECT k.*, f.final_reason, l.first_name, l.last_name, l.custom, l.attempts AS lead_attempts,
           a.name AS agent_name, w.events AS wanted
      FROM calls k
      JOIN leads l ON l.id = k.lead_id
      JOIN crm_webhooks w ON w.tenant_id = k.tenant_id AND w.enabled
      JOIN unnest($1::bigint[], $2::text[]) AS f(call_id, final_reason) ON f.call_id = k.id
      LEFT JOIN agents a ON a.id = k.agent_id
)
INSERT INTO crm_deliveries (tenant_id, event, event_id, payload, next_attempt_at)
SELECT tenant_id, e.event, e.event_id,
       jsonb_build_object('id', e.event || ':' || e.event_id, 'event', e.event,
                          'created_at', now(), 'tenant_id', tenant_id, 'data', e.data),
       now()
  FROM k, LATERAL (VALUES
    ('call.finished', k.id::text, jsonb_build_object(
        'call_id', k.id, 'lead_id', k.lead_id, 'campaign_id', k.campaign_id,
        'attempt', k.attempt, 'to', k.to_number, 'from', k.from_number, 'call_sid', k.call_sid,
        'status', k.state, 'disposition', k.disposition, 'answered_by', k.answered_by,
        'duration_secs', k.duration_secs, 'agent_id', k.agent_id, 'agent_name', k.agent_name,
        'created_at', k.created_at, 'dialed_at', k.dialed_at, 'answered_at', k.answered_at,
        'bridged_at', k.bridged_at, 'ended_at', k.ended_at,
        'cost', k.cost, 'cost_currency', k.cost_currency, 'error_code', k.error_code)),
    ('lead.final', k.lead_id::text || '.' || k.lead_attempts::text, jsonb_build_object(
        'lead_id', k.lead_id, 'campaign_id', k.campaign_id, 'phone', k.to_number,
        'first_name', k.first_name, 'last_name', k.last_name, 'custom', k.custom,
        'final_reason', k.final_reason, 'attempts', k.lead_attempts, 'last_call_id', k.id))
  ) AS e(event, event_id, data)
 WHERE e.event = ANY(k.wanted) AND (e.event <> 'lead.final' OR k.final_reason IS NOT NULL)
ON CONFLICT (tenant_id, event, event_id) DO NOTHING";

/// The agent's wrap-up (`engine::wrapup`), after the call row has it.
const DISPOSITION_SET: &str = "
INSERT INTO crm_deliveries (tenant_id, event, event_id, payload, next_attempt_at)
SELECT k.tenant_id, 'disposition.set', k.id::text,
       jsonb_build_object('id', 'disposition.set:' || k.id, 'event', 'disposition.set',
         'created_at', now(), 'tenant_id', k.tenant_id, 'data', jsonb_build_object(
           'call_id', k.id, 'lead_id', k.lead_id, 'campaign_id', k.campaign_id,
           'phone', k.to_number, 'agent_id', k.agent_id, 'agent_name', a.name,
           'disposition', k.agent_disposition, 'notes', k.agent_notes,
           'set_at', k.agent_disposition_at, 'callback_at', $2::timestamptz,
           'callback_scheduled_at', $3::timestamptz, 'added_to_dnc', $4::boolean)),
       now()
  FROM calls k
  JOIN crm_webhooks w ON w.tenant_id = k.tenant_id AND w.enabled
                     AND 'disposition.set' = ANY(w.events)
  LEFT JOIN agents a ON a.id = k.agent_id
 WHERE k.id = $1 AND k.agent_disposition IS NOT NULL
ON CONFLICT (tenant_id, event, event_id) DO NOTHING";

/// `call.finished` for each of `calls` (and `lead.final` with the lead's reason where
/// `lead_finals` gives one: the lead is done). Never fails: see the module's note.
pub async fn calls_finished(
    conn: &mut PgConnection,
    calls: &[i64],
    lead_finals: &[Option<String>],
) {
    let Some(&first) = calls.first() else { return };
    let query = sqlx::query(CALLS_FINISHED).bind(calls).bind(lead_finals);
    write(conn, query, "call.finished", CallId(first)).await;
}

/// `disposition.set` for `call`, whose wrap-up was just written.
pub async fn disposition_set(
    conn: &mut PgConnection,
    call: CallId,
    callback_at: Option<DateTime<Utc>>,
    callback_scheduled_at: Option<DateTime<Utc>>,
    added_to_dnc: bool,
) {
    let query = sqlx::query(DISPOSITION_SET)
        .bind(call)
        .bind(callback_at)
        .bind(callback_scheduled_at)
        .bind(added_to_dnc);
    write(conn, query, "disposition.set", call).await;
}

async fn write(
    conn: &mut PgConnection,
    query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    what: &'static str,
    call: CallId,
) {
    let mut savepoint = match conn.begin().await {
        Ok(s) => s,
        Err(e) => {
            failed(what, call, &e);
            return;
        }
    };
    match query.execute(&mut *savepoint).await {
        Ok(done) => match savepoint.commit().await {
            Ok(()) if done.rows_affected() > 0 => {
                metrics::counter!("dialer_crm_webhook_events_total", "event" => what)
                    .increment(done.rows_affected());
            }
            Ok(()) => {}
            Err(e) => failed(what, call, &e),
        },
        Err(e) => {
            failed(what, call, &e);
            if let Err(e) = savepoint.rollback().await {
                tracing::warn!(error = %e, "rolling back the CRM event's savepoint failed");
            }
        }
    }
}

fn failed(what: &'static str, call: CallId, e: &sqlx::Error) {
    metrics::counter!("dialer_crm_webhook_events_failed_total").increment(1);
    tracing::warn!(call = %call, event = what, error = %e, "recording a CRM event failed; the call flow goes on without it");
}
