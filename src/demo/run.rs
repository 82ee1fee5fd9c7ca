//! `dialer demo`: one command, no configuration. Local Postgres and Redis (or private
//! throw-away ones), the carrier simulator and the daemon in this process, a tenant and a
//! campaign, `sample_leads.csv` imported, the campaign run to completion with a live
//! progress line, and a disposition report.
//!
//! The sample's leads live from Sydney to San Francisco, and no hour of the day is inside
//! every one's legal window. So the demo runs on simulated time: the daemon's clock and
//! the simulator both run `speed` times faster than real time (a calling day in a couple
//! of minutes), starting on a Monday morning in New York. Nothing else is simulated: the
//! windows, limits, retries and callbacks are the real ones.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{Datelike, TimeDelta, Utc};
use sqlx::{Connection, Executor, PgConnection};
use tokio_util::sync::CancellationToken;

use super::services::Services;
use crate::config::Settings;
use crate::engine::Clock;
use crate::engine::lifecycle::{self, Action};

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub leads: PathBuf,
    /// Simulated seconds per real second.
    pub speed: f64,
    /// Give up after this much real time.
    pub timeout: Duration,
    pub keep_database: bool,
}

const SIM_ACCOUNT: &str = "AC0000000000000000000000000000de00";
const SIM_TOKEN: &str = "demo-auth-token";

