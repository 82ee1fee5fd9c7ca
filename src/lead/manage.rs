//! Leads after import: list and show (with the attempt history), change what the CRM
//! got wrong, take out of dialing, and queue again. Every query is scoped to a tenant.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::campaign::CampaignId;
use crate::campaign::settings::SettingError;
use crate::tenant::TenantId;

/// Priority names, index + 1 is the stored value (1 low … 4 urgent).
pub const PRIORITIES: [&str; 4] = ["low", "normal", "high", "urgent"];

pub fn priority_name(p: i16) -> &'static str {
    PRIORITIES
        .get((p.clamp(1, 4) - 1) as usize)
        .copied()
        .unwrap_or("normal")
}

/// A lead's status.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum LeadStatus {
    Ready,
    Dialing,
    Done,
}

/// A priority by name.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum PriorityName {
    Low,
    Normal,
    High,
    Urgent,
}

/// A lead as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct LeadView {
    pub id: i64,
    #[schema(value_type = uuid::Uuid)]
    pub campaign_id: CampaignId,
    pub import_id: Option<Uuid>,
    /// E.164
    pub phone: String,
    /// The number exactly as the file gave it.
    pub phone_raw: String,
    pub region: Option<String>,
    pub time_zones: Vec<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone_type: Option<String>,
    #[sqlx(try_from = "i16")]
    #[schema(value_type = PriorityName)]
    pub priority: Priority,
    pub notes: Option<String>,
    #[schema(value_type = Object)]
    pub custom: sqlx::types::Json<serde_json::Value>,
    /// ready (waiting for `next_attempt_at`), dialing (a call is live) or done.
    #[schema(value_type = LeadStatus)]
    pub status: String,
    /// Why a done lead is done: a disposition, attempts_exhausted, dnc, removed …
    pub final_reason: Option<String>,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub callback_agent_id: Option<Uuid>,
    pub last_skip_reason: Option<String>,
    pub last_skipped_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A priority shown by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "&'static str")]
pub struct Priority(pub i16);

impl From<i16> for Priority {
    fn from(p: i16) -> Self {
        Priority(p)
    }
}

impl From<Priority> for &'static str {
    fn from(p: Priority) -> Self {
        priority_name(p.0)
    }
}

macro_rules! lead_columns {
    () => {
        "id, campaign_id, import_id, phone_e164 AS phone, phone_raw, region, time_zones, first_name, \
         last_name, phone_type, priority, notes, custom, status, final_reason, attempts, next_attempt_at, \
         callback_agent_id, last_skip_reason, last_skipped_at, created_at, updated_at"
    };
}

/// One attempt at a lead, as its history shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Attempt {
    pub call_id: i64,
    pub attempt: i32,
    pub state: String,
    pub disposition: Option<String>,
    pub answered_by: Option<String>,
    pub agent_id: Option<Uuid>,
    pub agent_disposition: Option<String>,
    pub to_number: String,
    pub from_number: String,
    pub created_at: DateTime<Utc>,
    pub dialed_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    pub bridged_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub duration_secs: Option<i32>,
    pub error_code: Option<i32>,
    pub error_message: Option<String>,
}

/// What to list; every field narrows the list.
#[derive(Debug, Clone, Default)]
pub struct LeadFilter {
    pub campaign: Option<CampaignId>,
    pub status: Option<String>,
    pub final_reason: Option<String>,
    /// E.164
    pub phone: Option<String>,
    pub priority: Option<i16>,
    /// Leads after this id.
    pub after: Option<i64>,
}

pub async fn list(
    conn: &mut PgConnection,
    tenant: TenantId,
    f: &LeadFilter,
    limit: i64,
) -> Result<Vec<LeadView>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        lead_columns!(),
        " FROM leads WHERE tenant_id = $1 AND ($2::uuid IS NULL OR campaign_id = $2) \
          AND ($3::text IS NULL OR status = $3) AND ($4::text IS NULL OR final_reason = $4) \
          AND ($5::text IS NULL OR phone_e164 = $5) AND ($6::smallint IS NULL OR priority = $6) \
          AND ($7::bigint IS NULL OR id > $7) ORDER BY id LIMIT $8"
    ))
    .bind(tenant)
    .bind(f.campaign)
    .bind(&f.status)
    .bind(&f.final_reason)
    .bind(&f.phone)
    .bind(f.priority)
    .bind(f.after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub async fn get(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: i64,
) -> Result<Option<LeadView>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        lead_columns!(),
        " FROM leads WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The lead's attempts, first first.
pub async fn attempts(
    conn: &mut PgConnection,
    tenant: TenantId,
    lead: i64,
) -> Result<Vec<Attempt>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id AS call_id, attempt, state, disposition, answered_by, agent_id, agent_disposition, \
                to_number, from_number, created_at, dialed_at, answered_at, bridged_at, ended_at, \
                duration_secs, error_code, error_message
           FROM calls WHERE tenant_id = $1 AND lead_id = $2 ORDER BY attempt",
    )
    .bind(tenant)
    .bind(lead)
    .fetch_all(conn)
    .await
}

