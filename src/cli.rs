//! The `dialer` command line: one binary, several roles.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::agent::AgentId;
use crate::auth::KeyHasher;
use crate::campaign::settings::{self as cs, DailyWindow};
use crate::campaign::{CampaignId, NewCampaign};
use crate::config::{ConfigError, Settings};
use crate::tenant::TenantId;

/// Exit code for configuration errors (sysexits EX_CONFIG); the systemd unit does not
/// restart on it, since a restart cannot fix a bad file.
pub const EXIT_CONFIG: u8 = 78;

#[derive(Debug, Parser)]
#[command(
    name = "dialer",
    version,
    about = "Outbound auto-dialer campaign engine",
    propagate_version = true
)]
pub struct Cli {
    /// Configuration file [default: ./config.toml, else /etc/dialer/config.toml, else built-in defaults]
    #[arg(long, global = true, env = "DIALER_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: webhooks, API, health and metrics, pacer and workers
    Serve,
    /// Apply pending database migrations (a second run does nothing)
    Migrate(JsonFlag),
    /// Inspect the configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage tenants
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage campaigns
    #[command(subcommand)]
    Campaign(CampaignCommand),
    /// Import and inspect leads
    #[command(subcommand)]
    Leads(LeadsCommand),
    /// Manage agents: who takes the people the dialer reaches
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Manage agent groups: whom a campaign's calls are offered to
    #[command(subcommand)]
    AgentGroup(AgentGroupCommand),
    /// Manage do-not-call lists (a tenant's, or the global list with --global)
    #[command(subcommand)]
    Dnc(DncCommand),
    /// Benchmarks that print figures
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Run the carrier simulator: a Twilio-compatible REST subset that plays calls out and
    /// sends signed callbacks (for tests, demos and benchmarks)
    Sim(SimArgs),
    /// Zero-configuration end-to-end run: local services, the simulator, sample_leads.csv,
    /// one campaign to completion, a disposition report
    Demo(DemoArgs),
    /// A campaign's report: dials, connects, human vs machine, abandonment (since the
    /// start and over the rolling 30 days), talk time, dispositions, cost
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The campaign's id
    pub campaign: crate::campaign::CampaignId,
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The leads to dial
    #[arg(long, default_value = "sample_leads.csv", value_name = "FILE")]
    pub leads: PathBuf,
    /// Simulated seconds per real second (the daemon's clock and the simulator's calls)
    #[arg(long, default_value_t = 600.0)]
    pub speed: f64,
    /// Give up after this many real seconds
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
    /// Keep the demo database afterwards (to look at it with psql)
    #[arg(long)]
    pub keep_database: bool,
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Simulator settings (TOML: seed, speed, cps, mix, timing, numbers …; see sim.toml)
    #[arg(long = "sim-config", value_name = "FILE")]
    pub sim_config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:4010]
    #[arg(long)]
    pub listen: Option<String>,
    /// Account SID the daemon authenticates as
    #[arg(long)]
    pub account_sid: Option<String>,
    /// Auth token: Basic auth and callback signatures (the daemon's twilio.auth_token)
    #[arg(long, env = "DIALER_SIM_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Simulated seconds per real second
    #[arg(long)]
    pub speed: Option<f64>,
    /// Calls started per second (more are queued, as Twilio does)
    #[arg(long)]
    pub cps: Option<f64>,
    /// Append the journal (JSON lines) to this file
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum LeadsCommand {
    /// Import a CSV file of leads into a campaign; prints the report (rejected rows with reasons)
    Import {
        /// The CSV file (UTF-8, delimiter , ; or tab)
        file: PathBuf,
        #[arg(long, value_name = "CAMPAIGN_ID")]
        campaign: CampaignId,
        /// Map a CSV column to a lead field: "Work Phone=phone" (repeatable). Fields: first_name,
        /// last_name, phone, country, type, priority, do_not_call, notes
        #[arg(long = "map", value_name = "COLUMN=FIELD")]
        mappings: Vec<String>,
        /// Region for national numbers in rows without a country [default: the campaign's]
        #[arg(long, value_name = "CC")]
        default_region: Option<String>,
        /// Also write every rejected row (row, column, value, code, reason) to this CSV file
        #[arg(long, value_name = "PATH")]
        errors_csv: Option<PathBuf>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Print the lead template CSV
    Template,
}

#[derive(Debug, Args)]
pub struct DncList {
    /// The tenant whose list this is
    #[arg(
        long,
        value_name = "TENANT_ID",
        required_unless_present = "global",
        conflicts_with = "global"
    )]
    pub tenant: Option<TenantId>,
    /// The global list every tenant obeys
    #[arg(long)]
    pub global: bool,
}

