//! The warm transfer: a person answered, an agent is reserved and called, hears who is
//! waiting, accepts with 1 and joins the person's conference — or the person hears the
//! abandon message inside the campaign's `max_hold_ms`.
//!
//! Reservations live in Postgres (`agents.active_calls`, `agent_offers`), taken with row
//! locks, so no agent is offered two people at once, whichever instance took the answer.
//! Every step is a compare-and-set on the call's row: an accept after the abandon (or the
//! abandon after an accept) finds the row changed and backs out.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::url;
use crate::call::CallId;
use crate::startup::AppState;
use crate::telephony::CallSid;
use crate::telephony::client::{
    CallEvent, CreateCall, EndCall, HttpMethod, Instructions, UpdateCall,
};

/// An agent who may be offered a call of campaign `c` at time `$2`: the campaign's group
/// (or, without one, any agent of the tenant), available, under their call limit, inside
/// their working hours and days in their own zone. Expects `agents a` and `campaigns c`.
pub const AGENT_ELIGIBLE: &str = "a.tenant_id = c.tenant_id
    AND (c.agent_group_id IS NULL OR EXISTS (
         SELECT 1 FROM agent_group_members m WHERE m.group_id = c.agent_group_id AND m.agent_id = a.id))
    AND a.status = 'available' AND a.active_calls < a.max_concurrent_calls
    AND ($2 AT TIME ZONE a.time_zone)::time >= a.work_start
    AND ($2 AT TIME ZONE a.time_zone)::time < a.work_end
    AND (a.work_days::int >> (extract(isodow FROM $2 AT TIME ZONE a.time_zone)::int - 1)) & 1 = 1";

/// How long a call waiting for an agent waits before it looks for a free one again.
pub const NOBODY_FREE_RETRY: Duration = Duration::from_millis(100);

/// A reserved agent and the call to offer them.
#[derive(Debug, Clone)]
pub struct Offer {
    pub id: i64,
    pub agent_id: Uuid,
    pub endpoint: String,
    pub from: String,
}

/// A person is on the line: the hold limit starts, a timer abandons the call at its
/// deadline (the sweeper does too, should this instance die), and agents are offered the
/// call until one accepts or the deadline passes.
pub async fn person_answered(state: &AppState, id: CallId, max_hold_ms: i32) {
    let clock = &state.engine.clock;
    let hold = TimeDelta::milliseconds(i64::from(max_hold_ms));
    let deadline = clock.now() + hold;
    let started: Option<DateTime<Utc>> = match sqlx::query_scalar(
        "UPDATE calls SET hold_deadline = COALESCE(hold_deadline, $2),
                human_detected_at = COALESCE(human_detected_at, now())
          WHERE id = $1 AND NOT is_final AND bridged_at IS NULL AND disposition IS NULL
         RETURNING hold_deadline",
    )
    .bind(id)
    .bind(deadline)
    .fetch_optional(&state.db)
    .await
    {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(call = %id, error = %e, "starting the hold limit failed; the sweeper abandons it");
            return;
        }
    };
    let Some(deadline) = started else { return };
    {
        let state = state.clone();
        // A hair past the deadline, so the compare-and-set on it holds.
        let wait = clock.real(deadline - clock.now()) + Duration::from_millis(2);
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            if let Err(e) = abandon(&state, id).await {
                tracing::warn!(call = %id, error = %e, "abandoning a held call failed; the sweeper retries");
            }
        });
    }
    offer_until_taken(state, id, deadline).await;
}

