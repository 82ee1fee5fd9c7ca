//! The dialing engine: the pacer that turns due leads into dial jobs and dials them as
//! fast as every limit allows and not one call faster, the sweeper that acts on deadlines,
//! and what happens when an attempt ends.
//!
//! - Dial jobs live in Redis (`pacing`): a hopper per campaign, ordered by priority then
//!   due time, filled from Postgres by whichever instance holds the short fill lease; the
//!   carrier's calls per second are a GCRA slot reserved in Redis by every instance.
//! - Claiming a job (`repo::claim`) happens in Postgres under the campaign's advisory lock:
//!   campaign active, under `max_concurrent` (live calls counted from `calls`), lead ready
//!   and due, no DNC, both windows open. The attempt row is written before the carrier is
//!   asked; a job delivered twice finds the lead `dialing` and dials nothing.
//! - Webhooks call [`on_final`] and [`on_amd`]; the sweeper re-does whatever a crash
//!   interrupted (deadlines in Postgres, compare-and-set, so one instance acts on each).

pub mod circuit;
pub mod clock;
pub mod lifecycle;
pub mod pacing;
pub mod plan;
pub mod repo;
pub mod transfer;
pub mod wrapup;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use circuit::Circuit;
pub use clock::Clock;
use pacing::{Pacing, Reservation};
use plan::Plan;
use repo::{Claim, LeadNext};

use crate::call::{self, CallId, StatusUpdate};
use crate::campaign::CampaignId;
use crate::startup::AppState;
use crate::telephony::client::{
    CallEvent, CreateCall, EndCall, HttpMethod, Instructions, MachineDetection, TwilioClient,
    TwilioError, UpdateCall,
};
use crate::telephony::{AnsweredBy, CallSid};

/// What the webhooks, the API and the engine's tasks share.
#[derive(Clone)]
pub struct Shared {
    pub clock: Clock,
    /// Woken when a call ends here, so the pacer fills the free slot at once.
    pub wake: Arc<Notify>,
    pub circuit: Arc<Circuit>,
    /// None when the carrier is not configured (no account or token).
    pub carrier: Option<TwilioClient>,
    plans: Arc<RwLock<PlanMap>>,
    /// Finishes attempts in batches ([`on_final`]); started on first use.
    finisher: Arc<std::sync::OnceLock<crate::batch::Batcher<CallId, ()>>>,
}

/// The active campaigns' plans, replaced whole on each refresh.
type PlanMap = Arc<HashMap<CampaignId, Arc<Plan>>>;

impl Shared {
    pub fn new(settings: &crate::config::Settings, clock: Clock) -> Self {
        let d = &settings.dialer;
        let carrier = TwilioClient::from_settings(&settings.twilio)
            .map_err(|e| tracing::warn!(error = %e, "no carrier client: calls cannot be placed"))
            .ok();
        Self {
            clock,
            wake: Arc::new(Notify::new()),
            circuit: Arc::new(Circuit::new(
                d.circuit_failures,
                Duration::from_secs(d.circuit_pause_secs),
                Duration::from_secs(d.circuit_max_pause_secs),
            )),
            carrier,
            plans: Arc::default(),
            finisher: Arc::default(),
        }
    }

    fn plans(&self) -> PlanMap {
        self.plans.read().expect("plans lock").clone()
    }

    /// The campaign's plan: the cached one when active, else read now.
    async fn plan(
        &self,
        db: &sqlx::PgPool,
        id: CampaignId,
    ) -> Result<Option<Arc<Plan>>, sqlx::Error> {
        if let Some(p) = self.plans().get(&id) {
            return Ok(Some(p.clone()));
        }
        Ok(plan::load(db, id).await?.map(Arc::new))
    }
}

fn url(state: &AppState, id: CallId, tail: &str) -> String {
    crate::webhooks::docs::url(&state.settings.http.public_url, id, tail)
}

/// Runs the engine's loops until `token` fires.
pub fn spawn(state: &AppState, token: CancellationToken) {
    if !state.settings.dialer.enabled {
        tracing::info!("dialer.enabled = false: this instance does not dial");
        return;
    }
    if state.engine.carrier.is_none() {
        tracing::warn!(
            "the carrier is not configured (twilio.account_sid / twilio.auth_token): this instance does not dial"
        );
        return;
    }
    let engine = Arc::new(Engine {
        state: state.clone(),
        pacing: Pacing::new(state.redis.clone()),
        pending: Mutex::default(),
        in_flight: Default::default(),
        last_send: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        fill_wake: Notify::new(),
        ratios: Mutex::new(HashMap::new()),
    });
    state
        .tasks
        .spawn(engine.clone().dispatch_loop(token.clone()));
    state.tasks.spawn(engine.clone().fill_loop(token.clone()));
    state.tasks.spawn(engine.sweep_loop(token));
}

