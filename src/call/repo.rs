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
    let mut applied = record_statuses(pool, &[(id, update, payload)]).await?;
    Ok(applied.pop().unwrap_or(Applied::UnknownCall))
}

/// [`record_status`] for many callbacks at once (the webhook path's group commit): one
/// statement for each round of distinct calls, so one round trip and one commit serve the
/// whole batch. Callbacks of one call go in separate rounds, in the order given. The
/// outcome of each callback, in the order given.
pub async fn record_statuses(
    pool: &PgPool,
    items: &[(CallId, &StatusUpdate, &Value)],
) -> Result<Vec<Applied>, sqlx::Error> {
    let mut outcomes = vec![Applied::UnknownCall; items.len()];
    let mut left: Vec<usize> = (0..items.len()).collect();
    while !left.is_empty() {
        // This round: the first callback of each call still waiting, in call order (rows are
        // locked in id order, so two batches running at once do not deadlock).
        let mut seen = std::collections::HashSet::new();
        let (mut round, rest): (Vec<usize>, Vec<usize>) =
            left.iter().partition(|&&i| seen.insert(items[i].0));
        round.sort_by_key(|&i| items[i].0.0);
        let mut tries = 0;
        let applied = loop {
            match record_status_round(pool, items, &round).await {
                // Locks are taken in id order, but Postgres may still pick another order
                // for the update: the loser of a deadlock is rolled back whole, so re-run it.
                Err(e) if tries < 3 && is_deadlock(&e) => tries += 1,
                result => break result?,
            }
        };
        for (i, a) in round.into_iter().zip(applied) {
            outcomes[i] = a;
        }
        left = rest;
    }
    Ok(outcomes)
}

fn is_deadlock(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "40P01")
}

