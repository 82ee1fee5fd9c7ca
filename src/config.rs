//! Configuration: `config.toml`, then `DIALER__SECTION__KEY` environment variables,
//! then secrets from the environment or systemd credentials.
//!
//! Every key has a default (see `config.toml` at the repository root, which documents
//! them), so the daemon starts with no file at all on a developer's machine. Unknown keys
//! and wrongly typed values are refused with one message naming the key and where it
//! came from: a typo in an operator's file must never be silently ignored.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "DIALER__";

/// Where `dialer` looks for its configuration when `--config` is not given.
pub const DEFAULT_PATHS: [&str; 2] = ["config.toml", "/etc/dialer/config.toml"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration in {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("unknown configuration key `{key}` (from {origin})")]
    UnknownKey { key: String, origin: String },
    #[error(
        "`{key}` is a secret and must not be in {origin}: set {env} or the systemd credential `{key}`"
    )]
    SecretInFile {
        key: String,
        env: String,
        origin: String,
    },
    #[error("invalid value for `{key}` (from {origin}): {reason}")]
    Invalid {
        key: String,
        origin: String,
        reason: String,
    },
}

/// The whole effective configuration of one process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub http: HttpSettings,
    pub twilio: TwilioSettings,
    pub auth: AuthSettings,
    pub log: LogSettings,
    pub daemon: DaemonSettings,
    pub dialer: DialerSettings,
    pub crm_webhooks: CrmWebhookSettings,
    /// Where each value came from that is not a default, for `config check`.
    #[serde(skip)]
    pub origins: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// Postgres connection URL; a password in `database.password` replaces the URL's.
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout_secs: u64,
    /// Apply pending migrations when `serve` starts.
    pub migrate_on_start: bool,
    /// Size of the separate pool that stores carrier callbacks (kept small: callbacks are
    /// short statements, and fewer backends queue better than more on few cores).
    pub webhook_connections: u32,
    /// Wait for the WAL flush before answering a callback. When off, a crash of the
    /// database server can lose the last few hundred milliseconds of callbacks (never
    /// corrupts anything; the carrier's own record of each call reconciles them).
    pub webhook_synchronous_commit: bool,
    #[serde(skip)]
    pub password: Option<SecretString>,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "postgres://postgres@127.0.0.1:5432/dialer".into(),
            max_connections: 20,
            connect_timeout_secs: 5,
            migrate_on_start: true,
            webhook_connections: 6,
            webhook_synchronous_commit: false,
            password: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    pub url: String,
    /// Every key this deployment writes starts with this; lets several deployments
    /// (or tests) share one Redis.
    pub key_prefix: String,
    pub timeout_ms: u64,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379/0".into(),
            key_prefix: "dialer:".into(),
            timeout_ms: 2000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Address the HTTP server binds (webhooks, API, health, metrics). Port 0 picks one.
    pub listen: String,
    /// Base URL at which the carrier reaches this deployment (behind any proxy).
    /// Webhook signatures are checked against URLs built from it.
    pub public_url: String,
    /// Largest request body accepted (CSV uploads are the big ones).
    pub max_body_mb: u64,
    /// How long shutdown waits for in-flight requests before it gives up.
    pub shutdown_grace_secs: u64,
    /// API requests each key may make per second, sustained (per instance).
    pub api_requests_per_sec: u32,
    /// Requests a key may make at once above the sustained rate.
    pub api_burst: u32,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            max_body_mb: 256,
            shutdown_grace_secs: 30,
            api_requests_per_sec: 50,
            api_burst: 100,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TwilioSettings {
    /// Account SID (`AC` + 32 hex digits). Empty until an operator sets it.
    pub account_sid: String,
    /// REST API base; the carrier simulator's URL in tests, any Twilio-compatible carrier's in production.
    pub api_base_url: String,
    /// Dial requests per second allowed for this account, across all instances.
    pub cps: u32,
    pub request_timeout_secs: u64,
    #[serde(skip)]
    pub auth_token: Option<SecretString>,
}

