//! `dialer`: an outbound auto-dialer campaign engine.
//!
//! Module map (one line each: what it owns):
//! - [`cli`]: the `dialer` command line and its subcommands.
//! - [`config`]: settings from `config.toml`, `DIALER__…` variables and systemd credentials.
//! - [`startup`]: `Application::build` / `run_until_stopped`, the HTTP router and shared state.
//! - [`daemon`]: the daemon's main loop (dependency checks, metrics upkeep, systemd watchdog).
//! - [`lifecycle`]: signals → cancellation, and the systemd notify protocol.
//! - [`health`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`telemetry`]: tracing subscriber and the Prometheus recorder.
//! - [`db`]: the Postgres pool and the embedded migrations (Postgres is the truth).
//! - [`demo`]: `dialer demo`: Postgres and Redis found or started privately, with no configuration.
//! - [`dispatch`]: the Redis connection and key namespace (rebuildable dispatch state).
//! - [`sim`]: `dialer sim`, the carrier simulator (Twilio-compatible REST, scenarios, signed callbacks, journal).
//! - [`telephony`]: the carrier boundary: Twilio types, signatures, TwiML, the REST client.
//! - [`tenant`]: tenants, the isolation boundary.
//! - [`auth`]: API keys (generation, peppered hashing) and roles.
//! - [`call`]: one row per attempt; every carrier callback stored once and applied in order.
//! - [`campaign`]: campaigns and their settings (parsed, validated, stored).
//! - [`phone`]: `PhoneNumber` (valid E.164 by construction), `Region`, line types, time zones.
//! - [`schedule`]: when a lead may be dialled: campaign hours ∩ legal hours in every zone of the number (pure).
//! - [`lead`]: leads and the CSV importer (mapping, row checks, the parallel COPY pipeline).
//! - [`engine`]: the dialing engine: pacing (Redis hopper + GCRA), claims under Postgres locks, retries, sweeps, lifecycle.
//! - [`agent`]: agents and agent groups: settings, the status rules people may use, their repo.
//! - [`dnc`]: do-not-call lists (tenant and global), their repo and file import.
//! - [`webhooks`]: carrier callbacks under `/twilio/…`: signature check on the raw body, idempotent handling.
//! - [`api`]: the REST API under `/api/v1`: API-key auth, one error shape, imports, DNC, campaigns, agents, calls, reports.
//! - [`crm`]: outbound event webhooks for tenants' CRMs: the outbox, the signed delivery worker with backoff.
//! - [`report`]: campaign and agent reports, the calls export (CSV made safe for spreadsheets, JSON).
//! - [`batch`]: group commit: callers submit one item each, a collector runs them in batches.
//! - [`bench`]: `dialer bench …`: generated workloads that print figures.

pub mod agent;
pub mod api;
pub mod auth;
pub mod batch;
pub mod bench;
pub mod call;
pub mod campaign;
pub mod cli;
pub mod config;
pub mod crm;
pub mod daemon;
pub mod db;
pub mod demo;
pub mod dispatch;
pub mod dnc;
pub mod engine;
pub mod health;
pub mod lead;
pub mod lifecycle;
pub mod phone;
pub mod report;
pub mod schedule;
pub mod sim;
pub mod startup;
pub mod telemetry;
pub mod telephony;
pub mod tenant;
pub mod webhooks;
