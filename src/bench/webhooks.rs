//! `dialer bench webhooks`: signed status callbacks against an in-process daemon on
//! loopback, each verified, stored as a call event and applied to its call.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use secrecy::SecretString;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::ScratchDb;
use crate::call::CallId;
use crate::config::Settings;
use crate::telephony::signature;

/// Creates a tenant, a campaign, `count` leads and one dialing attempt per lead; returns
/// the attempts (for benchmarks and tests of the webhook path).
pub async fn seed_calls(
    pool: &PgPool,
    count: i64,
) -> anyhow::Result<(crate::tenant::TenantId, Vec<CallId>)> {
    let mut conn = pool.acquire().await?;
    let hasher = crate::auth::KeyHasher::new(None);
    let name = format!("seed-{}", uuid::Uuid::new_v4().simple());
    let tenant = crate::tenant::repo::create_with_admin_key(&mut conn, &name, &hasher)
        .await?
        .tenant
        .id;
    let campaign = crate::campaign::NewCampaign::with_defaults("webhooks")?;
    let campaign = crate::campaign::repo::insert(&mut conn, tenant, &campaign)
        .await?
        .id;
    let ids: Vec<i64> = sqlx::query_scalar(
        "WITH l AS (
             INSERT INTO leads (tenant_id, campaign_id, phone_raw, phone_e164, region, time_zones, first_name, status)
             SELECT $1, $2, '+1415' || lpad(g::text, 7, '0'), '+1415' || lpad(g::text, 7, '0'), 'US',
                    ARRAY['America/Los_Angeles'], 'Lead ' || g, 'dialing'
               FROM generate_series(1, $3::bigint) g
             RETURNING id, phone_e164)
         INSERT INTO calls (tenant_id, campaign_id, lead_id, attempt, to_number, from_number)
         SELECT $1, $2, l.id, 1, l.phone_e164, '+14155550000' FROM l
         RETURNING id",
    )
    .bind(tenant)
    .bind(campaign)
    .bind(count)
    .fetch_all(&mut *conn)
    .await
    .context("seeding leads and calls")?;
    Ok((tenant, ids.into_iter().map(CallId).collect()))
}

/// One prepared callback: path, form body, signature.
struct Prepared {
    status: &'static str,
    path: String,
    body: String,
    signature: String,
}

/// `rate` = 0: closed loop, `concurrency` requests always in flight (maximum throughput).
/// `rate` > 0: open loop, one request every 1/rate s whatever the answers (latency at a
/// given load, measured from each request's scheduled time so queueing is counted).
/// A warm-up round on other calls (not measured) first fills the connection pools.
pub async fn run(
    settings: &Settings,
    callbacks: u64,
    concurrency: usize,
    rate: u32,
) -> anyhow::Result<()> {
    let (scratch, mut s) = ScratchDb::create(settings).await?;
    let result = async {
        let token = "bench-auth-token";
        s.http.listen = "127.0.0.1:0".into();
        s.http.public_url = "https://dialer.example.com".into();
        s.twilio.auth_token = Some(SecretString::from(token));
        s.redis.key_prefix = format!("dialer-bench-{}:", uuid::Uuid::new_v4().simple());
        let app = crate::startup::Application::build(s.clone()).await?;
        let port = app.port();
        let pool = app.state().db.clone();
        let stop = CancellationToken::new();
        let server = tokio::spawn(app.run_until_stopped(stop.clone()));

        let warm_count = (callbacks / 10).clamp(1, 2_000);
        let (_, warm_ids) = seed_calls(&pool, warm_count.div_ceil(4) as i64).await?;
        let (_, ids) = seed_calls(&pool, callbacks.div_ceil(4) as i64).await?;
        let warm = prepare(&warm_ids, warm_count, &s.http.public_url, token);
        let measured = prepare(&ids, callbacks, &s.http.public_url, token);

        let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency.max(64)).build()?;
        let base = format!("http://127.0.0.1:{port}");
        fire(&client, &base, &warm, concurrency, rate).await?;
        let (timed, elapsed) = fire(&client, &base, &measured, concurrency, rate).await?;
        let mut latencies: Vec<Duration> = timed.iter().map(|t| t.latency).collect();
        latencies.sort();
        let pct = |l: &[Duration], q: f64| {
            l[((l.len() as f64 * q).ceil() as usize)
                .saturating_sub(1)
                .min(l.len() - 1)]
        };
        let (events, completed): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM call_events), (SELECT count(*) FROM calls WHERE state = 'completed')",
        )
        .fetch_one(&pool)
        .await?;
        let load = if rate > 0 {
            format!("offered at {rate}/s (open loop)")
        } else {
            format!("{concurrency} in flight (closed loop)")
        };
        println!(
            "webhooks: {} signed status callbacks, {load}, over loopback (after {} warm-up callbacks)",
            latencies.len(),
            warm.len()
        );
        println!(
            "  throughput   {:>10.0} callbacks/s",
            latencies.len() as f64 / elapsed.as_secs_f64()
        );
        println!(
            "  latency      p50 {:.2} ms   p90 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
            ms(pct(&latencies, 0.50)),
            ms(pct(&latencies, 0.90)),
            ms(pct(&latencies, 0.99)),
            ms(pct(&latencies, 1.0))
        );
        if rate > 0 {
            let mut late: Vec<Duration> = timed.iter().map(|t| t.late).collect();
            late.sort();
            println!(
                "  generator    sent p50 {:.2} ms / p99 {:.2} ms after each request's moment (timer resolution; not in the latency)",
                ms(pct(&late, 0.50)),
                ms(pct(&late, 0.99))
            );
        }
        for status in STATUSES {
            let mut l: Vec<Duration> = timed
                .iter()
                .filter(|t| t.status == status)
                .map(|t| t.latency)
                .collect();
            if l.is_empty() {
                continue;
            }
            l.sort();
            println!(
                "    {status:<12} p50 {:.2} ms   p99 {:.2} ms   ({} callbacks)",
                ms(pct(&l, 0.50)),
                ms(pct(&l, 0.99)),
                l.len()
            );
        }
        println!(
            "  stored       {events} call events ({} sent); {completed} of {} measured calls completed",
            warm.len() + measured.len(),
            ids.len()
        );
        stop.cancel();
        let _ = server.await;
        anyhow::Ok(())
    }
    .await;
    scratch.drop_now().await;
    result
}

