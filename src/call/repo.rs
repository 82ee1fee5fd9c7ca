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

/// Stores a status callback and applies it to its call, in one transaction holding the
/// call row's lock, so concurrent callbacks of one call apply one after the other.
pub async fn record_status(
    pool: &PgPool,
    id: CallId,
    update: &StatusUpdate,
    payload: &Value,
) -> Result<Applied, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row: Option<(bool, CallProgress)> = sqlx::query_as::<_, InsertedProgress>(
        "WITH ev AS (
             INSERT INTO call_events (tenant_id, call_id, call_sid, kind, event_key, sequence, payload)
             SELECT tenant_id, id, $2, 'status', $3, $4, $5 FROM calls WHERE id = $1
             ON CONFLICT (call_id, kind, event_key) DO NOTHING
             RETURNING call_id)
         SELECT EXISTS (SELECT 1 FROM ev) AS inserted, state, last_sequence, call_sid, answered_by,
                disposition, answered_at, ended_at, duration_secs, error_code
           FROM calls WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .bind(update.sid.as_ref().map(|s| s.as_str()))
    .bind(update.event_key())
    .bind(update.sequence)
    .bind(payload)
    .fetch_optional(&mut *tx)
    .await?
    .map(|r| (r.inserted, r.progress));
    let Some((inserted, mut progress)) = row else {
        return Ok(Applied::UnknownCall);
    };
    if !inserted {
        return Ok(Applied::Duplicate);
    }
    let before = progress.clone();
    let newer = progress.apply(update);
    if progress != before {
        sqlx::query(
            "UPDATE calls SET state = $2, last_sequence = $3, call_sid = $4, answered_by = $5,
                    disposition = $6, answered_at = $7, ended_at = $8, duration_secs = $9,
                    error_code = $10,
                    final_deadline = CASE WHEN $11 THEN NULL ELSE final_deadline END,
                    hold_deadline = CASE WHEN $11 THEN NULL ELSE hold_deadline END
              WHERE id = $1",
        )
        .bind(id)
        .bind(&progress.state)
        .bind(progress.last_sequence)
        .bind(&progress.call_sid)
        .bind(&progress.answered_by)
        .bind(&progress.disposition)
        .bind(progress.answered_at)
        .bind(progress.ended_at)
        .bind(progress.duration_secs)
        .bind(progress.error_code)
        .bind(newer && update.status.is_final())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(if newer {
        Applied::Applied
    } else {
        Applied::Stale
    })
}

#[derive(sqlx::FromRow)]
struct InsertedProgress {
    inserted: bool,
    #[sqlx(flatten)]
    progress: CallProgress,
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
    sqlx::query(
        "UPDATE calls SET answered_by = COALESCE(answered_by, $2),
                human_detected_at = CASE WHEN $2 = 'human' THEN COALESCE(human_detected_at, now())
                                         ELSE human_detected_at END,
                disposition = CASE WHEN $3 AND disposition = 'answered' THEN 'voicemail' ELSE disposition END
          WHERE id = $1",
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

/// Records a finished recording on its call.
pub async fn set_recording(
    pool: &PgPool,
    id: CallId,
    recording_sid: &str,
    url: Option<&str>,
    duration_secs: Option<i32>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE calls SET recording_sid = $2, recording_url = $3, recording_duration_secs = $4
          WHERE id = $1",
    )
    .bind(id)
    .bind(recording_sid)
    .bind(url)
    .bind(duration_secs)
    .execute(pool)
    .await?;
    Ok(())
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
