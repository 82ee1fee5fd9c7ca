//! `dialer bench …`: realistic workloads run end to end, printing figures (never asserting).

pub mod campaign;
pub mod campaign_report;
pub mod transfer;
pub mod webhooks;
pub mod workload;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use sqlx::{Connection, Executor, PgConnection};

use crate::config::Settings;

/// A database created for one benchmark run and dropped afterwards.
pub(crate) struct ScratchDb {
    admin_url: String,
    name: String,
}

impl ScratchDb {
    pub(crate) async fn create(settings: &Settings) -> anyhow::Result<(Self, Settings)> {
        let mut admin = url::Url::parse(secrecy::ExposeSecret::expose_secret(
            &settings.database_url(),
        ))?;
        admin.set_path("/postgres");
        let name = format!("dialer_bench_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(admin.as_str())
            .await
            .context("connecting to Postgres to create the benchmark database")?;
        conn.execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .await?;
        let mut s = settings.clone();
        let mut url = url::Url::parse(&s.database.url)?;
        url.set_path(&format!("/{name}"));
        s.database.url = url.to_string();
        Ok((
            Self {
                admin_url: admin.to_string(),
                name,
            },
            s,
        ))
    }

    pub(crate) async fn drop_now(self) {
        if let Ok(mut conn) = PgConnection::connect(&self.admin_url).await {
            let _ = conn
                .execute(sqlx::AssertSqlSafe(format!(
                    r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#,
                    self.name
                )))
                .await;
        }
    }
}

/// Points a daemon run in this process at `sim`: loopback on a port of its own (the public
/// URL follows it), the simulator's account and token, migrations at start.
pub(crate) fn against_simulator(s: &mut Settings, sim: &crate::sim::Simulator) {
    s.http.listen = "127.0.0.1:0".into();
    s.http.public_url = "http://127.0.0.1:0".into();
    s.twilio.account_sid = sim.shared.config.account_sid.clone();
    s.twilio.auth_token = Some(sim.shared.config.auth_token.clone().into());
    s.twilio.api_base_url = sim.url();
    s.database.migrate_on_start = true;
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Generates a realistic lead file and imports it end to end; prints rows/s and peak memory.
pub async fn import(
    settings: &Settings,
    rows: u64,
    seed: u64,
    file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let (path, keep) = match file {
        Some(p) => (p, true),
        None => (
            std::env::temp_dir().join(format!(
                "dialer-bench-{}.csv",
                uuid::Uuid::new_v4().simple()
            )),
            false,
        ),
    };
    let started = Instant::now();
    let out = std::fs::File::create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let stats =
        workload::write_leads_csv(std::io::BufWriter::with_capacity(1 << 20, out), rows, seed)?;
    println!(
        "generated {} rows ({:.1} MB; {} duplicates, {} invalid) in {:.2}s -> {}",
        stats.rows,
        mb(stats.bytes),
        stats.duplicates,
        stats.invalid,
        started.elapsed().as_secs_f64(),
        path.display()
    );

    let (scratch, bench_settings) = ScratchDb::create(settings).await?;
    let result = run_import(&bench_settings, &path).await;
    scratch.drop_now().await;
    if !keep {
        let _ = std::fs::remove_file(&path);
    }
    result
}

async fn run_import(settings: &Settings, path: &PathBuf) -> anyhow::Result<()> {
    let pool = crate::db::connect(settings).await?;
    crate::db::migrate(&pool).await?;
    let hasher = crate::auth::KeyHasher::new(None);
    let tenant =
        crate::tenant::repo::create_with_admin_key(&mut *pool.acquire().await?, "bench", &hasher)
            .await?;
    let new = crate::campaign::NewCampaign::with_defaults("bench")?;
    let campaign =
        crate::campaign::repo::insert(&mut *pool.acquire().await?, tenant.tenant.id, &new).await?;
    let job = crate::lead::import::create_job(
        &pool,
        campaign.tenant_id,
        Some(campaign.id.0),
        "leads",
        "bench.csv",
        serde_json::json!({}),
    )
    .await?;
    let reset = workload::reset_peak_rss();
    let before = workload::peak_rss_bytes();
    let input = std::fs::File::open(path)?;
    let started = Instant::now();
    let report = crate::lead::import::import_leads(
        &pool,
        job,
        &campaign,
        Box::new(std::io::BufReader::with_capacity(1 << 20, input)),
        Default::default(),
        |_| {},
    )
    .await?;
    let took = started.elapsed().as_secs_f64();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM leads WHERE campaign_id = $1")
        .bind(campaign.id)
        .fetch_one(&pool)
        .await?;
    println!(
        "imported {} rows in {took:.2}s: {:.0} rows/s end to end ({} accepted, {} stored, {} rejected)",
        report.rows,
        report.rows as f64 / took,
        report.accepted,
        stored,
        report.rejected
    );
    for (reason, n) in &report.rejected_by_reason {
        println!("  rejected {reason:<22} {n}");
    }
    let peak = workload::peak_rss_bytes();
    match (peak, reset) {
        (Some(p), true) => println!(
            "peak memory (VmHWM, reset before the import): {:.1} MB",
            mb(p)
        ),
        (Some(p), false) => println!(
            "peak memory (VmHWM of the whole process; could not reset it, {:.1} MB before the import): {:.1} MB",
            mb(before.unwrap_or(0)),
            mb(p)
        ),
        _ => println!("peak memory: not available on this system"),
    }
    println!(
        "cores: {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    pool.close().await;
    Ok(())
}

/// Deletes every Redis key under `prefix` (a benchmark's or the demo's namespace).
pub async fn delete_prefix(redis_url: &str, prefix: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(redis_url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await?;
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<i64>(&mut conn)
            .await?;
    }
    Ok(())
}
