//! The engine's statements: claiming a lead for an attempt, giving back an attempt that
//! never reached the carrier, moving a lead on after its attempt ended, and the sweeps.
//! Postgres is the truth: every decision that must hold across instances is taken here,
//! under a row lock or a compare-and-set.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

use super::plan::{Plan, RetryKind};
use crate::call::CallId;
use crate::campaign::CampaignId;
use crate::schedule::LeadPlace;
use crate::tenant::TenantId;

/// An attempt written and ready to be dialled.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub call_id: CallId,
    pub tenant_id: TenantId,
    pub campaign_id: CampaignId,
    pub lead_id: i64,
    pub attempt: i32,
    pub to: String,
    pub from: String,
    pub place: LeadPlace,
}

/// What claiming a dial job came to.
#[derive(Debug)]
pub enum Claim {
    Dial(Box<Attempt>),
    /// The campaign is at its concurrency limit: put the job back.
    Full,
    /// No agent would be free for another call: put the job back.
    NoAgent,
    /// The lead is not (or no longer) ready and due, or not of this campaign: drop the job.
    Gone,
    /// The campaign is no longer active: drop the job.
    CampaignInactive,
    /// Passed over, and why (recorded on the lead).
    Skipped(&'static str),
}

/// A stable 64-bit advisory-lock key per campaign (claims of one campaign are serialised
/// across instances, so the live-call count they check cannot be raced).
fn lock_key(c: CampaignId) -> i64 {
    let b = c.0.as_u128();
    ((b >> 64) as u64 ^ b as u64) as i64
}

/// Claims `lead` for a new attempt of `plan`'s campaign, re-checking at this moment
/// everything that may have changed since the job was queued: the campaign is active and
/// under its concurrency limit, the lead is ready and due, its number is on no DNC list,
/// and both calling windows are open. On success the attempt row exists (state
/// `dialing`) and the lead is `dialing`, before the carrier hears of it.
pub async fn claim(
    db: &PgPool,
    plan: &Plan,
    lead: i64,
    now: DateTime<Utc>,
    final_after: chrono::TimeDelta,
    agent_ratio: Option<f64>,
) -> Result<Claim, sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(lock_key(plan.id))
        .execute(&mut *tx)
        .await?;
    let row = sqlx::query(
        "SELECT c.status, c.max_concurrent, c.caller_id,
                (SELECT count(*) FROM calls k WHERE k.campaign_id = c.id AND NOT k.is_final) AS live,
                l.status AS lead_status, l.next_attempt_at, l.attempts, l.phone_e164, l.time_zones,
                l.region, l.tenant_id,
                EXISTS (SELECT 1 FROM dnc_numbers d WHERE d.phone_e164 = l.phone_e164
                          AND (d.tenant_id = l.tenant_id OR d.tenant_id IS NULL)) AS dnc
           FROM campaigns c JOIN leads l ON l.campaign_id = c.id AND l.id = $2
          WHERE c.id = $1
            FOR UPDATE OF l",
    )
    .bind(plan.id)
    .bind(lead)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(Claim::Gone);
    };
    let status: String = row.get("status");
    if status != "active" {
        return Ok(Claim::CampaignInactive);
    }
    let lead_status: String = row.get("lead_status");
    let due: DateTime<Utc> = row.get("next_attempt_at");
    if lead_status != "ready" || due > now {
        return Ok(Claim::Gone);
    }
    let max: i32 = row.get("max_concurrent");
    let live: i64 = row.get("live");
    if live >= i64::from(max) {
        return Ok(Claim::Full);
    }
    let e164: String = row.get("phone_e164");
    let zones: Vec<String> = row.get("time_zones");
    let region: Option<String> = row.get("region");
    let place = LeadPlace::new(&zones, region.as_deref(), &e164, plan.schedule.campaign.tz);
    if row.get::<bool, _>("dnc") {
        skip(&mut tx, lead, "dnc", now, None, true).await?;
        tx.commit().await?;
        return Ok(Claim::Skipped("dnc"));
    }
    if !plan.schedule.campaign_open(now) {
        // The campaign's own window closed since the job was queued; the lead is fine.
        return Ok(Claim::Skipped("outside_campaign_window"));
    }
    if !plan.schedule.lead_open(&place, now) {
        let next = plan.schedule.next_open(&place, now);
        skip(
            &mut tx,
            lead,
            "outside_lead_window",
            now,
            next,
            next.is_none(),
        )
        .await?;
        tx.commit().await?;
        return Ok(Claim::Skipped("outside_lead_window"));
    }
    let Some(from) = row.get::<Option<String>, _>("caller_id") else {
        return Ok(Claim::CampaignInactive);
    };
    if let Some(ratio) = agent_ratio {
        // Under the campaign's lock, so instances together never pass the agents' limit.
        let sql = agent_capacity_sql("", "c.id = $1");
        let (free, waiting): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(plan.id)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
        if agent_allowance(free, waiting, ratio) == 0 {
            return Ok(Claim::NoAgent);
        }
    }
    let attempt: i32 = row.get::<i32, _>("attempts") + 1;
    let tenant_id: TenantId = row.get("tenant_id");
    let call_id: i64 = sqlx::query_scalar(
        "WITH ins AS (
             INSERT INTO calls (tenant_id, campaign_id, lead_id, attempt, to_number, from_number, final_deadline)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id)
         UPDATE leads SET status = 'dialing', attempts = $4, updated_at = now()
           FROM ins WHERE leads.id = $3 RETURNING ins.id",
    )
    .bind(tenant_id)
    .bind(plan.id)
    .bind(lead)
    .bind(attempt)
    .bind(&e164)
    .bind(&from)
    .bind(now + final_after)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Claim::Dial(Box::new(Attempt {
        call_id: CallId(call_id),
        tenant_id,
        campaign_id: plan.id,
        lead_id: lead,
        attempt,
        to: e164,
        from,
        place,
    })))
}

