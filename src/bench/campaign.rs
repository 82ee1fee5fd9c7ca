//! `dialer bench campaign`: a whole campaign against the simulator, with the daemon as a
//! separate `dialer serve` process (so its memory is its own), checked from outside on
//! the simulator's journal: dial rate against the CPS limit, live calls against
//! `max_concurrent`, the time from a free slot to the next dial, callback answer times,
//! and the daemon's peak memory.

use std::time::{Duration, Instant};

use anyhow::Context;
use secrecy::ExposeSecret;

use super::ScratchDb;
use super::campaign_report::{CampaignReport, process_status_bytes};
use crate::config::Settings;

#[derive(Debug, Clone)]
pub struct CampaignBench {
    pub leads: u64,
    pub max_concurrent: u32,
    pub cps: u32,
    /// Simulated seconds per real second in the simulator (call lengths).
    pub speed: f64,
    pub timeout: Duration,
    /// Where the simulator also writes its journal (JSON lines).
    pub journal: Option<std::path::PathBuf>,
}

const ACCOUNT: &str = "AC0000000000000000000000000000be00";
const TOKEN: &str = "bench-auth-token";

pub async fn run(settings: &Settings, b: CampaignBench) -> anyhow::Result<()> {
    let (scratch, s) = ScratchDb::create(settings).await?;
    let result = run_in(&s, &b).await;
    scratch.drop_now().await;
    result
}

async fn run_in(s: &Settings, b: &CampaignBench) -> anyhow::Result<()> {
    let pool = crate::db::connect(s).await?;
    crate::db::migrate(&pool).await?;
    let prefix = format!("dialer-bench-{}:", uuid::Uuid::new_v4().simple());

    let sim_config = crate::sim::SimConfig {
        listen: "127.0.0.1:0".into(),
        account_sid: ACCOUNT.into(),
        auth_token: TOKEN.into(),
        speed: b.speed,
        // The carrier accepts more than we may send: the daemon's pacing is what is measured.
        cps: f64::from(b.cps) * 4.0,
        max_concurrent_requests: 10_000,
        seed: 3,
        journal: b.journal.clone(),
        ..Default::default()
    };
    sim_config.validate()?;
    let sim = crate::sim::Simulator::start(sim_config).await?;

    // No agents and no abandonment cap: this measures the pacer against max_concurrent
    // and the CPS (people who answer hear the abandon message).
    let (_, campaign) = seed_campaign(&pool, b.leads, b.max_concurrent).await?;

    let env: Vec<(String, String)> = vec![
        ("DIALER__DATABASE__URL".into(), s.database.url.clone()),
        (
            "DIALER__DATABASE__PASSWORD".into(),
            s.database
                .password
                .as_ref()
                .map(|p| p.expose_secret().to_string())
                .unwrap_or_default(),
        ),
        ("DIALER__REDIS__URL".into(), s.redis.url.clone()),
        ("DIALER__REDIS__KEY_PREFIX".into(), prefix.clone()),
        ("DIALER__HTTP__LISTEN".into(), "127.0.0.1:0".into()),
        (
            "DIALER__HTTP__PUBLIC_URL".into(),
            "http://127.0.0.1:0".into(),
        ),
        ("DIALER__TWILIO__ACCOUNT_SID".into(), ACCOUNT.into()),
        ("DIALER__TWILIO__AUTH_TOKEN".into(), TOKEN.into()),
        ("DIALER__TWILIO__API_BASE_URL".into(), sim.url()),
        ("DIALER__TWILIO__CPS".into(), b.cps.to_string()),
        ("DIALER__AUTH__API_KEY_PEPPER".into(), "bench-pepper".into()),
        ("DIALER__LOG__FILTER".into(), "warn".into()),
        ("DIALER__DATABASE__MIGRATE_ON_START".into(), "false".into()),
    ];
    let env: Vec<(String, String)> = env.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    let exe = std::env::current_exe().context("finding the dialer binary")?;
    let mut child = tokio::process::Command::new(exe)
        .arg("serve")
        .envs(env)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting `dialer serve`")?;
    let pid = child.id().context("daemon pid")?;
    println!(
        "campaign: {} leads, max_concurrent {}, {} CPS; daemon pid {pid}; simulator at {}x",
        b.leads, b.max_concurrent, b.cps, b.speed
    );

    let started = Instant::now();
    let mut peak_rss = 0u64;
    let outcome = wait_completed(&pool, campaign, &sim, b.timeout, || {
        if let Some(rss) = process_status_bytes(&pid.to_string(), "VmRSS") {
            peak_rss = peak_rss.max(rss);
        }
        if let Ok(Some(status)) = child.try_wait() {
            anyhow::bail!("the daemon exited early: {status}");
        }
        Ok(())
    })
    .await;
    let hwm = process_status_bytes(&pid.to_string(), "VmHWM");
    let _ = child.kill().await;
    let took = started.elapsed();
    let journal = sim.journal();
    sim.stop().await;
    let _ = super::delete_prefix(&s.redis.url, &prefix).await;
    outcome?;

    let report = CampaignReport::from_journal(&journal, b.max_concurrent as usize, 100.0);
    println!("{report}");
    let dials = report.dials.total as f64;
    println!(
        "  completed in {:.1} s ({:.1} dials/s on average)",
        took.as_secs_f64(),
        dials / took.as_secs_f64()
    );
    println!(
        "  daemon memory: peak RSS {:.1} MB (VmHWM {:.1} MB)",
        super::mb(peak_rss),
        super::mb(hwm.unwrap_or(peak_rss))
    );
    println!(
        "  limits: CPS {} → max {} dials in any sliding second ({} in a calendar second); max_concurrent {} → max {} live",
        b.cps,
        report.dials.max_per_sliding_second,
        report.dials.max_per_calendar_second,
        b.max_concurrent,
        report.concurrency.max_live
    );
    Ok(())
}

