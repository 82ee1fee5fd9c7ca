//! Agents and agent groups: who takes the people the dialer reaches, where their phone is,
//! when they work, and the status rules that keep the call flow's reservations honest.
//!
//! The call flow (`engine::transfer`, `engine::wrapup`) moves agents through `busy` and
//! `wrap_up`; people (the agent or a manager) only choose between `available`, `break`
//! and `offline`. Everything here is pure: parsing untrusted input into valid settings,
//! and deciding whether a status change is allowed. The SQL is in [`repo`].

pub mod repo;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize, Serializer};
use uuid::Uuid;

use crate::campaign::settings::{self as cs, SettingError, WeekDays};

/// Identifies an agent; only built from a parsed UUID or a database row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, sqlx::Type, utoipa::ToSchema)]
#[sqlx(transparent)]
#[serde(transparent)]
pub struct AgentId(pub Uuid);

/// Identifies an agent group; only built from a parsed UUID or a database row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, sqlx::Type, utoipa::ToSchema)]
#[sqlx(transparent)]
#[serde(transparent)]
pub struct GroupId(pub Uuid);

impl std::str::FromStr for AgentId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s.trim())
            .map(AgentId)
            .map_err(|_| format!("`{s}` is not an agent id (a UUID)"))
    }
}

impl std::str::FromStr for GroupId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s.trim())
            .map(GroupId)
            .map_err(|_| format!("`{s}` is not an agent group id (a UUID)"))
    }
}

impl std::fmt::Display for AgentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where an agent is. The database's CHECK constraint holds the same closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// May be offered calls (within working hours and their call limit).
    Available,
    /// On as many calls as they may take (set by the call flow).
    Busy,
    /// A call ended; their disposition is awaited (set by the call flow).
    WrapUp,
    Break,
    Offline,
}

impl AgentStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Busy => "busy",
            Self::WrapUp => "wrap_up",
            Self::Break => "break",
            Self::Offline => "offline",
        }
    }

    /// Parses a status name (`wrap-up` and any case accepted).
    pub fn parse(raw: &str) -> Result<Self, SettingError> {
        match raw.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "available" => Ok(Self::Available),
            "busy" => Ok(Self::Busy),
            "wrap_up" => Ok(Self::WrapUp),
            "break" => Ok(Self::Break),
            "offline" => Ok(Self::Offline),
            _ => Err(invalid(
                "status",
                raw,
                "not a status (available, break, offline; busy and wrap_up are set by the call flow)",
            )),
        }
    }

    /// The statuses a person may choose; `busy` and `wrap_up` belong to the call flow.
    pub fn is_chosen_by_people(&self) -> bool {
        matches!(self, Self::Available | Self::Break | Self::Offline)
    }
}

impl std::fmt::Display for AgentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

