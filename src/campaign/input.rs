//! A campaign's settings as the API takes and gives them: one JSON shape for create,
//! partial update and show, so what `GET` returns can be sent back with `PATCH`.
//! Everything is checked here, naming the field; no I/O.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use super::settings::{self as cs, DailyWindow, SettingError, WeekDays};
use super::{AgentSettings, Campaign, CampaignId, NewCampaign};

/// `Some(None)` when the JSON says `null`, `None` when the field is absent: for settings
/// (and lead fields) that can be cleared.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Create (`name` required) or change a campaign; absent fields keep their value (the
/// default on create). Nullable fields are cleared with `null`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignInput {
    pub name: Option<String>,
    /// E.164; required before the campaign can start.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub caller_id: Option<Option<String>>,
    /// IANA zone of the campaign's calling window.
    pub time_zone: Option<String>,
    /// `HH:MM-HH:MM` in the campaign's zone.
    #[schema(example = "09:00-20:00")]
    pub window: Option<String>,
    /// `mon-fri`, `mon,wed,fri`, `all` …
    #[schema(example = "mon-fri")]
    pub days: Option<String>,
    /// `YYYY-MM-DD`
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub start_date: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub end_date: Option<Option<String>>,
    /// ISO 3166-1 alpha-2 region for national numbers in imports.
    pub default_region: Option<String>,
    pub max_concurrent: Option<i64>,
    pub dial_ratio: Option<f64>,
    pub dial_timeout_secs: Option<i64>,
    pub max_attempts: Option<i64>,
    /// Seconds before a retry after that outcome; `null`: no retry.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub retry_no_answer_secs: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub retry_busy_secs: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub retry_failed_secs: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub retry_voicemail_secs: Option<Option<i64>>,
    pub amd_enabled: Option<bool>,
    /// Text spoken, or an http(s) audio URL played.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub voicemail_message: Option<Option<String>>,
    pub recording_enabled: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub recording_consent_message: Option<Option<String>>,
    pub max_hold_ms: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub seller_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub callback_number: Option<Option<String>>,
    /// `HH:MM-HH:MM` in the lead's own zone.
    pub legal_window: Option<String>,
    /// `{"US-FL": ["08:00", "20:00"]}`; replaces all overrides.
    #[schema(value_type = Option<Object>, example = json!({"US-FL": ["08:00", "20:00"]}))]
    pub legal_window_overrides: Option<serde_json::Value>,
    /// The agent group whose agents take the calls; `null`: any agent of the tenant.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub agent_group_id: Option<Option<Uuid>>,
    pub abandon_cap_pct: Option<f64>,
    pub disposition_codes: Option<Vec<String>>,
}

fn int<T: TryFrom<i64>>(field: &'static str, v: i64) -> Result<T, SettingError> {
    T::try_from(v).map_err(|_| SettingError {
        field,
        value: v.to_string(),
        reason: "is out of range".into(),
    })
}

fn delay(field: &'static str, v: Option<i64>) -> Result<Option<u32>, SettingError> {
    v.map(|s| {
        if s < 0 {
            Err(SettingError {
                field,
                value: s.to_string(),
                reason: "must not be negative (null: no retry)".into(),
            })
        } else {
            int(field, s)
        }
    })
    .transpose()
}

fn text(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
}

impl CampaignInput {
    /// The new campaign this input describes (defaults for what it leaves out).
    pub fn to_new(&self) -> Result<NewCampaign, SettingError> {
        let name = self.name.as_deref().ok_or_else(|| SettingError {
            field: "name",
            value: String::new(),
            reason: "is required".into(),
        })?;
        let mut c = NewCampaign::with_defaults(name)?;
        self.apply(&mut c)?;
        Ok(c)
    }

