//! Builds the application from settings (listener bound first, then Postgres, migrations,
//! Redis) and runs it until a cancellation token fires.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Settings;
use crate::dispatch::Redis;
use crate::lifecycle::systemd;

/// What every request handler and background task shares.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: PgPool,
    /// Carrier callbacks only (see `db::connect_webhooks`).
    pub webhook_db: PgPool,
    /// Status callbacks' group commit on `webhook_db`.
    pub status_writer: crate::webhooks::StatusWriter,
    pub redis: Redis,
    /// The dialing engine's shared parts (clock, carrier client, circuit breaker).
    pub engine: crate::engine::Shared,
    pub hasher: crate::auth::KeyHasher,
    /// Requests per API key (keyed by the key's hash, before any database work).
    pub api_limiter: Arc<crate::api::KeyLimiter>,
    /// Background work (imports, the main loop) that shutdown waits for.
    pub tasks: TaskTracker,
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Binds the listener (port 0 picks a free one), connects to Postgres and Redis,
    /// applies migrations unless disabled. Every failure is one clear error.
    pub async fn build(mut settings: Settings) -> anyhow::Result<Self> {
        // Install the recorder before anything records.
        crate::telemetry::metrics();
        let listener = TcpListener::bind(&settings.http.listen)
            .await
            .with_context(|| format!("cannot listen on {} (http.listen)", settings.http.listen))?;
        // Port 0 in the public URL means "the port just bound" (tests, local demos).
        if let (Ok(mut public), Ok(bound)) = (
            url::Url::parse(&settings.http.public_url),
            listener.local_addr(),
        ) && public.port() == Some(0)
            && public.set_port(Some(bound.port())).is_ok()
        {
            settings.http.public_url = public.as_str().trim_end_matches('/').to_string();
        }
        let db = crate::db::connect(&settings).await?;
        if settings.database.migrate_on_start {
            let applied = crate::db::migrate(&db).await?;
            if applied > 0 {
                tracing::info!(applied, "database migrations applied");
            }
        } else {
            crate::db::ensure_migrated(&db).await?;
        }
        let webhook_db = crate::db::connect_webhooks(&settings)?;
        let redis = Redis::connect(&settings).await?;
        for w in settings.warnings() {
            tracing::warn!("{w}");
        }
        Ok(Self {
            listener,
            state: AppState {
                engine: crate::engine::Shared::new(&settings, crate::engine::Clock::system()),
                hasher: crate::auth::KeyHasher::new(settings.auth.api_key_pepper.clone()),
                api_limiter: Arc::new(crate::api::key_limiter(&settings.http)),
                settings: Arc::new(settings),
                db,
                status_writer: crate::webhooks::status_writer(webhook_db.clone()),
                webhook_db,
                redis,
                tasks: TaskTracker::new(),
            },
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Replaces the engine's clock (the demo runs on simulated time; tests move it).
    pub fn set_clock(&mut self, clock: crate::engine::Clock) {
        self.state.engine.clock = clock;
    }

    /// Serves until `token` is cancelled, then stops background work, lets in-flight
    /// requests finish (bounded by `http.shutdown_grace_secs`) and returns.
    pub async fn run_until_stopped(self, token: CancellationToken) -> anyhow::Result<()> {
        let addr = self.listener.local_addr()?;
        let grace = Duration::from_secs(self.state.settings.http.shutdown_grace_secs);
        let tracker = self.state.tasks.clone();
        let main_loop = crate::daemon::MainLoop::new(self.state.clone());
        tracker.spawn(main_loop.run(token.child_token()));
        crate::engine::spawn(&self.state, token.child_token());
        crate::crm::deliver::spawn(&self.state, token.child_token());
        {
            // Forget keys whose rate is back to full, so random tokens cannot grow memory.
            let limiter = self.state.api_limiter.clone();
            let stop = token.child_token();
            tracker.spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = every.tick() => limiter.retain_recent(),
                    }
                }
            });
        }

        metrics::gauge!("dialer_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        let app = router(self.state.clone());
        tracing::info!(%addr, "listening");
        systemd::ready(&format!("serving on {addr}"));

        let http_token = token.clone();
        let server = axum::serve(self.listener, app)
            .with_graceful_shutdown(async move { http_token.cancelled().await });
        let server = tokio::spawn(async move { server.await });

        token.cancelled().await;
        systemd::stopping();
        tracing::info!("stopping: no new work; waiting for in-flight requests");
        tracker.close();
        match tokio::time::timeout(grace, async {
            tracker.wait().await;
            server.await
        })
        .await
        {
            Ok(Ok(result)) => result.context("HTTP server failed")?,
            Ok(Err(join)) => return Err(join).context("HTTP server task failed"),
            Err(_) => tracing::warn!(
                ?grace,
                "grace period over; exiting with requests still open"
            ),
        }
        self.state.db.close().await;
        self.state.webhook_db.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// All HTTP routes of the daemon.
pub fn router(state: AppState) -> Router {
    let body_limit = usize::try_from(state.settings.http.max_body_mb.saturating_mul(1024 * 1024))
        .unwrap_or(usize::MAX);
    Router::new()
        .route("/healthz", get(crate::health::healthz))
        .route("/readyz", get(crate::health::readyz))
        .route("/metrics", get(crate::health::metrics))
        .merge(crate::api::router())
        .merge(crate::webhooks::router(state.clone()))
        // After every route: each path's unknown methods, then unknown paths, answer in
        // the API's error shape.
        .method_not_allowed_fallback(crate::api::method_not_allowed)
        .fallback(crate::api::no_such_endpoint)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(record_request))
        .with_state(state)
}

/// Counts and times every request by its route template (never the raw path, which
/// would let callers create unbounded label values).
async fn record_request(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let started = Instant::now();
    // Debug level: at info, formatting a span per request cost a quarter of the webhook
    // throughput (measured with `dialer bench webhooks`); errors carry their own context.
    let span = tracing::debug_span!("http.request", http.method = %method, http.route = %route, http.status = tracing::field::Empty);
    let response = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    let status = response.status().as_u16().to_string();
    span.record("http.status", status.as_str());
    metrics::counter!("dialer_http_requests_total", "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("dialer_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
