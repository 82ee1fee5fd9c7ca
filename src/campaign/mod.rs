//! Campaigns: what to dial, when, how fast, and what to do with the answers.

pub mod input;
pub mod settings;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::tenant::TenantId;
use settings::{DailyWindow, SettingError, WeekDays};

/// Identifies a campaign; only built from a parsed UUID or a database row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, sqlx::Type)]
#[sqlx(transparent)]
#[serde(transparent)]
pub struct CampaignId(pub Uuid);

impl std::str::FromStr for CampaignId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s.trim())
            .map(CampaignId)
            .map_err(|_| format!("`{s}` is not a campaign id (a UUID)"))
    }
}

impl std::fmt::Display for CampaignId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Lifecycle: draft → active ⇄ paused → completed or stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    Draft,
    Active,
    Paused,
    Completed,
    Stopped,
}

impl CampaignStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Stopped => "stopped",
        }
    }
}

/// Changes to who takes a campaign's calls (None: leave as it is).
#[derive(Debug, Clone, Default)]
pub struct AgentSettings {
    /// Some(None): no group (any agent of the tenant).
    pub group: Option<Option<Uuid>>,
    pub abandon_cap_pct: Option<f64>,
    pub disposition_codes: Option<Vec<String>>,
}

impl AgentSettings {
    /// Checks the cap and the codes, naming the setting and value that is wrong; codes are
    /// trimmed and lower-cased.
    pub fn validate(&mut self) -> Result<(), SettingError> {
        if let Some(cap) = self.abandon_cap_pct
            && !(0.0..=100.0).contains(&cap)
        {
            return Err(SettingError {
                field: "abandon_cap_pct",
                value: cap.to_string(),
                reason: "must be between 0 and 100 (%)".into(),
            });
        }
        if let Some(codes) = &mut self.disposition_codes {
            for c in codes.iter_mut() {
                *c = c.trim().to_lowercase();
                let ok = (1..=40).contains(&c.len())
                    && c.chars()
                        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
                if !ok {
                    return Err(SettingError {
                        field: "disposition_codes",
                        value: c.clone(),
                        reason: "a code is 1-40 of a-z, 0-9 and _".into(),
                    });
                }
            }
            codes.sort();
            codes.dedup();
        }
        Ok(())
    }
}

/// A validated new campaign; every field already checked (see `settings`).
#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub name: String,
    pub caller_id: Option<crate::phone::PhoneNumber>,
    pub time_zone: chrono_tz::Tz,
    pub window: DailyWindow,
    pub days: WeekDays,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub default_region: crate::phone::Region,
    pub max_concurrent: i32,
    pub dial_ratio: f64,
    pub dial_timeout_secs: i32,
    pub max_attempts: i32,
    pub retry_no_answer_secs: Option<u32>,
    pub retry_busy_secs: Option<u32>,
    pub retry_failed_secs: Option<u32>,
    pub retry_voicemail_secs: Option<u32>,
    pub amd_enabled: bool,
    pub voicemail_message: Option<String>,
    pub recording_enabled: bool,
    /// Said to the person before they join the (recorded) conference; needs recording on.
    pub recording_consent_message: Option<String>,
    pub max_hold_ms: i32,
    pub seller_name: Option<String>,
    pub callback_number: Option<crate::phone::PhoneNumber>,
    pub legal_window: DailyWindow,
    /// Per region / state legal windows: {"US-FL": ["08:00", "20:00"]}.
    pub legal_window_overrides: std::collections::BTreeMap<String, [String; 2]>,
}