/// Changes to a lead; absent fields stay, `null` clears. The number is the lead's identity
/// in its campaign and is not changed here: remove the lead and import the right one.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadInput {
    #[serde(default, deserialize_with = "crate::campaign::input::nullable")]
    #[schema(value_type = Option<String>)]
    pub first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::campaign::input::nullable")]
    #[schema(value_type = Option<String>)]
    pub last_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::campaign::input::nullable")]
    #[schema(value_type = Option<String>)]
    pub phone_type: Option<Option<String>>,
    /// low, normal, high or urgent.
    #[schema(value_type = Option<PriorityName>)]
    pub priority: Option<String>,
    #[serde(default, deserialize_with = "crate::campaign::input::nullable")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Option<String>>,
    /// Replaces the custom fields: an object of strings, numbers, booleans or nulls.
    #[schema(value_type = Option<Object>)]
    pub custom: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Longest text field a lead keeps.
const MAX_TEXT: usize = 4000;

fn text(field: &'static str, v: &Option<String>) -> Result<Option<String>, SettingError> {
    let t = v.as_deref().map(str::trim).filter(|t| !t.is_empty());
    if let Some(t) = t
        && t.chars().count() > MAX_TEXT
    {
        return Err(SettingError {
            field,
            value: t.chars().take(40).collect(),
            reason: format!("is longer than {MAX_TEXT} characters"),
        });
    }
    Ok(t.map(String::from))
}

impl LeadInput {
    /// Applies the changes to `lead`, checking each.
    pub fn apply(&self, lead: &mut LeadView) -> Result<(), SettingError> {
        if let Some(v) = &self.first_name {
            lead.first_name = text("first_name", v)?;
        }
        if let Some(v) = &self.last_name {
            lead.last_name = text("last_name", v)?;
        }
        if let Some(v) = &self.phone_type {
            lead.phone_type = text("phone_type", v)?;
        }
        if let Some(v) = &self.notes {
            lead.notes = text("notes", v)?;
        }
        if let Some(v) = &self.priority {
            let p = parse_priority(v)?;
            lead.priority = Priority(p);
        }
        if let Some(custom) = &self.custom {
            if let Some((k, _)) = custom.iter().find(|(_, v)| v.is_array() || v.is_object()) {
                return Err(SettingError {
                    field: "custom",
                    value: k.clone(),
                    reason: "custom fields hold strings, numbers, booleans or null".into(),
                });
            }
            lead.custom = sqlx::types::Json(serde_json::Value::Object(custom.clone()));
        }
        Ok(())
    }
}

/// `urgent` → 4 (as in imports); the field named otherwise.
pub fn parse_priority(raw: &str) -> Result<i16, SettingError> {
    super::row::parse_priority(Some(raw.trim())).ok_or_else(|| SettingError {
        field: "priority",
        value: raw.to_string(),
        reason: "must be one of low, normal, high, urgent".into(),
    })
}

/// Writes the editable fields of `lead`.
pub async fn save(
    conn: &mut PgConnection,
    tenant: TenantId,
    lead: &LeadView,
) -> Result<Option<LeadView>, sqlx::Error> {
    sqlx::query_as(concat!(
        "UPDATE leads SET first_name = $3, last_name = $4, phone_type = $5, priority = $6, notes = $7, \
         custom = $8, updated_at = now() WHERE tenant_id = $1 AND id = $2 RETURNING ",
        lead_columns!()
    ))
    .bind(tenant)
    .bind(lead.id)
    .bind(&lead.first_name)
    .bind(&lead.last_name)
    .bind(&lead.phone_type)
    .bind(lead.priority.0)
    .bind(&lead.notes)
    .bind(&lead.custom)
    .fetch_optional(conn)
    .await
}