pub async fn run(opts: DemoOptions, base: &Settings) -> anyhow::Result<()> {
    let say = |m: &str| eprintln!("demo: {m}");
    let csv = std::fs::read(&opts.leads).with_context(|| {
        format!(
            "cannot read {} (run the demo from the repository root, or pass --leads FILE)",
            opts.leads.display()
        )
    })?;

    // 1. Postgres and Redis.
    let mut admin_url = url::Url::parse(&base.database.url).context("database.url")?;
    admin_url.set_path("/postgres");
    let services = Services::ensure(admin_url.as_str(), &base.redis.url, &|m| say(m)).await?;
    // Its own database: two demos on one server do not meet.
    let demo_db = format!("dialer_demo_{}", std::process::id());
    let mut admin = PgConnection::connect(&services.database_url)
        .await
        .context("connecting to Postgres")?;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            r#"DROP DATABASE IF EXISTS "{demo_db}" WITH (FORCE)"#
        )))
        .await?;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            r#"CREATE DATABASE "{demo_db}""#
        )))
        .await
        .context("creating the demo database")?;
    let mut db_url = url::Url::parse(&services.database_url)?;
    db_url.set_path(&format!("/{demo_db}"));

    // 2. The carrier simulator, on the same simulated time as the daemon.
    let mut sim_config = crate::sim::SimConfig {
        listen: "127.0.0.1:0".into(),
        account_sid: SIM_ACCOUNT.into(),
        auth_token: SIM_TOKEN.into(),
        speed: opts.speed,
        cps: 10.0,
        seed: 7,
        ..Default::default()
    };
    sim_config.mix.failed = 5.0;
    // People on hold wait a simulated minute or two (a tenth of a real second at 600x),
    // long enough for an agent's leg and its real round trips.
    sim_config.timing.hold_patience_secs = [60.0, 120.0];
    let sim = crate::sim::Simulator::start(sim_config).await?;
    say(&format!("carrier simulator on {}", sim.url()));

    // 3. The daemon.
    let mut settings = base.clone();
    settings.database.url = db_url.to_string();
    settings.redis.url = services.redis_url.clone();
    settings.redis.key_prefix = format!("dialer-demo:{}:", std::process::id());
    crate::bench::against_simulator(&mut settings, &sim);
    settings.twilio.cps = 10;
    // Deadlines pass 600 times faster than usual: look at them more often.
    settings.dialer.sweep_interval_ms = 50;
    settings.dialer.fill_interval_ms = 100;
    // ... but the carrier's answers take real time: an unconfirmed dial request is given
    // back only after two real minutes, not two simulated ones.
    settings.dialer.stuck_after_secs = (120.0 * opts.speed.max(1.0)) as u64;
    if settings.auth.api_key_pepper.is_none() {
        settings.auth.api_key_pepper = Some("demo-pepper".to_string().into());
    }
    let start = next_monday_morning();
    let clock = Clock::accelerated(start, opts.speed);
    let mut app = crate::startup::Application::build(settings).await?;
    app.set_clock(clock.clone());
    let state = app.state().clone();
    let token = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(token.clone()));
    say(&format!("daemon on {}", state.settings.http.public_url));

    // 4. A tenant, a campaign, the leads.
    let mut conn = state.db.acquire().await?;
    let tenant =
        crate::tenant::repo::create_with_admin_key(&mut conn, "Demo Call Centre", &state.hasher)
            .await?;
    let mut new = crate::campaign::NewCampaign::with_defaults("Demo campaign")?;
    new.caller_id = Some(crate::campaign::settings::parse_e164(
        "caller_id",
        "+14155550100",
    )?);
    new.time_zone = chrono_tz::UTC;
    new.window = crate::campaign::settings::DailyWindow::parse("window", "00:00-23:59")?;
    new.days = crate::campaign::settings::WeekDays::parse("all")?;
    new.max_concurrent = 8;
    new.voicemail_message =
        Some("Hello, this is the demo call centre. Please call us back. Thank you.".into());
    let campaign = crate::campaign::repo::insert(&mut conn, tenant.tenant.id, &new).await?;
    drop(conn);
    // Simulated agents: a group of four softphones (the simulator answers `client:`
    // addresses as agents), the campaign's; who calls and how to call back for the
    // abandon message.
    let group = agent_group(&state.db, tenant.tenant.id, "Demo agents", DEMO_AGENTS).await?;
    sqlx::query(
        // At 600x a 2-second hold limit is 3 real milliseconds, less than the real round
        // trips of an agent's leg: the demo stretches it to the largest allowed (100 ms real).
        "UPDATE campaigns SET agent_group_id = $2, seller_name = 'the Demo Call Centre',
                callback_number = '+14155550100', max_hold_ms = 60000 WHERE id = $1",
    )
    .bind(campaign.id)
    .bind(group)
    .execute(&state.db)
    .await?;
    let agents = tokio::spawn(simulated_agents(state.clone(), tenant.tenant.id));
    let job = crate::lead::import::create_job(
        &state.db,
        tenant.tenant.id,
        Some(campaign.id.0),
        "leads",
        &opts.leads.display().to_string(),
        serde_json::json!({"source": "demo"}),
    )
    .await?;
    let report = crate::lead::import::import_leads(
        &state.db,
        job,
        &campaign,
        Box::new(std::io::Cursor::new(csv)),
        crate::lead::import::ImportOptions {
            mappings: Vec::new(),
            default_region: None,
        },
        |_| {},
    )
    .await?;
    say(&format!(
        "imported {}: {} rows, {} accepted, {} rejected {:?}",
        opts.leads.display(),
        report.rows,
        report.accepted,
        report.rejected,
        report.rejected_by_reason
    ));
    lifecycle::transition(&state.db, None, campaign.id, Action::Start).await?;
    say(&format!(
        "campaign started; simulated time from {} at {}x",
        start.format("%a %Y-%m-%d %H:%M UTC"),
        opts.speed
    ));

    // 5. Run to completion.
    let began = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut last_line = String::new();
    let outcome = loop {
        let p = lifecycle::progress(&state.db, None, campaign.id)
            .await?
            .context("the demo campaign disappeared")?;
        let line = format!(
            "{}  leads {}: {} waiting, {} on a call, {} done  |  live calls {}  |  {}",
            clock.now().format("%a %H:%M UTC"),
            p.leads,
            p.ready,
            p.dialing,
            p.done,
            p.live_calls,
            p.status
        );
        if tty {
            eprint!("\r{line:<110}");
            let _ = std::io::stderr().flush();
        } else if line[10..] != last_line.get(10..).unwrap_or("")[..] {
            eprintln!("{line}");
        }
        last_line = line;
        if p.status == "completed" {
            break Ok(p);
        }
        if began.elapsed() > opts.timeout {
            break Err(anyhow::anyhow!(
                "the campaign did not complete within {:?}: {} leads still open",
                opts.timeout,
                p.ready + p.dialing
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    if tty {
        eprintln!();
    }
    let journal = sim.journal();
    agents.abort();
    let bridged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM calls WHERE campaign_id = $1 AND bridged_at IS NOT NULL",
    )
    .bind(campaign.id)
    .fetch_one(&state.db)
    .await
    .unwrap_or(0);
    token.cancel();
    let _ = server.await;
    sim.stop().await;
    let p = outcome?;

    // 6. The report.
    println!();
    println!(
        "Campaign \"{}\" completed in {:.0?} (simulated {})",
        campaign.name,
        began.elapsed(),
        human(clock.now() - start)
    );
    println!(
        "  leads {}  ({} imported, {} rejected at import)",
        p.leads, report.accepted, report.rejected
    );
    println!("  attempts by disposition:");
    for (d, n) in &p.attempts {
        println!("    {d:<20} {n}");
    }
    println!("  leads by outcome:");
    for (d, n) in &p.final_reasons {
        println!("    {d:<20} {n}");
    }
    let dials = journal
        .iter()
        .filter(|e| matches!(e.event, crate::sim::Event::DialRequest { agent: false, .. }))
        .count();
    println!("  the carrier saw {dials} dial requests");
    println!(
        "  people who answered: {}, bridged to one of {DEMO_AGENTS} agents: {bridged}, abandoned: {}; voicemails dropped: {}",
        p.answered_by_person_30d,
        p.abandoned_30d,
        p.attempts.get("voicemail").copied().unwrap_or(0)
    );
    println!(
        "  abandonment rate: {:.2} % (cap {} %)",
        p.abandon_rate_pct, p.abandon_cap_pct
    );
    if opts.keep_database {
        println!("  database kept: {}", db_url.as_str());
    } else {
        let _ = admin
            .execute(sqlx::AssertSqlSafe(format!(
                r#"DROP DATABASE IF EXISTS "{demo_db}" WITH (FORCE)"#
            )))
            .await;
    }
    let _ = crate::bench::delete_prefix(
        &services.redis_url,
        &format!("dialer-demo:{}:", std::process::id()),
    )
    .await;
    services.stop().await;
    Ok(())
}

/// Agents in the demo.
const DEMO_AGENTS: i32 = 4;

/// A group `name` of `agents` available softphones (`client:agent-1` …, which the
/// simulator answers as agents, one call each); returns the group.
pub(crate) async fn agent_group(
    db: &sqlx::PgPool,
    tenant: crate::tenant::TenantId,
    name: &str,
    agents: i32,
) -> anyhow::Result<uuid::Uuid> {
    let group: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO agent_groups (id, tenant_id, name) VALUES (gen_random_uuid(), $1, $2) RETURNING id",
    )
    .bind(tenant)
    .bind(name)
    .fetch_one(db)
    .await?;
    sqlx::query(
        "WITH a AS (
             INSERT INTO agents (id, tenant_id, name, endpoint, status, idle_since)
             SELECT gen_random_uuid(), $1, 'Agent ' || i, 'client:agent-' || i, 'available', now()
               FROM generate_series(1, $3) AS i RETURNING id)
         INSERT INTO agent_group_members (tenant_id, group_id, agent_id) SELECT $1, $2, id FROM a",
    )
    .bind(tenant)
    .bind(group)
    .bind(agents)
    .execute(db)
    .await?;
    Ok(group)
}