/// Offers the call to the next free agent, and keeps looking (every
/// [`NOBODY_FREE_RETRY`]) while the person is held and nobody is free.
pub async fn offer_until_taken(state: &AppState, id: CallId, deadline: DateTime<Utc>) {
    loop {
        match reserve(&state.db, id, state.engine.clock.now()).await {
            Ok(Reserve::Offer(offer)) => {
                if dial_agent(state, id, &offer).await {
                    return;
                }
            }
            Ok(Reserve::NotHolding) => return,
            Ok(Reserve::NobodyFree) => {
                if state.engine.clock.now() >= deadline {
                    return;
                }
                tokio::time::sleep(NOBODY_FREE_RETRY).await;
            }
            Err(e) => {
                tracing::warn!(call = %id, error = %e, "reserving an agent failed");
                tokio::time::sleep(NOBODY_FREE_RETRY).await;
                if state.engine.clock.now() >= deadline {
                    return;
                }
            }
        }
    }
}

pub enum Reserve {
    Offer(Offer),
    /// The call no longer waits (taken, abandoned, ended) or an offer already rings.
    NotHolding,
    NobodyFree,
}

/// Reserves the longest-idle eligible agent not yet offered this call (the agent a
/// call-back was promised by first), in one statement: the call's row and the agent's
/// are locked, the agent's `active_calls` counted up, the offer written.
pub async fn reserve(db: &PgPool, id: CallId, now: DateTime<Utc>) -> Result<Reserve, sqlx::Error> {
    let sql = format!(
        "WITH k AS (
             SELECT k.id, k.tenant_id, k.from_number, k.campaign_id, l.callback_agent_id
               FROM calls k JOIN leads l ON l.id = k.lead_id
              WHERE k.id = $1 AND NOT k.is_final AND k.bridged_at IS NULL AND k.disposition IS NULL
                AND k.hold_deadline IS NOT NULL AND k.agent_id IS NULL
                FOR UPDATE OF k),
         pick AS (
             SELECT a.id, a.endpoint FROM k JOIN campaigns c ON c.id = k.campaign_id, agents a
              WHERE {AGENT_ELIGIBLE}
                AND NOT EXISTS (SELECT 1 FROM agent_offers o WHERE o.call_id = k.id AND o.agent_id = a.id)
              ORDER BY (a.id = k.callback_agent_id) IS TRUE DESC, a.idle_since NULLS LAST, a.id
              LIMIT 1
                FOR UPDATE OF a SKIP LOCKED),
         took AS (
             UPDATE agents a SET active_calls = a.active_calls + 1,
                    status = CASE WHEN a.active_calls + 1 >= a.max_concurrent_calls THEN 'busy' ELSE a.status END,
                    idle_since = CASE WHEN a.active_calls + 1 >= a.max_concurrent_calls THEN NULL ELSE a.idle_since END,
                    status_changed_at = now()
               FROM pick WHERE a.id = pick.id
             RETURNING a.id, a.endpoint),
         mark AS (
             UPDATE calls SET agent_id = took.id FROM took WHERE calls.id = $1 RETURNING calls.id)
         INSERT INTO agent_offers (tenant_id, call_id, agent_id)
         SELECT k.tenant_id, k.id, took.id FROM k, took, mark
         RETURNING id, agent_id, (SELECT endpoint FROM took) AS endpoint,
                   (SELECT from_number FROM k) AS from_number"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(now)
        .fetch_optional(db)
        .await?;
    if let Some(r) = row {
        return Ok(Reserve::Offer(Offer {
            id: r.get("id"),
            agent_id: r.get("agent_id"),
            endpoint: r.get("endpoint"),
            from: r.get("from_number"),
        }));
    }
    // Nothing reserved: is the call still waiting for an agent at all?
    let waiting: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM calls WHERE id = $1 AND NOT is_final AND bridged_at IS NULL
                          AND disposition IS NULL AND hold_deadline IS NOT NULL AND agent_id IS NULL)",
    )
    .bind(id)
    .fetch_one(db)
    .await?;
    Ok(if waiting {
        Reserve::NobodyFree
    } else {
        Reserve::NotHolding
    })
}

