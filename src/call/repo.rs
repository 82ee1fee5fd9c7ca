//! Call rows and their events in Postgres.

use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use super::{Applied, CallId, CallProgress, StatusUpdate};
use crate::campaign::CampaignId;
use crate::tenant::TenantId;

/// A new attempt, written before the carrier is asked to dial it.
#[derive(Debug, Clone)]
pub struct NewAttempt<'a> {
    pub tenant_id: TenantId,
    pub campaign_id: CampaignId,
    pub lead_id: i64,
    pub attempt: i32,
    pub to: &'a str,
    pub from: &'a str,
}

/// Inserts the attempt row (state `dialing`). The database refuses a second live attempt
/// for the lead and a repeated (lead, attempt).
pub async fn insert_attempt(
    conn: &mut PgConnection,
    a: &NewAttempt<'_>,
) -> Result<CallId, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO calls (tenant_id, campaign_id, lead_id, attempt, to_number, from_number)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(a.tenant_id)
    .bind(a.campaign_id)
    .bind(a.lead_id)
    .bind(a.attempt)
    .bind(a.to)
    .bind(a.from)
    .fetch_one(conn)
    .await
    .map(CallId)
}

/// Records the carrier's SID once it accepted the dial request.
pub async fn set_sid(conn: &mut PgConnection, id: CallId, sid: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE calls SET call_sid = $2, dialed_at = COALESCE(dialed_at, now()),
                state = CASE WHEN state = 'dialing' THEN 'queued' ELSE state END
          WHERE id = $1 AND (call_sid IS NULL OR call_sid = $2)",
    )
    .bind(id)
    .bind(sid)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores a status callback and applies it to its call in one statement (one round trip,
/// one commit): the event insert, and an `UPDATE` that Postgres re-evaluates against the
/// newest row version when callbacks of one call race, so they apply one after the other.
///
/// The `UPDATE` is [`CallProgress::apply`] written in SQL; `apply` is the specification,
/// and a test replays callbacks in every order through both and compares the rows.
pub async fn record_status(
    pool: &PgPool,
    id: CallId,
    update: &StatusUpdate,
    payload: &Value,
) -> Result<Applied, sqlx::Error> {
    use crate::telephony::{AnsweredBy, CallStatus};
    let status = &update.status;
    let known = !matches!(status, CallStatus::Unknown(_));
    let (found, inserted, newer): (bool, bool, Option<bool>) = sqlx::query_as(
        "WITH ev AS (
             INSERT INTO call_events (tenant_id, call_id, call_sid, kind, event_key, sequence, payload)
             SELECT tenant_id, id, $2, 'status', $3, $4, $5 FROM calls WHERE id = $1
             ON CONFLICT (call_id, kind, event_key) DO NOTHING
             RETURNING call_id),
         upd AS (
             UPDATE calls c SET
                 state = CASE WHEN ($15 AND NOT c.is_final AND $7 >= CASE c.state WHEN 'dialing' THEN 0 WHEN 'queued' THEN 1 WHEN 'initiated' THEN 2 WHEN 'ringing' THEN 3 WHEN 'in-progress' THEN 4 ELSE 5 END AND (c.last_sequence IS NULL OR $4::int IS NULL OR $4 > c.last_sequence)) THEN $6 ELSE c.state END,
                 last_sequence = CASE WHEN ($15 AND NOT c.is_final AND $7 >= CASE c.state WHEN 'dialing' THEN 0 WHEN 'queued' THEN 1 WHEN 'initiated' THEN 2 WHEN 'ringing' THEN 3 WHEN 'in-progress' THEN 4 ELSE 5 END AND (c.last_sequence IS NULL OR $4::int IS NULL OR $4 > c.last_sequence)) THEN COALESCE($4, c.last_sequence) ELSE c.last_sequence END,
                 call_sid = COALESCE(c.call_sid, $2),
                 answered_at = CASE WHEN $6 = 'in-progress' THEN COALESCE(c.answered_at, $9) ELSE c.answered_at END,
                 answered_by = COALESCE(c.answered_by, $10),
                 ended_at = CASE WHEN $8 THEN COALESCE(c.ended_at, $9) ELSE c.ended_at END,
                 duration_secs = CASE WHEN $8 THEN COALESCE(c.duration_secs, $11) ELSE c.duration_secs END,
                 error_code = CASE WHEN $8 THEN COALESCE(c.error_code, $12) ELSE c.error_code END,
                 disposition = CASE
                     WHEN ($15 AND NOT c.is_final AND $7 >= CASE c.state WHEN 'dialing' THEN 0 WHEN 'queued' THEN 1 WHEN 'initiated' THEN 2 WHEN 'ringing' THEN 3 WHEN 'in-progress' THEN 4 ELSE 5 END AND (c.last_sequence IS NULL OR $4::int IS NULL OR $4 > c.last_sequence)) AND $8 AND c.disposition IS NULL THEN
                         CASE WHEN COALESCE(c.answered_by, $10) IN
                                   ('machine_start', 'machine_end_beep', 'machine_end_silence', 'machine_end_other')
                              THEN $14 ELSE $13 END
                     ELSE c.disposition END,
                 final_deadline = CASE WHEN ($15 AND NOT c.is_final AND $7 >= CASE c.state WHEN 'dialing' THEN 0 WHEN 'queued' THEN 1 WHEN 'initiated' THEN 2 WHEN 'ringing' THEN 3 WHEN 'in-progress' THEN 4 ELSE 5 END AND (c.last_sequence IS NULL OR $4::int IS NULL OR $4 > c.last_sequence)) AND $8 THEN NULL ELSE c.final_deadline END,
                 hold_deadline = CASE WHEN ($15 AND NOT c.is_final AND $7 >= CASE c.state WHEN 'dialing' THEN 0 WHEN 'queued' THEN 1 WHEN 'initiated' THEN 2 WHEN 'ringing' THEN 3 WHEN 'in-progress' THEN 4 ELSE 5 END AND (c.last_sequence IS NULL OR $4::int IS NULL OR $4 > c.last_sequence)) AND $8 THEN NULL ELSE c.hold_deadline END
             FROM ev
             WHERE c.id = ev.call_id
             -- The new row: the callback was applied if the call now shows its status and
             -- sequence (RETURNING sees only the new values on Postgres < 18).
             RETURNING c.state = $6 AND c.last_sequence IS NOT DISTINCT FROM COALESCE($4, c.last_sequence) AS newer)
         SELECT EXISTS (SELECT 1 FROM calls WHERE id = $1), EXISTS (SELECT 1 FROM ev), (SELECT newer FROM upd)",
    )
    .bind(id)
    .bind(update.sid.as_ref().map(|s| s.as_str()))
    .bind(update.event_key())
    .bind(update.sequence)
    .bind(payload)
    .bind(status.as_str())
    .bind(i32::from(status.rank()))
    .bind(status.is_final())
    .bind(update.at)
    .bind(update.answered_by.as_ref().map(|a| a.as_str()))
    .bind(update.duration_secs)
    .bind(update.error_code)
    .bind(super::disposition_for(status, None))
    .bind(super::disposition_for(status, Some(&AnsweredBy::MachineEndBeep)))
    .bind(known)
    .fetch_one(pool)
    .await?;
    Ok(match (found, inserted, newer) {
        (false, _, _) => Applied::UnknownCall,
        (true, false, _) => Applied::Duplicate,
        (true, true, Some(true)) => Applied::Applied,
        (true, true, _) => Applied::Stale,
    })
}