fn invalid(field: &'static str, value: &str, reason: impl Into<String>) -> SettingError {
    SettingError {
        field,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// A time of day to the minute, `00:00` to `24:00` inclusive (`24:00` ends a shift at
/// midnight). Stored in Postgres `time`, which knows `24:00` too (chrono does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct WorkTime(u16);

impl WorkTime {
    pub const MIDNIGHT: WorkTime = WorkTime(0);
    pub const END_OF_DAY: WorkTime = WorkTime(24 * 60);

    /// Parses `HH:MM` (`9:30` too); `24:00` is the end of the day.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, SettingError> {
        let bad = || invalid(field, raw, "expected a time HH:MM between 00:00 and 24:00");
        let (h, m) = raw.trim().split_once(':').ok_or_else(bad)?;
        if h.is_empty() || h.len() > 2 || m.len() != 2 {
            return Err(bad());
        }
        let h: u16 = h.parse().map_err(|_| bad())?;
        let m: u16 = m.parse().map_err(|_| bad())?;
        if m > 59 || h > 24 || (h == 24 && m != 0) {
            return Err(bad());
        }
        Ok(Self(h * 60 + m))
    }

    /// From minutes since midnight (as the repository reads the column).
    pub fn from_minutes(minutes: i32) -> Option<Self> {
        u16::try_from(minutes)
            .ok()
            .filter(|m| *m <= 24 * 60)
            .map(Self)
    }
}

impl std::fmt::Display for WorkTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl Serialize for WorkTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Where the agent's phone is: an E.164 number, a `sip:` URI or a Twilio `client:`
/// identity (the forms the `agents.endpoint` CHECK constraint allows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Endpoint(String);

impl Endpoint {
    pub fn parse(raw: &str) -> Result<Self, SettingError> {
        const HOW: &str = "expected a phone number in international form (+CC…), a sip:user@host URI or a client:identity";
        let t = raw.trim();
        let lower = t.to_ascii_lowercase();
        let rest = |prefix: &str| {
            let rest = &t[prefix.len()..];
            if rest.is_empty() || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
                Err(invalid(
                    "endpoint",
                    raw,
                    format!("`{prefix}` must be followed by an address without spaces"),
                ))
            } else {
                Ok(rest)
            }
        };
        if lower.starts_with("sip:") {
            let rest = rest("sip:")?;
            match rest.split_once('@') {
                Some((user, host)) if !user.is_empty() && !host.is_empty() => {
                    Ok(Self(format!("sip:{rest}")))
                }
                _ => Err(invalid("endpoint", raw, "a SIP URI is sip:user@host")),
            }
        } else if lower.starts_with("client:") {
            Ok(Self(format!("client:{}", rest("client:")?)))
        } else if t.starts_with('+') {
            cs::parse_e164("endpoint", t).map(|n| Self(n.as_str().to_string()))
        } else {
            Err(invalid("endpoint", raw, HOW))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An agent's settings, valid by construction: what a manager chooses (status and
/// groups aside).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSettings {
    pub name: String,
    pub endpoint: Endpoint,
    pub time_zone: Tz,
    pub work_start: WorkTime,
    pub work_end: WorkTime,
    pub work_days: WeekDays,
    pub max_concurrent_calls: i32,
}

/// The most calls one agent may be offered at once.
pub const MAX_CONCURRENT_CALLS: i64 = 10;

/// Agent fields as they arrive (API body, CLI flags): nothing checked yet, every field
/// optional so the same shape serves create and partial update.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentInput {
    pub name: Option<String>,
    pub endpoint: Option<String>,
    pub time_zone: Option<String>,
    pub work_start: Option<String>,
    pub work_end: Option<String>,
    /// Day names: `["mon", "tue"]`.
    pub work_days: Option<Vec<String>>,
    #[schema(minimum = 1, maximum = 10)]
    pub max_concurrent_calls: Option<i64>,
    /// Group ids; on update the agent's groups become exactly these.
    #[schema(value_type = Option<Vec<uuid::Uuid>>)]
    pub groups: Option<Vec<String>>,
    /// Only on create (default `offline`); later changes go through the status rules.
    pub status: Option<String>,
}

impl AgentSettings {
    /// A new agent: `name` and `endpoint` are required; the rest defaults to any time, any
    /// day, UTC, one call at a time.
    pub fn new(input: &AgentInput) -> Result<Self, SettingError> {
        let required = |field: &'static str, v: &Option<String>| match v {
            Some(v) => Ok(v.clone()),
            None => Err(invalid(field, "", "is required")),
        };
        let base = Self {
            name: parse_name(&required("name", &input.name)?)?,
            endpoint: Endpoint::parse(&required("endpoint", &input.endpoint)?)?,
            time_zone: chrono_tz::UTC,
            work_start: WorkTime::MIDNIGHT,
            work_end: WorkTime::END_OF_DAY,
            work_days: WeekDays::ALL,
            max_concurrent_calls: 1,
        };
        base.apply(input)
    }

    /// These settings with the fields `input` gives replaced, all checked together (so a
    /// new `work_end` is compared with the current `work_start`).
    pub fn apply(&self, input: &AgentInput) -> Result<Self, SettingError> {
        let mut s = self.clone();
        if let Some(v) = &input.name {
            s.name = parse_name(v)?;
        }
        if let Some(v) = &input.endpoint {
            s.endpoint = Endpoint::parse(v)?;
        }
        if let Some(v) = &input.time_zone {
            s.time_zone = cs::parse_time_zone("time_zone", v)?;
        }
        if let Some(v) = &input.work_start {
            s.work_start = WorkTime::parse("work_start", v)?;
        }
        if let Some(v) = &input.work_end {
            s.work_end = WorkTime::parse("work_end", v)?;
        }
        if let Some(v) = &input.work_days {
            s.work_days = parse_work_days(v)?;
        }
        if let Some(v) = input.max_concurrent_calls {
            let n = cs::check_range("max_concurrent_calls", v, 1, MAX_CONCURRENT_CALLS)?;
            s.max_concurrent_calls = n as i32;
        }
        if s.work_end <= s.work_start {
            let (field, value) = if input.work_end.is_some() || input.work_start.is_none() {
                ("work_end", s.work_end)
            } else {
                ("work_start", s.work_start)
            };
            return Err(invalid(
                field,
                &value.to_string(),
                format!(
                    "the working day {}-{} must end after it starts (shifts across midnight are not supported; 24:00 ends one at midnight)",
                    s.work_start, s.work_end
                ),
            ));
        }
        Ok(s)
    }
}