impl NewCampaign {
    /// The defaults a campaign manager gets when they say nothing.
    pub fn with_defaults(name: &str) -> Result<Self, SettingError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(SettingError {
                field: "name",
                value: String::new(),
                reason: "must not be empty".into(),
            });
        }
        Ok(Self {
            name: name.to_string(),
            caller_id: None,
            time_zone: chrono_tz::UTC,
            window: DailyWindow::parse("window", "09:00-20:00")?,
            days: WeekDays::WEEKDAYS,
            start_date: None,
            end_date: None,
            default_region: settings::parse_region("default_region", "US")?,
            max_concurrent: 10,
            dial_ratio: 1.0,
            dial_timeout_secs: 30,
            max_attempts: 3,
            retry_no_answer_secs: Some(3600),
            retry_busy_secs: Some(3600),
            retry_failed_secs: Some(3600),
            retry_voicemail_secs: None,
            amd_enabled: true,
            voicemail_message: None,
            recording_enabled: false,
            recording_consent_message: None,
            max_hold_ms: 2000,
            seller_name: None,
            callback_number: None,
            legal_window: DailyWindow::parse("legal_window", "08:00-21:00")?,
            legal_window_overrides: Default::default(),
        })
    }

    /// Cross-field checks that single-field parsing cannot make.
    pub fn validate(&self) -> Result<(), SettingError> {
        if let (Some(s), Some(e)) = (self.start_date, self.end_date)
            && e < s
        {
            return Err(SettingError {
                field: "end_date",
                value: e.to_string(),
                reason: format!("is before start_date {s}"),
            });
        }
        settings::check_range("max_concurrent", self.max_concurrent, 1, 100_000)?;
        settings::check_range("dial_ratio", self.dial_ratio, 1.0, 10.0)?;
        settings::check_range("dial_timeout_secs", self.dial_timeout_secs, 15, 600)?;
        settings::check_range("max_attempts", self.max_attempts, 1, 50)?;
        settings::check_range("max_hold_ms", self.max_hold_ms, 500, 60_000)?;
        if let (false, Some(message)) = (self.recording_enabled, &self.recording_consent_message) {
            return Err(SettingError {
                field: "recording_consent_message",
                value: message.clone(),
                reason:
                    "is only said when the campaign records its calls: turn recording on (--record)"
                        .into(),
            });
        }
        Ok(())
    }
}

/// Whether an attempt's conference is recorded, and what the person hears first: the
/// campaign's `recording_enabled` and `recording_consent_message`.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct RecordingPolicy {
    #[sqlx(rename = "recording_enabled")]
    pub enabled: bool,
    #[sqlx(rename = "recording_consent_message")]
    pub consent_message: Option<String>,
}

/// A campaign as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Campaign {
    pub id: CampaignId,
    pub tenant_id: TenantId,
    pub name: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub caller_id: Option<String>,
    pub time_zone: String,
    pub window_start: NaiveTime,
    pub window_end: NaiveTime,
    pub days: i16,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub default_region: String,
    pub max_concurrent: i32,
    pub dial_ratio: f64,
    pub dial_timeout_secs: i32,
    pub max_attempts: i32,
    pub retry_no_answer_secs: Option<i32>,
    pub retry_busy_secs: Option<i32>,
    pub retry_failed_secs: Option<i32>,
    pub retry_voicemail_secs: Option<i32>,
    pub amd_enabled: bool,
    pub voicemail_message: Option<String>,
    pub voicemail_audio_url: Option<String>,
    pub recording_enabled: bool,
    pub recording_consent_message: Option<String>,
    pub agent_group_id: Option<Uuid>,
    pub max_hold_ms: i32,
    pub abandon_cap_pct: f64,
    pub seller_name: Option<String>,
    pub callback_number: Option<String>,
    pub legal_window_start: NaiveTime,
    pub legal_window_end: NaiveTime,
    pub legal_window_overrides: sqlx::types::Json<serde_json::Value>,
    pub disposition_codes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Campaign {
    pub fn days_text(&self) -> String {
        WeekDays(self.days as u8).to_text()
    }

    /// The voicemail drop: the audio URL played, else the text spoken.
    pub fn voicemail(&self) -> Option<&str> {
        self.voicemail_audio_url
            .as_deref()
            .or(self.voicemail_message.as_deref())
    }
}

pub mod repo {
    use super::*;

