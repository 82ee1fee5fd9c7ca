//! Calls: one row per attempt to reach a lead, and every carrier callback about it.
//!
//! The carrier's callbacks arrive duplicated and out of order; [`repo`] stores each one as
//! a `call_events` row whose natural key makes a replay a no-op, and applies it to the
//! call only when it is newer than what the call already shows ([`StatusUpdate::rank`]
//! and the callback's `SequenceNumber`). A final status is never replaced.

pub mod repo;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::telephony::{AnsweredBy, CallSid, CallStatus, RecordingStatus};

/// A call row's id: also the name of its conference and part of its webhook URLs, so a
/// callback that outruns the carrier's create-call response still finds its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, sqlx::Type)]
#[sqlx(transparent)]
#[serde(transparent)]
pub struct CallId(pub i64);

impl std::fmt::Display for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl CallId {
    /// The conference that bridges this attempt's lead and its agent.
    pub fn conference_name(self) -> String {
        format!("call-{}", self.0)
    }
}

/// What a status callback says about a call, parsed from its parameters.
#[derive(Debug, Clone)]
pub struct StatusUpdate {
    pub sid: Option<CallSid>,
    pub status: CallStatus,
    pub sequence: Option<i32>,
    /// The carrier's `Timestamp` (RFC 2822), or the time it was received.
    pub at: DateTime<Utc>,
    pub duration_secs: Option<i32>,
    pub sip_response_code: Option<i32>,
    pub error_code: Option<i32>,
    pub answered_by: Option<AnsweredBy>,
}

impl StatusUpdate {
    /// What makes two deliveries of a status callback the same event.
    pub fn event_key(&self) -> String {
        match self.sequence {
            Some(seq) => format!("{}:{seq}", self.status),
            None => self.status.to_string(),
        }
    }
}

/// What a recording status callback says, parsed from its parameters. A conference's
/// recording names its conference (`ConferenceSid`) and usually no call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingUpdate {
    /// `RecordingSid`: `RE` + 32 hex digits.
    pub sid: String,
    pub status: RecordingStatus,
    /// `RecordingUrl`: where the audio is (completed only).
    pub url: Option<String>,
    /// `RecordingDuration` in seconds (completed only).
    pub duration_secs: Option<i32>,
    pub conference_sid: Option<String>,
    pub call_sid: Option<String>,
    /// `ErrorCode` of an absent or failed recording (16101 too short, 16102 silent …).
    pub error_code: Option<i32>,
}

/// A recording callback without what identifies it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("recording callback without a valid {0}")]
pub struct MissingField(pub &'static str);

impl RecordingUpdate {
    /// Reads a recording callback's parameters (`get` looks one up by name).
    pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, MissingField> {
        let sid = get("RecordingSid")
            .filter(|s| crate::telephony::is_sid(s, "RE"))
            .ok_or(MissingField("RecordingSid"))?;
        let status = get("RecordingStatus")
            .filter(|s| !s.trim().is_empty())
            .map(RecordingStatus::parse)
            .ok_or(MissingField("RecordingStatus"))?;
        let int = |name: &str| get(name).and_then(|v| v.trim().parse().ok());
        let text = |name: &str| get(name).filter(|v| !v.is_empty()).map(str::to_string);
        Ok(Self {
            sid: sid.to_string(),
            status,
            url: text("RecordingUrl"),
            duration_secs: int("RecordingDuration"),
            conference_sid: text("ConferenceSid"),
            call_sid: text("CallSid"),
            error_code: int("ErrorCode"),
        })
    }

    /// What makes two deliveries of a recording callback the same event.
    pub fn event_key(&self) -> String {
        format!("{}:{}", self.sid, self.status)
    }
}

/// The carrier-level disposition of an attempt that ended with `status`. The bridge may
/// have set a more specific one already (e.g. `abandoned`), which this never replaces.
pub fn disposition_for(
    status: &CallStatus,
    answered_by: Option<&AnsweredBy>,
) -> Option<&'static str> {
    Some(match status {
        CallStatus::Completed => match answered_by {
            Some(a) if a.is_machine() => "voicemail",
            _ => "answered",
        },
        CallStatus::Busy => "busy",
        CallStatus::NoAnswer => "no_answer",
        CallStatus::Failed => "failed",
        CallStatus::Canceled => "canceled",
        _ => return None,
    })
}