fn parse_name(raw: &str) -> Result<String, SettingError> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(invalid("name", raw, "must not be empty"));
    }
    if t.chars().count() > 200 {
        return Err(invalid("name", raw, "is longer than 200 characters"));
    }
    Ok(t.to_string())
}

/// `["mon", "tue"]` (full names and ranges such as `mon-fri` too) into a day set.
pub fn parse_work_days(days: &[String]) -> Result<WeekDays, SettingError> {
    if days.is_empty() {
        return Err(invalid("work_days", "[]", "at least one day is needed"));
    }
    let mut bits = 0u8;
    for d in days {
        // Day names are ASCII; anything else is refused here, before
        // `WeekDays::parse` slices the name by bytes.
        if !d.is_ascii() {
            return Err(invalid("work_days", d, "not a day (mon … sun)"));
        }
        let parsed = WeekDays::parse(d).map_err(|e| SettingError {
            field: "work_days",
            value: d.clone(),
            reason: e.reason,
        })?;
        bits |= parsed.0;
    }
    Ok(WeekDays(bits))
}

/// Day names of a day set, Monday first: `["mon", "tue"]`.
pub fn day_names(days: WeekDays) -> Vec<String> {
    days.to_text()
        .split(',')
        .filter(|d| !d.is_empty())
        .map(String::from)
        .collect()
}

fn serialize_days<S: Serializer>(days: &WeekDays, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(day_names(*days))
}

/// An agent as stored, with the groups they belong to.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Agent {
    pub id: AgentId,
    pub name: String,
    pub endpoint: String,
    pub status: AgentStatus,
    pub status_changed_at: DateTime<Utc>,
    /// When they last became free; the longest idle is offered the next call.
    #[schema(required = true)]
    pub idle_since: Option<DateTime<Utc>>,
    pub max_concurrent_calls: i32,
    pub active_calls: i32,
    /// An IANA time zone name (`America/New_York`).
    pub time_zone: String,
    /// `HH:MM` in `time_zone`; `24:00` ends the day at midnight.
    #[schema(value_type = String, example = "09:00")]
    pub work_start: WorkTime,
    #[schema(value_type = String, example = "17:00")]
    pub work_end: WorkTime,
    /// Day names, Monday first.
    #[serde(serialize_with = "serialize_days")]
    #[schema(value_type = Vec<String>, example = json!(["mon", "tue", "wed", "thu", "fri"]))]
    pub work_days: WeekDays,
    /// Offers declined or missed in a row (`dialer.agent_max_misses` sets them offline).
    pub missed_offers: i32,
    pub groups: Vec<GroupId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Agent {
    /// The stored settings, as the base of a partial update.
    pub fn settings(&self) -> Result<AgentSettings, SettingError> {
        Ok(AgentSettings {
            name: self.name.clone(),
            endpoint: Endpoint(self.endpoint.clone()),
            time_zone: cs::parse_time_zone("time_zone", &self.time_zone)?,
            work_start: self.work_start,
            work_end: self.work_end,
            work_days: self.work_days,
            max_concurrent_calls: self.max_concurrent_calls,
        })
    }
}

