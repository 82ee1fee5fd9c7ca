//! The delivery worker: runs on every instance with `crm_webhooks.enabled`.
//!
//! Each round claims due deliveries in one statement (`FOR UPDATE SKIP LOCKED`, so
//! instances never claim the same row), at most the free slots of this instance and at
//! most `per_endpoint_concurrency` in flight per tenant; the claim counts the attempt and
//! moves `next_attempt_at` to a lease past the request's deadline, so a delivery whose
//! instance died is claimed again when the lease runs out. Each request runs in its own
//! task with the `timeout_ms` deadline; its outcome is written with compare-and-set on the
//! attempt number. Nothing here touches the dialing path: its own HTTP client, its own
//! tasks, one short query per round.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::is_public;
use super::signature;
use crate::config::CrmWebhookSettings;
use crate::startup::AppState;
use crate::tenant::TenantId;

/// When to try again after `attempts` failed attempts, or None to give up: `base`
/// doubled per attempt, capped at `max`. Pure.
pub fn retry_delay(attempts: u32, s: &CrmWebhookSettings) -> Option<Duration> {
    if attempts >= s.max_attempts {
        return None;
    }
    let doubled = s.retry_base_ms.saturating_mul(
        1u64.checked_shl(attempts.saturating_sub(1))
            .unwrap_or(u64::MAX),
    );
    Some(Duration::from_millis(doubled.min(s.retry_max_ms)))
}

/// Starts the worker (and the pruning of old deliveries) unless disabled.
pub fn spawn(state: &AppState, token: CancellationToken) {
    let settings = &state.settings.crm_webhooks;
    if !settings.enabled {
        tracing::info!("crm_webhooks.enabled = false: this instance delivers no CRM webhooks");
        return;
    }
    let http = match client(settings) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no HTTP client for CRM webhooks: this instance delivers none");
            return;
        }
    };
    let worker = Arc::new(Worker {
        state: state.clone(),
        http,
        busy: Mutex::default(),
        freed: Notify::new(),
    });
    state.tasks.spawn(worker.run(token));
}

/// The client deliveries use: the request deadline, no redirects (a 3xx is a failed
/// attempt, and cannot lead us to an internal address), and, unless private targets are
/// allowed, a resolver that drops non-public addresses.
fn client(s: &CrmWebhookSettings) -> reqwest::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_millis(s.timeout_ms))
        .connect_timeout(Duration::from_millis(s.timeout_ms.min(5_000)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("dialer-webhooks/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(30));
    if !s.allow_private_targets {
        b = b.dns_resolver(PublicOnly);
    }
    b.build()
}

/// Resolves names to their public addresses only (no loopback, private, link-local …).
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

struct Worker {
    state: AppState,
    http: reqwest::Client,
    /// Deliveries in flight from here, per tenant.
    busy: Mutex<HashMap<TenantId, usize>>,
    /// A delivery ended: a slot is free.
    freed: Notify,
}

/// A claimed delivery.
#[derive(sqlx::FromRow)]
struct Claimed {
    id: i64,
    tenant_id: TenantId,
    event: String,
    body: String,
    attempts: i32,
    url: String,
    secret: String,
}

/// How an attempt went.
enum Outcome {
    Delivered(u16),
    Failed { status: Option<u16>, error: String },
}

/// Releases the tenant's slot when the delivery's task ends, however it ends.
struct Slot {
    worker: Arc<Worker>,
    tenant: TenantId,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut busy = self.worker.busy.lock().expect("busy lock");
        if let Some(n) = busy.get_mut(&self.tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                busy.remove(&self.tenant);
            }
        }
        drop(busy);
        self.worker.freed.notify_one();
    }
}

const CLAIM: &str = "
WITH busy AS (
    SELECT * FROM unnest($4::uuid[], $5::int[]) AS b(tenant_id, n)
), candidates AS (
    SELECT d.id, d.tenant_id, d.next_attempt_at
      FROM crm_deliveries d
     WHERE d.state = 'pending' AND d.next_attempt_at <= now()
       AND EXISTS (SELECT 1 FROM crm_webhooks w WHERE w.tenant_id = d.tenant_id AND w.enabled)
     ORDER BY d.next_attempt_at
     LIMIT 1000
       FOR UPDATE OF d SKIP LOCKED
), chosen AS (
    SELECT r.id FROM (
        SELECT c.id, c.next_attempt_at, COALESCE(b.n, 0) AS n,
               row_number() OVER (PARTITION BY c.tenant_id ORDER BY c.next_attempt_at, c.id) AS rn
          FROM candidates c LEFT JOIN busy b ON b.tenant_id = c.tenant_id
    ) r
     WHERE r.rn + r.n <= $2
     ORDER BY r.next_attempt_at
     LIMIT $1
)
UPDATE crm_deliveries d
   SET attempts = d.attempts + 1, last_attempt_at = now(),
       next_attempt_at = now() + make_interval(secs => $3)
  FROM crm_webhooks w
 WHERE d.id IN (SELECT id FROM chosen) AND w.tenant_id = d.tenant_id