/// One statement for callbacks of distinct calls (`round` indexes `items`).
async fn record_status_round(
    pool: &PgPool,
    items: &[(CallId, &StatusUpdate, &Value)],
    round: &[usize],
) -> Result<Vec<Applied>, sqlx::Error> {
    use crate::telephony::{AnsweredBy, CallStatus};
    // One array per column of the statement's `unnest`, in `round`'s order.
    let ids: Vec<i64> = round.iter().map(|&i| items[i].0.0).collect();
    let payloads: Vec<Value> = round.iter().map(|&i| items[i].2.clone()).collect();
    let updates: Vec<&StatusUpdate> = round.iter().map(|&i| items[i].1).collect();
    let sids: Vec<Option<&str>> = updates
        .iter()
        .map(|u| u.sid.as_ref().map(|s| s.as_str()))
        .collect();
    let keys: Vec<String> = updates.iter().map(|u| u.event_key()).collect();
    let statuses: Vec<&str> = updates.iter().map(|u| u.status.as_str()).collect();
    let answered: Vec<Option<&str>> = updates
        .iter()
        .map(|u| u.answered_by.as_ref().map(|a| a.as_str()))
        .collect();
    let disps: Vec<Option<&str>> = updates
        .iter()
        .map(|u| super::disposition_for(&u.status, None))
        .collect();
    let machine_disps: Vec<Option<&str>> = updates
        .iter()
        .map(|u| super::disposition_for(&u.status, Some(&AnsweredBy::MachineEndBeep)))
        .collect();
    let seqs: Vec<Option<i32>> = updates.iter().map(|u| u.sequence).collect();
    let ranks: Vec<i32> = updates.iter().map(|u| i32::from(u.status.rank())).collect();
    let finals: Vec<bool> = updates.iter().map(|u| u.status.is_final()).collect();
    let ats: Vec<_> = updates.iter().map(|u| u.at).collect();
    let durations: Vec<Option<i32>> = updates.iter().map(|u| u.duration_secs).collect();
    let errors: Vec<Option<i32>> = updates.iter().map(|u| u.error_code).collect();
    let known: Vec<bool> = updates
        .iter()
        .map(|u| !matches!(u.status, CallStatus::Unknown(_)))
        .collect();
    // The repeated condition: the callback may move the call (a known status, the call not
    // final, not behind its state or its sequence). It reads `c` itself, not a second scan
    // of calls, so a racing callback's update is seen when Postgres re-checks the row.
    let rows: Vec<(bool, bool, Option<bool>)> = sqlx::query_as(
        "WITH i AS (
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::jsonb[],
                                  $6::text[], $7::int[], $8::bool[], $9::timestamptz[], $10::text[],
                                  $11::int[], $12::int[], $13::text[], $14::text[], $15::bool[])
                      WITH ORDINALITY AS i(id, sid, key, seq, payload, status, rank, is_final, at,
                                           answered_by, duration, error_code, disp, machine_disp, known, n)),
         ev AS (
             INSERT INTO call_events (tenant_id, call_id, call_sid, kind, event_key, sequence, payload)
             SELECT c.tenant_id, c.id, i.sid, 'status', i.key, i.seq, i.payload
               FROM i JOIN calls c ON c.id = i.id ORDER BY c.id
             ON CONFLICT (call_id, kind, event_key) DO NOTHING
             RETURNING call_id),
         upd AS (
             UPDATE calls c SET
                 state = CASE WHEN (i.known AND NOT c.is_final AND i.rank >= CASE c.state WHEN 'dialing' THEN 0 WHEN 'queued' THEN 1 WHEN 'initiated' THEN 2 WHEN 'ringing' THEN 3 WHEN 'in-progress' THEN 4 ELSE 5 END AND (c.last_sequence IS NULL OR i.seq IS NULL OR i.seq > c.last_sequence)) THEN i.status ELSE c.state END,
                 last_sequence = CASE WHEN (i.known AND NOT c.is_final AND i.rank >= CASE c.state WHEN 'dialing' THEN 0 WHEN 'queued' THEN 1 WHEN 'initiated' THEN 2 WHEN 'ringing' THEN 3 WHEN 'in-progress' THEN 4 ELSE 5 END AND (c.last_sequence IS NULL OR i.seq IS NULL OR i.seq > c.last_sequence)) THEN COALESCE(i.seq, c.last_sequence) ELSE c.last_sequence END,
                 call_sid = COALESCE(c.call_sid, i.sid),
                 answered_at = CASE WHEN i.status = 'in-progress' THEN COALESCE(c.answered_at, i.at) ELSE c.answered_at END,
                 answered_by = COALESCE(c.answered_by, i.answered_by),
                 ended_at = CASE WHEN i.is_final THEN COALESCE(c.ended_at, i.at) ELSE c.ended_at END,
                 duration_secs = CASE WHEN i.is_final THEN COALESCE(c.duration_secs, i.duration) ELSE c.duration_secs END,
                 error_code = CASE WHEN i.is_final THEN COALESCE(c.error_code, i.error_code) ELSE c.error_code END,
                 disposition = CASE
                     WHEN (i.known AND NOT c.is_final AND i.rank >= CASE c.state WHEN 'dialing' THEN 0 WHEN 'queued' THEN 1 WHEN 'initiated' THEN 2 WHEN 'ringing' THEN 3 WHEN 'in-progress' THEN 4 ELSE 5 END AND (c.last_sequence IS NULL OR i.seq IS NULL OR i.seq > c.last_sequence)) AND i.is_final AND c.disposition IS NULL THEN
                         CASE WHEN COALESCE(c.answered_by, i.answered_by) IN
                                   ('machine_start', 'machine_end_beep', 'machine_end_silence', 'machine_end_other')
                              THEN i.machine_disp ELSE i.disp END
                     ELSE c.disposition END,
                 final_deadline = CASE WHEN (i.known AND NOT c.is_final AND i.rank >= CASE c.state WHEN 'dialing' THEN 0 WHEN 'queued' THEN 1 WHEN 'initiated' THEN 2 WHEN 'ringing' THEN 3 WHEN 'in-progress' THEN 4 ELSE 5 END AND (c.last_sequence IS NULL OR i.seq IS NULL OR i.seq > c.last_sequence)) AND i.is_final THEN NULL ELSE c.final_deadline END,
                 hold_deadline = CASE WHEN (i.known AND NOT c.is_final AND i.rank >= CASE c.state WHEN 'dialing' THEN 0 WHEN 'queued' THEN 1 WHEN 'initiated' THEN 2 WHEN 'ringing' THEN 3 WHEN 'in-progress' THEN 4 ELSE 5 END AND (c.last_sequence IS NULL OR i.seq IS NULL OR i.seq > c.last_sequence)) AND i.is_final THEN NULL ELSE c.hold_deadline END
             FROM ev JOIN i ON i.id = ev.call_id
             WHERE c.id = ev.call_id
             -- The new row: the callback was applied if the call now shows its status and
             -- sequence (RETURNING sees only the new values on Postgres < 18).
             RETURNING c.id, c.state = i.status AND c.last_sequence IS NOT DISTINCT FROM COALESCE(i.seq, c.last_sequence) AS newer)
         -- A join, not EXISTS: Postgres turns that EXISTS into a hash of every call.
         SELECT k.id IS NOT NULL,
                EXISTS (SELECT 1 FROM ev WHERE ev.call_id = i.id),
                (SELECT newer FROM upd WHERE upd.id = i.id)
           FROM i LEFT JOIN calls k ON k.id = i.id ORDER BY i.n",
    )
    .bind(&ids)
    .bind(&sids)
    .bind(&keys)
    .bind(&seqs)
    .bind(&payloads)
    .bind(&statuses)
    .bind(&ranks)
    .bind(&finals)
    .bind(&ats)
    .bind(&answered)
    .bind(&durations)
    .bind(&errors)
    .bind(&disps)
    .bind(&machine_disps)
    .bind(&known)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(found, inserted, newer)| match (found, inserted, newer) {
            (false, _, _) => Applied::UnknownCall,
            (true, false, _) => Applied::Duplicate,
            (true, true, Some(true)) => Applied::Applied,
            (true, true, _) => Applied::Stale,
        })
        .collect())
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