impl Default for TwilioSettings {
    fn default() -> Self {
        Self {
            account_sid: String::new(),
            api_base_url: "https://api.twilio.com".into(),
            cps: 1,
            request_timeout_secs: 10,
            auth_token: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Mixed into API key hashes; changing it invalidates every key.
    #[serde(skip)]
    pub api_key_pepper: Option<SecretString>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `auto` (JSON when stdout is not a terminal), `json` or `pretty`.
    pub format: String,
    /// tracing filter used when `RUST_LOG` is not set.
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: "auto".into(),
            filter: "info,sqlx::postgres::notice=warn".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonSettings {
    /// Period of the daemon's main loop when systemd sets no watchdog.
    pub tick_ms: u64,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        Self { tick_ms: 5000 }
    }
}

/// The dialing engine of `dialer serve`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DialerSettings {
    /// Run the pacer, dialers and sweeper in this instance (webhooks and the API run regardless).
    pub enabled: bool,
    /// How often the pacer looks for free capacity when nothing wakes it sooner.
    pub tick_ms: u64,
    /// How often each active campaign's queue of dial jobs is topped up from Postgres.
    pub fill_interval_ms: u64,
    /// How often deadlines (hold limit, stuck attempts) and campaign completion are checked.
    pub sweep_interval_ms: u64,
    /// Consecutive carrier failures that open the circuit (dialling pauses).
    pub circuit_failures: u32,
    /// First pause after the circuit opens; doubles per failed probe up to `circuit_max_pause_secs`.
    pub circuit_pause_secs: u64,
    pub circuit_max_pause_secs: u64,
    /// An attempt without a final callback this long after its ring time is asked about at the carrier.
    pub stuck_after_secs: u64,
    /// Said to a person whom no agent could take, before hanging up, when the campaign
    /// has no seller name and call-back number of its own.
    pub abandon_message: String,
    /// How long an agent's phone may ring (and the whisper wait for the accept key).
    pub agent_ring_secs: u32,
    /// Offers an agent may miss or decline in a row before they are set `offline`.
    pub agent_max_misses: u32,
}

impl Default for DialerSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            tick_ms: 20,
            fill_interval_ms: 250,
            sweep_interval_ms: 1000,
            circuit_failures: 5,
            circuit_pause_secs: 5,
            circuit_max_pause_secs: 60,
            stuck_after_secs: 120,
            abandon_message: "Sorry, all of our agents are busy. We will call you back. Goodbye."
                .into(),
            agent_ring_secs: 20,
            agent_max_misses: 3,
        }
    }
}

/// Outbound event webhooks to tenants' CRMs (`crm`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrmWebhookSettings {
    /// Run the delivery worker in this instance (events are recorded regardless).
    pub enabled: bool,
    /// How often the worker looks for due deliveries.
    pub poll_interval_ms: u64,
    /// Deadline of one delivery request (connect, send, answer).
    pub timeout_ms: u64,
    /// Deliveries in flight from this instance, all tenants.
    pub concurrency: u32,
    /// Deliveries in flight from this instance to one tenant's endpoint, so a slow CRM
    /// cannot hold every slot.
    pub per_endpoint_concurrency: u32,
    /// Wait before the second attempt; doubles per attempt up to `retry_max_ms`.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// Attempts before a delivery is marked failed (kept for inspection).
    pub max_attempts: u32,
    /// Delivered and failed deliveries older than this are deleted.
    pub retention_days: u32,
    /// Allow endpoints on loopback, private, link-local and other non-public addresses
    /// (tests, or a CRM inside the operator's own network). Off: such URLs are refused and
    /// names resolving to such addresses are not connected to.
    pub allow_private_targets: bool,
}

impl Default for CrmWebhookSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            poll_interval_ms: 1000,
            timeout_ms: 10_000,
            concurrency: 16,
            per_endpoint_concurrency: 4,
            retry_base_ms: 30_000,
            retry_max_ms: 3_600_000,
            max_attempts: 10,
            retention_days: 30,
            allow_private_targets: false,
        }
    }
}

/// The secrets, by key: never in the file, only in the environment or a credential.
const SECRETS: [&str; 3] = [
    "database.password",
    "twilio.auth_token",
    "auth.api_key_pepper",
];

/// Environment variable name for a dotted key: `twilio.auth_token` → `DIALER__TWILIO__AUTH_TOKEN`.
pub fn env_var_for(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "__").to_uppercase())
}

