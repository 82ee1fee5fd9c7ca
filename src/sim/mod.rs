//! `dialer sim`: a carrier simulator that behaves like Twilio for the REST subset the
//! daemon uses, plays each call out from a seeded scenario mix, follows the TwiML the
//! daemon returns, simulates agent phones, signs every callback as Twilio does, and
//! keeps a journal that tests and benchmarks read to check the promises from outside.
//!
//! - [`scenario`]: what each called party does (pure, seeded).
//! - [`rest`]: the HTTP API (Basic auth, Twilio-shaped JSON and errors, 429, CPS queue).
//! - [`call`]: one task per call: ringing, answer, AMD, the TwiML interpreter.
//! - [`conference`]: conferences with start/end-on-exit semantics and their events.
//! - [`callbacks`]: signed, ordered (or deliberately duplicated / reordered) callbacks.
//! - [`journal`]: what happened, with times.

pub mod call;
pub mod callbacks;
pub mod conference;
pub mod journal;
pub mod rest;
pub mod scenario;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use journal::{Entry, Event, Journal};
pub use scenario::{Mix, Outcome, Timing};

/// The simulator's settings (`dialer sim --config sim.toml`, flags override).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    pub listen: String,
    /// The account the daemon must authenticate as (`AC` + 32 hex digits).
    pub account_sid: String,
    /// Used for Basic auth and to sign callbacks; the daemon's `twilio.auth_token`.
    pub auth_token: String,
    pub seed: u64,
    /// Simulated seconds per real second (ring, talk and greeting times shrink by it).
    pub speed: f64,
    /// Calls started per second; more are queued, as Twilio queues them.
    pub cps: f64,
    /// REST requests in flight beyond this get 429 / 20429.
    pub max_concurrent_requests: usize,
    /// Added to every REST request (to provoke 429s in tests).
    pub api_latency_ms: u64,
    /// Probability that a callback is delivered twice.
    pub duplicate_callbacks: f64,
    /// Probability that a callback is held back and delivered after the next one.
    pub reorder_callbacks: f64,
    /// Numbers answered by agent phones (besides every `sip:` and `client:` address).
    pub agent_numbers: Vec<String>,
    /// Probability that an agent presses the whisper's accept key.
    pub agent_accept_probability: f64,
    /// Agent endpoints that always decline (they press 2 in the whisper).
    pub declining_agents: Vec<String>,
    /// Probability that a person who hears a message with a key to press (the abandon
    /// message's opt-out) presses 9.
    pub opt_out_probability: f64,
    pub mix: Mix,
    pub timing: Timing,
    /// Numbers whose outcome is fixed, e.g. `"+15005550001" = "busy"`.
    pub numbers: BTreeMap<String, Outcome>,
    /// Where to append the journal as JSON lines (it is also at `GET /sim/journal`).
    pub journal: Option<PathBuf>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:4010".into(),
            account_sid: "AC00000000000000000000000000000000".into(),
            auth_token: "sim-auth-token".into(),
            seed: 1,
            speed: 1.0,
            cps: 1.0,
            max_concurrent_requests: 100,
            api_latency_ms: 0,
            duplicate_callbacks: 0.0,
            reorder_callbacks: 0.0,
            agent_numbers: Vec::new(),
            agent_accept_probability: 1.0,
            declining_agents: Vec::new(),
            opt_out_probability: 0.0,
            mix: Mix::default(),
            timing: Timing::default(),
            numbers: BTreeMap::new(),
            journal: None,
        }
    }
}

impl SimConfig {
    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("invalid simulator config {}", path.display()))
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            crate::telephony::is_sid(&self.account_sid, "AC"),
            "account_sid must be AC + 32 hex digits, got {:?}",
            self.account_sid
        );
        anyhow::ensure!(!self.auth_token.is_empty(), "auth_token must not be empty");
        anyhow::ensure!(
            self.speed > 0.0,
            "speed must be positive, got {}",
            self.speed
        );
        anyhow::ensure!(self.cps > 0.0, "cps must be positive, got {}", self.cps);
        anyhow::ensure!(
            self.max_concurrent_requests > 0,
            "max_concurrent_requests must be at least 1"
        );
        for (name, p) in [
            ("duplicate_callbacks", self.duplicate_callbacks),
            ("reorder_callbacks", self.reorder_callbacks),
            ("agent_accept_probability", self.agent_accept_probability),
            ("opt_out_probability", self.opt_out_probability),
        ] {
            anyhow::ensure!(
                (0.0..=1.0).contains(&p),
                "{name} must be between 0 and 1, got {p}"
            );
        }
        Ok(())
    }

    /// A simulated duration as real time.
    pub fn real(&self, sim_secs: f64) -> Duration {
        Duration::from_secs_f64((sim_secs / self.speed).max(0.0))
    }

    pub fn is_agent(&self, to: &str) -> bool {
        to.starts_with("sip:")
            || to.starts_with("client:")
            || self.agent_numbers.iter().any(|n| n == to)
    }
}