/// A call's progress as stored (for checking [`record_status`] against [`CallProgress::apply`]).
pub async fn progress(pool: &PgPool, id: CallId) -> Result<Option<CallProgress>, sqlx::Error> {
    sqlx::query_as(
        "SELECT state, last_sequence, call_sid, answered_by, disposition, answered_at, ended_at,
                duration_secs, error_code
           FROM calls WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Stores the asynchronous AMD verdict and records it on the call. A machine verdict that
/// arrives after the call already ended as `answered` turns it into `voicemail`.
pub async fn record_amd(
    pool: &PgPool,
    id: CallId,
    sid: Option<&str>,
    answered_by: &crate::telephony::AnsweredBy,
    payload: &Value,
) -> Result<Applied, sqlx::Error> {
    let applied = record_event(pool, id, sid, "amd", "amd", None, payload).await?;
    if applied != Applied::Applied {
        return Ok(applied);
    }
    // A machine verdict that arrives after the call ended (callbacks overtake each other)
    // still makes it a voicemail, even if the engine had judged the unbridged answer
    // abandoned; the lead's outcome follows when this was its latest attempt.
    sqlx::query(
        "WITH k AS (
             UPDATE calls SET answered_by = COALESCE(answered_by, $2),
                    human_detected_at = CASE WHEN $2 = 'human' THEN COALESCE(human_detected_at, now())
                                             ELSE human_detected_at END,
                    disposition = CASE WHEN $3 AND bridged_at IS NULL AND disposition IN ('answered', 'abandoned')
                                       THEN 'voicemail' ELSE disposition END
              WHERE id = $1
             RETURNING lead_id, attempt, disposition)
         UPDATE leads l SET final_reason = 'voicemail'
           FROM k WHERE $3 AND l.id = k.lead_id AND l.attempts = k.attempt AND l.status = 'done'
            AND l.final_reason = 'abandoned' AND k.disposition = 'voicemail'",
    )
    .bind(id)
    .bind(answered_by.as_str())
    .bind(answered_by.is_machine())
    .execute(pool)
    .await?;
    Ok(Applied::Applied)
}

/// Stores any other callback (conference, recording, voice, gather, agent leg) once per
/// `(kind, key)`; `Applied` when new, `Duplicate` when seen before.
pub async fn record_event(
    pool: &PgPool,
    id: CallId,
    sid: Option<&str>,
    kind: &str,
    key: &str,
    sequence: Option<i32>,
    payload: &Value,
) -> Result<Applied, sqlx::Error> {
    let (found, inserted): (bool, bool) = sqlx::query_as(
        "WITH c AS (SELECT tenant_id, id FROM calls WHERE id = $1),
              ev AS (
                 INSERT INTO call_events (tenant_id, call_id, call_sid, kind, event_key, sequence, payload)
                 SELECT tenant_id, id, $2, $3, $4, $5, $6 FROM c
                 ON CONFLICT (call_id, kind, event_key) DO NOTHING
                 RETURNING 1)
         SELECT EXISTS (SELECT 1 FROM c), EXISTS (SELECT 1 FROM ev)",
    )
    .bind(id)
    .bind(sid)
    .bind(kind)
    .bind(key)
    .bind(sequence)
    .bind(payload)
    .fetch_one(pool)
    .await?;
    Ok(match (found, inserted) {
        (false, _) => Applied::UnknownCall,
        (true, false) => Applied::Duplicate,
        (true, true) => Applied::Applied,
    })
}

/// Records a finished recording on its call. The first recording stays: a repeat of its
/// callback writes the same values, and another recording of the same call (there is one
/// conference per attempt, so there should be none) does not replace it — `false` then.
pub async fn set_recording(
    pool: &PgPool,
    id: CallId,
    recording_sid: &str,
    url: Option<&str>,
    duration_secs: Option<i32>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE calls SET recording_sid = $2, recording_url = $3, recording_duration_secs = $4
          WHERE id = $1 AND (recording_sid IS NULL OR recording_sid = $2)",
    )
    .bind(id)
    .bind(recording_sid)
    .bind(url)
    .bind(duration_secs)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// What a webhook needs to know of its call.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CallRef {
    pub id: CallId,
    pub tenant_id: TenantId,
    pub campaign_id: CampaignId,
    pub lead_id: i64,
    pub call_sid: Option<String>,
    pub state: String,
    pub answered_by: Option<String>,
}

pub async fn get(pool: &PgPool, id: CallId) -> Result<Option<CallRef>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, tenant_id, campaign_id, lead_id, call_sid, state, answered_by FROM calls WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Records when an agent joined the lead's conference (a participant other than the lead).
pub async fn mark_bridged(
    pool: &PgPool,
    id: CallId,
    participant_sid: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE calls SET bridged_at = COALESCE(bridged_at, now())
          WHERE id = $1 AND call_sid IS DISTINCT FROM $2",
    )
    .bind(id)
    .bind(participant_sid)
    .execute(pool)
    .await?;
    Ok(())
}