/// Records why a lead was passed over; `final` ends it (DNC, no window ever again).
async fn skip(
    tx: &mut sqlx::PgConnection,
    lead: i64,
    reason: &'static str,
    now: DateTime<Utc>,
    next: Option<DateTime<Utc>>,
    is_final: bool,
) -> Result<(), sqlx::Error> {
    let final_reason = match (is_final, reason) {
        (false, _) => None,
        (true, "outside_lead_window") => Some("no_calling_window"),
        (true, r) => Some(r),
    };
    sqlx::query(
        "UPDATE leads SET last_skip_reason = $2, last_skipped_at = $3,
                status = CASE WHEN $4::text IS NULL THEN status ELSE 'done' END,
                final_reason = COALESCE($4, final_reason),
                next_attempt_at = COALESCE($5, next_attempt_at), updated_at = now()
          WHERE id = $1",
    )
    .bind(lead)
    .bind(reason)
    .bind(now)
    .bind(final_reason)
    .bind(next)
    .execute(tx)
    .await?;
    Ok(())
}

/// The last word before the dial request leaves: pushes the unsent attempt's deadline to
/// `deadline` and returns its campaign's status, or `None` if the attempt is no longer
/// ours to send (the sweeper gave it back). The sweeper only gives back attempts past
/// their deadline, so after this it leaves the attempt alone until the request has either
/// reached the carrier or failed for good.
pub async fn fence(
    db: &PgPool,
    id: CallId,
    deadline: DateTime<Utc>,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE calls k SET final_deadline = $2
           FROM campaigns c
          WHERE k.id = $1 AND k.call_sid IS NULL AND k.state = 'dialing' AND c.id = k.campaign_id
         RETURNING c.status",
    )
    .bind(id)
    .bind(deadline)
    .fetch_optional(db)
    .await
}

/// Gives back an attempt the carrier never received: the row goes, the lead is ready
/// again with its attempt count as before (an outage never burns an attempt). Does nothing
/// if the carrier has called back about it (then it did receive it), or, when `taken` is
/// given (the sweeper's claim on the row), if the row's deadline moved since (the dial job
/// [fenced](fence) it and is sending the request).
pub async fn revert(
    db: &PgPool,
    id: CallId,
    reason: &str,
    retry_at: DateTime<Utc>,
    taken: Option<DateTime<Utc>>,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "WITH del AS (
             DELETE FROM calls k WHERE k.id = $1 AND k.call_sid IS NULL
                AND ($4::timestamptz IS NULL OR k.final_deadline = $4)
                AND NOT EXISTS (SELECT 1 FROM call_events e WHERE e.call_id = k.id)
             RETURNING lead_id, attempt)
         UPDATE leads l SET status = 'ready', attempts = del.attempt - 1, next_attempt_at = $3,
                last_skip_reason = $2, last_skipped_at = now(), updated_at = now()
           FROM del WHERE l.id = del.lead_id AND l.status = 'dialing'",
    )
    .bind(id)
    .bind(reason)
    .bind(retry_at)
    .bind(taken)
    .execute(db)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// The carrier refused the dial request for this number: the attempt ends as failed (or