    /// The columns of `Campaign`, as a macro so queries stay `&'static str` literals.
    macro_rules! columns {
        () => {
            "id, tenant_id, name, status, status_reason, caller_id, time_zone, window_start, window_end, days, \
        start_date, end_date, default_region, max_concurrent, dial_ratio, dial_timeout_secs, max_attempts, \
        retry_no_answer_secs, retry_busy_secs, retry_failed_secs, retry_voicemail_secs, amd_enabled, \
        voicemail_message, voicemail_audio_url, recording_enabled, recording_consent_message, agent_group_id, \
        max_hold_ms, abandon_cap_pct, seller_name, callback_number, legal_window_start, legal_window_end, \
        legal_window_overrides, disposition_codes, created_at, updated_at"
        };
    }

    fn secs(v: Option<u32>) -> Option<i32> {
        v.map(|s| i32::try_from(s).unwrap_or(i32::MAX))
    }

    /// Sets who takes the campaign's calls; None if the tenant has no such campaign.
    pub async fn set_agents(
        conn: &mut PgConnection,
        tenant: TenantId,
        id: CampaignId,
        settings: &AgentSettings,
    ) -> Result<Option<Campaign>, anyhow::Error> {
        let mut s = settings.clone();
        s.validate()?;
        let sql = concat!(
            "UPDATE campaigns SET agent_group_id = CASE WHEN $3 THEN $4 ELSE agent_group_id END, \
             abandon_cap_pct = COALESCE($5, abandon_cap_pct), \
             disposition_codes = COALESCE($6, disposition_codes), updated_at = now() \
             WHERE id = $1 AND tenant_id = $2 RETURNING ",
            columns!()
        );
        Ok(sqlx::query_as(sql)
            .bind(id)
            .bind(tenant)
            .bind(s.group.is_some())
            .bind(s.group.flatten())
            .bind(s.abandon_cap_pct)
            .bind(&s.disposition_codes)
            .fetch_optional(&mut *conn)
            .await?)
    }

    /// The setting columns `bind_settings` fills, as $3 … $30 (after id and tenant).
    macro_rules! setting_columns {
        () => {
            "name, caller_id, time_zone, window_start, window_end, days, \
             start_date, end_date, default_region, max_concurrent, dial_ratio, dial_timeout_secs, max_attempts, \
             retry_no_answer_secs, retry_busy_secs, retry_failed_secs, retry_voicemail_secs, amd_enabled, \
             voicemail_message, recording_enabled, max_hold_ms, seller_name, callback_number, \
             legal_window_start, legal_window_end, legal_window_overrides, voicemail_audio_url, \
             recording_consent_message"
        };
    }

    type CampaignQuery<'q> =
        sqlx::query::QueryAs<'q, sqlx::Postgres, Campaign, sqlx::postgres::PgArguments>;

    fn is_url(m: &str) -> bool {
        m.starts_with("https://") || m.starts_with("http://")
    }

    /// Binds the settings of `c` in the order of `setting_columns!`.
    fn bind_settings<'q>(q: CampaignQuery<'q>, c: &'q NewCampaign) -> CampaignQuery<'q> {
        q.bind(&c.name)
            .bind(c.caller_id.as_ref().map(|p| p.as_str()))
            .bind(c.time_zone.name())
            .bind(c.window.start)
            .bind(c.window.end)
            .bind(c.days.0 as i16)
            .bind(c.start_date)
            .bind(c.end_date)
            .bind(c.default_region.as_str())
            .bind(c.max_concurrent)
            .bind(c.dial_ratio)
            .bind(c.dial_timeout_secs)
            .bind(c.max_attempts)
            .bind(secs(c.retry_no_answer_secs))
            .bind(secs(c.retry_busy_secs))
            .bind(secs(c.retry_failed_secs))
            .bind(secs(c.retry_voicemail_secs))
            .bind(c.amd_enabled)
            .bind(c.voicemail_message.as_deref().filter(|m| !is_url(m)))
            .bind(c.recording_enabled)
            .bind(c.max_hold_ms)
            .bind(&c.seller_name)
            .bind(c.callback_number.as_ref().map(|p| p.as_str()))
            .bind(c.legal_window.start)
            .bind(c.legal_window.end)
            .bind(serde_json::json!(c.legal_window_overrides))
            .bind(c.voicemail_message.as_deref().filter(|m| is_url(m)))
            .bind(&c.recording_consent_message)
    }