#[derive(Debug, Subcommand)]
pub enum DncCommand {
    /// Add a number
    Add {
        number: String,
        #[command(flatten)]
        list: DncList,
        /// Region for a national number
        #[arg(long, value_name = "CC", default_value = "US")]
        region: String,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Remove a number
    Remove {
        number: String,
        #[command(flatten)]
        list: DncList,
        #[arg(long, value_name = "CC", default_value = "US")]
        region: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Tell whether a tenant may dial a number (its own list and the global list)
    Check {
        number: String,
        #[arg(long, value_name = "TENANT_ID")]
        tenant: TenantId,
        #[arg(long, value_name = "CC", default_value = "US")]
        region: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Import numbers from a CSV (a phone column, optional country) or a plain list
    Import {
        file: PathBuf,
        #[command(flatten)]
        list: DncList,
        #[arg(long, value_name = "CC", default_value = "US")]
        region: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// List the newest entries of a list
    List {
        #[command(flatten)]
        list: DncList,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[command(flatten)]
        out: JsonFlag,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Create an agent (offline unless --status says otherwise)
    Create(Box<CreateAgent>),
    /// List a tenant's agents
    List {
        #[arg(long, value_name = "TENANT_ID")]
        tenant: TenantId,
        /// Only agents in this status
        #[arg(long)]
        status: Option<String>,
        /// Only members of this group (id or name)
        #[arg(long)]
        group: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Show one agent
    Show {
        agent: AgentId,
        #[arg(long, value_name = "TENANT_ID")]
        tenant: TenantId,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Set an agent's status: available, break or offline (busy and wrap_up follow the calls)
    Status {
        agent: AgentId,
        status: String,
        #[arg(long, value_name = "TENANT_ID")]
        tenant: TenantId,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Create an API key for the agent (role agent) and print it, once
    Key {
        agent: AgentId,
        #[arg(long, value_name = "TENANT_ID")]
        tenant: TenantId,
        #[command(flatten)]
        out: JsonFlag,
    },
}

#[derive(Debug, Args)]
pub struct CreateAgent {
    #[arg(long, value_name = "TENANT_ID")]
    pub tenant: TenantId,
    #[arg(long)]
    pub name: String,
    /// Where the agent's phone is: +CC… number, sip:user@host or client:identity
    #[arg(long)]
    pub endpoint: String,
    /// IANA time zone of the working hours [default: UTC]
    #[arg(long, value_name = "ZONE")]
    pub time_zone: Option<String>,
    /// Start of the working day [default: 00:00]
    #[arg(long, value_name = "HH:MM")]
    pub work_start: Option<String>,
    /// End of the working day, after the start; 24:00 is midnight [default: 24:00]
    #[arg(long, value_name = "HH:MM")]
    pub work_end: Option<String>,
    /// Working days: mon,tue,wed or mon-fri [default: every day]
    #[arg(long, value_name = "DAYS")]
    pub work_days: Option<String>,
    /// Calls the agent may be offered at once (1-10) [default: 1]
    #[arg(long, value_name = "N")]
    pub max_calls: Option<i64>,
    /// A group to put the agent in, by id or name (repeatable)
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// available, break or offline [default: offline]
    #[arg(long)]
    pub status: Option<String>,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Subcommand)]
pub enum AgentGroupCommand {
    /// Create a group
    Create {
        name: String,
        #[arg(long, value_name = "TENANT_ID")]
        tenant: TenantId,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// List a tenant's groups with their members
    List {
        #[arg(long, value_name = "TENANT_ID")]
        tenant: TenantId,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Put an agent in a group
    Add {
        /// The group's id or name
        group: String,
        agent: AgentId,
        #[arg(long, value_name = "TENANT_ID")]
        tenant: TenantId,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Take an agent out of a group
    Remove {
        /// The group's id or name
        group: String,
        agent: AgentId,
        #[arg(long, value_name = "TENANT_ID")]
        tenant: TenantId,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Delete a group no campaign uses
    Delete {
        /// The group's id or name
        group: String,
        #[arg(long, value_name = "TENANT_ID")]
        tenant: TenantId,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Generate a realistic lead file and import it end to end into a throw-away database;
    /// prints rows/s and peak memory
    Import {
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Keep the generated file here instead of a temporary one
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// Run a whole campaign against the simulator with the daemon as a separate process;
    /// prints dial rate, live calls, free-slot → dial latency, callback times, peak memory
    Campaign {
        #[arg(long, default_value_t = 10_000)]
        leads: u64,
        #[arg(long, default_value_t = 500)]
        max_concurrent: u32,
        /// The carrier account's calls per second (twilio.cps)
        #[arg(long, default_value_t = 50)]
        cps: u32,
        /// Simulated seconds per real second in the simulator (shorter calls when higher)
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Give up after this many seconds
        #[arg(long, default_value_t = 900)]
        timeout_secs: u64,
        /// Also write the simulator's journal here (JSON lines), to look into the figures
        #[arg(long, value_name = "PATH")]
        journal: Option<std::path::PathBuf>,
    },
    /// The warm transfer under a burst: every lead a person, agents who accept at once, the
    /// daemon in-process; prints AMD "human" → agent dial and accept → join TwiML percentiles
    Transfer {
        #[arg(long, default_value_t = 200)]
        leads: u64,
        /// Agents in the campaign's group (one call each)
        #[arg(long, default_value_t = 20)]
        agents: u32,
        /// The campaign's max_concurrent (the dial ratio is this over the agents)
        #[arg(long, default_value_t = 40)]
        concurrency: u32,
        /// Give up after this many seconds
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
    },
    /// Fire signed status callbacks at an in-process daemon (verified, stored, applied);
    /// prints callbacks/s and latency percentiles
    Webhooks {
        #[arg(long, default_value_t = 20_000)]
        callbacks: u64,
        /// Requests in flight at once (closed loop)
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Offer this many callbacks per second instead (open loop; latency at that load)
        #[arg(long, default_value_t = 0)]
        rate: u32,
    },
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print machine-readable JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (secrets redacted); fail on an invalid value
    Check(JsonFlag),
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and print its id and a new admin API key (shown once)
    Create {
        /// The tenant's name (unique, case-insensitive)
        name: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// List tenants
    List(JsonFlag),
    /// A tenant's API keys: create (the secret is shown once), list, revoke
    #[command(subcommand)]
    Key(KeyCommand),
    /// The tenant's CRM webhook: where finished calls, dispositions and final leads are POSTed
    #[command(subcommand)]
    Webhook(WebhookCommand),
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Create or replace the endpoint; a new one's signing secret is printed once
    Set {
        #[arg(long, value_name = "TENANT_ID")]
        tenant: TenantId,
        /// The CRM's http(s) URL
        #[arg(long)]
        url: String,
        /// Events to send (comma-separated; default all): call.finished, disposition.set, lead.final
        #[arg(long, value_delimiter = ',', value_name = "EVENT,…")]
        events: Option<Vec<String>>,
        /// Keep the endpoint but send nothing until set again without this flag
        #[arg(long)]
        disabled: bool,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Print the endpoint (never its secret)
    Show {
        #[arg(long, value_name = "TENANT_ID")]
        tenant: TenantId,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Remove the endpoint; pending deliveries are marked failed
    Remove {
        #[arg(long, value_name = "TENANT_ID")]
        tenant: TenantId,
    },
    /// Replace the signing secret and print the new one once
    RotateSecret {
        #[arg(long, value_name = "TENANT_ID")]
        tenant: TenantId,
        #[command(flatten)]
        out: JsonFlag,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key and print it (shown once)
    Create {
        #[arg(long, value_name = "TENANT_ID")]
        tenant: TenantId,
        /// What the key is for, e.g. "CRM sync"
        #[arg(long)]
        name: String,
        /// admin (everything in the tenant), manager (campaigns, leads, agents, reports) or agent
        #[arg(long, value_parser = ["admin", "manager", "agent"], default_value = "manager")]
        role: String,
        /// For --role agent: the agent the key acts as
        #[arg(long, value_name = "AGENT_ID")]
        agent: Option<uuid::Uuid>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// List a tenant's keys (never their secrets)
    List {
        #[arg(long, value_name = "TENANT_ID")]
        tenant: TenantId,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Revoke a key at once; its next request gets 401
    Revoke {
        /// The key's id (from `dialer tenant key list`)
        id: uuid::Uuid,
        #[arg(long, value_name = "TENANT_ID")]
        tenant: TenantId,
        #[command(flatten)]
        out: JsonFlag,
    },
}

#[derive(Debug, Subcommand)]
pub enum CampaignCommand {
    /// Create a campaign (in draft) for a tenant
    Create(Box<CreateCampaign>),
    /// List a tenant's campaigns
    List {
        #[arg(long, value_name = "TENANT_ID")]
        tenant: TenantId,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Who takes the campaign's calls: its agent group, abandonment cap and wrap-up codes
    Agents {
        id: CampaignId,
        #[arg(long, value_name = "TENANT_ID")]
        tenant: TenantId,
        /// The agent group (id or name) whose agents take the calls
        #[arg(long, conflicts_with = "no_group")]
        group: Option<String>,
        /// No group: any agent of the tenant takes the calls
        #[arg(long)]
        no_group: bool,
        /// Most abandoned calls, in % of those a person answered over 30 days (0-100)
        #[arg(long, value_name = "PCT")]
        abandon_cap: Option<f64>,
        /// The campaign's own wrap-up codes besides the standard ones (comma-separated)
        #[arg(long, value_delimiter = ',', value_name = "CODE,…")]
        dispositions: Option<Vec<String>>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Show one campaign's settings
    Show {
        id: CampaignId,
        /// Only find the campaign within this tenant
        #[arg(long, value_name = "TENANT_ID")]
        tenant: Option<TenantId>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Start a draft campaign: its due leads are dialled within its windows
    Start(LifecycleArgs),
    /// Pause an active campaign: no new dials from now on; live calls finish normally
    Pause(LifecycleArgs),
    /// Resume a paused campaign
    Resume(LifecycleArgs),
    /// Stop a campaign for good (its leads stay as they are); live calls finish normally
    Stop(LifecycleArgs),
}

#[derive(Debug, Args)]
pub struct LifecycleArgs {
    pub id: CampaignId,
    /// Only find the campaign within this tenant
    #[arg(long, value_name = "TENANT_ID")]
    pub tenant: Option<TenantId>,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct CreateCampaign {
    #[arg(long, value_name = "TENANT_ID")]
    pub tenant: TenantId,
    #[arg(long)]
    pub name: String,
    /// Caller ID in international form (+CC…); required before the campaign can start
    #[arg(long, value_name = "E164")]
    pub caller_id: Option<String>,
    /// IANA time zone of the campaign's calling window
    #[arg(long, default_value = "UTC", value_name = "ZONE")]
    pub time_zone: String,
    /// Daily calling window in the campaign's zone
    #[arg(long, default_value = "09:00-20:00", value_name = "HH:MM-HH:MM")]
    pub window: String,
    /// Calling days: mon-fri, mon,wed,fri, all …
    #[arg(long, default_value = "mon-fri")]
    pub days: String,
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub start_date: Option<String>,
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub end_date: Option<String>,
    /// Region for national numbers in imports (ISO 3166 alpha-2)
    #[arg(long, default_value = "US", value_name = "CC")]
    pub default_region: String,
    #[arg(long, default_value_t = 10)]
    pub max_concurrent: i32,
    /// Calls per free agent (1.0 = progressive)
    #[arg(long, default_value_t = 1.0)]
    pub dial_ratio: f64,
    /// Ring time in seconds (at least 15, the legal minimum)
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub dial_timeout: i32,
    #[arg(long, default_value_t = 3)]
    pub max_attempts: i32,
    /// Delay before retrying a no-answer (90s, 60m, 2h, 1d, none)
    #[arg(long, default_value = "60m", value_name = "DELAY")]
    pub retry_no_answer: String,
    #[arg(long, default_value = "60m", value_name = "DELAY")]
    pub retry_busy: String,
    #[arg(long, default_value = "60m", value_name = "DELAY")]
    pub retry_failed: String,
    /// Delay before retrying after a voicemail drop (default: no retry)
    #[arg(long, default_value = "none", value_name = "DELAY")]
    pub retry_voicemail: String,
    /// Turn answering-machine detection off (machines are then treated as humans)
    #[arg(long)]
    pub no_amd: bool,
    /// Voicemail drop: text spoken, or an https:// audio URL played
    #[arg(long)]
    pub voicemail_message: Option<String>,
    /// Record bridged calls: the conference from the moment the agent joins (not the hold)
    #[arg(long)]
    pub record: bool,
    /// With --record: said to the person right after they answer, before the recorded
    /// conversation, e.g. "This call may be recorded for quality and training."
    #[arg(long, value_name = "TEXT")]
    pub recording_consent_message: Option<String>,
    /// Longest a person waits for an agent before the abandon message, in ms
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    pub max_hold_ms: i32,
    /// Seller name said in the abandon message
    #[arg(long)]
    pub seller_name: Option<String>,
    /// Call-back number said in the abandon message (+CC…)
    #[arg(long, value_name = "E164")]
    pub callback_number: Option<String>,
    /// Lead-local legal calling window
    #[arg(long, default_value = "08:00-21:00", value_name = "HH:MM-HH:MM")]
    pub legal_window: String,
    /// Legal window for one region or state instead of --legal-window, e.g. US-FL=08:00-20:00 (repeatable)
    #[arg(long = "legal-window-override", value_name = "PLACE=HH:MM-HH:MM")]
    pub legal_window_overrides: Vec<String>,
    #[command(flatten)]
    pub out: JsonFlag,
}

impl CreateCampaign {
    /// Turns the flags into a validated campaign, naming the flag on error: the same
    /// checks as the API's (`CampaignInput`).
    pub fn to_new_campaign(&self) -> Result<NewCampaign, cs::SettingError> {
        let delay = |field, raw: &str| cs::parse_delay(field, raw).map(|d| d.map(i64::from));
        let mut overrides = serde_json::Map::new();
        for o in &self.legal_window_overrides {
            let (place, window) = o.split_once('=').ok_or_else(|| cs::SettingError {
                field: "legal_window_override",
                value: o.clone(),
                reason: "expected PLACE=HH:MM-HH:MM, e.g. US-FL=08:00-20:00".into(),
            })?;
            let w = DailyWindow::parse("legal_window_override", window)?;
            overrides.insert(
                place.trim().to_string(),
                serde_json::json!([
                    w.start.format("%H:%M").to_string(),
                    w.end.format("%H:%M").to_string()
                ]),
            );
        }
        let input = crate::campaign::input::CampaignInput {
            name: Some(self.name.clone()),
            caller_id: Some(self.caller_id.clone()),
            time_zone: Some(self.time_zone.clone()),
            window: Some(self.window.clone()),
            days: Some(self.days.clone()),
            start_date: Some(self.start_date.clone()),
            end_date: Some(self.end_date.clone()),
            default_region: Some(self.default_region.clone()),
            max_concurrent: Some(self.max_concurrent.into()),
            dial_ratio: Some(self.dial_ratio),
            dial_timeout_secs: Some(self.dial_timeout.into()),
            max_attempts: Some(self.max_attempts.into()),
            retry_no_answer_secs: Some(delay("retry_no_answer", &self.retry_no_answer)?),
            retry_busy_secs: Some(delay("retry_busy", &self.retry_busy)?),
            retry_failed_secs: Some(delay("retry_failed", &self.retry_failed)?),
            retry_voicemail_secs: Some(delay("retry_voicemail", &self.retry_voicemail)?),
            amd_enabled: Some(!self.no_amd),
            voicemail_message: Some(self.voicemail_message.clone()),
            recording_enabled: Some(self.record),
            recording_consent_message: Some(self.recording_consent_message.clone()),
            max_hold_ms: Some(self.max_hold_ms.into()),
            seller_name: Some(self.seller_name.clone()),
            callback_number: Some(self.callback_number.clone()),
            legal_window: Some(self.legal_window.clone()),
            legal_window_overrides: Some(serde_json::Value::Object(overrides)),
            ..Default::default()
        };
        input.to_new()
    }
}

/// Runs the parsed command and turns its outcome into an exit code, printing a failure
/// as one line on stderr.
pub async fn run(cli: Cli) -> ExitCode {
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail_config(&e),
    };
    let mut settings = settings;
    if matches!(cli.command, Command::Demo(_)) && std::env::var_os("RUST_LOG").is_none() {
        // The demo prints its own progress; only trouble is logged.
        settings.log.filter = "warn".into();
    }
    crate::telemetry::init(&settings.log);
    match dispatch(cli.command, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn fail_config(e: &ConfigError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_CONFIG)
}

fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

async fn dispatch(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(settings).await,
        Command::Migrate(out) => {
            let pool = crate::db::connect(&settings).await?;
            let applied = crate::db::migrate(&pool).await?;
            let total = crate::db::MIGRATOR.iter().count();
            if out.json {
                print_json(&serde_json::json!({ "applied": applied, "total": total }))
            } else {
                if applied == 0 {
                    println!("database schema is up to date ({total} migrations)");
                } else {
                    println!(
                        "applied {applied} migration(s); schema is up to date ({total} migrations)"
                    );
                }
                Ok(())
            }
        }
        Command::Config(ConfigCommand::Check(out)) => {
            for w in settings.warnings() {
                eprintln!("warning: {w}");
            }
            if out.json {
                let mut v = serde_json::to_value(&settings)?;
                v["database"]["url"] = crate::config::redact_url(&settings.database.url).into();
                v["secrets"] = serde_json::json!({
                    "database.password": settings.database.password.is_some(),
                    "twilio.auth_token": settings.twilio.auth_token.is_some(),
                    "auth.api_key_pepper": settings.auth.api_key_pepper.is_some(),
                });
                print_json(&v)
            } else {
                print!("{}", settings.redacted());
                Ok(())
            }
        }
        Command::Tenant(cmd) => tenant(cmd, settings).await,
        Command::Campaign(cmd) => campaign(cmd, settings).await,
        Command::Leads(cmd) => leads(cmd, settings).await,
        Command::Dnc(cmd) => dnc(cmd, settings).await,
        Command::Agent(cmd) => agent(cmd, settings).await,
        Command::AgentGroup(cmd) => agent_group(cmd, settings).await,
        Command::Bench(BenchCommand::Import { rows, seed, file }) => {
            crate::bench::import(&settings, rows, seed, file).await
        }
        Command::Bench(BenchCommand::Webhooks {
            callbacks,
            concurrency,
            rate,
        }) => crate::bench::webhooks::run(&settings, callbacks, concurrency, rate).await,
        Command::Bench(BenchCommand::Campaign {
            leads,
            max_concurrent,
            cps,
            speed,
            timeout_secs,
            journal,
        }) => {
            crate::bench::campaign::run(
                &settings,
                crate::bench::campaign::CampaignBench {
                    leads,
                    max_concurrent,
                    cps,
                    speed,
                    timeout: std::time::Duration::from_secs(timeout_secs),
                    journal,
                },
            )
            .await
        }
        Command::Bench(BenchCommand::Transfer {
            leads,
            agents,
            concurrency,
            timeout_secs,
        }) => {
            crate::bench::transfer::run(
                &settings,
                crate::bench::transfer::TransferBench {
                    leads,
                    agents,
                    concurrency,
                    timeout: std::time::Duration::from_secs(timeout_secs),
                },
            )
            .await
        }
        Command::Sim(args) => sim(args).await,
        Command::Report(args) => report(args, settings).await,
        Command::Demo(args) => {
            crate::demo::run::run(
                crate::demo::run::DemoOptions {
                    leads: args.leads,
                    speed: args.speed,
                    timeout: std::time::Duration::from_secs(args.timeout_secs),
                    keep_database: args.keep_database,
                },
                &settings,
            )
            .await
        }
    }
}

async fn sim(args: SimArgs) -> anyhow::Result<()> {
    let mut config = match &args.sim_config {
        Some(path) => crate::sim::SimConfig::load(path)?,
        None => crate::sim::SimConfig::default(),
    };
    if let Some(v) = args.listen {
        config.listen = v;
    }
    if let Some(v) = args.account_sid {
        config.account_sid = v;
    }
    if let Some(v) = args.auth_token {
        config.auth_token = v;
    }
    if let Some(v) = args.seed {
        config.seed = v;
    }
    if let Some(v) = args.speed {
        config.speed = v;
    }
    if let Some(v) = args.cps {
        config.cps = v;
    }
    if args.journal.is_some() {
        config.journal = args.journal;
    }
    let token = CancellationToken::new();
    crate::lifecycle::cancel_on_signals(token.clone());
    let sim = crate::sim::Simulator::start(config).await?;
    println!("carrier simulator listening on {}", sim.url());
    sim.run_until(token).await
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let token = CancellationToken::new();
    crate::lifecycle::cancel_on_signals(token.clone());
    let app = crate::startup::Application::build(settings).await?;
    app.run_until_stopped(token).await
}

/// A pool for one-shot commands: connected, and the schema checked.
async fn command_pool(settings: &Settings) -> anyhow::Result<sqlx::PgPool> {
    let pool = crate::db::connect(settings).await?;
    crate::db::ensure_migrated(&pool).await?;
    Ok(pool)
}

async fn tenant(cmd: TenantCommand, settings: Settings) -> anyhow::Result<()> {
    let pool = command_pool(&settings).await?;
    let mut conn = pool.acquire().await?;
    match cmd {
        TenantCommand::Create { name, out } => {
            let hasher = KeyHasher::new(settings.auth.api_key_pepper.clone());
            let created =
                crate::tenant::repo::create_with_admin_key(&mut conn, &name, &hasher).await?;
            if out.json {
                return print_json(&created);
            }
            println!("tenant created");
            println!("  id:        {}", created.tenant.id);
            println!("  name:      {}", created.tenant.name);
            println!("  admin key: {}", created.admin_key);
            println!("The admin key is shown only now; store it in a secret manager.");
            Ok(())
        }
        TenantCommand::List(out) => {
            let tenants = crate::tenant::repo::list(&mut conn).await?;
            if out.json {
                return print_json(&tenants);
            }
            if tenants.is_empty() {
                println!("no tenants; create one with `dialer tenant create NAME`");
            }
            for t in tenants {
                println!(
                    "{}  {}  (created {})",
                    t.id,
                    t.name,
                    t.created_at.format("%Y-%m-%d %H:%M UTC")
                );
            }
            Ok(())
        }
        TenantCommand::Key(cmd) => tenant_key(cmd, &settings, &mut conn).await,
        TenantCommand::Webhook(cmd) => tenant_webhook(cmd, &settings, &mut conn).await,
    }
}

async fn tenant_webhook(
    cmd: WebhookCommand,
    settings: &Settings,
    conn: &mut sqlx::PgConnection,
) -> anyhow::Result<()> {
    use crate::crm::repo;
    let tenant = match &cmd {
        WebhookCommand::Set { tenant, .. }
        | WebhookCommand::Show { tenant, .. }
        | WebhookCommand::Remove { tenant }
        | WebhookCommand::RotateSecret { tenant, .. } => *tenant,
    };
    ensure_tenant(conn, tenant).await?;
    let print = |e: &crate::crm::Endpoint| {
        println!("  url:     {}", e.url);
        println!("  events:  {}", e.events.join(", "));
        println!("  enabled: {}", e.enabled);
        println!("  secret:  {}…", e.secret_prefix);
    };
    let print_secret = |secret: &Option<String>| {
        if let Some(s) = secret {
            println!("  signing secret: {s}");
            println!(
                "The secret is shown only now; give it to the CRM to verify X-Dialer-Signature."
            );
        }
    };
    match cmd {
        WebhookCommand::Set {
            url,
            events,
            disabled,
            out,
            ..
        } => {
            let input = crate::crm::EndpointInput::parse(
                &url,
                events.as_deref(),
                Some(!disabled),
                settings.crm_webhooks.allow_private_targets,
            )
            .map_err(|e| {
                anyhow::anyhow!(
                    "--{}: {}",
                    e.field.split('[').next().unwrap_or("url"),
                    e.message
                )
            })?;
            let saved = repo::upsert(conn, tenant, &input).await?;
            if out.json {
                return print_json(&saved);
            }
            println!(
                "CRM webhook {}",
                if saved.created { "created" } else { "updated" }
            );
            print(&saved.endpoint);
            print_secret(&saved.secret);
            Ok(())
        }
        WebhookCommand::Show { out, .. } => {
            let endpoint = repo::get(conn, tenant)
                .await?
                .with_context(|| format!("tenant {tenant} has no CRM webhook"))?;
            if out.json {
                return print_json(&endpoint);
            }
            print(&endpoint);
            Ok(())
        }
        WebhookCommand::Remove { .. } => {
            anyhow::ensure!(
                repo::delete(conn, tenant).await?,
                "tenant {tenant} has no CRM webhook"
            );
            println!("CRM webhook removed");
            Ok(())
        }
        WebhookCommand::RotateSecret { out, .. } => {
            let saved = repo::rotate_secret(conn, tenant)
                .await?
                .with_context(|| format!("tenant {tenant} has no CRM webhook"))?;
            if out.json {
                return print_json(&saved);
            }
            println!("CRM webhook secret replaced");
            print(&saved.endpoint);
            print_secret(&saved.secret);
            Ok(())
        }
    }
}

async fn tenant_key(
    cmd: KeyCommand,
    settings: &Settings,
    conn: &mut sqlx::PgConnection,
) -> anyhow::Result<()> {
    use crate::auth::keys;
    match cmd {
        KeyCommand::Create {
            tenant,
            name,
            role,
            agent,
            out,
        } => {
            ensure_tenant(conn, tenant).await?;
            let hasher = KeyHasher::new(settings.auth.api_key_pepper.clone());
            let role = crate::auth::Role::parse(&role).context("role")?;
            let key = keys::create(conn, tenant, &name, role, agent, &hasher).await?;
            if out.json {
                return print_json(&key);
            }
            println!("API key created");
            println!("  id:   {}", key.id);
            println!("  name: {}", key.name);
            println!("  role: {}", key.role.as_str());
            println!("  key:  {}", key.key);
            println!("The key is shown only now; store it in a secret manager.");
            Ok(())
        }
        KeyCommand::List { tenant, out } => {
            ensure_tenant(conn, tenant).await?;
            let list = keys::list(conn, tenant).await?;
            if out.json {
                return print_json(&list);
            }
            for k in list {
                let state = match (k.revoked_at, k.last_used_at) {
                    (Some(t), _) => format!("revoked {}", t.format("%Y-%m-%d %H:%M UTC")),
                    (None, Some(t)) => format!("last used {}", t.format("%Y-%m-%d %H:%M UTC")),
                    (None, None) => "never used".into(),
                };
                println!(
                    "{}  {:<8} {}…  {}  ({state})",
                    k.id,
                    k.role.as_str(),
                    k.key_prefix,
                    k.name
                );
            }
            Ok(())
        }
        KeyCommand::Revoke { id, tenant, out } => {
            let key = keys::revoke(conn, tenant, id).await?;
            if out.json {
                return print_json(&key);
            }
            println!("API key {} ({}) revoked", key.id, key.name);
            Ok(())
        }
    }
}

async fn campaign(cmd: CampaignCommand, settings: Settings) -> anyhow::Result<()> {
    let pool = command_pool(&settings).await?;
    let mut conn = pool.acquire().await?;
    match cmd {
        CampaignCommand::Create(args) => {
            let new = args.to_new_campaign()?;
            crate::tenant::repo::get(&mut conn, args.tenant)
                .await?
                .with_context(|| format!("no tenant with id {}", args.tenant))?;
            let c = crate::campaign::repo::insert(&mut conn, args.tenant, &new).await?;
            if args.out.json {
                return print_json(&c);
            }
            println!("campaign created (draft)");
            print_campaign(&c);
            Ok(())
        }
        CampaignCommand::List { tenant, out } => {
            let list = crate::campaign::repo::list(&mut conn, tenant).await?;
            if out.json {
                return print_json(&list);
            }
            if list.is_empty() {
                println!("no campaigns for tenant {tenant}");
            }
            for c in list {
                println!("{}  {:<10} {}", c.id, c.status, c.name);
            }
            Ok(())
        }
        CampaignCommand::Start(a) => {
            lifecycle(&pool, a, crate::engine::lifecycle::Action::Start).await
        }
        CampaignCommand::Pause(a) => {
            lifecycle(&pool, a, crate::engine::lifecycle::Action::Pause).await
        }
        CampaignCommand::Resume(a) => {
            lifecycle(&pool, a, crate::engine::lifecycle::Action::Resume).await
        }
        CampaignCommand::Stop(a) => {
            lifecycle(&pool, a, crate::engine::lifecycle::Action::Stop).await
        }
        CampaignCommand::Agents {
            id,
            tenant,
            group,
            no_group,
            abandon_cap,
            dispositions,
            out,
        } => {
            let group = match (group, no_group) {
                (Some(g), _) => Some(Some(
                    crate::agent::repo::find_group(&mut conn, tenant, &g)
                        .await?
                        .id
                        .0,
                )),
                (None, true) => Some(None),
                (None, false) => None,
            };
            let c = crate::campaign::repo::set_agents(
                &mut conn,
                tenant,
                id,
                &crate::campaign::AgentSettings {
                    group,
                    abandon_cap_pct: abandon_cap,
                    disposition_codes: dispositions,
                },
            )
            .await?
            .with_context(|| format!("no campaign {id} for tenant {tenant}"))?;
            if out.json {
                return print_json(&c);
            }
            print_campaign(&c);
            Ok(())
        }
        CampaignCommand::Show { id, tenant, out } => {
            let c = crate::campaign::repo::get(&mut conn, tenant, id)
                .await?
                .with_context(|| format!("no campaign with id {id}"))?;
            if out.json {
                return print_json(&c);
            }
            print_campaign(&c);
            Ok(())
        }
    }
}

async fn report(args: ReportArgs, settings: Settings) -> anyhow::Result<()> {
    let pool = command_pool(&settings).await?;
    let r = crate::report::campaign(&pool, None, args.campaign)
        .await?
        .with_context(|| format!("no campaign with id {}", args.campaign))?;
    match args.format {
        ReportFormat::Json => print_json(&r),
        ReportFormat::Table => {
            print!("{}", crate::report::render_table(&r));
            Ok(())
        }
        ReportFormat::Csv => {
            print!("{}", crate::report::render_csv(&r));
            Ok(())
        }
    }
}

async fn lifecycle(
    pool: &sqlx::PgPool,
    a: LifecycleArgs,
    action: crate::engine::lifecycle::Action,
) -> anyhow::Result<()> {
    let v = crate::engine::lifecycle::transition(pool, a.tenant, a.id, action).await?;
    if a.out.json {
        return print_json(&v);
    }
    println!("campaign {} is now {}", v.id, v.status);
    Ok(())
}

async fn leads(cmd: LeadsCommand, settings: Settings) -> anyhow::Result<()> {
    use crate::lead::import;
    match cmd {
        LeadsCommand::Template => {
            print!("{}", crate::lead::TEMPLATE_CSV);
            Ok(())
        }
        LeadsCommand::Import {
            file,
            campaign,
            mappings,
            default_region,
            errors_csv,
            out,
        } => {
            let mappings = crate::lead::mapping::parse_mappings(&mappings)?;
            let default_region = default_region
                .as_deref()
                .map(|r| cs::parse_region("default_region", r))
                .transpose()?;
            let input = std::fs::File::open(&file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            let pool = command_pool(&settings).await?;
            let c = crate::campaign::repo::get(&mut *pool.acquire().await?, None, campaign)
                .await?
                .with_context(|| format!("no campaign with id {campaign}"))?;
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let options = serde_json::json!({
                "mappings": mappings.iter().map(|(c, f)| format!("{c}={f}")).collect::<Vec<_>>(),
                "default_region": default_region.map(|r| r.to_string()),
                "source": "cli",
            });
            let job = import::create_job(&pool, c.tenant_id, Some(c.id.0), "leads", &name, options)
                .await?;
            let bar = progress_bar(!out.json);
            let started = std::time::Instant::now();
            let result = import::import_leads(
                &pool,
                job,
                &c,
                Box::new(std::io::BufReader::with_capacity(1 << 20, input)),
                import::ImportOptions {
                    mappings,
                    default_region,
                },
                |p| {
                    if let Some(bar) = &bar {
                        let rate = p.rows as f64 / started.elapsed().as_secs_f64().max(0.001);
                        bar.set_message(format!(
                            "{} rows ({rate:.0} rows/s): {} accepted, {} rejected",
                            p.rows, p.accepted, p.rejected
                        ));
                    }
                },
            )
            .await;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            let report =
                result.with_context(|| format!("import {job} of {} failed", file.display()))?;
            if let Some(path) = errors_csv {
                std::fs::write(&path, import::errors_csv(&report.errors))
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            if out.json {
                return print_json(&report);
            }
            print_import_report(&report, started.elapsed());
            Ok(())
        }
    }
}

fn progress_bar(enabled: bool) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !enabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    Some(bar)
}

fn print_import_report(r: &crate::lead::import::ImportReport, took: std::time::Duration) {
    println!("import {} {}: {}", r.import_id, r.status, r.file_name);
    println!("  rows:     {}", r.rows);
    println!("  accepted: {}", r.accepted);
    println!("  rejected: {}", r.rejected);
    for (reason, n) in &r.rejected_by_reason {
        println!("    {reason:<22} {n}");
    }
    println!(
        "  took:     {:.2}s ({:.0} rows/s)",
        took.as_secs_f64(),
        r.rows as f64 / took.as_secs_f64().max(0.001)
    );
    if !r.errors.is_empty() {
        println!(
            "rejected rows (first {} of {}; all of them with --errors-csv PATH or --json):",
            r.errors.len().min(20),
            r.errors.len()
        );
        for e in r.errors.iter().take(20) {
            println!(
                "  row {:<6} {:<12} {:<24} {}",
                e.row,
                e.column.as_deref().unwrap_or("-"),
                e.value
                    .as_deref()
                    .map(|v| format!("{v:?}"))
                    .unwrap_or_default(),
                e.reason
            );
        }
    }
}

async fn dnc(cmd: DncCommand, settings: Settings) -> anyhow::Result<()> {
    use crate::dnc::{self as d, repo};
    let pool = command_pool(&settings).await?;
    let mut conn = pool.acquire().await?;
    let region = |r: &str| cs::parse_region("region", r);
    let list_of = |l: &DncList| if l.global { None } else { l.tenant };
    match cmd {
        DncCommand::Add {
            number,
            list,
            region: r,
            reason,
            out,
        } => {
            let n = d::normalise(&number, Some(region(&r)?)).map_err(anyhow::Error::msg)?;
            let added = repo::add_many(
                &mut conn,
                list_of(&list),
                &[n.to_string()],
                "manual",
                reason.as_deref(),
            )
            .await?;
            if out.json {
                return print_json(&serde_json::json!({ "phone": n, "added": added == 1 }));
            }
            println!(
                "{n} {}",
                if added == 1 {
                    "added"
                } else {
                    "was already on the list"
                }
            );
            Ok(())
        }
        DncCommand::Remove {
            number,
            list,
            region: r,
            out,
        } => {
            let n = d::normalise(&number, Some(region(&r)?)).map_err(anyhow::Error::msg)?;
            let removed = repo::remove(&mut conn, list_of(&list), &n).await?;
            if out.json {
                return print_json(&serde_json::json!({ "phone": n, "removed": removed }));
            }
            println!(
                "{n} {}",
                if removed {
                    "removed"
                } else {
                    "was not on the list"
                }
            );
            Ok(())
        }
        DncCommand::Check {
            number,
            tenant,
            region: r,
            out,
        } => {
            let n = d::normalise(&number, Some(region(&r)?)).map_err(anyhow::Error::msg)?;
            let entries = repo::check(&mut conn, tenant, &n).await?;
            if out.json {
                return print_json(
                    &serde_json::json!({ "phone": n, "dialable": entries.is_empty(), "entries": entries }),
                );
            }
            if entries.is_empty() {
                println!("{n} is not on a do-not-call list of tenant {tenant}");
            }
            for e in entries {
                let which = if e.global {
                    "the global list"
                } else {
                    "the tenant's list"
                };
                println!(
                    "{n} is on {which} (source {}, since {})",
                    e.source,
                    e.created_at.format("%Y-%m-%d")
                );
            }
            Ok(())
        }
        DncCommand::Import {
            file,
            list,
            region: r,
            out,
        } => {
            let input = std::fs::File::open(&file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            let report = d::import_file(
                &pool,
                list_of(&list),
                std::io::BufReader::new(input),
                region(&r)?,
            )
            .await
            .with_context(|| format!("import of {} failed", file.display()))?;
            if out.json {
                return print_json(&report);
            }
            println!(
                "{} rows: {} added, {} already listed, {} rejected",
                report.rows, report.added, report.already_listed, report.rejected
            );
            for e in report.errors.iter().take(20) {
                println!(
                    "  row {:<6} {:?}: {}",
                    e.row,
                    e.value.as_deref().unwrap_or(""),
                    e.reason
                );
            }
            Ok(())
        }
        DncCommand::List { list, limit, out } => {
            let entries = repo::list(&mut conn, list_of(&list), limit).await?;
            if out.json {
                return print_json(&entries);
            }
            for e in entries {
                println!(
                    "{}  {:<8} {}",
                    e.phone_e164,
                    e.source,
                    e.reason.unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}

/// The tenant a command names must exist (a clear error instead of a foreign-key one).
async fn ensure_tenant(conn: &mut sqlx::PgConnection, tenant: TenantId) -> anyhow::Result<()> {
    crate::tenant::repo::get(conn, tenant)
        .await?
        .with_context(|| format!("no tenant with id {tenant}"))?;
    Ok(())
}

async fn agent(cmd: AgentCommand, settings: Settings) -> anyhow::Result<()> {
    use crate::agent::repo::{self, AgentFilter};
    use crate::agent::{AgentInput, AgentStatus};
    let pool = command_pool(&settings).await?;
    let mut conn = pool.acquire().await?;
    match cmd {
        AgentCommand::Create(a) => {
            ensure_tenant(&mut conn, a.tenant).await?;
            let mut groups = Vec::new();
            for g in &a.groups {
                groups.push(
                    repo::find_group(&mut conn, a.tenant, g)
                        .await?
                        .id
                        .to_string(),
                );
            }
            let input = AgentInput {
                name: Some(a.name.clone()),
                endpoint: Some(a.endpoint.clone()),
                time_zone: a.time_zone.clone(),
                work_start: a.work_start.clone(),
                work_end: a.work_end.clone(),
                work_days: a
                    .work_days
                    .as_deref()
                    .map(|d| d.split(',').map(|d| d.trim().to_string()).collect()),
                max_concurrent_calls: a.max_calls,
                groups: Some(groups),
                status: a.status.clone(),
            };
            let agent = repo::insert(&mut conn, a.tenant, &input).await?;
            if a.out.json {
                return print_json(&agent);
            }
            println!("agent created");
            print_agent(&agent);
            Ok(())
        }
        AgentCommand::List {
            tenant,
            status,
            group,
            out,
        } => {
            ensure_tenant(&mut conn, tenant).await?;
            let group = match group {
                Some(g) => Some(repo::find_group(&mut conn, tenant, &g).await?.id),
                None => None,
            };
            let filter = AgentFilter {
                status: status.as_deref().map(AgentStatus::parse).transpose()?,
                group,
            };
            let agents = repo::list(&mut conn, tenant, &filter).await?;
            if out.json {
                return print_json(&agents);
            }
            if agents.is_empty() {
                println!("no agents");
            }
            for a in agents {
                println!("{}  {:<9} {}  {}", a.id, a.status, a.name, a.endpoint);
            }
            Ok(())
        }
        AgentCommand::Show { agent, tenant, out } => {
            let a = repo::get(&mut conn, tenant, agent)
                .await?
                .with_context(|| format!("no agent {agent} in tenant {tenant}"))?;
            if out.json {
                return print_json(&a);
            }
            print_agent(&a);
            Ok(())
        }
        AgentCommand::Status {
            agent,
            status,
            tenant,
            out,
        } => {
            let to = AgentStatus::parse(&status)?;
            let a = repo::set_status(&mut conn, tenant, agent, to).await?;
            if out.json {
                return print_json(&a);
            }
            println!("agent {} ({}) is now {}", a.id, a.name, a.status);
            Ok(())
        }
        AgentCommand::Key { agent, tenant, out } => {
            let hasher = KeyHasher::new(settings.auth.api_key_pepper.clone());
            let key = repo::create_key(&mut conn, tenant, agent, &hasher).await?;
            if out.json {
                return print_json(&key);
            }
            println!("API key created for agent {agent} (role agent)");
            println!("  key id: {}", key.id);
            println!("  key:    {}", key.key);
            println!("The key is shown only now; give it to the agent and keep no copy.");
            Ok(())
        }
    }
}

fn print_agent(a: &crate::agent::Agent) {
    println!("  id:         {}", a.id);
    println!("  name:       {}", a.name);
    println!("  endpoint:   {}", a.endpoint);
    println!(
        "  status:     {} (since {})",
        a.status,
        a.status_changed_at.format("%Y-%m-%d %H:%M UTC")
    );
    println!(
        "  works:      {}-{} {} ({})",
        a.work_start,
        a.work_end,
        a.time_zone,
        a.work_days.to_text()
    );
    println!(
        "  calls:      {} of at most {}",
        a.active_calls, a.max_concurrent_calls
    );
    let groups: Vec<String> = a.groups.iter().map(|g| g.to_string()).collect();
    println!(
        "  groups:     {}",
        if groups.is_empty() {
            "-".into()
        } else {
            groups.join(", ")
        }
    );
}

async fn agent_group(cmd: AgentGroupCommand, settings: Settings) -> anyhow::Result<()> {
    use crate::agent::GroupInput;
    use crate::agent::repo;
    let pool = command_pool(&settings).await?;
    let mut conn = pool.acquire().await?;
    let print_group = |g: &crate::agent::AgentGroup| {
        println!("{}  {}  ({} agents)", g.id, g.name, g.agents.len());
    };
    match cmd {
        AgentGroupCommand::Create { name, tenant, out } => {
            ensure_tenant(&mut conn, tenant).await?;
            let input = GroupInput {
                name: Some(name),
                agents: None,
            };
            let g = repo::insert_group(&mut conn, tenant, &input).await?;
            if out.json {
                return print_json(&g);
            }
            println!("agent group created");
            print_group(&g);
            Ok(())
        }
        AgentGroupCommand::List { tenant, out } => {
            ensure_tenant(&mut conn, tenant).await?;
            let groups = repo::list_groups(&mut conn, tenant).await?;
            if out.json {
                return print_json(&groups);
            }
            if groups.is_empty() {
                println!("no agent groups");
            }
            for g in &groups {
                print_group(g);
            }
            Ok(())
        }
        AgentGroupCommand::Add {
            group,
            agent,
            tenant,
            out,
        } => {
            let g = repo::find_group(&mut conn, tenant, &group).await?;
            let g = repo::add_member(&mut conn, tenant, g.id, agent).await?;
            if out.json {
                return print_json(&g);
            }
            println!("agent {agent} is in group {}", g.name);
            Ok(())
        }
        AgentGroupCommand::Remove {
            group,
            agent,
            tenant,
            out,
        } => {
            let g = repo::find_group(&mut conn, tenant, &group).await?;
            let g = repo::remove_member(&mut conn, tenant, g.id, agent).await?;
            if out.json {
                return print_json(&g);
            }
            println!("agent {agent} is no longer in group {}", g.name);
            Ok(())
        }
        AgentGroupCommand::Delete { group, tenant } => {
            let g = repo::find_group(&mut conn, tenant, &group).await?;
            repo::delete_group(&mut conn, tenant, g.id).await?;
            println!("agent group {} ({}) deleted", g.name, g.id);
            Ok(())
        }
    }
}

fn print_campaign(c: &crate::campaign::Campaign) {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let delay = |v: Option<i32>| {
        v.map(|s| format!("{s}s"))
            .unwrap_or_else(|| "no retry".into())
    };
    println!("  id:              {}", c.id);
    println!("  tenant:          {}", c.tenant_id);
    println!("  name:            {}", c.name);
    println!("  status:          {}", c.status);
    println!("  caller id:       {}", opt(&c.caller_id));
    println!(
        "  window:          {}-{} {} ({})",
        c.window_start.format("%H:%M"),
        c.window_end.format("%H:%M"),
        c.time_zone,
        c.days_text()
    );
    println!(
        "  dates:           {} to {}",
        c.start_date
            .map(|d| d.to_string())
            .unwrap_or_else(|| "-".into()),
        c.end_date
            .map(|d| d.to_string())
            .unwrap_or_else(|| "-".into())
    );
    println!(
        "  legal window:    {}-{} in the lead's own zone",
        c.legal_window_start.format("%H:%M"),
        c.legal_window_end.format("%H:%M")
    );
    println!("  default region:  {}", c.default_region);
    println!("  max concurrent:  {}", c.max_concurrent);
    println!("  dial ratio:      {}", c.dial_ratio);
    println!(
        "  agent group:     {}",
        c.agent_group_id
            .map(|g| g.to_string())
            .unwrap_or_else(|| "- (any agent of the tenant)".into())
    );
    println!("  abandon cap:     {}%", c.abandon_cap_pct);
    println!("  dial timeout:    {}s", c.dial_timeout_secs);
    println!("  max attempts:    {}", c.max_attempts);
    println!(
        "  retry delays:    no-answer {}, busy {}, failed {}, voicemail {}",
        delay(c.retry_no_answer_secs),
        delay(c.retry_busy_secs),
        delay(c.retry_failed_secs),
        delay(c.retry_voicemail_secs)
    );
    println!(
        "  AMD:             {}",
        if c.amd_enabled { "on" } else { "off" }
    );
    println!("  voicemail:       {}", opt(&c.voicemail_message));
    println!(
        "  recording:       {}",
        if c.recording_enabled { "on" } else { "off" }
    );
    println!("  consent notice:  {}", opt(&c.recording_consent_message));
    println!("  max hold:        {} ms", c.max_hold_ms);
    println!(
        "  seller / cb no.: {} / {}",
        opt(&c.seller_name),
        opt(&c.callback_number)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn campaign_flags_are_validated_with_the_field_named() {
        let base = [
            "dialer",
            "campaign",
            "create",
            "--tenant",
            "00000000-0000-0000-0000-000000000001",
            "--name",
            "x",
        ];
        let parse = |extra: &[&str]| {
            let cli = Cli::try_parse_from(base.iter().chain(extra.iter())).unwrap();
            match cli.command {
                Command::Campaign(CampaignCommand::Create(c)) => c.to_new_campaign(),
                _ => unreachable!(),
            }
        };
        assert!(parse(&[]).is_ok());
        assert_eq!(
            parse(&["--dial-timeout", "10"]).unwrap_err().field,
            "dial_timeout_secs"
        );
        assert_eq!(
            parse(&["--time-zone", "Mars/Base"]).unwrap_err().field,
            "time_zone"
        );
        assert_eq!(
            parse(&["--caller-id", "555"]).unwrap_err().field,
            "caller_id"
        );
        assert_eq!(
            parse(&["--start-date", "2027-01-10", "--end-date", "2027-01-01"])
                .unwrap_err()
                .field,
            "end_date"
        );
        // The consent notice is only said when the bridged call is recorded.
        let consent = ["--recording-consent-message", " This call is recorded. "];
        assert_eq!(
            parse(&consent).unwrap_err().field,
            "recording_consent_message"
        );
        let c = parse(&[&["--record"][..], &consent[..]].concat()).unwrap();
        assert!(c.recording_enabled);
        assert_eq!(
            c.recording_consent_message.as_deref(),
            Some("This call is recorded.")
        );
        let url = [
            "--record",
            "--recording-consent-message",
            "https://x.example/c.mp3",
        ];
        assert_eq!(parse(&url).unwrap_err().field, "recording_consent_message");
    }
}