/// A group of agents a campaign offers its calls to.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgentGroup {
    pub id: GroupId,
    pub name: String,
    /// The members' ids.
    pub agents: Vec<AgentId>,
    /// Campaigns whose calls go to this group.
    pub campaigns: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// Group fields as they arrive; all optional so create and update share the shape.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupInput {
    pub name: Option<String>,
    /// Agent ids; on update the members become exactly these.
    #[schema(value_type = Option<Vec<uuid::Uuid>>)]
    pub agents: Option<Vec<String>>,
}

/// Parses a group name (trimmed, non-empty).
pub fn parse_group_name(raw: &str) -> Result<String, SettingError> {
    parse_name(raw)
}

/// What a status decision needs to know about the agent right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusNow {
    pub status: AgentStatus,
    pub active_calls: i32,
    pub max_concurrent_calls: i32,
    /// The call whose disposition the agent owes, if any.
    pub owed_disposition: Option<i64>,
}

/// Why a requested status was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusRefusal {
    /// `busy` and `wrap_up` follow the calls themselves.
    SetByCallFlow(AgentStatus),
    /// On as many calls as they may take: they become available when a call ends.
    OnCall { active_calls: i32 },
    /// The disposition of this call comes first.
    DispositionOwed { call: i64 },
}

/// May an agent who is in `now` ask for `to`? `break` and `offline` are always allowed —
/// they take effect for future offers; a call in progress goes on. `available` is
/// refused while the agent's calls fill their limit, and while a disposition is owed.
pub fn check_status_change(now: &StatusNow, to: AgentStatus) -> Result<(), StatusRefusal> {
    if !to.is_chosen_by_people() {
        return Err(StatusRefusal::SetByCallFlow(to));
    }
    if to != AgentStatus::Available {
        return Ok(());
    }
    if now.status == AgentStatus::WrapUp
        && let Some(call) = now.owed_disposition
    {
        return Err(StatusRefusal::DispositionOwed { call });
    }
    if now.status == AgentStatus::Busy || now.active_calls >= now.max_concurrent_calls {
        return Err(StatusRefusal::OnCall {
            active_calls: now.active_calls,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(f: impl FnOnce(&mut AgentInput)) -> AgentInput {
        let mut i = AgentInput {
            name: Some("Ann Lee".into()),
            endpoint: Some("+1 201 555 0123".into()),
            ..Default::default()
        };
        f(&mut i);
        i
    }

    #[test]
    fn a_new_agent_gets_defaults_and_a_normalised_number() {
        let s = AgentSettings::new(&input(|_| {})).unwrap();
        assert_eq!(s.endpoint.as_str(), "+12015550123");
        assert_eq!(s.time_zone, chrono_tz::UTC);
        assert_eq!(
            (s.work_start.to_string(), s.work_end.to_string()),
            ("00:00".into(), "24:00".into())
        );
        assert_eq!(s.work_days, WeekDays::ALL);
        assert_eq!(s.max_concurrent_calls, 1);
    }

    #[test]
    fn endpoints_are_numbers_sip_uris_or_client_identities() {
        assert_eq!(
            Endpoint::parse("SIP:ann@pbx.example.com").unwrap().as_str(),
            "sip:ann@pbx.example.com"
        );
        assert_eq!(
            Endpoint::parse(" client:ann_lee ").unwrap().as_str(),
            "client:ann_lee"
        );
        for bad in [
            "2015550123",
            "sip:pbx.example.com",
            "client:",
            "client:ann lee",
            "+1555",
            "mailto:a@b",
        ] {
            let e = Endpoint::parse(bad).unwrap_err();
            assert_eq!((e.field, e.value.as_str()), ("endpoint", bad), "{bad}");
        }
    }

    #[test]
    fn bad_fields_are_named_with_their_value() {
        let field = |f: fn(&mut AgentInput)| AgentSettings::new(&input(f)).unwrap_err();
        let e = field(|i| i.name = Some("  ".into()));
        assert_eq!(e.field, "name");
        let e = field(|i| i.time_zone = Some("Mars/Base".into()));
        assert_eq!((e.field, e.value.as_str()), ("time_zone", "Mars/Base"));
        let e = field(|i| i.work_start = Some("9am".into()));
        assert_eq!((e.field, e.value.as_str()), ("work_start", "9am"));
        let e = field(|i| i.work_end = Some("24:30".into()));
        assert_eq!(e.field, "work_end");
        let e = field(|i| i.work_days = Some(vec!["mon".into(), "funday".into()]));
        assert_eq!((e.field, e.value.as_str()), ("work_days", "funday"));
        let e = field(|i| i.work_days = Some(vec![]));
        assert_eq!(e.field, "work_days");
        let e = field(|i| i.max_concurrent_calls = Some(11));
        assert_eq!((e.field, e.value.as_str()), ("max_concurrent_calls", "11"));
        let e = field(|i| i.max_concurrent_calls = Some(0));
        assert_eq!(e.field, "max_concurrent_calls");
        let e = field(|i| i.endpoint = None);
        assert_eq!(e.field, "endpoint");
    }

    #[test]
    fn the_working_day_ends_after_it_starts_and_may_end_at_midnight() {
        let s = AgentSettings::new(&input(|i| {
            i.work_start = Some("9:00".into());
            i.work_end = Some("24:00".into());
            i.work_days = Some(vec!["Mon".into(), "wed-fri".into()]);
        }))
        .unwrap();
        assert_eq!(day_names(s.work_days), ["mon", "wed", "thu", "fri"]);
        let e = AgentSettings::new(&input(|i| {
            i.work_start = Some("17:00".into());
            i.work_end = Some("09:00".into());
        }))
        .unwrap_err();
        assert_eq!((e.field, e.value.as_str()), ("work_end", "09:00"));
        // A partial update is checked against the stored other end.
        let patch = AgentInput {
            work_start: Some("18:00".into()),
            ..Default::default()
        };
        let stored = AgentSettings::new(&input(|i| i.work_end = Some("17:00".into()))).unwrap();
        let e = stored.apply(&patch).unwrap_err();
        assert_eq!((e.field, e.value.as_str()), ("work_start", "18:00"));
    }

    #[test]
    fn status_rules() {
        use AgentStatus::*;
        let now = |status, active, owed| StatusNow {
            status,
            active_calls: active,
            max_concurrent_calls: 1,
            owed_disposition: owed,
        };
        assert_eq!(
            check_status_change(&now(Available, 0, None), Busy),
            Err(StatusRefusal::SetByCallFlow(Busy))
        );
        assert_eq!(
            check_status_change(&now(Offline, 0, None), WrapUp),
            Err(StatusRefusal::SetByCallFlow(WrapUp))
        );
        assert_eq!(
            check_status_change(&now(Busy, 1, None), Available),
            Err(StatusRefusal::OnCall { active_calls: 1 })
        );
        // On a break during a call: still on the call.
        assert_eq!(
            check_status_change(&now(Break, 1, None), Available),
            Err(StatusRefusal::OnCall { active_calls: 1 })
        );
        assert_eq!(
            check_status_change(&now(WrapUp, 0, Some(42)), Available),
            Err(StatusRefusal::DispositionOwed { call: 42 })
        );
        // Nothing owed (the call is gone): nothing keeps them from working.
        assert_eq!(
            check_status_change(&now(WrapUp, 0, None), Available),
            Ok(())
        );
        for from in [Available, Busy, WrapUp, Break, Offline] {
            assert_eq!(check_status_change(&now(from, 1, None), Break), Ok(()));
            assert_eq!(check_status_change(&now(from, 1, None), Offline), Ok(()));
        }
        // With room for a second call, an agent on one may be available.
        let two = StatusNow {
            max_concurrent_calls: 2,
            ..now(Break, 1, None)
        };
        assert_eq!(check_status_change(&two, Available), Ok(()));
    }

    #[test]
    fn status_names_parse() {
        assert_eq!(AgentStatus::parse(" Wrap-Up").unwrap(), AgentStatus::WrapUp);
        let e = AgentStatus::parse("lunch").unwrap_err();
        assert_eq!((e.field, e.value.as_str()), ("status", "lunch"));
    }
}