/// A tenant, an active campaign open all day with one attempt per lead and no abandonment
/// cap, and its `leads` (written directly: the importer has its own benchmark). Returns
/// the tenant and the campaign.
pub(crate) async fn seed_campaign(
    pool: &sqlx::PgPool,
    leads: u64,
    max_concurrent: u32,
) -> anyhow::Result<(uuid::Uuid, uuid::Uuid)> {
    let tenant = uuid::Uuid::now_v7();
    let campaign = uuid::Uuid::now_v7();
    sqlx::query("INSERT INTO tenants (id, name) VALUES ($1, 'bench')")
        .bind(tenant)
        .execute(pool)
        .await?;
    sqlx::query(
        "INSERT INTO campaigns (id, tenant_id, name, status, caller_id, window_start, window_end, days,
                                legal_window_start, legal_window_end, max_concurrent, max_attempts,
                                voicemail_message, dial_timeout_secs, abandon_cap_pct)
         VALUES ($1, $2, 'bench', 'active', '+14155550100', '00:00', '23:59', 127, '00:00', '23:59', $3, 1,
                 'Please call us back', 20, 100)",
    )
    .bind(campaign)
    .bind(tenant)
    .bind(max_concurrent as i32)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO leads (tenant_id, campaign_id, phone_raw, phone_e164, region, time_zones, priority)
         SELECT $1, $2, '+1212' || (2000000 + i)::text, '+1212' || (2000000 + i)::text, 'US',
                ARRAY['America/New_York'], 1 + (i % 4)
           FROM generate_series(1, $3) AS i",
    )
    .bind(tenant)
    .bind(campaign)
    .bind(leads as i64)
    .execute(pool)
    .await?;
    Ok((tenant, campaign))
}

/// Waits until the campaign is completed (or `timeout` passes), printing its progress
/// every 5 s; `tick` runs first in each round (every 100 ms) and may end the wait.
pub(crate) async fn wait_completed(
    pool: &sqlx::PgPool,
    campaign: uuid::Uuid,
    sim: &crate::sim::Simulator,
    timeout: Duration,
    mut tick: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last_print = Instant::now();
    loop {
        tick()?;
        let (status, open): (String, i64) = sqlx::query_as(
            "SELECT c.status, (SELECT count(*) FROM leads l WHERE l.campaign_id = c.id AND l.status <> 'done')
               FROM campaigns c WHERE c.id = $1",
        )
        .bind(campaign)
        .fetch_one(pool)
        .await
        .context("reading the campaign's progress")?;
        if last_print.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "  {:>5.0} s  {open} leads open, {} live calls (leads and agents)",
                started.elapsed().as_secs_f64(),
                sim.live_calls()
            );
            last_print = Instant::now();
        }
        if status == "completed" {
            return Ok(());
        }
        if started.elapsed() > timeout {
            anyhow::bail!("not completed within {timeout:?}: {open} leads open");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
