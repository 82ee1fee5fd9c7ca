//! Request and response types of the REST client, and the form encoding Twilio expects:
//! `application/x-www-form-urlencoded`, booleans as `true`/`false`, lists as repeated keys,
//! and only the fields the caller set.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Deserializer};

use crate::telephony::{AnsweredBy, CallSid, CallStatus};

/// The form body of one request: `(Twilio parameter name, value)` pairs in order. A list
/// is several pairs with the same key, which is how Twilio reads arrays.
pub(super) type FormPairs = Vec<(&'static str, String)>;

/// Builder for [`FormPairs`] that skips unset fields.
#[derive(Default)]
struct Form(FormPairs);

impl Form {
    fn text(&mut self, key: &'static str, value: &str) {
        self.0.push((key, value.to_string()));
    }

    fn opt_text(&mut self, key: &'static str, value: Option<&String>) {
        if let Some(v) = value {
            self.text(key, v);
        }
    }

    fn opt_bool(&mut self, key: &'static str, value: Option<bool>) {
        if let Some(v) = value {
            self.text(key, if v { "true" } else { "false" });
        }
    }

    fn opt_u32(&mut self, key: &'static str, value: Option<u32>) {
        if let Some(v) = value {
            self.0.push((key, v.to_string()));
        }
    }

    fn opt_method(&mut self, key: &'static str, value: Option<HttpMethod>) {
        if let Some(m) = value {
            self.text(key, m.as_str());
        }
    }

    fn list<T: WireValue>(&mut self, key: &'static str, values: &[T]) {
        for v in values {
            self.text(key, v.wire());
        }
    }
}

/// A closed set of values with one spelling on the wire.
trait WireValue {
    fn wire(&self) -> &'static str;
}

/// Declares a closed request enum with its wire spelling; these are values we send, so
/// there is no `Unknown` variant.
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant,)+
        }

        impl $name {
            /// The value exactly as Twilio spells it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $s,)+
                }
            }
        }

        impl WireValue for $name {
            fn wire(&self) -> &'static str {
                self.as_str()
            }
        }
    };
}

wire_enum! {
    /// How Twilio fetches a callback or TwiML URL.
    HttpMethod { Get = "GET", Post = "POST" }
}

wire_enum! {
    /// Answering-machine detection mode (`MachineDetection`).
    MachineDetection {
        /// Verdict as soon as a human or machine is recognised.
        Enable = "Enable",
        /// Wait for the machine's greeting to end (beep or silence), for voicemail drops.
        DetectMessageEnd = "DetectMessageEnd",
    }
}

wire_enum! {
    /// Call progress events to be told about (`StatusCallbackEvent` of a call or participant).
    CallEvent {
        Initiated = "initiated",
        Ringing = "ringing",
        Answered = "answered",
        Completed = "completed",
    }
}

wire_enum! {
    /// Recording events to be told about (`RecordingStatusCallbackEvent`).
    RecordingEvent {
        InProgress = "in-progress",
        Completed = "completed",
        Absent = "absent",
    }
}

wire_enum! {
    /// Conference events to subscribe to (`ConferenceStatusCallbackEvent`). The callbacks
    /// then name them as [`crate::telephony::ConferenceEvent`] (`participant-join` …).
    ConferenceCallbackEvent {
        Start = "start",
        End = "end",
        Join = "join",
        Leave = "leave",
        Mute = "mute",
        Hold = "hold",
        Modify = "modify",
        Speaker = "speaker",
        Announcement = "announcement",
    }
}

wire_enum! {
    /// When a conference beeps for a participant (`Beep`).
    Beep {
        /// Beep when anyone enters or leaves (Twilio's default).
        EnterAndExit = "true",
        Never = "false",
        OnEnter = "onEnter",
        OnExit = "onExit",
    }
}

wire_enum! {
    /// How to end a call with [`UpdateCall::End`] (`Status`).
    EndCall {
        /// Cancel a call that is queued or ringing; an answered call is left alone.
        Canceled = "canceled",
        /// Hang up the call whatever its state.
        Completed = "completed",
    }
}

/// What a call does once answered (or after a redirect): fetch TwiML from a URL, or run
/// the TwiML given inline. Twilio needs exactly one of them, so it is one enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instructions {
    /// `Url` (+ `Method`, POST when unset).
    Url {
        /// Where Twilio fetches the TwiML.
        url: String,
        /// How it fetches it (Twilio's default: POST).
        method: Option<HttpMethod>,
    },
    /// `Twiml`: a whole `<Response>` document, at most 4,000 characters on Twilio.
    Twiml(String),
}