/// State shared by the REST handlers and the call tasks.
pub struct Shared {
    pub config: SimConfig,
    pub scenarios: scenario::Scenarios,
    pub journal: Journal,
    pub http: reqwest::Client,
    pub calls: Mutex<HashMap<String, call::Handle>>,
    pub conferences: conference::Conferences,
    /// Finished recordings by SID (`GET …/Recordings/{sid}.json`).
    pub recordings: Mutex<HashMap<String, Recording>>,
    /// This simulator's own base URL, for the URLs it hands out (recordings).
    pub base_url: String,
    calls_per_number: Mutex<HashMap<String, u64>>,
    next_slot: Mutex<Instant>,
    pub in_flight: AtomicUsize,
    pub live: AtomicUsize,
    pub max_live: AtomicUsize,
    pub shutdown: CancellationToken,
}

impl Shared {
    /// How many calls to `to` came before this one (scenarios vary per attempt).
    fn nth_call(&self, to: &str) -> u64 {
        let mut m = self
            .calls_per_number
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let n = m.entry(to.to_string()).or_insert(0);
        *n += 1;
        *n - 1
    }

    /// When the next call may start: at most `cps` per second, the rest queued in order.
    fn dial_slot(&self) -> Instant {
        let mut next = self.next_slot.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let slot = (*next).max(now);
        *next = slot + Duration::from_secs_f64(1.0 / self.config.cps);
        slot
    }

    fn call_started(&self) {
        let live = self.live.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_live.fetch_max(live, Ordering::SeqCst);
    }

    fn call_ended(&self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }

    /// Where a recording's resource is, as its callbacks and the REST API give it.
    pub fn recording_url(&self, sid: &str) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Recordings/{sid}",
            self.base_url, self.config.account_sid
        )
    }

    /// Keeps a finished recording for the REST API.
    pub fn store_recording(&self, r: Recording) {
        self.recordings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(r.sid.clone(), r);
    }
}

/// A finished recording, of a call (`Record=true`) or of a conference.
#[derive(Debug, Clone)]
pub struct Recording {
    pub sid: String,
    pub call_sid: Option<String>,
    pub conference_sid: Option<String>,
    /// `completed` or `absent`.
    pub status: String,
    pub start_time: chrono::DateTime<chrono::Utc>,
    pub duration_secs: u32,
    /// `Conference` or `OutboundAPI`.
    pub source: &'static str,
}

/// `prefix` + 32 random hex digits, as Twilio SIDs look.
pub fn new_sid(prefix: &str) -> String {
    let bytes: [u8; 16] = rand::random();
    format!("{prefix}{}", hex::encode(bytes))
}

/// A running simulator.
pub struct Simulator {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Simulator {
    /// Binds `config.listen` (port 0 picks one) and serves until [`Simulator::stop`].
    pub async fn start(config: SimConfig) -> anyhow::Result<Self> {
        config.validate()?;
        let listener = TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("simulator cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let journal_file = match &config.journal {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("cannot open journal {}", p.display()))?,
            ),
            None => None,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .pool_max_idle_per_host(64)
            .build()
            .context("HTTP client")?;
        let shared = Arc::new(Shared {
            scenarios: scenario::Scenarios {
                seed: config.seed,
                mix: config.mix.clone(),
                timing: config.timing.clone(),
                numbers: config.numbers.clone(),
            },
            config,
            journal: Journal::new(journal_file),
            http,
            calls: Mutex::new(HashMap::new()),
            conferences: conference::Conferences::default(),
            recordings: Mutex::new(HashMap::new()),
            base_url: format!("http://{addr}"),
            calls_per_number: Mutex::new(HashMap::new()),
            next_slot: Mutex::new(Instant::now()),
            in_flight: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
            max_live: AtomicUsize::new(0),
            shutdown: CancellationToken::new(),
        });
        let app = rest::router(shared.clone());
        let token = shared.shutdown.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await
        });
        Ok(Self {
            addr,
            shared,
            server,
        })
    }

    /// The base URL to configure as the daemon's `twilio.api_base_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn journal(&self) -> Vec<Entry> {
        self.shared.journal.entries()
    }

    /// Calls not yet ended.
    pub fn live_calls(&self) -> usize {
        self.shared.live.load(Ordering::SeqCst)
    }

    /// Waits until no call is live (or `timeout` passes); true if all ended.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.live_calls() == 0 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.live_calls() == 0
    }

    pub async fn stop(self) {
        self.shared.shutdown.cancel();
        let _ = self.server.await;
    }

    /// Serves until `token` is cancelled (the `dialer sim` command).
    pub async fn run_until(self, token: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(url = %self.url(), "carrier simulator listening");
        token.cancelled().await;
        self.stop().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_sim_toml_states_the_defaults() {
        let documented: SimConfig =
            toml::from_str(include_str!("../../sim.toml")).expect("sim.toml parses");
        let defaults = SimConfig::default();
        assert_eq!(
            serde_json::to_value(&documented).unwrap(),
            serde_json::to_value(&defaults).unwrap(),
            "sim.toml must show every default"
        );
    }

    #[test]
    fn invalid_settings_are_refused_with_the_key_named() {
        let bad = SimConfig {
            speed: 0.0,
            ..SimConfig::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("speed"));
        let bad = SimConfig {
            account_sid: "AC1".into(),
            ..SimConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("account_sid")
        );
        let bad = SimConfig {
            duplicate_callbacks: 1.5,
            ..SimConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("duplicate_callbacks")
        );
    }
}