impl Settings {
    /// Loads from `path` (or the first default path that exists), the process
    /// environment and `$CREDENTIALS_DIRECTORY`, and validates the result.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let file = match path {
            Some(p) => Some(p.to_path_buf()),
            None => DEFAULT_PATHS
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file()),
        };
        let text = match &file {
            Some(p) => Some(
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.clone(),
                    source,
                })?,
            ),
            None => None,
        };
        let env: Vec<(String, String)> = std::env::vars().collect();
        let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
        Self::from_sources(
            text.as_deref().map(|t| {
                (
                    t,
                    file.as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                )
            }),
            &env,
            credentials.as_deref(),
        )
    }

    /// Builds settings from explicit sources; `load` and the tests both come through here.
    pub fn from_sources(
        file: Option<(&str, String)>,
        env: &[(String, String)],
        credentials_dir: Option<&Path>,
    ) -> Result<Self, ConfigError> {
        let defaults =
            toml::Value::try_from(Settings::default()).map_err(|e| ConfigError::Parse {
                origin: "defaults".into(),
                message: e.to_string(),
            })?;
        let mut merged = defaults.clone();
        let mut origins = BTreeMap::new();

        if let Some((text, origin)) = file {
            let value: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
                origin: origin.clone(),
                message: e.to_string().trim().replace('\n', " "),
            })?;
            for (section, table) in value {
                let Some(table) = table.as_table() else {
                    return Err(ConfigError::Parse {
                        origin,
                        message: format!("`{section}` must be a [section]"),
                    });
                };
                for (key, v) in table {
                    let dotted = format!("{section}.{key}");
                    if SECRETS.contains(&dotted.as_str()) {
                        return Err(ConfigError::SecretInFile {
                            env: env_var_for(&dotted),
                            key: dotted,
                            origin,
                        });
                    }
                    set_checked(&defaults, &mut merged, &dotted, v.clone(), &origin)?;
                    origins.insert(dotted, origin.clone());
                }
            }
        }

        let mut secrets: BTreeMap<&str, (SecretString, String)> = BTreeMap::new();
        if let Some(dir) = credentials_dir {
            for key in SECRETS {
                let path = dir.join(key);
                if let Ok(raw) = std::fs::read_to_string(&path) {
                    let origin = format!("credential {}", path.display());
                    secrets.insert(key, (SecretString::from(raw.trim_end().to_owned()), origin));
                }
            }
        }
        for (name, raw) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let dotted = rest.to_lowercase().replace("__", ".");
            let origin = format!("environment variable {name}");
            if let Some(key) = SECRETS.iter().find(|k| **k == dotted) {
                // The environment wins over a credential file, as it does for every other key.
                secrets.insert(key, (SecretString::from(raw.clone()), origin));
                continue;
            }
            let value = env_value(&defaults, &dotted, raw, &origin)?;
            set_checked(&defaults, &mut merged, &dotted, value, &origin)?;
            origins.insert(dotted, origin);
        }

        let mut settings: Settings =
            merged
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    origin: "merged configuration".into(),
                    message: e.to_string(),
                })?;
        for (key, (secret, origin)) in secrets {
            if secret.expose_secret().is_empty() {
                continue;
            }
            match key {
                "database.password" => settings.database.password = Some(secret),
                "twilio.auth_token" => settings.twilio.auth_token = Some(secret),
                "auth.api_key_pepper" => settings.auth.api_key_pepper = Some(secret),
                _ => unreachable!("SECRETS lists exactly these keys"),
            }
            origins.insert(key.to_string(), origin);
        }
        settings.origins = origins;
        settings.validate()?;
        Ok(settings)
    }

    fn origin_of(&self, key: &str) -> String {
        self.origins
            .get(key)
            .cloned()
            .unwrap_or_else(|| "defaults".into())
    }

    fn invalid(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: key.into(),
            origin: self.origin_of(key),
            reason: reason.into(),
        }
    }

    /// Checks every value whose type alone does not make it valid.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let db = url::Url::parse(&self.database.url)
            .map_err(|e| self.invalid("database.url", format!("not a URL: {e}")))?;
        if !matches!(db.scheme(), "postgres" | "postgresql") {
            return Err(self.invalid(
                "database.url",
                format!("scheme must be postgres://, not {}://", db.scheme()),
            ));
        }
        if self.database.webhook_connections == 0 {
            return Err(self.invalid("database.webhook_connections", "must be at least 1"));
        }
        if self.database.max_connections == 0 {
            return Err(self.invalid("database.max_connections", "must be at least 1"));
        }
        let redis = url::Url::parse(&self.redis.url)
            .map_err(|e| self.invalid("redis.url", format!("not a URL: {e}")))?;
        if !matches!(redis.scheme(), "redis" | "rediss" | "unix" | "redis+unix") {
            return Err(self.invalid(
                "redis.url",
                format!(
                    "scheme must be redis://, rediss:// or unix://, not {}://",
                    redis.scheme()
                ),
            ));
        }
        if self.redis.key_prefix.is_empty() {
            return Err(self.invalid("redis.key_prefix", "must not be empty"));
        }
        self.http.listen.parse::<SocketAddr>().map_err(|e| {
            self.invalid(
                "http.listen",
                format!("expected HOST:PORT such as 127.0.0.1:8080 ({e})"),
            )
        })?;
        let public = url::Url::parse(&self.http.public_url)
            .map_err(|e| self.invalid("http.public_url", format!("not a URL: {e}")))?;
        if !matches!(public.scheme(), "http" | "https") || public.host().is_none() {
            return Err(self.invalid(
                "http.public_url",
                "must be an http:// or https:// URL with a host",
            ));
        }
        if self.http.max_body_mb == 0 {
            return Err(self.invalid("http.max_body_mb", "must be at least 1"));
        }
        if self.http.api_requests_per_sec == 0 {
            return Err(self.invalid("http.api_requests_per_sec", "must be at least 1"));
        }
        if self.http.api_burst == 0 {
            return Err(self.invalid("http.api_burst", "must be at least 1"));
        }
        let api = url::Url::parse(&self.twilio.api_base_url)
            .map_err(|e| self.invalid("twilio.api_base_url", format!("not a URL: {e}")))?;
        if !matches!(api.scheme(), "http" | "https") {
            return Err(self.invalid("twilio.api_base_url", "must be an http:// or https:// URL"));
        }
        let sid = &self.twilio.account_sid;
        let well_formed = sid.len() == 34
            && sid.starts_with("AC")
            && sid[2..].bytes().all(|b| b.is_ascii_hexdigit());
        if !sid.is_empty() && !well_formed {
            return Err(self.invalid(
                "twilio.account_sid",
                format!("`{sid}` is not `AC` followed by 32 hex digits"),
            ));
        }
        if self.twilio.cps == 0 {
            return Err(self.invalid("twilio.cps", "must be at least 1"));
        }
        if !matches!(self.log.format.as_str(), "auto" | "json" | "pretty") {
            return Err(self.invalid(
                "log.format",
                format!("`{}` is not one of auto, json, pretty", self.log.format),
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.filter)
            .map_err(|e| self.invalid("log.filter", e.to_string()))?;
        if self.dialer.tick_ms == 0
            || self.dialer.fill_interval_ms == 0
            || self.dialer.sweep_interval_ms == 0
        {
            return Err(self.invalid("dialer.tick_ms", "dialer intervals must be at least 1 ms"));
        }
        let crm = &self.crm_webhooks;
        if crm.poll_interval_ms == 0 || crm.timeout_ms == 0 || crm.retry_base_ms == 0 {
            return Err(self.invalid(
                "crm_webhooks.poll_interval_ms",
                "crm_webhooks intervals (poll_interval_ms, timeout_ms, retry_base_ms) must be at least 1 ms",
            ));
        }
        if crm.retry_max_ms < crm.retry_base_ms {
            return Err(self.invalid(
                "crm_webhooks.retry_max_ms",
                "must be at least crm_webhooks.retry_base_ms",
            ));
        }
        if crm.concurrency == 0 || crm.per_endpoint_concurrency == 0 || crm.max_attempts == 0 {
            return Err(self.invalid(
                "crm_webhooks.concurrency",
                "crm_webhooks.concurrency, per_endpoint_concurrency and max_attempts must be at least 1",
            ));
        }
        if self.daemon.tick_ms < 100 {
            return Err(self.invalid("daemon.tick_ms", "must be at least 100"));
        }
        Ok(())
    }

    /// The Postgres URL with `database.password` applied, for connecting.
    pub fn database_url(&self) -> SecretString {
        let mut url = self.database.url.clone();
        if let Some(pw) = &self.database.password
            && let Ok(mut parsed) = url::Url::parse(&url)
            && parsed.set_password(Some(pw.expose_secret())).is_ok()
        {
            url = parsed.to_string();
        }
        SecretString::from(url)
    }

    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis.timeout_ms)
    }

    /// The effective configuration as TOML, secrets shown only as set or not set.
    pub fn redacted(&self) -> String {
        let mut value =
            toml::Value::try_from(self).unwrap_or(toml::Value::Table(Default::default()));
        if let Some(t) = value.get_mut("database").and_then(|v| v.as_table_mut()) {
            t.insert(
                "url".into(),
                toml::Value::String(redact_url(&self.database.url)),
            );
        }
        let mut out = toml::to_string_pretty(&value).unwrap_or_default();
        out.push_str("\n# secrets (from the environment or systemd credentials)\n");
        for key in SECRETS {
            let set = match key {
                "database.password" => self.database.password.is_some(),
                "twilio.auth_token" => self.twilio.auth_token.is_some(),
                _ => self.auth.api_key_pepper.is_some(),
            };
            let how = if set {
                format!("set ({})", self.origin_of(key))
            } else {
                "not set".into()
            };
            out.push_str(&format!("# {key} = <{how}>\n"));
        }
        out
    }

    /// Warnings worth an operator's attention that do not stop the daemon.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.twilio.account_sid.is_empty() {
            w.push("twilio.account_sid is empty: the daemon cannot place calls".into());
        }
        if self.twilio.auth_token.is_none() {
            w.push(format!(
                "twilio.auth_token is not set ({} or credential twilio.auth_token): calls cannot be placed and webhooks cannot be verified",
                env_var_for("twilio.auth_token")
            ));
        }
        if self.auth.api_key_pepper.is_none() {
            w.push(format!(
                "auth.api_key_pepper is not set ({}): API keys are hashed without a pepper",
                env_var_for("auth.api_key_pepper")
            ));
        }
        w
    }
}