    pub async fn insert(
        conn: &mut PgConnection,
        tenant: TenantId,
        c: &NewCampaign,
    ) -> Result<Campaign, sqlx::Error> {
        let sql = concat!(
            "INSERT INTO campaigns (id, tenant_id, ",
            setting_columns!(),
            ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27,$28,$29,$30) \
             RETURNING ",
            columns!()
        );
        let q = sqlx::query_as(sql).bind(Uuid::now_v7()).bind(tenant);
        bind_settings(q, c).fetch_one(conn).await
    }

    /// Replaces every setting of a campaign of `tenant`; None if it has no such campaign.
    pub async fn update(
        conn: &mut PgConnection,
        tenant: TenantId,
        id: CampaignId,
        c: &NewCampaign,
    ) -> Result<Option<Campaign>, sqlx::Error> {
        let sql = concat!(
            "UPDATE campaigns SET (",
            setting_columns!(),
            ", updated_at) = ($3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27,$28,$29,$30, now()) \
             WHERE id = $1 AND tenant_id = $2 RETURNING ",
            columns!()
        );
        let q = sqlx::query_as(sql).bind(id).bind(tenant);
        bind_settings(q, c).fetch_optional(conn).await
    }

    /// A campaign that completed runs again (`active`) because one of its leads is due
    /// again; any other status is left as it is (a stopped campaign stays stopped).
    pub async fn reactivate_completed(
        conn: &mut PgConnection,
        id: CampaignId,
        reason: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE campaigns SET status = 'active', status_reason = $2, \
                    status_changed_at = now(), updated_at = now() \
              WHERE id = $1 AND status = 'completed'",
        )
        .bind(id)
        .bind(reason)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Why a campaign could not be deleted.
    #[derive(Debug, thiserror::Error)]
    pub enum DeleteError {
        #[error("no campaign {0}")]
        NotFound(CampaignId),
        #[error(
            "campaign {0} is {1}: only a draft campaign (never started) can be deleted; stop it instead, which keeps its leads and call history"
        )]
        NotDraft(CampaignId, String),
        #[error(transparent)]
        Db(#[from] sqlx::Error),
    }

    /// Deletes a draft campaign and its leads. A campaign that was ever started has call
    /// history and is stopped, not deleted.
    pub async fn delete_draft(
        conn: &mut PgConnection,
        tenant: TenantId,
        id: CampaignId,
    ) -> Result<(), DeleteError> {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let status: Option<String> = sqlx::query_scalar(
            "SELECT status FROM campaigns WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
        )
        .bind(id)
        .bind(tenant)
        .fetch_optional(&mut *tx)
        .await?;
        match status.as_deref() {
            None => return Err(DeleteError::NotFound(id)),
            Some("draft") => {}
            Some(other) => return Err(DeleteError::NotDraft(id, other.to_string())),
        }
        sqlx::query("DELETE FROM campaigns WHERE id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(tenant)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The recording policy of the campaign an attempt belongs to (`None`: no such call).
    pub async fn recording_for_call(
        pool: &sqlx::PgPool,
        call: crate::call::CallId,
    ) -> Result<Option<RecordingPolicy>, sqlx::Error> {
        sqlx::query_as(
            "SELECT c.recording_enabled, c.recording_consent_message
               FROM calls k JOIN campaigns c ON c.id = k.campaign_id WHERE k.id = $1",
        )
        .bind(call)
        .fetch_optional(pool)
        .await
    }

    pub async fn list(
        conn: &mut PgConnection,
        tenant: TenantId,
    ) -> Result<Vec<Campaign>, sqlx::Error> {
        sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM campaigns WHERE tenant_id = $1 ORDER BY created_at"
        ))
        .bind(tenant)
        .fetch_all(conn)
        .await
    }

    /// One campaign; `tenant` scopes the lookup when the caller acts for a tenant.
    pub async fn get(
        conn: &mut PgConnection,
        tenant: Option<TenantId>,
        id: CampaignId,
    ) -> Result<Option<Campaign>, sqlx::Error> {
        sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM campaigns WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)"
        ))
        .bind(id)
        .bind(tenant)
        .fetch_optional(conn)
        .await
    }
}