RETURNING d.id, d.tenant_id, d.event, d.payload::text AS body, d.attempts, w.url, w.secret";

impl Worker {
    fn settings(&self) -> &CrmWebhookSettings {
        &self.state.settings.crm_webhooks
    }

    async fn run(self: Arc<Self>, token: CancellationToken) {
        let every = Duration::from_millis(self.settings().poll_interval_ms);
        let mut pruned: Option<Instant> = None;
        loop {
            if let Err(e) = self.clone().tick_once().await {
                tracing::warn!(error = %e, "claiming CRM webhook deliveries failed");
            }
            if pruned.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600)) {
                match self.prune().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "old CRM webhook deliveries deleted"),
                    Err(e) => {
                        tracing::warn!(error = %e, "deleting old CRM webhook deliveries failed")
                    }
                }
                pruned = Some(Instant::now());
            }
            tokio::select! {
                _ = token.cancelled() => break,
                _ = self.freed.notified() => {}
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    /// One round: claims as many due deliveries as there are free slots and starts them.
    pub async fn tick_once(self: Arc<Self>) -> Result<usize, sqlx::Error> {
        let s = self.settings();
        let (tenants, counts, in_flight) = {
            let busy = self.busy.lock().expect("busy lock");
            let tenants: Vec<uuid::Uuid> = busy.keys().map(|t| t.0).collect();
            let counts: Vec<i32> = busy.values().map(|n| *n as i32).collect();
            (tenants, counts, busy.values().sum::<usize>())
        };
        let free = (s.concurrency as usize).saturating_sub(in_flight);
        if free == 0 {
            return Ok(0);
        }
        // The lease: past the request's deadline, with room for recording the outcome.
        let lease = s.timeout_ms as f64 / 1000.0 + 60.0;
        let claimed: Vec<Claimed> = sqlx::query_as(CLAIM)
            .bind(free as i64)
            .bind(s.per_endpoint_concurrency as i64)
            .bind(lease)
            .bind(&tenants)
            .bind(&counts)
            .fetch_all(&self.state.db)
            .await?;
        let n = claimed.len();
        for d in claimed {
            *self
                .busy
                .lock()
                .expect("busy lock")
                .entry(d.tenant_id)
                .or_default() += 1;
            let slot = Slot {
                worker: self.clone(),
                tenant: d.tenant_id,
            };
            let this = self.clone();
            self.state.tasks.spawn(async move {
                let _slot = slot;
                this.deliver(d).await;
            });
        }
        Ok(n)
    }

    async fn deliver(&self, d: Claimed) {
        let started = Instant::now();
        let outcome = self.send(&d).await;
        metrics::histogram!("dialer_crm_webhook_delivery_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        if let Err(e) = self.record(&d, &outcome).await {
            // The lease runs out and the delivery is tried again: at-least-once.
            tracing::warn!(delivery = d.id, error = %e, "recording a CRM webhook delivery failed");
        }
    }

    async fn send(&self, d: &Claimed) -> Outcome {
        if !self.settings().allow_private_targets
            && let Ok(url) = url::Url::parse(&d.url)
        {
            let ip = match url.host() {
                Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
                _ => None,
            };
            if ip.is_some_and(|ip| !is_public(ip)) {
                return Outcome::Failed {
                    status: None,
                    error: "the endpoint is not on a public address".into(),
                };
            }
        }
        let t = chrono::Utc::now().timestamp();
        let request = self
            .http
            .post(&d.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Dialer-Event", &d.event)
            .header("X-Dialer-Delivery", d.id.to_string())
            .header("X-Dialer-Attempt", d.attempts.to_string())
            .header(
                "X-Dialer-Signature",
                signature::sign(&d.secret, t, d.body.as_bytes()),
            )
            .body(d.body.clone());
        match request.send().await {
            Ok(r) if r.status().is_success() => Outcome::Delivered(r.status().as_u16()),
            Ok(mut r) => {
                let status = r.status().as_u16();
                // The start of the answer is enough to say what went wrong.
                let mut text = Vec::new();
                while text.len() < 300 {
                    match r.chunk().await {
                        Ok(Some(c)) => text.extend_from_slice(&c),
                        _ => break,
                    }
                }
                let body = String::from_utf8_lossy(&text);
                let body: String = body.trim().chars().take(300).collect();
                Outcome::Failed {
                    status: Some(status),
                    error: if body.is_empty() {
                        format!("HTTP {status}")
                    } else {
                        format!("HTTP {status}: {body}")
                    },
                }
            }
            Err(e) => {
                let mut error = if e.is_timeout() {
                    format!("no answer within {} ms", self.settings().timeout_ms)
                } else {
                    e.to_string()
                };
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    error.push_str(": ");
                    error.push_str(&s.to_string());
                    source = s.source();
                }
                Outcome::Failed {
                    status: None,
                    error: error.chars().take(500).collect(),
                }
            }
        }
    }

    async fn record(&self, d: &Claimed, outcome: &Outcome) -> Result<(), sqlx::Error> {
        let db = &self.state.db;
        match outcome {
            Outcome::Delivered(status) => {
                sqlx::query(
                    "UPDATE crm_deliveries SET state = 'delivered', delivered_at = now(),
                            next_attempt_at = NULL, last_status = $3, last_error = NULL
                      WHERE id = $1 AND attempts = $2 AND state = 'pending'",
                )
                .bind(d.id)
                .bind(d.attempts)
                .bind(i32::from(*status))
                .execute(db)
                .await?;
                metrics::counter!("dialer_crm_webhook_deliveries_total", "result" => "delivered")
                    .increment(1);
            }
            Outcome::Failed { status, error } => {
                let next = retry_delay(d.attempts.max(0) as u32, self.settings());
                let result = if next.is_some() { "retry" } else { "failed" };
                tracing::info!(delivery = d.id, tenant = %d.tenant_id, attempt = d.attempts, error = %error, result, "CRM webhook not delivered");
                sqlx::query(
                    "UPDATE crm_deliveries
                        SET state = CASE WHEN $5::float8 IS NULL THEN 'failed' ELSE 'pending' END,
                            next_attempt_at = now() + make_interval(secs => $5),
                            last_status = $3, last_error = $4
                      WHERE id = $1 AND attempts = $2 AND state = 'pending'",
                )
                .bind(d.id)
                .bind(d.attempts)
                .bind(status.map(i32::from))
                .bind(error)
                .bind(next.map(|n| n.as_secs_f64()))
                .execute(db)
                .await?;
                metrics::counter!("dialer_crm_webhook_deliveries_total", "result" => result)
                    .increment(1);
            }
        }
        Ok(())
    }

    /// Deletes delivered and failed deliveries past the retention, a batch at a time.
    async fn prune(&self) -> Result<u64, sqlx::Error> {
        let mut total = 0;
        loop {
            let n = sqlx::query(
                "DELETE FROM crm_deliveries WHERE id IN (
                    SELECT id FROM crm_deliveries
                     WHERE state <> 'pending' AND created_at < now() - make_interval(days => $1)
                     LIMIT 5000)",
            )
            .bind(self.settings().retention_days as i32)
            .execute(&self.state.db)
            .await?
            .rows_affected();
            total += n;
            if n < 5000 {
                return Ok(total);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_from_the_base_up_to_the_cap_then_stop() {
        let s = CrmWebhookSettings::default();
        let secs = |n| retry_delay(n, &s).map(|d| d.as_secs());
        assert_eq!(secs(1), Some(30));
        assert_eq!(secs(2), Some(60));
        assert_eq!(secs(3), Some(120));
        assert_eq!(secs(7), Some(1920));
        assert_eq!(secs(8), Some(3600));
        assert_eq!(secs(9), Some(3600));
        assert_eq!(secs(10), None);
        let many = CrmWebhookSettings {
            max_attempts: 1000,
            ..CrmWebhookSettings::default()
        };
        assert_eq!(retry_delay(200, &many), Some(Duration::from_secs(3600)));
    }
}