    /// Applies the fields given to `c` and checks the result as a whole.
    pub fn apply(&self, c: &mut NewCampaign) -> Result<(), SettingError> {
        if let Some(v) = &self.name {
            c.name = NewCampaign::with_defaults(v)?.name;
        }
        if let Some(v) = &self.caller_id {
            c.caller_id = text(v)
                .map(|v| cs::parse_e164("caller_id", &v))
                .transpose()?;
        }
        if let Some(v) = &self.time_zone {
            c.time_zone = cs::parse_time_zone("time_zone", v)?;
        }
        if let Some(v) = &self.window {
            c.window = DailyWindow::parse("window", v)?;
        }
        if let Some(v) = &self.days {
            c.days = WeekDays::parse(v)?;
        }
        if let Some(v) = &self.start_date {
            c.start_date = text(v)
                .map(|v| cs::parse_date("start_date", &v))
                .transpose()?;
        }
        if let Some(v) = &self.end_date {
            c.end_date = text(v)
                .map(|v| cs::parse_date("end_date", &v))
                .transpose()?;
        }
        if let Some(v) = &self.default_region {
            c.default_region = cs::parse_region("default_region", v)?;
        }
        if let Some(v) = self.max_concurrent {
            c.max_concurrent = int("max_concurrent", v)?;
        }
        if let Some(v) = self.dial_ratio {
            c.dial_ratio = v;
        }
        if let Some(v) = self.dial_timeout_secs {
            c.dial_timeout_secs = int("dial_timeout_secs", v)?;
        }
        if let Some(v) = self.max_attempts {
            c.max_attempts = int("max_attempts", v)?;
        }
        if let Some(v) = self.retry_no_answer_secs {
            c.retry_no_answer_secs = delay("retry_no_answer_secs", v)?;
        }
        if let Some(v) = self.retry_busy_secs {
            c.retry_busy_secs = delay("retry_busy_secs", v)?;
        }
        if let Some(v) = self.retry_failed_secs {
            c.retry_failed_secs = delay("retry_failed_secs", v)?;
        }
        if let Some(v) = self.retry_voicemail_secs {
            c.retry_voicemail_secs = delay("retry_voicemail_secs", v)?;
        }
        if let Some(v) = self.amd_enabled {
            c.amd_enabled = v;
        }
        if let Some(v) = &self.voicemail_message {
            c.voicemail_message = text(v);
            if let Some(m) = &c.voicemail_message
                && m.chars().count() > cs::MAX_SPOKEN_CHARS
            {
                return Err(SettingError {
                    field: "voicemail_message",
                    value: m.chars().take(40).collect(),
                    reason: format!("is longer than {} characters", cs::MAX_SPOKEN_CHARS),
                });
            }
        }
        if let Some(v) = self.recording_enabled {
            c.recording_enabled = v;
        }
        if let Some(v) = &self.recording_consent_message {
            c.recording_consent_message = match v {
                Some(v) => cs::parse_spoken("recording_consent_message", v)?,
                None => None,
            };
        }
        if let Some(v) = self.max_hold_ms {
            c.max_hold_ms = int("max_hold_ms", v)?;
        }
        if let Some(v) = &self.seller_name {
            c.seller_name = text(v);
        }
        if let Some(v) = &self.callback_number {
            c.callback_number = text(v)
                .map(|v| cs::parse_e164("callback_number", &v))
                .transpose()?;
        }
        if let Some(v) = &self.legal_window {
            c.legal_window = DailyWindow::parse("legal_window", v)?;
        }
        if let Some(v) = &self.legal_window_overrides {
            c.set_legal_overrides(v)?;
        }
        // The default window may have changed under the overrides: check them together.
        crate::schedule::LegalHours::from_json(
            c.legal_window,
            &serde_json::json!(c.legal_window_overrides),
        )?;
        c.validate()
    }

    /// The agent settings this input changes, checked.
    pub fn agent_settings(&self) -> Result<AgentSettings, SettingError> {
        let mut s = AgentSettings {
            group: self.agent_group_id,
            abandon_cap_pct: self.abandon_cap_pct,
            disposition_codes: self.disposition_codes.clone(),
        };
        s.validate()?;
        Ok(s)
    }
}