impl Instructions {
    fn write(&self, form: &mut Form) {
        match self {
            Instructions::Url { url, method } => {
                form.text("Url", url);
                form.opt_method("Method", *method);
            }
            Instructions::Twiml(twiml) => form.text("Twiml", twiml),
        }
    }
}

/// `POST /Calls.json`: place an outbound call. Fields left `None` or empty are not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateCall {
    /// Number to dial, E.164 (`To`).
    pub to: String,
    /// Caller ID, E.164, owned or verified on the account (`From`).
    pub from: String,
    /// What the call does once answered (`Url` / `Twiml`).
    pub instructions: Instructions,
    /// URL told about call progress (`StatusCallback`).
    pub status_callback: Option<String>,
    /// How `status_callback` is called (`StatusCallbackMethod`).
    pub status_callback_method: Option<HttpMethod>,
    /// Sent as repeated `StatusCallbackEvent` keys; Twilio sends only `completed` if empty.
    pub status_callback_event: Vec<CallEvent>,
    /// Seconds to let the phone ring before giving up with `no-answer` (`Timeout`).
    pub timeout_secs: Option<u32>,
    /// Answering-machine detection (`MachineDetection`); off when unset.
    pub machine_detection: Option<MachineDetection>,
    /// Seconds AMD may take before answering `unknown` (`MachineDetectionTimeout`).
    pub machine_detection_timeout_secs: Option<u32>,
    /// Run `instructions` at once and post the AMD verdict to `async_amd_status_callback`.
    pub async_amd: Option<bool>,
    /// Where the asynchronous AMD verdict is posted (`AsyncAmdStatusCallback`).
    pub async_amd_status_callback: Option<String>,
    /// How `async_amd_status_callback` is called.
    pub async_amd_status_callback_method: Option<HttpMethod>,
    /// Record the call (`Record`).
    pub record: Option<bool>,
    /// URL told about the recording (`RecordingStatusCallback`).
    pub recording_status_callback: Option<String>,
    /// Recording events to be told about; repeated keys.
    pub recording_status_callback_event: Vec<RecordingEvent>,
}

impl CreateCall {
    /// A call with only the required parameters set.
    pub fn new(to: impl Into<String>, from: impl Into<String>, instructions: Instructions) -> Self {
        Self {
            to: to.into(),
            from: from.into(),
            instructions,
            status_callback: None,
            status_callback_method: None,
            status_callback_event: Vec::new(),
            timeout_secs: None,
            machine_detection: None,
            machine_detection_timeout_secs: None,
            async_amd: None,
            async_amd_status_callback: None,
            async_amd_status_callback_method: None,
            record: None,
            recording_status_callback: None,
            recording_status_callback_event: Vec::new(),
        }
    }

    pub(super) fn form(&self) -> FormPairs {
        let mut f = Form::default();
        f.text("To", &self.to);
        f.text("From", &self.from);
        self.instructions.write(&mut f);
        f.opt_text("StatusCallback", self.status_callback.as_ref());
        f.opt_method("StatusCallbackMethod", self.status_callback_method);
        f.list("StatusCallbackEvent", &self.status_callback_event);
        f.opt_u32("Timeout", self.timeout_secs);
        if let Some(m) = self.machine_detection {
            f.text("MachineDetection", m.as_str());
        }
        f.opt_u32(
            "MachineDetectionTimeout",
            self.machine_detection_timeout_secs,
        );
        // The spec types AsyncAmd as a string, but the only values are "true" / "false".
        f.opt_bool("AsyncAmd", self.async_amd);
        f.opt_text(
            "AsyncAmdStatusCallback",
            self.async_amd_status_callback.as_ref(),
        );
        f.opt_method(
            "AsyncAmdStatusCallbackMethod",
            self.async_amd_status_callback_method,
        );
        f.opt_bool("Record", self.record);
        f.opt_text(
            "RecordingStatusCallback",
            self.recording_status_callback.as_ref(),
        );
        f.list(
            "RecordingStatusCallbackEvent",
            &self.recording_status_callback_event,
        );
        f.0
    }
}