/// Hides a URL's password, for printing.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("REDACTED"));
            u.to_string()
        }
        _ => raw.to_string(),
    }
}

/// Looks up the default at `dotted` to learn the key's type, then parses `raw` as that type.
fn env_value(
    defaults: &toml::Value,
    dotted: &str,
    raw: &str,
    origin: &str,
) -> Result<toml::Value, ConfigError> {
    let Some(default) = lookup(defaults, dotted) else {
        return Err(ConfigError::UnknownKey {
            key: dotted.into(),
            origin: origin.into(),
        });
    };
    let invalid = |what: &str| ConfigError::Invalid {
        key: dotted.into(),
        origin: origin.into(),
        reason: format!("expected {what}, got `{raw}`"),
    };
    Ok(match default {
        toml::Value::Integer(_) => {
            toml::Value::Integer(raw.trim().parse().map_err(|_| invalid("an integer"))?)
        }
        toml::Value::Float(_) => {
            toml::Value::Float(raw.trim().parse().map_err(|_| invalid("a number"))?)
        }
        toml::Value::Boolean(_) => {
            toml::Value::Boolean(match raw.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => return Err(invalid("true or false")),
            })
        }
        _ => toml::Value::String(raw.to_string()),
    })
}

fn lookup<'a>(root: &'a toml::Value, dotted: &str) -> Option<&'a toml::Value> {
    let (section, key) = dotted.split_once('.')?;
    root.get(section)?.as_table()?.get(key)
}