struct Engine {
    state: AppState,
    pacing: Pacing,
    /// Dial jobs started here that have not yet claimed their lead, per campaign.
    pending: Mutex<HashMap<CampaignId, usize>>,
    /// Dial jobs started here that have not yet reached the carrier (or given up), all
    /// campaigns: bounded to about one second of the account's rate.
    in_flight: std::sync::atomic::AtomicUsize,
    /// When this instance last sent a dial request: sends from here are never closer than
    /// the account's interval, even when timers fire late in a batch on a loaded machine
    /// (the shared limiter spaces the slots; this keeps the requests spaced too).
    last_send: tokio::sync::Mutex<tokio::time::Instant>,
    fill_wake: Notify,
    /// Agent-paced campaigns' dial ratio now (refreshed with the plans).
    ratios: Mutex<HashMap<CampaignId, f64>>,
}

/// Decrements the in-flight count when the job ends, however it ends.
struct InFlight<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Decrements the campaign's pending count once, when released or dropped.
struct PendingGuard<'a> {
    engine: &'a Engine,
    campaign: CampaignId,
    live: bool,
}

impl PendingGuard<'_> {
    fn release(&mut self) {
        if std::mem::take(&mut self.live) {
            let mut p = self.engine.pending.lock().expect("pending lock");
            if let Some(n) = p.get_mut(&self.campaign) {
                *n = n.saturating_sub(1);
            }
        }
    }
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

/// How much earlier or later than its slot a dial request may reach the carrier and still
/// leave no second of the carrier's over the CPS (see [`Engine::dial_interval`]). At 200 CPS
/// it costs 3 calls a second (197); at Twilio's default of 1 CPS, 15 ms between calls.
const JITTER_ALLOWANCE: Duration = Duration::from_millis(15);

/// How late the spacing timer may wake and still count as on time (see [`Engine::place`]).
const LATE_WAKE_TOLERANCE: Duration = Duration::from_millis(2);

impl Engine {
    fn shared(&self) -> &Shared {
        &self.state.engine
    }

    fn cps(&self) -> f64 {
        f64::from(self.state.settings.twilio.cps.max(1))
    }

    /// The time between two dial requests of the account: 1/CPS, stretched so that the
    /// requests of any [`JITTER_ALLOWANCE`] + 1 s fit the CPS. Requests reach the carrier a
    /// little early or late (scheduling, the connection pool, the carrier's own intake):
    /// paced at exactly 1/CPS, that jitter put 201 requests into one of the carrier's
    /// seconds at 200 CPS.
    fn dial_interval(&self) -> Duration {
        (Duration::from_secs(1) + JITTER_ALLOWANCE).div_f64(self.cps())
    }

    /// The dial ratio an agent-paced campaign may use now (1.0 until its figures are read).
    fn ratio(&self, plan: &Plan) -> f64 {
        self.ratios
            .lock()
            .expect("ratios lock")
            .get(&plan.id)
            .copied()
            .unwrap_or(1.0)
    }