/// `POST /Calls/{Sid}.json`: change a live call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateCall {
    /// Stop what the call is doing and run new instructions (e.g. bridge into a conference).
    Redirect(Instructions),
    /// Cancel (queued / ringing only) or hang up the call.
    End(EndCall),
}

impl UpdateCall {
    pub(super) fn form(&self) -> FormPairs {
        let mut f = Form::default();
        match self {
            UpdateCall::Redirect(instructions) => instructions.write(&mut f),
            UpdateCall::End(status) => f.text("Status", status.as_str()),
        }
        f.0
    }
}

/// `POST /Conferences/{name}/Participants.json`: dial someone into a conference
/// (created on first use). Fields left `None` or empty are not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddParticipant {
    /// Caller ID shown to the participant, E.164 (`From`).
    pub from: String,
    /// Number to dial, E.164 (`To`).
    pub to: String,
    /// A name for the participant, usable in place of its call SID afterwards.
    pub label: Option<String>,
    /// Seconds to ring before giving up (`Timeout`).
    pub timeout_secs: Option<u32>,
    /// Start the conference when this participant joins (else they wait).
    pub start_conference_on_enter: Option<bool>,
    /// End the conference when this participant leaves.
    pub end_conference_on_exit: Option<bool>,
    /// Beep on enter / exit (`Beep`).
    pub beep: Option<Beep>,
    /// Join muted.
    pub muted: Option<bool>,
    /// URL told about this leg's call progress (`StatusCallback`).
    pub status_callback: Option<String>,
    /// How `status_callback` is called.
    pub status_callback_method: Option<HttpMethod>,
    /// Call progress events for `status_callback`; repeated keys.
    pub status_callback_event: Vec<CallEvent>,
    /// URL told about conference events (`ConferenceStatusCallback`).
    pub conference_status_callback: Option<String>,
    /// How `conference_status_callback` is called.
    pub conference_status_callback_method: Option<HttpMethod>,
    /// Conference events for `conference_status_callback`; repeated keys.
    pub conference_status_callback_event: Vec<ConferenceCallbackEvent>,
    /// Let the participant hear ringback / early media before answering.
    pub early_media: Option<bool>,
    /// TwiML URL played while waiting for the conference to start (`WaitUrl`; empty = silence).
    pub wait_url: Option<String>,
    /// Caller ID for the leg when it differs from `from` (`CallerId`).
    pub caller_id: Option<String>,
    /// Record this participant's leg (`Record`).
    pub record: Option<bool>,
}

impl AddParticipant {
    /// A participant with only the required parameters set.
    pub fn new(from: impl Into<String>, to: impl Into<String>) -> Self {
        Self {
            from: from.into(),
            to: to.into(),
            label: None,
            timeout_secs: None,
            start_conference_on_enter: None,
            end_conference_on_exit: None,
            beep: None,
            muted: None,
            status_callback: None,
            status_callback_method: None,
            status_callback_event: Vec::new(),
            conference_status_callback: None,
            conference_status_callback_method: None,
            conference_status_callback_event: Vec::new(),
            early_media: None,
            wait_url: None,
            caller_id: None,
            record: None,
        }
    }

    pub(super) fn form(&self) -> FormPairs {
        let mut f = Form::default();
        f.text("From", &self.from);
        f.text("To", &self.to);
        f.opt_text("Label", self.label.as_ref());
        f.opt_u32("Timeout", self.timeout_secs);
        f.opt_bool("StartConferenceOnEnter", self.start_conference_on_enter);
        f.opt_bool("EndConferenceOnExit", self.end_conference_on_exit);
        if let Some(b) = self.beep {
            f.text("Beep", b.as_str());
        }
        f.opt_bool("Muted", self.muted);
        f.opt_text("StatusCallback", self.status_callback.as_ref());
        f.opt_method("StatusCallbackMethod", self.status_callback_method);
        f.list("StatusCallbackEvent", &self.status_callback_event);
        f.opt_text(
            "ConferenceStatusCallback",
            self.conference_status_callback.as_ref(),
        );
        f.opt_method(
            "ConferenceStatusCallbackMethod",
            self.conference_status_callback_method,
        );
        f.list(
            "ConferenceStatusCallbackEvent",
            &self.conference_status_callback_event,
        );
        f.opt_bool("EarlyMedia", self.early_media);
        f.opt_text("WaitUrl", self.wait_url.as_ref());
        f.opt_text("CallerId", self.caller_id.as_ref());
        f.opt_bool("Record", self.record);
        f.0
    }
}