/// Sets `dotted` in `merged` after checking that the key exists and the value has the default's type.
fn set_checked(
    defaults: &toml::Value,
    merged: &mut toml::Value,
    dotted: &str,
    value: toml::Value,
    origin: &str,
) -> Result<(), ConfigError> {
    let Some(default) = lookup(defaults, dotted) else {
        return Err(ConfigError::UnknownKey {
            key: dotted.into(),
            origin: origin.into(),
        });
    };
    if default.type_str() != value.type_str() {
        return Err(ConfigError::Invalid {
            key: dotted.into(),
            origin: origin.into(),
            reason: format!(
                "expected {}, got {} `{value}`",
                article(default.type_str()),
                value.type_str()
            ),
        });
    }
    if let toml::Value::Integer(i) = value
        && i < 0
    {
        return Err(ConfigError::Invalid {
            key: dotted.into(),
            origin: origin.into(),
            reason: format!("must not be negative, got {i}"),
        });
    }
    let (section, key) = dotted.split_once('.').unwrap_or((dotted, ""));
    if let Some(table) = merged.get_mut(section).and_then(|s| s.as_table_mut()) {
        table.insert(key.to_string(), value);
    }
    Ok(())
}

fn article(type_str: &str) -> String {
    match type_str {
        "integer" => "an integer".into(),
        other => format!("a {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        Settings::from_sources(None, &[], None).expect("defaults must validate");
    }

    #[test]
    fn environment_overrides_file_and_keeps_types() {
        let file = "[http]\nlisten = \"127.0.0.1:9000\"\n[twilio]\ncps = 5\n";
        let s = Settings::from_sources(
            Some((file, "test.toml".into())),
            &env(&[
                ("DIALER__TWILIO__CPS", "30"),
                ("DIALER__DATABASE__MIGRATE_ON_START", "false"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(s.http.listen, "127.0.0.1:9000");
        assert_eq!(s.twilio.cps, 30);
        assert!(!s.database.migrate_on_start);
        assert_eq!(
            s.origins["twilio.cps"],
            "environment variable DIALER__TWILIO__CPS"
        );
    }

    #[test]
    fn unknown_key_in_file_is_named() {
        let err = Settings::from_sources(
            Some(("[http]\nlisen = \"x\"\n", "c.toml".into())),
            &[],
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown configuration key `http.lisen` (from c.toml)"
        );
    }

    #[test]
    fn unknown_section_is_named() {
        let err = Settings::from_sources(
            Some(("[htp]\nlisten = \"x\"\n", "c.toml".into())),
            &[],
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("`htp.listen`"), "{err}");
    }

    #[test]
    fn unknown_env_key_is_named() {
        let err =
            Settings::from_sources(None, &env(&[("DIALER__HTTP__PORT", "1")]), None).unwrap_err();
        assert!(
            err.to_string().contains("`http.port`")
                && err.to_string().contains("DIALER__HTTP__PORT")
        );
    }

    #[test]
    fn wrong_type_is_named() {
        let err = Settings::from_sources(
            Some(("[twilio]\ncps = \"fast\"\n", "c.toml".into())),
            &[],
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value for `twilio.cps` (from c.toml): expected an integer, got string `\"fast\"`"
        );
        let err = Settings::from_sources(None, &env(&[("DIALER__TWILIO__CPS", "fast")]), None)
            .unwrap_err();
        assert!(
            err.to_string().contains("expected an integer, got `fast`"),
            "{err}"
        );
    }

    #[test]
    fn unparsable_url_is_named() {
        let err =
            Settings::from_sources(None, &env(&[("DIALER__DATABASE__URL", "not a url")]), None)
                .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid value for `database.url`"),
            "{err}"
        );
        let err =
            Settings::from_sources(None, &env(&[("DIALER__HTTP__PUBLIC_URL", "ftp://x")]), None)
                .unwrap_err();
        assert!(err.to_string().contains("http.public_url"), "{err}");
    }

    #[test]
    fn bad_account_sid_is_refused() {
        let err = Settings::from_sources(
            None,
            &env(&[("DIALER__TWILIO__ACCOUNT_SID", "AC123")]),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("twilio.account_sid"), "{err}");
        let ok = format!("AC{}", "a".repeat(32));
        Settings::from_sources(None, &env(&[("DIALER__TWILIO__ACCOUNT_SID", &ok)]), None).unwrap();
    }

    #[test]
    fn secret_in_file_is_refused() {
        let err = Settings::from_sources(
            Some(("[twilio]\nauth_token = \"abc\"\n", "c.toml".into())),
            &[],
            None,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("DIALER__TWILIO__AUTH_TOKEN"),
            "{err}"
        );
    }

    #[test]
    fn secrets_come_from_credentials_and_environment_and_are_redacted() {
        let dir = std::env::temp_dir().join(format!("dialer-cred-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("twilio.auth_token"), "tok-from-cred\n").unwrap();
        std::fs::write(dir.join("database.password"), "pw-from-cred").unwrap();
        let s = Settings::from_sources(
            None,
            &env(&[("DIALER__DATABASE__PASSWORD", "pw-from-env")]),
            Some(&dir),
        )
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            s.twilio.auth_token.as_ref().unwrap().expose_secret(),
            "tok-from-cred"
        );
        assert_eq!(
            s.database.password.as_ref().unwrap().expose_secret(),
            "pw-from-env"
        );
        assert!(s.database_url().expose_secret().contains(":pw-from-env@"));
        let shown = s.redacted() + &format!("{s:?}");
        assert!(
            !shown.contains("tok-from-cred") && !shown.contains("pw-from-env"),
            "{shown}"
        );
        assert!(shown.contains("twilio.auth_token = <set (credential"));
    }

    #[test]
    fn redacted_hides_url_password() {
        let s = Settings::from_sources(
            None,
            &env(&[("DIALER__DATABASE__URL", "postgres://u:hunter2@db/x")]),
            None,
        )
        .unwrap();
        assert!(!s.redacted().contains("hunter2"));
    }
}