/// `invalid_number`) without ever ringing.
pub async fn refuse(
    db: &PgPool,
    id: CallId,
    disposition: &str,
    code: Option<u32>,
    message: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE calls SET state = 'failed', disposition = COALESCE(disposition, $2), error_code = $3,
                error_message = $4, ended_at = COALESCE(ended_at, $5), final_deadline = NULL
          WHERE id = $1 AND NOT is_final",
    )
    .bind(id)
    .bind(disposition)
    .bind(code.map(|c| c as i32))
    .bind(message)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// What became of a lead after an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeadNext {
    Retry(DateTime<Utc>),
    Done(String),
}

/// The retry policy: what follows an attempt that ended with `disposition`, the
/// `attempts`-th of the lead. Pure.
pub fn next_for(
    plan: &Plan,
    place: &LeadPlace,
    disposition: Option<&str>,
    attempts: i32,
    now: DateTime<Utc>,
) -> LeadNext {
    let disposition = disposition.unwrap_or("failed");
    let kind = match disposition {
        "no_answer" => RetryKind::NoAnswer,
        "busy" => RetryKind::Busy,
        "failed" | "canceled" => RetryKind::Failed,
        "voicemail" => RetryKind::Voicemail,
        // answered, abandoned (a person we could not connect is not called again by
        // machine), invalid_number: final.
        other => return LeadNext::Done(other.to_string()),
    };
    let Some(delay) = plan.retry_delay(kind) else {
        return LeadNext::Done(disposition.to_string());
    };
    if attempts >= plan.max_attempts {
        return LeadNext::Done("attempts_exhausted".into());
    }
    match plan.schedule.retry_at(place, now, delay) {
        Some(t) => LeadNext::Retry(t),
        None => LeadNext::Done("no_calling_window".into()),
    }
}