/// How a callback changed its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A new event, and the call now shows it.
    Applied,
    /// A new event, stored, but older than what the call shows (or after its end).
    Stale,
    /// The same event was received before: nothing changed.
    Duplicate,
    /// No call with that id.
    UnknownCall,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::Applied => "applied",
            Applied::Stale => "stale",
            Applied::Duplicate => "duplicate",
            Applied::UnknownCall => "unknown_call",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recording(params: &[(&str, &str)]) -> Result<RecordingUpdate, MissingField> {
        RecordingUpdate::parse(|name| params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v))
    }

    const RE: &str = "RE0123456789abcdef0123456789abcdef";

    #[test]
    fn a_conference_recording_callback_is_read_without_a_call_sid() {
        let r = recording(&[
            ("AccountSid", "AC00000000000000000000000000000000"),
            ("ConferenceSid", "CF0123456789abcdef0123456789abcdef"),
            ("RecordingSid", RE),
            (
                "RecordingUrl",
                "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE01",
            ),
            ("RecordingStatus", "completed"),
            ("RecordingDuration", "42"),
            ("RecordingChannels", "1"),
            ("RecordingSource", "Conference"),
        ])
        .unwrap();
        assert_eq!(r.status, RecordingStatus::Completed);
        assert_eq!(r.duration_secs, Some(42));
        assert_eq!(
            r.conference_sid.as_deref(),
            Some("CF0123456789abcdef0123456789abcdef")
        );
        assert_eq!(r.call_sid, None);
        assert_eq!(r.event_key(), format!("{RE}:completed"));
    }

    #[test]
    fn absent_and_failed_recordings_carry_no_file_but_an_error_code() {
        let r = recording(&[
            ("RecordingSid", RE),
            ("RecordingStatus", "absent"),
            ("RecordingUrl", ""),
            ("ErrorCode", "16101"),
        ])
        .unwrap();
        assert_eq!(r.status, RecordingStatus::Absent);
        assert_eq!(
            (r.url, r.duration_secs, r.error_code),
            (None, None, Some(16101))
        );
        let failed = recording(&[("RecordingSid", RE), ("RecordingStatus", "failed")]).unwrap();
        assert_eq!(failed.status, RecordingStatus::Failed);
        // A status the carrier may add later is kept, not refused.
        let odd = recording(&[("RecordingSid", RE), ("RecordingStatus", "paused")]).unwrap();
        assert_eq!(odd.status.as_str(), "paused");
    }

    #[test]
    fn a_recording_callback_without_a_valid_sid_or_status_is_refused() {
        assert_eq!(
            recording(&[("RecordingStatus", "completed")]),
            Err(MissingField("RecordingSid"))
        );
        assert_eq!(
            recording(&[("RecordingSid", "RE1"), ("RecordingStatus", "completed")]),
            Err(MissingField("RecordingSid"))
        );
        assert_eq!(
            recording(&[("RecordingSid", RE), ("RecordingStatus", "")]),
            Err(MissingField("RecordingStatus"))
        );
    }

    #[test]
    fn completed_call_answered_by_a_machine_is_a_voicemail() {
        let beep = AnsweredBy::MachineEndBeep;
        assert_eq!(
            disposition_for(&CallStatus::Completed, Some(&beep)),
            Some("voicemail")
        );
        assert_eq!(
            disposition_for(&CallStatus::Completed, Some(&AnsweredBy::Human)),
            Some("answered")
        );
        assert_eq!(
            disposition_for(&CallStatus::Completed, None),
            Some("answered")
        );
        assert_eq!(
            disposition_for(&CallStatus::NoAnswer, None),
            Some("no_answer")
        );
        assert_eq!(disposition_for(&CallStatus::Ringing, None), None);
    }

    #[test]
    fn event_key_tells_repeats_from_new_events() {
        let mut u = StatusUpdate {
            sid: None,
            status: CallStatus::Ringing,
            sequence: Some(1),
            at: Utc::now(),
            duration_secs: None,
            sip_response_code: None,
            error_code: None,
            answered_by: None,
        };
        assert_eq!(u.event_key(), "ringing:1");
        u.sequence = None;
        assert_eq!(u.event_key(), "ringing");
    }
}

/// The part of a call row a status callback may change.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CallProgress {
    pub state: String,
    pub last_sequence: Option<i32>,
    pub call_sid: Option<String>,
    pub answered_by: Option<String>,
    pub disposition: Option<String>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub duration_secs: Option<i32>,
    pub error_code: Option<i32>,
}