/// A call's status callbacks in order; the bench sends every call's first, then every
/// call's second, and so on.
const STATUSES: [&str; 4] = ["initiated", "ringing", "in-progress", "completed"];

/// Signed status callbacks for `ids`: initiated, ringing, in-progress, completed.
fn prepare(ids: &[CallId], callbacks: u64, public_url: &str, token: &str) -> Vec<Prepared> {
    let mut prepared = Vec::with_capacity(callbacks as usize);
    'outer: for (seq, &status) in STATUSES.iter().enumerate() {
        for id in ids {
            if prepared.len() as u64 >= callbacks {
                break 'outer;
            }
            let path = format!("/twilio/calls/{id}/status");
            let mut params = vec![
                (
                    "AccountSid",
                    "AC00000000000000000000000000000000".to_string(),
                ),
                ("ApiVersion", "2010-04-01".into()),
                ("CallSid", format!("CA{:032x}", id.0)),
                ("CallStatus", status.to_string()),
                ("Direction", "outbound-api".into()),
                ("From", "+14155550000".into()),
                ("To", "+14155550100".into()),
                ("CallbackSource", "call-progress-events".into()),
                ("SequenceNumber", seq.to_string()),
                ("Timestamp", chrono::Utc::now().to_rfc2822()),
            ];
            if status == "completed" {
                params.push(("CallDuration", "42".into()));
                params.push(("SipResponseCode", "200".into()));
            }
            let url = format!("{public_url}{path}");
            let signature = signature::compute(token.as_bytes(), &url, &params);
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params.iter())
                .finish();
            prepared.push(Prepared {
                status,
                path,
                body,
                signature,
            });
        }
    }
    prepared
}

/// One answered callback.
struct Timed {
    status: &'static str,
    /// From the send to the answer.
    latency: Duration,
    /// How long after its moment (open loop) the generator sent it.
    late: Duration,
}

/// Sends `prepared`; returns each request's status and latency and the wall time of the whole run.
async fn fire(
    client: &reqwest::Client,
    base: &str,
    prepared: &[Prepared],
    concurrency: usize,
    rate: u32,
) -> anyhow::Result<(Vec<Timed>, Duration)> {
    let started = Instant::now();
    let in_flight = if rate > 0 { 4096 } else { concurrency };
    let latencies = futures::stream::iter(prepared.iter().enumerate())
        .map(|(i, p)| {
            let url = format!("{base}{}", p.path);
            async move {
                // Open loop: each request has its moment; the timer wakes up to ~1 ms after
                // it (tokio's resolution), which is the generator's delay, not the server's:
                // latency counts from the send, and the delay is reported apart.
                let late = if rate > 0 {
                    let at = started + Duration::from_secs_f64(i as f64 / f64::from(rate));
                    tokio::time::sleep_until(at.into()).await;
                    at.elapsed()
                } else {
                    Duration::ZERO
                };
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .header("X-Twilio-Signature", &p.signature)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(p.body.clone())
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 204 => Ok(Timed {
                        status: p.status,
                        latency: t.elapsed(),
                        late,
                    }),
                    Ok(r) => Err(anyhow::anyhow!("callback answered {}", r.status())),
                    Err(e) => Err(anyhow::anyhow!(e)),
                }
            }
        })
        .buffer_unordered(in_flight)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((latencies, started.elapsed()))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