/// The demo's agents give a disposition as soon as each call ends (sale every third call,
/// else not interested), which ends their wrap-up. Runs until aborted.
pub(crate) async fn simulated_agents(
    state: crate::startup::AppState,
    tenant: crate::tenant::TenantId,
) {
    loop {
        let done: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM calls WHERE tenant_id = $1 AND is_final AND bridged_at IS NOT NULL
                AND agent_id IS NOT NULL AND agent_disposition IS NULL LIMIT 50",
        )
        .bind(tenant)
        .fetch_all(&state.db)
        .await
        .unwrap_or_default();
        for id in done {
            let w = crate::engine::wrapup::WrapUp {
                disposition: if id % 3 == 0 {
                    "sale"
                } else {
                    "not_interested"
                }
                .into(),
                callback_at: None,
                same_agent: false,
                notes: None,
            };
            let _ =
                crate::engine::wrapup::wrap_up(&state, tenant, crate::call::CallId(id), None, &w)
                    .await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn human(d: TimeDelta) -> String {
    let m = d.num_minutes();
    format!("{}h {:02}m", m / 60, m % 60)
}

/// 08:00 in New York on the coming Monday: the US east coast's legal window opens, Europe
/// is in its afternoon, Asia and Australia come later in the simulated day.
fn next_monday_morning() -> chrono::DateTime<Utc> {
    let today = Utc::now().date_naive();
    let days = (7 - today.weekday().num_days_from_monday()) % 7;
    let monday = today + TimeDelta::days(i64::from(if days == 0 { 7 } else { days }));
    let local = monday.and_hms_opt(8, 0, 0).expect("valid time");
    chrono_tz::America::New_York
        .from_local_datetime(&local)
        .earliest()
        .expect("8 am exists")
        .with_timezone(&Utc)
}

use chrono::TimeZone;