    async fn refresh_ratios(&self, plans: &HashMap<CampaignId, Arc<Plan>>) {
        let ids: Vec<CampaignId> = plans
            .values()
            .filter(|p| p.agent_paced)
            .map(|p| p.id)
            .collect();
        if ids.is_empty() {
            return;
        }
        match repo::abandonment(&self.state.db, &ids).await {
            Ok(stats) => {
                let mut ratios = self.ratios.lock().expect("ratios lock");
                ratios.clear();
                for id in ids {
                    let (people, abandoned) = stats.get(&id).copied().unwrap_or((0, 0));
                    ratios.insert(id, repo::ratio_now(&plans[&id], people, abandoned));
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading abandonment rates failed"),
        }
    }

    async fn refresh_plans(&self) {
        match plan::active(&self.state.db).await {
            Ok(p) => {
                let p: HashMap<_, _> = p.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
                self.refresh_ratios(&p).await;
                metrics::gauge!("dialer_active_campaigns").set(p.len() as f64);
                *self.shared().plans.write().expect("plans lock") = Arc::new(p);
            }
            Err(e) => tracing::warn!(error = %e, "reading active campaigns failed"),
        }
    }

    async fn dispatch_loop(self: Arc<Self>, token: CancellationToken) {
        let tick = Duration::from_millis(self.state.settings.dialer.tick_ms);
        let mut refreshed = tokio::time::Instant::now() - Duration::from_secs(60);
        let mut rotate = 0usize;
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                _ = self.shared().wake.notified() => {}
                _ = tokio::time::sleep(tick) => {}
            }
            if refreshed.elapsed() >= Duration::from_secs(1) {
                self.refresh_plans().await;
                refreshed = tokio::time::Instant::now();
            }
            rotate = rotate.wrapping_add(1);
            if let Err(e) = self.clone().dispatch_once(rotate, &token).await {
                tracing::warn!(error = %e, "pacer round failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }

    /// Starts as many dial jobs as the campaigns' free capacity and the account's rate allow.
    async fn dispatch_once(
        self: Arc<Self>,
        rotate: usize,
        token: &CancellationToken,
    ) -> anyhow::Result<()> {
        let plans = self.shared().plans();
        if plans.is_empty() {
            return Ok(());
        }
        let now = self.shared().clock.now();
        let mut open: Vec<Arc<Plan>> = plans
            .values()
            .filter(|p| p.schedule.campaign_open(now))
            .cloned()
            .collect();
        if open.is_empty() {
            return Ok(());
        }
        open.sort_by_key(|p| p.id.0);
        let k = rotate % open.len();
        open.rotate_left(k);
        let gate = self.shared().circuit.gate();
        if gate == circuit::Gate::Open {
            return Ok(());
        }
        let ids: Vec<CampaignId> = open.iter().map(|p| p.id).collect();
        let live = repo::live_counts(&self.state.db, &ids).await?;
        let paced: Vec<CampaignId> = open
            .iter()
            .filter(|p| p.agent_paced)
            .map(|p| p.id)
            .collect();
        let agents = if paced.is_empty() {
            HashMap::new()
        } else {
            repo::agent_capacity(&self.state.db, &paced, now).await?
        };
        // Jobs waiting for a rate slot here: about one second's worth.
        let max_pending = self.cps().ceil() as usize + 2;
        let mut probe = gate == circuit::Gate::Probe;
        let mut started_any = false;
        for plan in open {
            let n = self
                .pending
                .lock()
                .expect("pending lock")
                .get(&plan.id)
                .copied()
                .unwrap_or(0);
            let total = self.in_flight.load(std::sync::atomic::Ordering::Relaxed);
            let used = live.get(&plan.id).copied().unwrap_or(0) as usize + n;
            let mut free = (plan.max_concurrent.max(0) as usize).saturating_sub(used);
            if plan.agent_paced {
                let (agents_free, waiting) = agents.get(&plan.id).copied().unwrap_or((0, 0));
                let allowance =
                    repo::agent_allowance(agents_free, waiting + n as i64, self.ratio(&plan));
                free = free.min(allowance as usize);
            }
            let mut count = free.min(max_pending.saturating_sub(total));
            if probe {
                count = count.min(1);
            }
            for _ in 0..count {
                *self
                    .pending
                    .lock()
                    .expect("pending lock")
                    .entry(plan.id)
                    .or_default() += 1;
                self.in_flight
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let this = self.clone();
                let plan = plan.clone();
                let token = token.clone();
                let is_probe = probe;
                self.state
                    .tasks
                    .spawn(async move { this.dial_job(plan, is_probe, token).await });
                started_any = true;
                probe = false;
            }
        }
        if gate == circuit::Gate::Probe && !started_any {
            self.shared().circuit.probe_unused();
        }
        Ok(())
    }

    /// One dial job: the best lead of the campaign, the claim (the attempt is written),
    /// then a rate slot, a last look at what may have changed while waiting for it, and
    /// the carrier. The slot is taken right before the request, so requests leave at the
    /// limiter's exact spacing whatever the claim took.
    async fn dial_job(self: Arc<Self>, plan: Arc<Plan>, probe: bool, token: CancellationToken) {
        let _in_flight = InFlight(&self.in_flight);
        let mut guard = PendingGuard {
            engine: &self,
            campaign: plan.id,
            live: true,
        };
        let unused_probe = || {
            if probe {
                self.shared().circuit.probe_unused();
            }
        };
        let now = self.shared().clock.now();
        let job = match self.pacing.pop(plan.id, now.timestamp_millis()).await {
            Ok(Some(lead)) => lead,
            Ok(None) => {
                self.fill_wake.notify_one();
                unused_probe();
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "dial queue (Redis) unavailable");
                unused_probe();
                tokio::time::sleep(Duration::from_millis(500)).await;
                return;
            }
        };
        let ratio = plan.agent_paced.then(|| self.ratio(&plan));
        let claim = repo::claim(
            &self.state.db,
            &plan,
            job,
            now,
            self.final_after(&plan),
            ratio,
        )
        .await;
        guard.release();
        match claim {
            Ok(Claim::Dial(attempt)) => {
                metrics::counter!("dialer_attempts_total").increment(1);
                if self.wait_for_slot(&plan, &attempt, &token).await {
                    self.place(&plan, *attempt).await;
                } else {
                    unused_probe();
                }
            }
            Ok(Claim::Full | Claim::NoAgent) => {
                unused_probe();
                // Back at the front: it was the best job a moment ago.
                if let Err(e) = self.pacing.requeue(plan.id, job, 0.0).await {
                    tracing::warn!(error = %e, "could not put a dial job back; the next fill restores it");
                }
                return;
            }
            Ok(other) => {
                unused_probe();
                let reason = match other {
                    Claim::Skipped(r) => r,
                    Claim::Gone => "not_due",
                    _ => "campaign_inactive",
                };
                metrics::counter!("dialer_dial_skipped_total", "reason" => reason).increment(1);
            }
            Err(e) => {
                unused_probe();
                tracing::warn!(error = %e, lead = job, "claiming a lead failed");
            }
        }
        if let Err(e) = self.pacing.done(plan.id, job).await {
            tracing::debug!(error = %e, "clearing the in-flight mark failed (it expires)");
        }
    }

    /// How long an attempt may go without news before the sweeper looks into it: the
    /// carrier's ring time plus `dialer.stuck_after_secs`.
    fn final_after(&self, plan: &Plan) -> TimeDelta {
        TimeDelta::seconds(
            i64::from(plan.dial_timeout_secs) + self.state.settings.dialer.stuck_after_secs as i64,
        )
    }

    /// Waits for the account's next rate slot, then looks again at what may have changed
    /// meanwhile (campaign paused, a window closed) and fences the attempt: its deadline
    /// moves to now + [`Self::final_after`] only if the sweeper has not given it back, so
    /// an attempt is either sent or given back, never both. Gives the attempt back if the
    /// campaign or window closed, the rate limiter is unreachable or we are shutting down.
    /// True: dial now.
    async fn wait_for_slot(
        &self,
        plan: &Plan,
        a: &repo::Attempt,
        token: &CancellationToken,
    ) -> bool {
        let account = &self.state.settings.twilio.account_sid;
        let mut waited = false;
        let give_back = |reason: &'static str| async move {
            let next = self.shared().clock.now();
            if let Err(e) = repo::revert(&self.state.db, a.call_id, reason, next, None).await {
                tracing::warn!(error = %e, call = %a.call_id, "giving back an attempt failed; the sweeper resolves it");
            }
            metrics::counter!("dialer_dial_skipped_total", "reason" => reason).increment(1);
            false
        };
        loop {
            match self
                .pacing
                .reserve(account, self.dial_interval(), Duration::from_secs(1))
                .await
            {
                Ok(Reservation::Go(wait)) => {
                    if !wait.is_zero() {
                        waited = true;
                        tokio::time::sleep(wait).await;
                    }
                    break;
                }
                Ok(Reservation::Later(after)) => {
                    waited = true;
                    tokio::select! {
                        _ = token.cancelled() => return give_back("shutting_down").await,
                        _ = tokio::time::sleep(after.min(Duration::from_secs(1))) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "rate limiter (Redis) unavailable");
                    return give_back("rate_limiter_unavailable").await;
                }
            }
        }
        let now = self.shared().clock.now();
        if waited && !plan.schedule.is_open(&a.place, now) {
            return give_back("outside_lead_window").await;
        }
        match repo::fence(&self.state.db, a.call_id, now + self.final_after(plan)).await {
            Ok(Some(s)) if s == "active" => true,
            Ok(Some(_)) => give_back("campaign_inactive").await,
            Ok(None) => {
                // The sweeper gave it back while we waited (it may already be with another job).
                tracing::warn!(call = %a.call_id, "attempt given back while waiting for a rate slot: not dialled");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "fencing the attempt failed");
                give_back("database_unavailable").await
            }
        }
    }

    /// Asks the carrier to dial an attempt that is already written.
    async fn place(&self, plan: &Plan, a: repo::Attempt) {
        let carrier = self.shared().carrier.as_ref().expect("checked at spawn");
        let id = a.call_id;
        let mut req = CreateCall::new(
            &a.to,
            &a.from,
            Instructions::Url {
                url: url(&self.state, id, "voice"),
                method: Some(HttpMethod::Post),
            },
        );
        req.status_callback = Some(url(&self.state, id, "status"));
        req.status_callback_method = Some(HttpMethod::Post);
        req.status_callback_event = vec![
            CallEvent::Initiated,
            CallEvent::Ringing,
            CallEvent::Answered,
            CallEvent::Completed,
        ];
        req.timeout_secs = Some(plan.dial_timeout_secs.max(15) as u32);
        if plan.amd_enabled {
            req.machine_detection = Some(MachineDetection::DetectMessageEnd);
            req.async_amd = Some(true);
            req.async_amd_status_callback = Some(url(&self.state, id, "amd"));
            req.async_amd_status_callback_method = Some(HttpMethod::Post);
        }
        {
            // This instance's requests leave at least one interval apart, measured right
            // before the request (after the fence's round trip, whose time varies under load
            // and would bunch requests spaced before it: 217 in one second at 200 CPS).
            let mut last = self.last_send.lock().await;
            let earliest = *last + self.dial_interval();
            if tokio::time::Instant::now() < earliest {
                tokio::time::sleep_until(earliest).await;
            }
            let now = tokio::time::Instant::now();
            // The timer wakes up to about 1 ms late: the next request is spaced from this
            // one's slot, not from the late wake-up, or 200 CPS would become ~166. A later
            // wake-up (a busy machine) starts the schedule again from now: catching up on
            // the missed slots would send requests back to back.
            *last = if now.saturating_duration_since(earliest) <= LATE_WAKE_TOLERANCE {
                earliest
            } else {
                now
            };
        }
        let result = carrier.create_call(&req).await;
        let db = &self.state.db;
        let now = self.shared().clock.now();
        match result {
            Ok(res) => {
                self.shared().circuit.success();
                metrics::counter!("dialer_dials_total").increment(1);
                let mut conn = match db.acquire().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, call = %id, "storing the call SID failed; callbacks will bring it");
                        return;
                    }
                };
                if let Err(e) = call::repo::set_sid(&mut conn, id, res.sid.as_str()).await {
                    tracing::warn!(error = %e, call = %id, "storing the call SID failed; callbacks will bring it");
                }
            }
            Err(e) => self.carrier_refused(plan, id, e, now).await,
        }
    }

    async fn carrier_refused(&self, plan: &Plan, id: CallId, e: TwilioError, now: DateTime<Utc>) {
        let db = &self.state.db;
        let circuit = &self.shared().circuit;
        let text = e.to_string();
        match &e {
            TwilioError::Api {
                status,
                code,
                message,
            } if *status < 500 && *status != 401 && *status != 403 => {
                circuit.success();
                let code = *code;
                if matches!(code, Some(21210 | 21212 | 21213)) {
                    // The caller id is refused: every call of the campaign would be.
                    tracing::error!(campaign = %plan.id, error = %text, "the carrier refuses the campaign's caller id: pausing the campaign");
                    let _ = repo::revert(db, id, "caller_id_refused", now, None).await;
                    let _ = lifecycle::pause_for(
                        db,
                        plan.id,
                        &format!("the carrier refused the caller id: {message}"),
                    )
                    .await;
                    return;
                }
                let disposition = if matches!(
                    code,
                    Some(21211 | 21214 | 21217 | 21401 | 21407 | 13223 | 13224)
                ) {
                    "invalid_number"
                } else {
                    "failed"
                };
                tracing::info!(call = %id, error = %text, disposition, "the carrier refused the number");
                if let Err(err) = repo::refuse(db, id, disposition, code, message, now).await {
                    tracing::warn!(error = %err, call = %id, "recording a refused dial failed; the sweeper resolves it");
                    return;
                }
                on_final(&self.state, id).await;
            }
            TwilioError::Transport { sent: true, .. } | TwilioError::Decode(_) => {
                // The carrier may have the call: keep the attempt; callbacks or the sweeper settle it.
                circuit.failure(&text);
                tracing::warn!(call = %id, error = %text, "dial request outcome unknown; kept for reconciliation");
            }
            _ => {
                circuit.failure(&text);
                tracing::warn!(call = %id, error = %text, "carrier unavailable: attempt given back");
                if let Err(err) = repo::revert(db, id, "carrier_unavailable", now, None).await {
                    tracing::warn!(error = %err, call = %id, "giving back an attempt failed; the sweeper resolves it");
                }
            }
        }
    }

    async fn fill_loop(self: Arc<Self>, token: CancellationToken) {
        let every = Duration::from_millis(self.state.settings.dialer.fill_interval_ms);
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                _ = self.fill_wake.notified() => {}
                _ = tokio::time::sleep(every) => {}
            }
            for plan in self.shared().plans().values() {
                if let Err(e) = self.fill(plan, every).await {
                    tracing::warn!(campaign = %plan.id, error = %e, "filling the dial queue failed");
                }
            }
        }
    }

    /// Tops up the campaign's hopper with due leads whose windows are open now; leads whose
    /// local window is closed are due again when it opens.
    async fn fill(&self, plan: &Plan, lease: Duration) -> anyhow::Result<()> {
        let now = self.shared().clock.now();
        if !plan.schedule.campaign_open(now) {
            return Ok(());
        }
        let target = ((self.cps() * 2.0) as usize).clamp(20, 2000);
        let have = self.pacing.len(plan.id).await?;
        if have >= target / 2 || !self.pacing.try_fill_lock(plan.id, lease).await? {
            return Ok(());
        }
        let leads = repo::due_leads(&self.state.db, plan.id, now, target as i64).await?;
        let mut jobs = Vec::with_capacity(leads.len());
        let mut later = Vec::new();
        for l in leads {
            let place = crate::schedule::LeadPlace::new(
                &l.time_zones,
                l.region.as_deref(),
                &l.phone_e164,
                plan.schedule.campaign.tz,
            );
            if plan.schedule.lead_open(&place, now) {
                jobs.push((
                    l.id,
                    pacing::job_score(l.priority, l.next_attempt_at.timestamp_millis()),
                ));
            } else {
                later.push((l.id, plan.schedule.next_open(&place, now)));
            }
        }
        self.pacing
            .push(plan.id, now.timestamp_millis(), &jobs)
            .await?;
        repo::postpone(&self.state.db, &later, now).await?;
        if !later.is_empty() {
            metrics::counter!("dialer_dial_skipped_total", "reason" => "outside_lead_window")
                .increment(later.len() as u64);
        }
        Ok(())
    }

    async fn sweep_loop(self: Arc<Self>, token: CancellationToken) {
        let every = Duration::from_millis(self.state.settings.dialer.sweep_interval_ms);
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
            if let Err(e) = sweep(&self.state).await {
                tracing::warn!(error = %e, "sweep failed");
            }
        }
    }
}