impl NewCampaign {
    /// Replaces the per-region legal windows with `overrides` (`{"US-FL": ["08:00","20:00"]}`).
    pub fn set_legal_overrides(
        &mut self,
        overrides: &serde_json::Value,
    ) -> Result<(), SettingError> {
        let parsed = crate::schedule::LegalHours::from_json(self.legal_window, overrides)?;
        self.legal_window_overrides = parsed
            .overrides
            .into_iter()
            .map(|(place, w)| (place, [hhmm(w.start), hhmm(w.end)]))
            .collect();
        Ok(())
    }

    /// The settings of a stored campaign, to change some of them.
    pub fn from_stored(c: &Campaign) -> Result<Self, SettingError> {
        let mut n = NewCampaign::with_defaults(&c.name)?;
        n.caller_id = c
            .caller_id
            .as_deref()
            .map(|v| cs::parse_e164("caller_id", v))
            .transpose()?;
        n.time_zone = cs::parse_time_zone("time_zone", &c.time_zone)?;
        n.window = DailyWindow {
            start: c.window_start,
            end: c.window_end,
        };
        n.days = WeekDays(c.days as u8);
        n.start_date = c.start_date;
        n.end_date = c.end_date;
        n.default_region = cs::parse_region("default_region", &c.default_region)?;
        n.max_concurrent = c.max_concurrent;
        n.dial_ratio = c.dial_ratio;
        n.dial_timeout_secs = c.dial_timeout_secs;
        n.max_attempts = c.max_attempts;
        let secs = |v: Option<i32>| v.map(|s| s.max(0) as u32);
        n.retry_no_answer_secs = secs(c.retry_no_answer_secs);
        n.retry_busy_secs = secs(c.retry_busy_secs);
        n.retry_failed_secs = secs(c.retry_failed_secs);
        n.retry_voicemail_secs = secs(c.retry_voicemail_secs);
        n.amd_enabled = c.amd_enabled;
        n.voicemail_message = c.voicemail().map(String::from);
        n.recording_enabled = c.recording_enabled;
        n.recording_consent_message = c.recording_consent_message.clone();
        n.max_hold_ms = c.max_hold_ms;
        n.seller_name = c.seller_name.clone();
        n.callback_number = c
            .callback_number
            .as_deref()
            .map(|v| cs::parse_e164("callback_number", v))
            .transpose()?;
        n.legal_window = DailyWindow {
            start: c.legal_window_start,
            end: c.legal_window_end,
        };
        n.set_legal_overrides(&c.legal_window_overrides.0)?;
        Ok(n)
    }
}

fn hhmm(t: chrono::NaiveTime) -> String {
    t.format("%H:%M").to_string()
}

/// A campaign's status.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum StatusName {
    Draft,
    Active,
    Paused,
    Completed,
    Stopped,
}