/// Why a lead could not be removed or queued again.
#[derive(Debug, thiserror::Error)]
pub enum LeadError {
    #[error("no lead {0}")]
    NotFound(i64),
    #[error("lead {0} is being dialled now; try again when the call has ended")]
    Dialing(i64),
    #[error("lead {0}'s number {1} is on the do-not-call list; it is never dialled")]
    OnDnc(i64, String),
    #[error("lead {0}'s campaign is stopped: a stopped campaign dials no one")]
    CampaignStopped(i64),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// The lead's status and number, locked; NotFound or Dialing when it cannot be changed.
async fn lock_idle(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: i64,
) -> Result<(String, CampaignId), LeadError> {
    let row: Option<(String, String, CampaignId)> = sqlx::query_as(
        "SELECT status, phone_e164, campaign_id FROM leads WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        None => Err(LeadError::NotFound(id)),
        Some((status, _, _)) if status == "dialing" => Err(LeadError::Dialing(id)),
        Some((_, phone, campaign)) => Ok((phone, campaign)),
    }
}

/// Takes a lead out of dialing for good (`done`, reason `removed`); its call history stays.
pub async fn remove(conn: &mut PgConnection, tenant: TenantId, id: i64) -> Result<(), LeadError> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    lock_idle(&mut tx, tenant, id).await?;
    sqlx::query(
        "UPDATE leads SET status = 'done', final_reason = 'removed', updated_at = now() \
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Makes a lead due now (the pacer dials it at the first moment both windows are open),
/// whatever it was; one more attempt even when its attempts are used up. A campaign that
/// had completed runs again for it.
pub async fn requeue(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: i64,
) -> Result<LeadView, LeadError> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let (phone, campaign) = lock_idle(&mut tx, tenant, id).await?;
    let on_dnc: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM dnc_numbers WHERE phone_e164 = $2 \
                          AND (tenant_id = $1 OR tenant_id IS NULL))",
    )
    .bind(tenant)
    .bind(&phone)
    .fetch_one(&mut *tx)
    .await?;
    if on_dnc {
        return Err(LeadError::OnDnc(id, phone));
    }
    let status: String =
        sqlx::query_scalar("SELECT status FROM campaigns WHERE id = $1 FOR UPDATE")
            .bind(campaign)
            .fetch_one(&mut *tx)
            .await?;
    if status == "stopped" {
        return Err(LeadError::CampaignStopped(id));
    }
    crate::campaign::repo::reactivate_completed(&mut tx, campaign, "a lead was queued again")
        .await?;
    let lead: LeadView = sqlx::query_as(concat!(
        "UPDATE leads SET status = 'ready', final_reason = NULL, next_attempt_at = now(), \
         last_skip_reason = NULL, last_skipped_at = NULL, updated_at = now() \
         WHERE tenant_id = $1 AND id = $2 RETURNING ",
        lead_columns!()
    ))
    .bind(tenant)
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(lead)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_by_name() {
        assert_eq!(parse_priority(" Urgent ").unwrap(), 4);
        assert_eq!(parse_priority("low").unwrap(), 1);
        assert_eq!(parse_priority("asap").unwrap_err().field, "priority");
        assert_eq!(priority_name(3), "high");
    }

    #[test]
    fn custom_fields_must_be_flat() {
        let input: LeadInput =
            serde_json::from_value(serde_json::json!({"custom": {"account": {"id": 1}}})).unwrap();
        let mut lead = LeadView {
            id: 1,
            campaign_id: CampaignId(Uuid::nil()),
            import_id: None,
            phone: "+12015550123".into(),
            phone_raw: "201 555 0123".into(),
            region: None,
            time_zones: vec![],
            first_name: None,
            last_name: None,
            phone_type: None,
            priority: Priority(2),
            notes: None,
            custom: sqlx::types::Json(serde_json::json!({})),
            status: "ready".into(),
            final_reason: None,
            attempts: 0,
            next_attempt_at: Utc::now(),
            callback_agent_id: None,
            last_skip_reason: None,
            last_skipped_at: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        assert_eq!(input.apply(&mut lead).unwrap_err().field, "custom");
        let input: LeadInput = serde_json::from_value(
            serde_json::json!({"custom": {"account": "A-1"}, "first_name": null, "priority": "high"}),
        )
        .unwrap();
        input.apply(&mut lead).unwrap();
        assert_eq!(lead.custom.0["account"], "A-1");
        assert_eq!(serde_json::to_value(lead.priority).unwrap(), "high");
    }
}