/// One round of the sweeper: people on hold past the limit, attempts stuck without a final
/// state, leads whose attempt ended without them moving on, campaigns with nothing left.
/// Every action is a compare-and-set, so instances sweeping together act once.
pub async fn sweep(state: &AppState) -> anyhow::Result<()> {
    let now = state.engine.clock.now();
    transfer::abandon_overdue(state, now).await?;
    reconcile_stuck(state, now).await?;
    let orphans: Vec<i64> = sqlx::query_scalar(
        "SELECT k.id FROM leads l JOIN calls k ON k.lead_id = l.id AND k.attempt = l.attempts
          WHERE l.status = 'dialing' AND k.is_final LIMIT 500",
    )
    .fetch_all(&state.db)
    .await?;
    if !orphans.is_empty() {
        let ids: Vec<CallId> = orphans.into_iter().map(CallId).collect();
        finish_batch(state, &ids).await;
    }
    lifecycle::complete_finished(&state.db).await?;
    Ok(())
}

/// Attempts past their deadline without a final state: asked about at the carrier.
async fn reconcile_stuck(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<()> {
    // Take each for a minute (compare-and-set on the deadline), so one instance handles it.
    let taken = now + TimeDelta::seconds(60);
    let stuck: Vec<(i64, Option<String>)> = sqlx::query_as(
        "UPDATE calls SET final_deadline = $2
          WHERE id IN (SELECT id FROM calls WHERE NOT is_final AND final_deadline <= $1
                        ORDER BY final_deadline LIMIT 200 FOR UPDATE SKIP LOCKED)
         RETURNING id, call_sid",
    )
    .bind(now)
    .bind(taken)
    .fetch_all(&state.db)
    .await?;
    for (id, sid) in stuck {
        let id = CallId(id);
        let Some(carrier) = state.engine.carrier.as_ref() else {
            continue;
        };
        let sid = match sid.and_then(|s| CallSid::parse(&s).ok()) {
            Some(sid) => sid,
            // No SID and no callback: the request may never have reached the carrier, or
            // the instance that sent it died before it stored the answer. Only the
            // carrier knows which; never give the lead back while it might be ringing.
            None => match find_lost_call(state, carrier, id).await {
                Ok(Some(sid)) => {
                    tracing::warn!(call = %id, sid = %sid, "found an unconfirmed attempt at the carrier");
                    let mut conn = state.db.acquire().await?;
                    call::repo::set_sid(&mut conn, id, sid.as_str()).await?;
                    sid
                }
                Ok(None) => {
                    if repo::revert(&state.db, id, "carrier_never_confirmed", now, Some(taken))
                        .await?
                    {
                        tracing::warn!(call = %id, "attempt unknown to the carrier: given back");
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(call = %id, error = %e, "could not ask the carrier about an unconfirmed attempt");
                    continue;
                }
            },
        };
        match carrier.fetch_call(&sid).await {
            Ok(c) if c.status.is_final() => {
                let update = StatusUpdate {
                    sid: Some(sid.clone()),
                    status: c.status.clone(),
                    sequence: None,
                    at: now,
                    duration_secs: c.duration_secs.map(|d| d as i32),
                    sip_response_code: None,
                    error_code: None,
                    answered_by: c.answered_by.clone(),
                };
                let payload = serde_json::json!({"source": "reconcile", "CallSid": sid.as_str(), "CallStatus": c.status.as_str()});
                call::repo::record_status(&state.db, id, &update, &payload).await?;
                tracing::info!(call = %id, status = %c.status, "reconciled a stuck attempt with the carrier");
                on_final(state, id).await;
            }
            Ok(_) => {
                // Still live (a long conversation): look again later.
                sqlx::query("UPDATE calls SET final_deadline = $2 WHERE id = $1 AND NOT is_final")
                    .bind(id)
                    .bind(now + TimeDelta::minutes(5))
                    .execute(&state.db)
                    .await?;
            }
            Err(TwilioError::Api { status: 404, .. }) => {
                // The carrier has no such call: it never rang.
                repo::refuse(&state.db, id, "failed", None, "unknown to the carrier", now).await?;
                on_final(state, id).await;
            }
            Err(e) => {
                tracing::warn!(call = %id, error = %e, "could not ask the carrier about a stuck attempt")
            }
        }
    }
    Ok(())
}

/// The carrier's SID for an attempt whose create-call answer was lost: a call to the same
/// number from the same caller ID, created in the last day, that no attempt of ours has
/// claimed. `None` when the carrier has no such call (the request never reached it).
async fn find_lost_call(
    state: &AppState,
    carrier: &TwilioClient,
    id: CallId,
) -> anyhow::Result<Option<CallSid>> {
    let Some((to, from)): Option<(String, String)> =
        sqlx::query_as("SELECT to_number, from_number FROM calls WHERE id = $1")
            .bind(id)
            .fetch_optional(&state.db)
            .await?
    else {
        return Ok(None);
    };
    let calls = carrier.list_calls(&to, Some(&from), 100).await?;
    // The carrier's clock is real time, whatever the engine's clock says. Newest first,
    // as the carrier lists them.
    let since = Utc::now() - TimeDelta::days(1);
    let candidates: Vec<&str> = calls
        .iter()
        .filter(|c| c.direction.as_deref().is_none_or(|d| d == "outbound-api"))
        .filter(|c| c.date_created.is_none_or(|t| t >= since))
        .map(|c| c.sid.as_str())
        .collect();
    if candidates.is_empty() {
        return Ok(None);
    }
    let known: Vec<String> = sqlx::query_scalar(
        "SELECT call_sid FROM calls WHERE to_number = $1 AND call_sid = ANY($2)",
    )
    .bind(&to)
    .bind(&candidates)
    .fetch_all(&state.db)
    .await?;
    // The oldest unclaimed one is ours (a newer one would belong to a later attempt that
    // is itself unconfirmed).
    let unclaimed = candidates
        .iter()
        .rev()
        .find(|sid| !known.iter().any(|k| k == *sid));
    Ok(unclaimed.and_then(|sid| CallSid::parse(sid).ok()))
}

/// An attempt reached a final state: its lead moves on (retry or final) and the pacer is
/// woken to use the free slot. Safe to call any number of times. Calls arriving together
/// are finished together, in one transaction (see [`finish_batch`]).
pub async fn on_final(state: &AppState, id: CallId) {
    state.engine.wake.notify_one();
    let finisher = state.engine.finisher.get_or_init(|| {
        let state = state.clone();
        crate::batch::Batcher::spawn(
            FINISH_BATCH,
            FINISH_BATCHES_IN_FLIGHT,
            move |ids: Vec<CallId>| {
                let state = state.clone();
                async move {
                    finish_batch(&state, &ids).await;
                    vec![(); ids.len()]
                }
            },
        )
    });
    if finisher.submit(id).await.is_none() {
        finish_batch(state, &[id]).await;
    }
}

/// Most attempts finished by one transaction.
const FINISH_BATCH: usize = 64;
/// Finishing transactions running at once (they lock leads in id order).
const FINISH_BATCHES_IN_FLIGHT: usize = 2;

/// Moves on the leads of the final attempts `ids`: offers still ringing for them are
/// cancelled, then one transaction retries or finishes every lead. A failure is logged;
/// the sweeper finds the leads again.
///
/// It runs on the webhook pool, like the callbacks that end calls: generic plans, and a
/// commit that does not wait for the WAL flush. If the database server crashes, a lead
/// moved on in its last moments is back to `dialing` with a final attempt, which the
/// sweeper finishes again (the same decision: it is computed from the stored rows).
pub async fn finish_batch(state: &AppState, ids: &[CallId]) {
    let raw: Vec<i64> = ids.iter().map(|id| id.0).collect();
    let rows: Vec<(i64, CampaignId, bool)> = match sqlx::query_as(
        "SELECT id, campaign_id, agent_id IS NOT NULL AND bridged_at IS NULL FROM calls WHERE id = ANY($1)",
    )
    .bind(&raw)
    .fetch_all(&state.webhook_db)
    .await
    {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(calls = ids.len(), error = %e, "finishing attempts failed; the sweeper retries");
            return;
        }
    };
    let mut plans = HashMap::new();
    for (id, campaign, offered) in rows {
        if offered {
            // The person hung up while an agent's phone rang for them.
            transfer::cancel_offers(state, CallId(id)).await;
        }
        if plans.contains_key(&campaign) {
            continue;
        }
        match state.engine.plan(&state.db, campaign).await {
            Ok(Some(p)) => {
                plans.insert(campaign, p);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(call = id, error = %e, "finishing an attempt failed; the sweeper retries")
            }
        }
    }
    if plans.is_empty() {
        return;
    }
    match repo::finish(&state.webhook_db, &plans, ids, state.engine.clock.now()).await {
        Ok(outcomes) => {
            for outcome in outcomes {
                if let LeadNext::Done(reason) = outcome {
                    metrics::counter!("dialer_leads_finished_total", "reason" => reason)
                        .increment(1);
                }
            }
        }
        Err(e) => {
            tracing::warn!(calls = ids.len(), error = %e, "finishing attempts failed; the sweeper retries")
        }
    }
}

/// The AMD verdict: a machine gets the voicemail drop (the live call is redirected), a
/// person is held for an agent until the campaign's hold limit, a fax is hung up on.
pub async fn on_amd(state: &AppState, id: CallId, by: &AnsweredBy) {
    #[derive(sqlx::FromRow)]
    struct Row {
        call_sid: Option<String>,
        max_hold_ms: i32,
        voicemail_message: Option<String>,
        voicemail_audio_url: Option<String>,
    }
    let row: Option<Row> = match sqlx::query_as(
        "SELECT k.call_sid, c.max_hold_ms, c.voicemail_message, c.voicemail_audio_url
           FROM calls k JOIN campaigns c ON c.id = k.campaign_id WHERE k.id = $1 AND NOT k.is_final",
    )
    .bind(id)
    .fetch_optional(&state.db)
    .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(call = %id, error = %e, "acting on the AMD verdict failed");
            return;
        }
    };
    let Some(Row {
        call_sid: sid,
        max_hold_ms,
        voicemail_message: text,
        voicemail_audio_url: audio,
    }) = row
    else {
        return;
    };
    let sid = sid.and_then(|s| CallSid::parse(&s).ok());
    let carrier = state.engine.carrier.as_ref();
    if by.is_machine() {
        let (Some(sid), Some(carrier)) = (sid, carrier) else {
            return;
        };
        let update = if text.is_some() || audio.is_some() {
            UpdateCall::Redirect(Instructions::Url {
                url: url(state, id, "voicemail"),
                method: Some(HttpMethod::Post),
            })
        } else {
            UpdateCall::End(EndCall::Completed)
        };
        if let Err(e) = carrier.update_call(&sid, &update).await {
            tracing::warn!(call = %id, error = %e, "voicemail drop failed");
        }
    } else if matches!(by, AnsweredBy::Fax) {
        if let (Some(sid), Some(carrier)) = (sid, carrier) {
            let _ = carrier
                .update_call(&sid, &UpdateCall::End(EndCall::Completed))
                .await;
        }
    } else {
        transfer::person_answered(state, id, max_hold_ms).await;
    }
}

/// The lead leg was answered (its voice URL fetched): with AMD off the answer is a person.
pub async fn on_answer(state: &AppState, id: CallId) {
    let row: Option<(bool, i32)> = match sqlx::query_as(
        "SELECT c.amd_enabled, c.max_hold_ms FROM calls k JOIN campaigns c ON c.id = k.campaign_id WHERE k.id = $1",
    )
    .bind(id)
    .fetch_optional(&state.db)
    .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(call = %id, error = %e, "reading the campaign of an answered call failed");
            return;
        }
    };
    if let Some((false, max_hold_ms)) = row {
        transfer::person_answered(state, id, max_hold_ms).await;
    }
}