/// `POST /Conferences/{Sid}/Participants/{CallSid}.json`: change a participant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateParticipant {
    /// Put on (or take off) hold.
    pub hold: Option<bool>,
    /// TwiML URL played to a held participant.
    pub hold_url: Option<String>,
    /// How `hold_url` is fetched.
    pub hold_method: Option<HttpMethod>,
    /// Mute or unmute.
    pub muted: Option<bool>,
    /// TwiML URL (`<Say>`/`<Play>`) played to this participant only.
    pub announce_url: Option<String>,
    /// How `announce_url` is fetched.
    pub announce_method: Option<HttpMethod>,
    /// End the conference when this participant leaves.
    pub end_conference_on_exit: Option<bool>,
    /// Coach mode: heard only by `call_sid_to_coach` (the agent whisper).
    pub coaching: Option<bool>,
    /// The call the coach is heard by (`CallSidToCoach`).
    pub call_sid_to_coach: Option<CallSid>,
}

impl UpdateParticipant {
    pub(super) fn form(&self) -> FormPairs {
        let mut f = Form::default();
        f.opt_bool("Hold", self.hold);
        f.opt_text("HoldUrl", self.hold_url.as_ref());
        f.opt_method("HoldMethod", self.hold_method);
        f.opt_bool("Muted", self.muted);
        f.opt_text("AnnounceUrl", self.announce_url.as_ref());
        f.opt_method("AnnounceMethod", self.announce_method);
        f.opt_bool("EndConferenceOnExit", self.end_conference_on_exit);
        f.opt_bool("Coaching", self.coaching);
        if let Some(sid) = &self.call_sid_to_coach {
            f.text("CallSidToCoach", sid.as_str());
        }
        f.0
    }
}

/// `POST /Conferences/{Sid}.json`: end a conference or announce to all of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateConference {
    /// `Status=completed`: end the conference, hanging up every participant.
    pub end: bool,
    /// TwiML URL played to every participant.
    pub announce_url: Option<String>,
    /// How `announce_url` is fetched.
    pub announce_method: Option<HttpMethod>,
}

impl UpdateConference {
    pub(super) fn form(&self) -> FormPairs {
        let mut f = Form::default();
        if self.end {
            f.text("Status", "completed");
        }
        f.opt_text("AnnounceUrl", self.announce_url.as_ref());
        f.opt_method("AnnounceMethod", self.announce_method);
        f.0
    }
}

/// One page of `GET /Calls.json`.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct CallPage {
    #[serde(default)]
    pub calls: Vec<CallResource>,
}

/// A call as the carrier returns it. Only `sid` and `status` are required; other fields
/// are optional (Twilio-compatible carriers omit some) and unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CallResource {
    /// The call's SID, the key for every later update and callback.
    pub sid: CallSid,
    /// Where the call is now (`queued` right after creation).
    #[serde(deserialize_with = "call_status")]
    pub status: CallStatus,
    /// The account that owns the call.
    #[serde(default)]
    pub account_sid: Option<String>,
    /// Dialled number as the carrier normalised it.
    #[serde(default)]
    pub to: Option<String>,
    /// Caller ID used.
    #[serde(default)]
    pub from: Option<String>,
    /// `outbound-api` for calls we place, `inbound` for calls to us.
    #[serde(default)]
    pub direction: Option<String>,
    /// The call that created this one (a `<Dial>` leg), if any.
    #[serde(default)]
    pub parent_call_sid: Option<CallSid>,
    /// Synchronous AMD verdict, once known.
    #[serde(default, deserialize_with = "opt_answered_by")]
    pub answered_by: Option<AnsweredBy>,
    /// When the carrier created the call.
    #[serde(default, deserialize_with = "opt_date")]
    pub date_created: Option<DateTime<FixedOffset>>,
    /// When it was answered.
    #[serde(default, deserialize_with = "opt_date")]
    pub start_time: Option<DateTime<FixedOffset>>,
    /// When it ended.
    #[serde(default, deserialize_with = "opt_date")]
    pub end_time: Option<DateTime<FixedOffset>>,
    /// Seconds, once the call has ended (Twilio sends it as a string).
    #[serde(default, rename = "duration", deserialize_with = "opt_count")]
    pub duration_secs: Option<u64>,
}