/// Moves the leads of finished attempts on (retry at the next moment both windows are
/// open, or final), in one transaction for the whole batch. Idempotent: an attempt is
/// skipped unless it is final and is its lead's current one, and the lead is still
/// `dialing`. `plans` holds the plan of every campaign concerned (an attempt whose campaign
/// has none is skipped). Returns what became of each lead moved on.
pub async fn finish(
    db: &PgPool,
    plans: &std::collections::HashMap<CampaignId, std::sync::Arc<Plan>>,
    ids: &[CallId],
    now: DateTime<Utc>,
) -> Result<Vec<LeadNext>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        call_id: i64,
        campaign_id: CampaignId,
        disposition: Option<String>,
        /// A person answered and was never bridged: abandoned, unless that changed since.
        unbridged_person: bool,
        lead_id: i64,
        phone_e164: String,
        time_zones: Vec<String>,
        region: Option<String>,
        attempts: i32,
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let raw: Vec<i64> = ids.iter().map(|id| id.0).collect();
    let mut tx = db.begin().await?;
    // Leads locked in id order, so two batches running at once do not deadlock.
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT k.id AS call_id, k.campaign_id, k.disposition,
                k.disposition = 'answered' AND k.bridged_at IS NULL
                    AND COALESCE(k.answered_by, '') NOT LIKE 'machine%' AS unbridged_person,
                l.id AS lead_id, l.phone_e164, l.time_zones, l.region, l.attempts
           FROM calls k JOIN leads l ON l.id = k.lead_id
          WHERE k.id = ANY($1) AND k.is_final AND l.status = 'dialing' AND l.attempts = k.attempt
          ORDER BY l.id FOR UPDATE OF l",
    )
    .bind(&raw)
    .fetch_all(&mut *tx)
    .await?;
    let unbridged: Vec<i64> = rows
        .iter()
        .filter(|r| r.unbridged_person)
        .map(|r| r.call_id)
        .collect();
    // Checked again on the call row itself: a bridge or a machine verdict may have landed
    // since the read (the lead's lock does not cover the call).
    let abandoned: Vec<i64> = if unbridged.is_empty() {
        Vec::new()
    } else {
        sqlx::query_scalar(
            "UPDATE calls SET disposition = 'abandoned'
              WHERE id = ANY($1) AND disposition = 'answered' AND bridged_at IS NULL
                AND COALESCE(answered_by, '') NOT LIKE 'machine%'
             RETURNING id",
        )
        .bind(&unbridged)
        .fetch_all(&mut *tx)
        .await?
    };
    // Per lead moved on: its attempt, its retry time or its final reason.
    let (mut leads, mut calls, mut retry_at, mut reasons) = (vec![], vec![], vec![], vec![]);
    let (mut outcomes, mut dispositions) = (vec![], vec![]);
    for row in rows {
        let Some(plan) = plans.get(&row.campaign_id) else {
            continue;
        };
        let disposition = if abandoned.contains(&row.call_id) {
            Some("abandoned".to_string())
        } else {
            row.disposition
        };
        let place = LeadPlace::new(
            &row.time_zones,
            row.region.as_deref(),
            &row.phone_e164,
            plan.schedule.campaign.tz,
        );
        let next = next_for(plan, &place, disposition.as_deref(), row.attempts, now);
        leads.push(row.lead_id);
        calls.push(row.call_id);
        match &next {
            LeadNext::Retry(at) => {
                retry_at.push(Some(*at));
                reasons.push(None);
            }
            LeadNext::Done(reason) => {
                retry_at.push(None);
                reasons.push(Some(reason.clone()));
            }
        }
        dispositions.push(disposition.unwrap_or_else(|| "none".into()));
        outcomes.push(next);
    }
    if !leads.is_empty() {
        sqlx::query(
            "UPDATE leads l SET status = CASE WHEN u.reason IS NOT NULL THEN 'done' ELSE 'ready' END,
                    next_attempt_at = COALESCE(u.at, l.next_attempt_at),
                    final_reason = u.reason, updated_at = now()
               FROM unnest($1::bigint[], $2::timestamptz[], $3::text[]) AS u(id, at, reason)
              WHERE l.id = u.id",
        )
        .bind(&leads)
        .bind(&retry_at)
        .bind(&reasons)
        .execute(&mut *tx)
        .await?;
        crate::crm::outbox::calls_finished(&mut tx, &calls, &reasons).await;
    }
    tx.commit().await?;
    for disposition in dispositions {
        metrics::counter!("dialer_call_outcomes_total", "disposition" => disposition).increment(1);
    }
    Ok(outcomes)
}

/// A due lead as the hopper filler sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueLead {
    pub id: i64,
    pub priority: i16,
    pub next_attempt_at: DateTime<Utc>,
    pub phone_e164: String,
    pub time_zones: Vec<String>,
    pub region: Option<String>,
}

/// Ready leads of the campaign due at `now`, best first.
pub async fn due_leads(
    db: &PgPool,
    campaign: CampaignId,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<DueLead>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, priority, next_attempt_at, phone_e164, time_zones, region FROM leads
          WHERE campaign_id = $1 AND status = 'ready' AND next_attempt_at <= $2
          ORDER BY priority DESC, next_attempt_at LIMIT $3",
    )
    .bind(campaign)
    .bind(now)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Leads outside their local window now: due again when it opens (or final when it never does).