/// Calls the agent: the whisper, then the accept key. False if the carrier refused the
/// leg (the agent is released, not blamed).
async fn dial_agent(state: &AppState, id: CallId, offer: &Offer) -> bool {
    let Some(carrier) = state.engine.carrier.as_ref() else {
        let _ = release(state, offer.id, "missed", false).await;
        return false;
    };
    let tail = |t: &str| format!("offers/{}/{t}", offer.id);
    let mut req = CreateCall::new(
        &offer.endpoint,
        &offer.from,
        Instructions::Url {
            url: url(state, id, &tail("whisper")),
            method: Some(HttpMethod::Post),
        },
    );
    req.status_callback = Some(url(state, id, &tail("status")));
    req.status_callback_method = Some(HttpMethod::Post);
    req.status_callback_event = vec![CallEvent::Answered, CallEvent::Completed];
    req.timeout_secs = Some(state.settings.dialer.agent_ring_secs.max(5));
    match carrier.create_call(&req).await {
        Ok(res) => {
            metrics::counter!("dialer_agent_offers_total").increment(1);
            if let Err(e) = sqlx::query(
                "UPDATE agent_offers SET agent_call_sid = $2 WHERE id = $1 AND agent_call_sid IS NULL",
            )
            .bind(offer.id)
            .bind(res.sid.as_str())
            .execute(&state.db)
            .await
            {
                tracing::warn!(offer = offer.id, error = %e, "storing the agent leg's SID failed");
            }
            true
        }
        Err(e) => {
            tracing::warn!(call = %id, agent = %offer.agent_id, error = %e, "the carrier refused the agent leg");
            let _ = release(state, offer.id, "missed", false).await;
            false
        }
    }
}

/// Ends a ringing offer (`declined`, `missed`, `canceled`) and frees its agent: their
/// call count goes down, a miss counts (at `agent_max_misses` in a row they go
/// `offline`), and the call may be offered to someone else. Returns the call and the
/// agent leg's SID, or None if the offer was no longer ringing.
pub async fn release(
    state: &AppState,
    offer: i64,
    outcome: &str,
    miss: bool,
) -> Result<Option<(CallId, Option<String>)>, sqlx::Error> {
    let row = sqlx::query(
        "WITH o AS (
             UPDATE agent_offers SET state = $2, ended_at = now()
              WHERE id = $1 AND state = 'ringing'
             RETURNING call_id, agent_id, agent_call_sid),
         c AS (
             UPDATE calls k SET agent_id = NULL FROM o
              WHERE k.id = o.call_id AND k.agent_id = o.agent_id AND k.bridged_at IS NULL
             RETURNING k.id),
         a AS (
             SELECT a.id, a.status,
                    CASE WHEN $3 AND a.missed_offers + 1 >= $4 THEN 'offline'
                         WHEN a.status = 'busy' THEN 'available'
                         ELSE a.status END AS next
               FROM agents a JOIN o ON a.id = o.agent_id FOR UPDATE OF a)
         UPDATE agents SET active_calls = greatest(agents.active_calls - 1, 0),
                missed_offers = agents.missed_offers + CASE WHEN $3 THEN 1 ELSE 0 END,
                status = a.next,
                idle_since = CASE WHEN a.next <> 'available' THEN NULL
                                  WHEN a.status <> 'available' THEN now()
                                  ELSE agents.idle_since END,
                status_changed_at = CASE WHEN a.next <> a.status THEN now() ELSE agents.status_changed_at END
           FROM a, o WHERE agents.id = a.id
         RETURNING o.call_id, o.agent_call_sid",
    )
    .bind(offer)
    .bind(outcome)
    .bind(miss)
    .bind(state.settings.dialer.agent_max_misses.max(1) as i32)
    .fetch_optional(&state.db)
    .await?;
    Ok(row.map(|r| (CallId(r.get("call_id")), r.get("agent_call_sid"))))
}

/// What the agent's accept key did.
pub enum Accepted {
    /// Join the conference now.
    Join,
    /// Too late: the person is gone (or abandoned); the agent was released.
    LeadGone,
    /// The offer was not ringing (a repeated callback or an old offer).
    Stale,
}