impl CallProgress {
    /// Applies a status callback; returns whether it was newer than what the call shows.
    ///
    /// Facts that do not depend on order (the SID, when it was answered, how long it
    /// lasted) are kept from any callback; the state only moves forward: never off a final
    /// state, never to a lower [`CallStatus::rank`], never to an older `SequenceNumber`.
    pub fn apply(&mut self, u: &StatusUpdate) -> bool {
        let current = CallStatus::parse(&self.state);
        let newer = !current.is_final()
            && !matches!(u.status, CallStatus::Unknown(_))
            && u.status.rank() >= current.rank()
            && match (self.last_sequence, u.sequence) {
                (Some(last), Some(seq)) => seq > last,
                _ => true,
            };
        if self.call_sid.is_none() {
            self.call_sid = u.sid.as_ref().map(|s| s.to_string());
        }
        if u.status == CallStatus::InProgress && self.answered_at.is_none() {
            self.answered_at = Some(u.at);
        }
        if self.answered_by.is_none() {
            self.answered_by = u.answered_by.as_ref().map(|a| a.to_string());
        }
        if u.status.is_final() {
            self.ended_at.get_or_insert(u.at);
            if self.duration_secs.is_none() {
                self.duration_secs = u.duration_secs;
            }
            if self.error_code.is_none() {
                self.error_code = u.error_code;
            }
        }
        if newer {
            self.state = u.status.to_string();
            self.last_sequence = u.sequence.or(self.last_sequence);
            if u.status.is_final() && self.disposition.is_none() {
                let by = self.answered_by.as_deref().map(AnsweredBy::parse);
                self.disposition = disposition_for(&u.status, by.as_ref()).map(String::from);
            }
        }
        newer
    }
}

#[cfg(test)]
mod progress_tests {
    use super::*;
    use chrono::TimeZone;

    fn fresh() -> CallProgress {
        CallProgress {
            state: "dialing".into(),
            last_sequence: None,
            call_sid: None,
            answered_by: None,
            disposition: None,
            answered_at: None,
            ended_at: None,
            duration_secs: None,
            error_code: None,
        }
    }

    fn update(status: &str, seq: i32, secs: i64) -> StatusUpdate {
        StatusUpdate {
            sid: Some(CallSid::parse("CA0123456789abcdef0123456789abcdef").unwrap()),
            status: CallStatus::parse(status),
            sequence: Some(seq),
            at: Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap(),
            duration_secs: (status == "completed").then_some(42),
            sip_response_code: None,
            error_code: None,
            answered_by: None,
        }
    }

    #[test]
    fn callbacks_in_any_order_end_in_the_same_state() {
        let seq = [
            update("initiated", 0, 0),
            update("ringing", 1, 1),
            update("in-progress", 2, 5),
            update("completed", 3, 47),
        ];
        let mut in_order = fresh();
        for u in &seq {
            assert!(in_order.apply(u));
        }
        // Every permutation of the four callbacks, each possibly delivered twice.
        let mut idx = [0usize, 1, 2, 3];
        permute(&mut idx, 0, &mut |order| {
            let mut p = fresh();
            for &i in order {
                p.apply(&seq[i]);
                p.apply(&seq[i]);
            }
            assert_eq!(p, in_order, "order {order:?}");
        });
        assert_eq!(in_order.state, "completed");
        assert_eq!(in_order.disposition.as_deref(), Some("answered"));
        assert_eq!(in_order.duration_secs, Some(42));
        assert_eq!(in_order.answered_at, Some(seq[2].at));
        assert_eq!(in_order.ended_at, Some(seq[3].at));
    }

    fn permute(v: &mut [usize; 4], k: usize, f: &mut impl FnMut(&[usize])) {
        if k == v.len() {
            f(v);
            return;
        }
        for i in k..v.len() {
            v.swap(k, i);
            permute(v, k + 1, f);
            v.swap(k, i);
        }
    }

    #[test]
    fn a_final_state_is_never_replaced() {
        let mut p = fresh();
        assert!(p.apply(&update("busy", 2, 3)));
        assert!(!p.apply(&update("completed", 5, 9)));
        assert_eq!(p.state, "busy");
        assert_eq!(p.disposition.as_deref(), Some("busy"));
    }

    #[test]
    fn a_disposition_set_by_the_bridge_is_kept() {
        let mut p = fresh();
        p.disposition = Some("abandoned".into());
        p.apply(&update("completed", 3, 60));
        assert_eq!(p.disposition.as_deref(), Some("abandoned"));
    }
}