pub async fn postpone(
    db: &PgPool,
    leads: &[(i64, Option<DateTime<Utc>>)],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if leads.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = leads.iter().map(|l| l.0).collect();
    let at: Vec<Option<DateTime<Utc>>> = leads.iter().map(|l| l.1).collect();
    sqlx::query(
        "UPDATE leads l SET next_attempt_at = COALESCE(u.at, l.next_attempt_at),
                last_skip_reason = 'outside_lead_window', last_skipped_at = $3,
                status = CASE WHEN u.at IS NULL THEN 'done' ELSE l.status END,
                final_reason = CASE WHEN u.at IS NULL THEN 'no_calling_window' ELSE l.final_reason END,
                updated_at = now()
           FROM unnest($1::bigint[], $2::timestamptz[]) AS u(id, at)
          WHERE l.id = u.id AND l.status = 'ready'",
    )
    .bind(&ids)
    .bind(&at)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// Live calls per campaign, for the given campaigns.
pub async fn live_counts(
    db: &PgPool,
    campaigns: &[CampaignId],
) -> Result<std::collections::HashMap<CampaignId, i64>, sqlx::Error> {
    let ids: Vec<uuid::Uuid> = campaigns.iter().map(|c| c.0).collect();
    let rows: Vec<(CampaignId, i64)> = sqlx::query_as(
        "SELECT campaign_id, count(*) FROM calls WHERE NOT is_final AND campaign_id = ANY($1) GROUP BY 1",
    )
    .bind(&ids)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Calls of the campaign waiting for an agent of their own: live, not bridged, no agent
/// reserved, not abandoned, not a machine. Expects `campaigns c`.
const WAITING_FOR_AGENT: &str = "SELECT count(*) FROM calls k
     WHERE k.campaign_id = c.id AND NOT k.is_final AND k.bridged_at IS NULL AND k.agent_id IS NULL
       AND k.disposition IS NULL AND (k.answered_by IS NULL OR k.answered_by IN ('human', 'unknown'))";

/// Per campaign matching `filter` (on `campaigns c`): agents free to take one of its calls
/// at `$2`, and its calls waiting for one. The pacer and the claim ask the same question.
fn agent_capacity_sql(select: &str, filter: &str) -> String {
    format!(
        "SELECT {select}(SELECT count(*) FROM agents a WHERE {}), ({WAITING_FOR_AGENT})
           FROM campaigns c WHERE {filter}",
        super::transfer::AGENT_ELIGIBLE
    )
}

/// Per campaign: agents free to take a call now, and calls that would need one.
pub async fn agent_capacity(
    db: &PgPool,
    campaigns: &[CampaignId],
    now: DateTime<Utc>,
) -> Result<std::collections::HashMap<CampaignId, (i64, i64)>, sqlx::Error> {
    let ids: Vec<uuid::Uuid> = campaigns.iter().map(|c| c.0).collect();
    let sql = agent_capacity_sql("c.id, ", "c.id = ANY($1)");
    let rows: Vec<(CampaignId, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&ids)
        .bind(now)
        .fetch_all(db)
        .await?;
    Ok(rows.into_iter().map(|(c, f, w)| (c, (f, w))).collect())
}

/// How many more calls an agent-paced campaign may place: free agents times the ratio,
/// less the calls already waiting for one.
pub fn agent_allowance(free_agents: i64, waiting: i64, ratio: f64) -> i64 {
    ((free_agents as f64 * ratio).floor() as i64 - waiting).max(0)
}

/// Per campaign, over the last 30 days: calls a person answered, and how many of those
/// were abandoned.
pub async fn abandonment(
    db: &PgPool,
    campaigns: &[CampaignId],
) -> Result<std::collections::HashMap<CampaignId, (i64, i64)>, sqlx::Error> {
    let ids: Vec<uuid::Uuid> = campaigns.iter().map(|c| c.0).collect();
    let rows: Vec<(CampaignId, i64, i64)> = sqlx::query_as(
        "SELECT campaign_id, count(*), count(*) FILTER (WHERE disposition = 'abandoned')
           FROM calls
          WHERE campaign_id = ANY($1) AND disposition IN ('answered', 'abandoned')
            AND created_at >= now() - interval '30 days'
          GROUP BY 1",
    )
    .bind(&ids)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(c, h, a)| (c, (h, a))).collect())
}

/// The dial ratio to use now: the campaign's, unless one more abandoned call would put
/// the rate over the cap; then 1.0 (no more calls than free agents).
pub fn ratio_now(plan: &Plan, answered_by_person: i64, abandoned: i64) -> f64 {
    let at_risk =
        (abandoned + 1) as f64 * 100.0 / (answered_by_person + 1) as f64 > plan.abandon_cap_pct;
    if at_risk { 1.0 } else { plan.dial_ratio }
}