/// The agent pressed 1: the call is theirs if it still waits for them. One statement (one
/// round trip and one commit while the agent waits to hear the person): the offer's row
/// is locked, then the call's; the hold limit is cleared (so the abandon timer backs
/// off), the offer marked accepted and the agent's misses forgotten — all only if the
/// call still waits for this agent.
pub async fn accept(state: &AppState, offer: i64) -> Result<Accepted, sqlx::Error> {
    let taken: Option<bool> = sqlx::query_scalar(
        "WITH o AS (
             SELECT call_id, agent_id FROM agent_offers WHERE id = $1 AND state = 'ringing' FOR UPDATE),
         k AS (
             UPDATE calls SET hold_deadline = NULL FROM o
              WHERE calls.id = o.call_id AND calls.agent_id = o.agent_id AND NOT calls.is_final
                AND calls.disposition IS NULL AND calls.bridged_at IS NULL
             RETURNING calls.id),
         took AS (
             UPDATE agent_offers SET state = 'accepted', answered_at = now()
               FROM k WHERE agent_offers.id = $1
             RETURNING agent_offers.agent_id),
         a AS (
             UPDATE agents SET missed_offers = 0 FROM took WHERE agents.id = took.agent_id)
         SELECT EXISTS (SELECT 1 FROM k) FROM o",
    )
    .bind(offer)
    .fetch_optional(&state.db)
    .await?;
    match taken {
        None => Ok(Accepted::Stale),
        Some(true) => Ok(Accepted::Join),
        Some(false) => {
            release(state, offer, "canceled", false).await?;
            Ok(Accepted::LeadGone)
        }
    }
}

/// The agent leg reached a final status. A ringing offer was missed (next agent, if the
/// person still waits); an accepted one is over: the agent goes to wrap-up.
pub async fn agent_leg_ended(state: &AppState, offer: i64, status: &str) {
    let ended = sqlx::query(
        "WITH o AS (
             UPDATE agent_offers SET state = 'ended', ended_at = now()
              WHERE id = $1 AND state = 'accepted' RETURNING agent_id, call_id),
         n AS (
             SELECT a.id, a.status,
                    CASE WHEN a.status NOT IN ('busy', 'available', 'wrap_up') THEN a.status
                         -- The disposition came before the leg's last callback: done.
                         WHEN k.agent_disposition IS NOT NULL THEN 'available'
                         ELSE 'wrap_up' END AS next
               FROM o JOIN agents a ON a.id = o.agent_id JOIN calls k ON k.id = o.call_id
                FOR UPDATE OF a)
         UPDATE agents a SET active_calls = greatest(a.active_calls - 1, 0),
                status = n.next,
                idle_since = CASE WHEN n.next <> 'available' THEN NULL
                                  WHEN n.status <> 'available' THEN now() ELSE a.idle_since END,
                status_changed_at = now()
           FROM n WHERE a.id = n.id",
    )
    .bind(offer)
    .execute(&state.db)
    .await;
    match ended {
        Ok(r) if r.rows_affected() > 0 => return,
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(offer, error = %e, "ending the agent's call failed");
            return;
        }
    }
    // Never accepted: missed (no answer, busy, failed), or hung up during the whisper.
    let miss = status != "canceled";
    release_and_offer_on(state, offer, "missed", miss).await;
}

/// The agent declined: released with a miss, and the next agent is tried.
pub async fn declined(state: &AppState, offer: i64) {
    release_and_offer_on(state, offer, "declined", true).await;
}

