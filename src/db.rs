//! Postgres: the connection pool and the embedded migrations.

use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

use crate::config::{Settings, redact_url};

/// The migrations in `migrations/`, compiled into the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connects and checks that the database answers, failing fast with the (redacted) URL.
pub async fn connect(settings: &Settings) -> anyhow::Result<PgPool> {
    let shown = redact_url(&settings.database.url);
    let options: PgConnectOptions = settings
        .database_url()
        .expose_secret()
        .parse()
        .with_context(|| format!("invalid database.url {shown}"))?;
    let options =
        options.log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
    let timeout = Duration::from_secs(settings.database.connect_timeout_secs.max(1));
    let pool = PgPoolOptions::new()
        .max_connections(settings.database.max_connections)
        .acquire_timeout(timeout)
        .connect_with(options)
        .await
        .with_context(|| format!("cannot connect to Postgres at {shown}"))?;
    Ok(pool)
}

/// The pool that stores carrier callbacks: its own connections (so a burst of callbacks
/// never starves the API or the dialer), optionally without waiting for the WAL flush
/// (`database.webhook_synchronous_commit`), with generic plans. Connects lazily.
pub fn connect_webhooks(settings: &Settings) -> anyhow::Result<PgPool> {
    let shown = redact_url(&settings.database.url);
    let mut options: PgConnectOptions = settings
        .database_url()
        .expose_secret()
        .parse()
        .with_context(|| format!("invalid database.url {shown}"))?;
    // Every statement here is keyed by a call id: one plan fits all parameters, so it is
    // planned once per connection instead of on each callback (planning the status
    // statement cost more than running it).
    //
    // That one plan must not depend on how big the tables were when it was made. Planned
    // on a nearly empty `calls` (a new database, a campaign's first seconds), the status
    // statement hashed the whole table on every callback from then on, and finishing a
    // batch of attempts scanned all `leads`: at 2,000 live calls that was most of the
    // database's CPU and callbacks answered in up to 340 ms. So this pool's statements
    // are always planned as index lookups joined by nested loops, whatever the statistics
    // say; a table without a fitting index is still scanned (nothing else is possible).
    options = options.options([
        ("plan_cache_mode", "force_generic_plan"),
        ("enable_seqscan", "off"),
        ("enable_hashjoin", "off"),
        ("enable_mergejoin", "off"),
    ]);
    if !settings.database.webhook_synchronous_commit {
        options = options.options([("synchronous_commit", "off")]);
    }
    let options =
        options.log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
    Ok(PgPoolOptions::new()
        .max_connections(settings.database.webhook_connections)
        .acquire_timeout(Duration::from_secs(
            settings.database.connect_timeout_secs.max(1),
        ))
        .connect_lazy_with(options))
}

/// Applies pending migrations; returns how many were applied.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<usize> {
    let before = applied_versions(pool).await.unwrap_or_default();
    MIGRATOR
        .run(pool)
        .await
        .context("applying database migrations")?;
    let after = applied_versions(pool).await?;
    Ok(after.len().saturating_sub(before.len()))
}

async fn applied_versions(pool: &PgPool) -> anyhow::Result<Vec<i64>> {
    Ok(
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await?,
    )
}

/// Fails with an actionable message when the schema is behind this binary.
pub async fn ensure_migrated(pool: &PgPool) -> anyhow::Result<()> {
    let applied = applied_versions(pool).await.unwrap_or_default();
    let missing: Vec<String> = MIGRATOR
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .map(|m| format!("{}_{}", m.version, m.description))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "the database schema is not up to date ({} pending migration(s): {}); run `dialer migrate`",
            missing.len(),
            missing.join(", ")
        )
    }
}

/// Answers whether Postgres is reachable now.
pub async fn ping(pool: &PgPool) -> Result<(), String> {
    sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(pool)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