/// A campaign as the API shows it: the fields of [`CampaignInput`] plus identity and state.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CampaignView {
    #[schema(value_type = uuid::Uuid)]
    pub id: CampaignId,
    pub name: String,
    /// draft, active, paused, completed or stopped.
    #[schema(value_type = StatusName)]
    pub status: String,
    /// Why the campaign last changed status on its own (completed, caller id refused …).
    pub status_reason: Option<String>,
    pub caller_id: Option<String>,
    pub time_zone: String,
    pub window: String,
    pub days: String,
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
    pub recording_enabled: bool,
    pub recording_consent_message: Option<String>,
    pub max_hold_ms: i32,
    pub seller_name: Option<String>,
    pub callback_number: Option<String>,
    pub legal_window: String,
    #[schema(value_type = Object, example = json!({"US-FL": ["08:00", "20:00"]}))]
    pub legal_window_overrides: BTreeMap<String, [String; 2]>,
    pub agent_group_id: Option<Uuid>,
    pub abandon_cap_pct: f64,
    pub disposition_codes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Campaign> for CampaignView {
    fn from(c: Campaign) -> Self {
        let window =
            |s: chrono::NaiveTime, e: chrono::NaiveTime| format!("{}-{}", hhmm(s), hhmm(e));
        let overrides =
            serde_json::from_value(c.legal_window_overrides.0.clone()).unwrap_or_default();
        Self {
            voicemail_message: c.voicemail().map(String::from),
            days: c.days_text(),
            window: window(c.window_start, c.window_end),
            legal_window: window(c.legal_window_start, c.legal_window_end),
            legal_window_overrides: overrides,
            id: c.id,
            name: c.name,
            status: c.status,
            status_reason: c.status_reason,
            caller_id: c.caller_id,
            time_zone: c.time_zone,
            start_date: c.start_date,
            end_date: c.end_date,
            default_region: c.default_region,
            max_concurrent: c.max_concurrent,
            dial_ratio: c.dial_ratio,
            dial_timeout_secs: c.dial_timeout_secs,
            max_attempts: c.max_attempts,
            retry_no_answer_secs: c.retry_no_answer_secs,
            retry_busy_secs: c.retry_busy_secs,
            retry_failed_secs: c.retry_failed_secs,
            retry_voicemail_secs: c.retry_voicemail_secs,
            amd_enabled: c.amd_enabled,
            recording_enabled: c.recording_enabled,
            recording_consent_message: c.recording_consent_message,
            max_hold_ms: c.max_hold_ms,
            seller_name: c.seller_name,
            callback_number: c.callback_number,
            agent_group_id: c.agent_group_id,
            abandon_cap_pct: c.abandon_cap_pct,
            disposition_codes: c.disposition_codes,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: serde_json::Value) -> CampaignInput {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn create_needs_a_name_and_takes_defaults() {
        let e = input(serde_json::json!({})).to_new().unwrap_err();
        assert_eq!(e.field, "name");
        let c = input(serde_json::json!({"name": " Spring "}))
            .to_new()
            .unwrap();
        assert_eq!(c.name, "Spring");
        assert_eq!(c.dial_timeout_secs, 30);
        assert_eq!(c.retry_voicemail_secs, None);
    }

    #[test]
    fn each_bad_setting_is_named() {
        let cases = [
            (
                serde_json::json!({"name": "x", "dial_timeout_secs": 10}),
                "dial_timeout_secs",
            ),
            (
                serde_json::json!({"name": "x", "window": "20:00-09:00"}),
                "window",
            ),
            (
                serde_json::json!({"name": "x", "caller_id": "555"}),
                "caller_id",
            ),
            (
                serde_json::json!({"name": "x", "time_zone": "Mars/Base"}),
                "time_zone",
            ),
            (
                serde_json::json!({"name": "x", "max_concurrent": 9_999_999_999i64}),
                "max_concurrent",
            ),
            (
                serde_json::json!({"name": "x", "retry_busy_secs": -5}),
                "retry_busy_secs",
            ),
            (
                serde_json::json!({"name": "x", "start_date": "2026-05-02", "end_date": "2026-05-01"}),
                "end_date",
            ),
            (
                serde_json::json!({"name": "x", "legal_window_overrides": {"US-XX": ["08:00", "20:00"]}}),
                "legal_window_overrides",
            ),
            (
                serde_json::json!({"name": "x", "recording_consent_message": "Recorded."}),
                "recording_consent_message",
            ),
        ];
        for (json, field) in cases {
            let e = input(json.clone()).to_new().unwrap_err();
            assert_eq!(e.field, field, "{json}: {e}");
        }
    }

    #[test]
    fn null_clears_and_absent_keeps() {
        let mut c = input(serde_json::json!({
            "name": "x", "caller_id": "+12015550123", "retry_busy_secs": 600,
            "legal_window_overrides": {"us-fl": ["08:00", "20:00"]}
        }))
        .to_new()
        .unwrap();
        assert_eq!(c.caller_id.as_ref().unwrap().as_str(), "+12015550123");
        assert_eq!(c.legal_window_overrides["US-FL"], ["08:00", "20:00"]);
        input(serde_json::json!({"caller_id": null, "retry_busy_secs": null}))
            .apply(&mut c)
            .unwrap();
        assert!(c.caller_id.is_none());
        assert_eq!(c.retry_busy_secs, None);
        assert_eq!(c.retry_no_answer_secs, Some(3600));
        assert_eq!(c.legal_window_overrides.len(), 1);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e =
            serde_json::from_value::<CampaignInput>(serde_json::json!({"nmae": "x"})).unwrap_err();
        assert!(e.to_string().contains("nmae"), "{e}");
    }
}
