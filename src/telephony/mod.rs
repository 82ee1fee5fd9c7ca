//! The carrier boundary: Twilio's vocabulary as types, request signatures, TwiML, and the
//! REST client. Everything the outside world sends is parsed into these types once.
//!
//! - [`signature`]: X-Twilio-Signature, computed and checked exactly as Twilio's validators do.
//! - [`twiml`]: a typed TwiML builder (and parser, for the simulator).
//! - [`client`]: the typed REST client (calls, conferences, participants).

pub mod client;
pub mod signature;
pub mod twiml;

#[cfg(test)]
mod reference_tests;

use std::fmt;

use serde::{Deserialize, Serialize};

/// A call's SID as the carrier gave it (`CA` + 32 hex digits on Twilio). Only built by
/// [`CallSid::parse`], so a value of the type is never empty or oversized.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CallSid(String);

impl CallSid {
    /// Accepts `CA` followed by 32 hex digits, as every Twilio-compatible carrier issues.
    pub fn parse(s: &str) -> Result<Self, InvalidSid> {
        if is_sid(s, "CA") {
            Ok(Self(s.to_string()))
        } else {
            Err(InvalidSid(s.chars().take(64).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `prefix` + 32 hex digits (Twilio's SID shape for accounts, calls, conferences …).
pub fn is_sid(s: &str, prefix: &str) -> bool {
    s.len() == prefix.len() + 32
        && s.starts_with(prefix)
        && s[prefix.len()..].bytes().all(|b| b.is_ascii_hexdigit())
}

impl fmt::Display for CallSid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CallSid {
    type Error = InvalidSid;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        CallSid::parse(&s)
    }
}

impl From<CallSid> for String {
    fn from(s: CallSid) -> String {
        s.0
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("not a call SID (expected CA + 32 hex digits): {0:?}")]
pub struct InvalidSid(pub String);

/// Declares an enum of carrier strings with an `Unknown(String)` catch-all, since the
/// carrier may add values we have not seen.
macro_rules! carrier_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            Unknown(String),
        }

        impl $name {
            pub fn parse(s: &str) -> Self {
                match s {
                    $($s => $name::$variant,)+
                    other => $name::Unknown(other.to_string()),
                }
            }

            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $s,)+
                    $name::Unknown(s) => s,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok($name::parse(&s))
            }
        }
    };
}

carrier_enum! {
    /// A call's status as the carrier reports it (`CallStatus` in callbacks, `status` in JSON).
    CallStatus {
        Queued = "queued",
        Initiated = "initiated",
        Ringing = "ringing",
        InProgress = "in-progress",
        Completed = "completed",
        Busy = "busy",
        NoAnswer = "no-answer",
        Failed = "failed",
        Canceled = "canceled",
    }
}

impl CallStatus {
    /// A final status ends the call: no later callback changes it.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            CallStatus::Completed
                | CallStatus::Busy
                | CallStatus::NoAnswer
                | CallStatus::Failed
                | CallStatus::Canceled
        )
    }

    /// Order of the call's life, so an older status never replaces a newer one when
    /// callbacks arrive out of order. Unknown values rank lowest (stored, never applied).
    pub fn rank(&self) -> u8 {
        match self {
            CallStatus::Unknown(_) => 0,
            CallStatus::Queued => 1,
            CallStatus::Initiated => 2,
            CallStatus::Ringing => 3,
            CallStatus::InProgress => 4,
            _ => 5,
        }
    }
}

carrier_enum! {
    /// Answering-machine detection's verdict (`AnsweredBy`).
    AnsweredBy {
        Human = "human",
        MachineStart = "machine_start",
        MachineEndBeep = "machine_end_beep",
        MachineEndSilence = "machine_end_silence",
        MachineEndOther = "machine_end_other",
        Fax = "fax",
        NoAnswerBy = "unknown",
    }
}

impl AnsweredBy {
    /// A machine whose greeting has ended: the voicemail drop can play now.
    pub fn is_machine(&self) -> bool {
        matches!(
            self,
            AnsweredBy::MachineStart
                | AnsweredBy::MachineEndBeep
                | AnsweredBy::MachineEndSilence
                | AnsweredBy::MachineEndOther
        )
    }
}

carrier_enum! {
    /// Conference status callback events (`StatusCallbackEvent` of a conference).
    ConferenceEvent {
        ConferenceStart = "conference-start",
        ConferenceEnd = "conference-end",
        ParticipantJoin = "participant-join",
        ParticipantLeave = "participant-leave",
        ParticipantMute = "participant-mute",
        ParticipantUnmute = "participant-unmute",
        ParticipantHold = "participant-hold",
        ParticipantUnhold = "participant-unhold",
        ParticipantSpeechStart = "participant-speech-start",
        ParticipantSpeechStop = "participant-speech-stop",
        AnnouncementEnd = "announcement-end",
        AnnouncementFail = "announcement-fail",
    }
}

carrier_enum! {
    /// A recording's state in a recording status callback (`RecordingStatus`). `failed` is
    /// sent when an encrypted recording could not be stored.
    RecordingStatus {
        InProgress = "in-progress",
        Completed = "completed",
        Absent = "absent",
        Failed = "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_sid_accepts_only_ca_and_32_hex_digits() {
        assert!(CallSid::parse("CA0123456789abcdef0123456789ABCDEF").is_ok());
        assert!(CallSid::parse("CA0123").is_err());
        assert!(CallSid::parse("PA0123456789abcdef0123456789abcdef").is_err());
        assert!(CallSid::parse("CA0123456789abcdef0123456789abcdeg").is_err());
    }

    #[test]
    fn unknown_carrier_values_are_kept_not_dropped() {
        assert_eq!(CallStatus::parse("in-progress"), CallStatus::InProgress);
        let odd = CallStatus::parse("paused");
        assert_eq!(odd.as_str(), "paused");
        assert!(!odd.is_final());
        assert_eq!(AnsweredBy::parse("unknown"), AnsweredBy::NoAnswerBy);
        assert!(AnsweredBy::parse("machine_end_beep").is_machine());
        assert!(!AnsweredBy::parse("fax").is_machine());
    }

    #[test]
    fn later_statuses_rank_higher() {
        let order = ["queued", "initiated", "ringing", "in-progress", "completed"];
        for w in order.windows(2) {
            assert!(CallStatus::parse(w[0]).rank() < CallStatus::parse(w[1]).rank());
        }
    }
}