/// A conference participant (one call leg in a conference).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ParticipantResource {
    /// The participant's call leg.
    pub call_sid: CallSid,
    /// The conference's SID (`CF…`), also when it was addressed by name.
    #[serde(default)]
    pub conference_sid: Option<String>,
    /// The label given when adding it.
    #[serde(default)]
    pub label: Option<String>,
    /// Where the leg is in joining.
    #[serde(default, deserialize_with = "opt_participant_status")]
    pub status: Option<ParticipantStatus>,
    /// Muted now.
    #[serde(default)]
    pub muted: Option<bool>,
    /// On hold now.
    #[serde(default)]
    pub hold: Option<bool>,
    /// In coach mode now.
    #[serde(default)]
    pub coaching: Option<bool>,
    /// Starts the conference on entering.
    #[serde(default)]
    pub start_conference_on_enter: Option<bool>,
    /// Ends the conference on leaving.
    #[serde(default)]
    pub end_conference_on_exit: Option<bool>,
    /// When it was added.
    #[serde(default, deserialize_with = "opt_date")]
    pub date_created: Option<DateTime<FixedOffset>>,
}

/// A conference as the carrier returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ConferenceResource {
    /// `CF` + 32 hex digits on Twilio.
    pub sid: String,
    /// The name it was created under (the `<Conference>` noun's text).
    #[serde(default)]
    pub friendly_name: Option<String>,
    /// Its state now.
    #[serde(default, deserialize_with = "opt_conference_status")]
    pub status: Option<ConferenceStatus>,
    /// The account that owns it.
    #[serde(default)]
    pub account_sid: Option<String>,
    /// When it was created.
    #[serde(default, deserialize_with = "opt_date")]
    pub date_created: Option<DateTime<FixedOffset>>,
}

/// Declares a response enum: the carrier may add values, so `Unknown` keeps them.
macro_rules! response_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            /// A value this client does not know yet, kept verbatim.
            Unknown(String),
        }

        impl $name {
            /// Reads the carrier's spelling; anything else is kept as `Unknown`.
            pub fn parse(s: &str) -> Self {
                match s {
                    $($s => $name::$variant,)+
                    other => $name::Unknown(other.to_string()),
                }
            }
        }
    };
}

response_enum! {
    /// A participant's state (`status` of a participant).
    ParticipantStatus {
        Queued = "queued",
        Connecting = "connecting",
        Ringing = "ringing",
        Connected = "connected",
        Complete = "complete",
        Failed = "failed",
    }
}

response_enum! {
    /// A conference's state (`status` of a conference).
    ConferenceStatus {
        Init = "init",
        InProgress = "in-progress",
        Completed = "completed",
    }
}

fn call_status<'de, D: Deserializer<'de>>(d: D) -> Result<CallStatus, D::Error> {
    Ok(CallStatus::parse(&String::deserialize(d)?))
}

fn opt_answered_by<'de, D: Deserializer<'de>>(d: D) -> Result<Option<AnsweredBy>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(|s| AnsweredBy::parse(&s)))
}

fn opt_participant_status<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<ParticipantStatus>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(|s| ParticipantStatus::parse(&s)))
}

fn opt_conference_status<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<ConferenceStatus>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(|s| ConferenceStatus::parse(&s)))
}

/// Twilio dates are RFC 2822 (`Tue, 31 Aug 2010 20:36:28 +0000`); RFC 3339 is accepted
/// too for compatible carriers. Anything else is a decode error, not a silent `None`.
fn opt_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<FixedOffset>>, D::Error> {
    let Some(s) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    DateTime::parse_from_rfc2822(&s)
        .or_else(|_| DateTime::parse_from_rfc3339(&s))
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("not an RFC 2822 date: {s:?}")))
}

/// A non-negative count Twilio may send as a string (`"15"`) or a number.
fn opt_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Count {
        Number(u64),
        Text(String),
    }
    match Option::<Count>::deserialize(d)? {
        None => Ok(None),
        Some(Count::Number(n)) => Ok(Some(n)),
        Some(Count::Text(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("not a count: {s:?}"))),
    }
}

/// Twilio's error body: `{"code": 20404, "message": "...", "more_info": "...", "status": 404}`.
#[derive(Debug, Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default)]
    pub code: Option<u32>,
    #[serde(default)]
    pub message: Option<String>,
}
