//! A campaign as the engine dials it: its limits, retry policy and calling windows, read
//! from its row and parsed once.

use std::collections::HashMap;
use std::time::Duration;

use chrono::NaiveTime;
use sqlx::PgPool;

use crate::campaign::CampaignId;
use crate::campaign::settings::{DailyWindow, SettingError, WeekDays};
use crate::schedule::{CampaignHours, LegalHours, Schedule};
use crate::tenant::TenantId;

#[derive(Debug, Clone, Copy)]
pub enum RetryKind {
    NoAnswer,
    Busy,
    Failed,
    Voicemail,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub id: CampaignId,
    pub tenant_id: TenantId,
    pub status: String,
    pub max_concurrent: i32,
    pub dial_timeout_secs: i32,
    pub max_attempts: i32,
    pub amd_enabled: bool,
    pub max_hold_ms: i32,
    /// Dials are held to the free agents (times the dial ratio): the campaign has an agent
    /// group, or an abandonment cap below 100 %.
    pub agent_paced: bool,
    /// Calls per free agent while the abandonment rate has room (1.0 = progressive).
    pub dial_ratio: f64,
    /// Most abandoned calls allowed, in % of the calls a person answered (rolling 30 days).
    pub abandon_cap_pct: f64,
    retry: [Option<i32>; 4],
    pub schedule: Schedule,
}

impl Plan {
    pub fn retry_delay(&self, kind: RetryKind) -> Option<Duration> {
        let secs = self.retry[kind as usize]?;
        Some(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
    }
}

#[derive(sqlx::FromRow)]
struct PlanRow {
    id: CampaignId,
    tenant_id: TenantId,
    status: String,
    time_zone: String,
    window_start: NaiveTime,
    window_end: NaiveTime,
    days: i16,
    start_date: Option<chrono::NaiveDate>,
    end_date: Option<chrono::NaiveDate>,
    max_concurrent: i32,
    dial_timeout_secs: i32,
    max_attempts: i32,
    retry_no_answer_secs: Option<i32>,
    retry_busy_secs: Option<i32>,
    retry_failed_secs: Option<i32>,
    retry_voicemail_secs: Option<i32>,
    amd_enabled: bool,
    max_hold_ms: i32,
    agent_group_id: Option<uuid::Uuid>,
    dial_ratio: f64,
    abandon_cap_pct: f64,
    legal_window_start: NaiveTime,
    legal_window_end: NaiveTime,
    legal_window_overrides: serde_json::Value,
}

const COLUMNS: &str = "id, tenant_id, status, time_zone, window_start, window_end, days, start_date, \
    end_date, max_concurrent, dial_timeout_secs, max_attempts, retry_no_answer_secs, retry_busy_secs, \
    retry_failed_secs, retry_voicemail_secs, amd_enabled, max_hold_ms, \
    agent_group_id, dial_ratio, abandon_cap_pct, \
    legal_window_start, legal_window_end, legal_window_overrides";

impl TryFrom<PlanRow> for Plan {
    type Error = SettingError;
    fn try_from(r: PlanRow) -> Result<Self, SettingError> {
        let tz = crate::campaign::settings::parse_time_zone("time_zone", &r.time_zone)?;
        let legal = LegalHours::from_json(
            DailyWindow {
                start: r.legal_window_start,
                end: r.legal_window_end,
            },
            &r.legal_window_overrides,
        )?;
        Ok(Plan {
            id: r.id,
            tenant_id: r.tenant_id,
            status: r.status,
            max_concurrent: r.max_concurrent,
            dial_timeout_secs: r.dial_timeout_secs,
            max_attempts: r.max_attempts,
            amd_enabled: r.amd_enabled,
            max_hold_ms: r.max_hold_ms,
            agent_paced: r.agent_group_id.is_some() || r.abandon_cap_pct < 100.0,
            dial_ratio: r.dial_ratio.max(1.0),
            abandon_cap_pct: r.abandon_cap_pct,
            retry: [
                r.retry_no_answer_secs,
                r.retry_busy_secs,
                r.retry_failed_secs,
                r.retry_voicemail_secs,
            ],
            schedule: Schedule {
                campaign: CampaignHours {
                    tz,
                    window: DailyWindow {
                        start: r.window_start,
                        end: r.window_end,
                    },
                    days: WeekDays(r.days as u8),
                    start_date: r.start_date,
                    end_date: r.end_date,
                },
                legal,
            },
        })
    }
}

fn parse(rows: Vec<PlanRow>) -> HashMap<CampaignId, Plan> {
    let mut plans = HashMap::new();
    for row in rows {
        let id = row.id;
        match Plan::try_from(row) {
            Ok(p) => {
                plans.insert(id, p);
            }
            Err(e) => {
                tracing::error!(campaign = %id, error = %e, "campaign settings unusable; not dialling it")
            }
        }
    }
    plans
}

/// Every active campaign.
pub async fn active(db: &PgPool) -> Result<HashMap<CampaignId, Plan>, sqlx::Error> {
    let rows: Vec<PlanRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM campaigns WHERE status = 'active'"
    )))
    .fetch_all(db)
    .await?;
    Ok(parse(rows))
}

/// One campaign, whatever its status.
pub async fn load(db: &PgPool, id: CampaignId) -> Result<Option<Plan>, sqlx::Error> {
    let rows: Vec<PlanRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM campaigns WHERE id = $1"
    )))
    .bind(id)
    .fetch_all(db)
    .await?;
    Ok(parse(rows).remove(&id))
}