/// Ends a ringing offer the agent did not take, then offers the call to the next agent
/// while the person still waits.
async fn release_and_offer_on(state: &AppState, offer: i64, outcome: &str, miss: bool) {
    let call = match release(state, offer, outcome, miss).await {
        Ok(Some((call, _))) => call,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(offer, error = %e, "releasing the agent failed");
            return;
        }
    };
    let state = state.clone();
    tokio::spawn(async move {
        let deadline: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT hold_deadline FROM calls WHERE id = $1")
                .bind(call)
                .fetch_optional(&state.db)
                .await
                .ok()
                .flatten();
        if let Some(deadline) = deadline {
            offer_until_taken(&state, call, deadline).await;
        }
    });
}

/// Ends every ringing offer of the call (the person hung up or was abandoned) and hangs up
/// those agents' phones.
pub async fn cancel_offers(state: &AppState, call: CallId) {
    let offers: Vec<i64> = match sqlx::query_scalar(
        "SELECT id FROM agent_offers WHERE call_id = $1 AND state = 'ringing'",
    )
    .bind(call)
    .fetch_all(&state.db)
    .await
    {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(call = %call, error = %e, "reading the call's offers failed");
            return;
        }
    };
    for offer in offers {
        match release(state, offer, "canceled", false).await {
            Ok(Some((_, Some(sid)))) => hang_up(state, &sid).await,
            Ok(_) => {}
            Err(e) => tracing::warn!(offer, error = %e, "canceling an offer failed"),
        }
    }
}

async fn hang_up(state: &AppState, sid: &str) {
    let (Some(carrier), Ok(sid)) = (state.engine.carrier.as_ref(), CallSid::parse(sid)) else {
        return;
    };
    // `completed` ends an answered leg; a leg still ringing needs `canceled`.
    if carrier
        .update_call(&sid, &UpdateCall::End(EndCall::Completed))
        .await
        .is_err()
    {
        let _ = carrier
            .update_call(&sid, &UpdateCall::End(EndCall::Canceled))
            .await;
    }
}

/// The hold limit passed with nobody on the line for the person: the call is `abandoned`,
/// the agents being offered it are released, and the person hears the abandon message
/// (seller, call-back number, the key to stop these calls). Compare-and-set on the call:
/// an accept that got there first wins. True if this call abandoned it.
pub async fn abandon(state: &AppState, id: CallId) -> anyhow::Result<bool> {
    let now = state.engine.clock.now();
    let sid: Option<Option<String>> = sqlx::query_scalar(
        "UPDATE calls SET disposition = 'abandoned', hold_deadline = NULL
          WHERE id = $1 AND hold_deadline <= $2 AND bridged_at IS NULL AND NOT is_final
            AND disposition IS NULL
         RETURNING call_sid",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(&state.db)
    .await?;
    let Some(sid) = sid else { return Ok(false) };
    metrics::counter!("dialer_abandoned_total").increment(1);
    redirect_to_abandon(state, id, sid).await;
    cancel_offers(state, id).await;
    Ok(true)
}

async fn redirect_to_abandon(state: &AppState, id: CallId, sid: Option<String>) {
    let (Some(carrier), Some(sid)) = (
        state.engine.carrier.as_ref(),
        sid.and_then(|s| CallSid::parse(&s).ok()),
    ) else {
        return;
    };
    let redirect = UpdateCall::Redirect(Instructions::Url {
        url: url(state, id, "abandon"),
        method: Some(HttpMethod::Post),
    });
    if let Err(e) = carrier.update_call(&sid, &redirect).await {
        tracing::warn!(call = %id, error = %e, "abandon message failed; hanging up");
        let _ = carrier
            .update_call(&sid, &UpdateCall::End(EndCall::Completed))
            .await;
    }
}

/// Holds past their deadline that no timer abandoned (the instance holding the timer
/// died): abandoned by the sweeper.
pub async fn abandon_overdue(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<()> {
    let due: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM calls WHERE hold_deadline <= $1 AND bridged_at IS NULL AND NOT is_final
            AND disposition IS NULL LIMIT 500",
    )
    .bind(now)
    .fetch_all(&state.db)
    .await?;
    for id in due {
        abandon(state, CallId(id)).await?;
    }
    Ok(())
}
