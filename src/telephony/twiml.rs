//! TwiML for voice: a typed builder and a parser back into the same types.
//!
//! [`VoiceResponse::to_xml`] writes byte for byte what Twilio's Python helper library
//! (`twilio.twiml.voice_response.VoiceResponse`, 9.8.0) writes for the same verbs: the XML
//! declaration, no pretty-printing, camelCase attributes sorted by name (the library sorts
//! them), `true`/`false` for booleans, and `xml.etree` escaping (text: `& < >`; attributes:
//! `& < > "` and newline, carriage return, tab as character references). User data only ever
//! goes through that escaping, so no text can change the document's structure.
//!
//! Two deliberate differences, both where the Python output is not what was meant: a carriage
//! return in text is written `&#13;` (raw, every XML parser, Twilio's included, would read it
//! as a newline), and characters XML 1.0 cannot carry at all (C0 controls other than tab,
//! newline and carriage return; U+FFFE, U+FFFF) are dropped (raw, they make the whole
//! document malformed and Twilio rejects the call's TwiML).
//!
//! [`VoiceResponse::parse`] reads TwiML into the same types (the carrier simulator interprets
//! the daemon's answers with it). It rejects what it does not know, naming the element or
//! attribute, and ignores whitespace-only text between elements. For every response whose
//! strings hold only XML characters, `parse(to_xml(r)) == r`.

use std::fmt;

/// A `<Response>` document: the verbs Twilio executes in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VoiceResponse {
    /// The verbs, in document order.
    pub verbs: Vec<Verb>,
}

/// One top-level TwiML voice verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    /// `<Say>`: text to speech.
    Say(Say),
    /// `<Play>`: an audio file or DTMF tones.
    Play(Play),
    /// `<Pause>`: silence.
    Pause(Pause),
    /// `<Gather>`: collect digits or speech.
    Gather(Gather),
    /// `<Dial>`: connect the call to a conference, number, client or SIP endpoint.
    Dial(Dial),
    /// `<Redirect>`: continue with the TwiML at another URL.
    Redirect(Redirect),
    /// `<Hangup>`: end the call.
    Hangup,
    /// `<Reject>`: refuse an incoming call without answering it.
    Reject(Reject),
}

/// Declares a closed enum of TwiML attribute values with its strings; parsing an unknown
/// string is an error (the parser reports the attribute), not a catch-all variant, because
/// the daemon only ever writes these values.
macro_rules! twiml_enum {
    ($(#[$m:meta])* $name:ident, $expected:literal { $($(#[$vm:meta])* $variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &[$name] = &[$($name::$variant),+];

            /// The value as TwiML writes it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $s,)+
                }
            }

            /// The value for a TwiML string, if it is one of ours.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($s => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl AttrValue for $name {
            const EXPECTED: &'static str = $expected;
            fn render(&self) -> String {
                self.as_str().to_string()
            }
            fn from_attr(s: &str) -> Option<Self> {
                $name::parse(s)
            }
        }
    };
}

twiml_enum! {
    /// HTTP method Twilio uses for a callback or action URL.
    Method, "GET or POST" {
        /// `GET`
        Get = "GET",
        /// `POST`
        Post = "POST",
    }
}

twiml_enum! {
    /// What `<Gather>` listens for.
    GatherInput, "dtmf, speech or \"dtmf speech\"" {
        /// Keypad digits only.
        Dtmf = "dtmf",
        /// Speech only.
        Speech = "speech",
        /// Digits or speech, whichever comes first.
        DtmfSpeech = "dtmf speech",
    }
}

twiml_enum! {
    /// `<Dial record>`: whether and from when the dialled call is recorded.
    DialRecord, "do-not-record, record-from-answer, record-from-ringing, record-from-answer-dual or record-from-ringing-dual" {
        /// No recording.
        DoNotRecord = "do-not-record",
        /// Mono recording from the answer.
        RecordFromAnswer = "record-from-answer",
        /// Mono recording from the first ring.
        RecordFromRinging = "record-from-ringing",
        /// Two-channel recording from the answer.
        RecordFromAnswerDual = "record-from-answer-dual",
        /// Two-channel recording from the first ring.
        RecordFromRingingDual = "record-from-ringing-dual",
    }
}

twiml_enum! {
    /// `<Conference beep>`: when the conference beeps.
    ConferenceBeep, "true, false, onEnter or onExit" {
        /// On every entry and exit.
        Always = "true",
        /// Never.
        Never = "false",
        /// Only when a participant enters.
        OnEnter = "onEnter",
        /// Only when a participant leaves.
        OnExit = "onExit",
    }
}

twiml_enum! {
    /// `<Conference record>`: whether the conference is recorded.
    ConferenceRecord, "do-not-record or record-from-start" {
        /// No recording.
        DoNotRecord = "do-not-record",
        /// Record from the conference's start.
        RecordFromStart = "record-from-start",
    }
}

twiml_enum! {
    /// A recording event a `recordingStatusCallbackEvent` subscribes to (Twilio's default,
    /// without the attribute, is `completed` alone).
    RecordingCallbackEvent, "in-progress, completed or absent" {
        /// The recording started.
        InProgress = "in-progress",
        /// The recording's file is ready at its URL.
        Completed = "completed",
        /// No recording was kept (too short, or silent).
        Absent = "absent",
    }
}

twiml_enum! {
    /// An event a `<Conference statusCallbackEvent>` subscribes to (the callbacks themselves
    /// arrive as [`super::ConferenceEvent`], e.g. `participant-join` for `join`).
    ConferenceCallbackEvent, "start, end, join, leave, mute, hold, modify, speaker or announcement" {
        /// The conference starts.
        Start = "start",
        /// The conference ends.
        End = "end",
        /// A participant joins.
        Join = "join",
        /// A participant leaves.
        Leave = "leave",
        /// A participant is muted or unmuted.
        Mute = "mute",
        /// A participant is held or unheld.
        Hold = "hold",
        /// A participant's settings change.
        Modify = "modify",
        /// A participant starts or stops speaking.
        Speaker = "speaker",
        /// An announcement ends or fails.
        Announcement = "announcement",
    }
}

twiml_enum! {
    /// `<Reject reason>`: what the caller hears.
    RejectReason, "rejected or busy" {
        /// "Not in service" (the default).
        Rejected = "rejected",
        /// A busy signal.
        Busy = "busy",
    }
}

/// `<Say>`: speak `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Say {
    /// What to say (escaped on output; may be anything).
    pub text: String,
    /// `voice`, e.g. `alice` or `Polly.Joanna`.
    pub voice: Option<String>,
    /// `language`, e.g. `en-US`.
    pub language: Option<String>,
    /// `loop`: times to repeat (0 = until the call ends).
    pub loop_count: Option<u32>,
}

/// `<Play>`: play the audio at `url`, or DTMF `digits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Play {
    /// The audio URL (empty when only `digits` are played).
    pub url: String,
    /// `loop`: times to repeat (0 = until the call ends).
    pub loop_count: Option<u32>,
    /// `digits`: DTMF tones to send (`0-9`, `*`, `#`, `w` for a half-second wait).
    pub digits: Option<String>,
}

/// `<Pause>`: wait silently.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pause {
    /// `length` in seconds (Twilio's default is 1).
    pub length: Option<u32>,
}

/// `<Gather>`: collect input while optionally prompting with nested verbs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gather {
    /// `input`: digits, speech or both.
    pub input: Option<GatherInput>,
    /// `numDigits`: stop after this many digits.
    pub num_digits: Option<u32>,
    /// `timeout` in seconds of silence before giving up.
    pub timeout: Option<u32>,
    /// `action`: where the result is sent.
    pub action: Option<String>,
    /// `method` for `action`.
    pub method: Option<Method>,
    /// `finishOnKey` (empty string: no key finishes).
    pub finish_on_key: Option<String>,
    /// `actionOnEmptyResult`: call `action` even without input.
    pub action_on_empty_result: Option<bool>,
    /// The prompt, played while listening.
    pub prompts: Vec<Prompt>,
}

/// A verb nested in `<Gather>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// `<Say>`
    Say(Say),
    /// `<Play>`
    Play(Play),
    /// `<Pause>`
    Pause(Pause),
}

/// `<Dial>`: connect the call to its targets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dial {
    /// `callerId` shown to the dialled party.
    pub caller_id: Option<String>,
    /// `timeout` in seconds to wait for an answer.
    pub timeout: Option<u32>,
    /// `action`: where the outcome is sent when the dialled call ends.
    pub action: Option<String>,
    /// `method` for `action`.
    pub method: Option<Method>,
    /// `record`
    pub record: Option<DialRecord>,
    /// `answerOnBridge`: keep the caller ringing until the dialled party answers.
    pub answer_on_bridge: Option<bool>,
    /// `timeLimit` in seconds for the dialled call.
    pub time_limit: Option<u32>,
    /// `hangupOnStar`: the caller can leave by pressing `*`.
    pub hangup_on_star: Option<bool>,
    /// What to dial.
    pub targets: Vec<DialTarget>,
}

/// A noun nested in `<Dial>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialTarget {
    /// `<Conference>`
    Conference(Conference),
    /// `<Number>`: a phone number (E.164).
    Number(String),
    /// `<Client>`: a Voice SDK client identity.
    Client(String),
    /// `<Sip>`: a SIP URI.
    Sip(String),
}

/// `<Conference>`: join the conference called `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conference {
    /// The conference's friendly name (the element's text).
    pub name: String,
    /// `startConferenceOnEnter`
    pub start_conference_on_enter: Option<bool>,
    /// `endConferenceOnExit`
    pub end_conference_on_exit: Option<bool>,
    /// `waitUrl`: hold music (empty string: silence).
    pub wait_url: Option<String>,
    /// `waitMethod` for `waitUrl`.
    pub wait_method: Option<Method>,
    /// `beep`
    pub beep: Option<ConferenceBeep>,
    /// `muted`
    pub muted: Option<bool>,
    /// `maxParticipants`
    pub max_participants: Option<u32>,
    /// `record`
    pub record: Option<ConferenceRecord>,
    /// `statusCallback`: where conference events are sent.
    pub status_callback: Option<String>,
    /// `statusCallbackEvent`, written space-separated; empty means absent.
    pub status_callback_event: Vec<ConferenceCallbackEvent>,
    /// `statusCallbackMethod` for `statusCallback`.
    pub status_callback_method: Option<Method>,
    /// `recordingStatusCallback`: where the recording's events are sent.
    pub recording_status_callback: Option<String>,
    /// `recordingStatusCallbackMethod` for `recordingStatusCallback`.
    pub recording_status_callback_method: Option<Method>,
    /// `recordingStatusCallbackEvent`, written space-separated; empty means absent.
    pub recording_status_callback_event: Vec<RecordingCallbackEvent>,
    /// `participantLabel`: a name for this participant in the conference API.
    pub participant_label: Option<String>,
}

/// `<Redirect>`: continue with the TwiML at `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// Where the next TwiML is.
    pub url: String,
    /// `method` for `url`.
    pub method: Option<Method>,
}

/// `<Reject>`: refuse an incoming call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reject {
    /// `reason`
    pub reason: Option<RejectReason>,
}

/// Why TwiML could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TwimlError {
    /// Not well-formed XML (or a DTD, which is refused).
    #[error("TwiML is not well-formed XML: {0}")]
    Xml(#[from] roxmltree::Error),
    /// The root element is not `<Response>`.
    #[error("TwiML root element is <{0}>, expected <Response>")]
    NotResponse(String),
    /// An element this parser does not know, or not allowed where it is.
    #[error("<{element}> is not allowed inside <{parent}>")]
    UnknownElement {
        /// The enclosing element.
        parent: String,
        /// The element found.
        element: String,
    },
    /// An attribute the element does not have (here).
    #[error("<{element}> has no attribute {attribute:?}")]
    UnknownAttribute {
        /// The element carrying it.
        element: String,
        /// The attribute's name.
        attribute: String,
    },
    /// A known attribute with a value of the wrong kind.
    #[error("<{element} {attribute}={value:?}>: expected {expected}")]
    InvalidAttribute {
        /// The element carrying it.
        element: String,
        /// The attribute's name.
        attribute: String,
        /// The value found.
        value: String,
        /// What the attribute takes.
        expected: &'static str,
    },
    /// Non-whitespace text where only elements may be.
    #[error("<{element}> contains text {text:?} where only elements are allowed")]
    UnexpectedText {
        /// The element containing it.
        element: String,
        /// The text found.
        text: String,
    },
}

// ---------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------

/// Generates `field(value)` setters that fill an `Option` field.
macro_rules! setters {
    ($ty:ident { $($(#[$doc:meta])* $field:ident: $t:ty),+ $(,)? }) => {
        impl $ty {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $field(mut self, value: impl Into<$t>) -> Self {
                    self.$field = Some(value.into());
                    self
                }
            )+
        }
    };
}

impl VoiceResponse {
    /// An empty `<Response>`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends any verb.
    #[must_use]
    pub fn verb(mut self, verb: Verb) -> Self {
        self.verbs.push(verb);
        self
    }

    /// Appends `<Say>`.
    #[must_use]
    pub fn say(self, say: Say) -> Self {
        self.verb(Verb::Say(say))
    }

    /// Appends `<Play>`.
    #[must_use]
    pub fn play(self, play: Play) -> Self {
        self.verb(Verb::Play(play))
    }

    /// Appends `<Pause>`.
    #[must_use]
    pub fn pause(self, pause: Pause) -> Self {
        self.verb(Verb::Pause(pause))
    }

    /// Appends `<Gather>`.
    #[must_use]
    pub fn gather(self, gather: Gather) -> Self {
        self.verb(Verb::Gather(gather))
    }

    /// Appends `<Dial>`.
    #[must_use]
    pub fn dial(self, dial: Dial) -> Self {
        self.verb(Verb::Dial(dial))
    }

    /// Appends `<Redirect>`.
    #[must_use]
    pub fn redirect(self, redirect: Redirect) -> Self {
        self.verb(Verb::Redirect(redirect))
    }

    /// Appends `<Hangup>`.
    #[must_use]
    pub fn hangup(self) -> Self {
        self.verb(Verb::Hangup)
    }

    /// Appends `<Reject>`.
    #[must_use]
    pub fn reject(self, reject: Reject) -> Self {
        self.verb(Verb::Reject(reject))
    }
}

impl Say {
    /// `<Say>text</Say>` with Twilio's default voice.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            voice: None,
            language: None,
            loop_count: None,
        }
    }
}

setters!(Say {
    /// Sets `voice`.
    voice: String,
    /// Sets `language`.
    language: String,
    /// Sets `loop`.
    loop_count: u32,
});

impl Play {
    /// `<Play>url</Play>`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            loop_count: None,
            digits: None,
        }
    }

    /// `<Play digits="…"/>`: DTMF tones, no audio file.
    pub fn dtmf(digits: impl Into<String>) -> Self {
        Self::new("").digits(digits)
    }
}

setters!(Play {
    /// Sets `loop`.
    loop_count: u32,
    /// Sets `digits`.
    digits: String,
});

impl Pause {
    /// `<Pause/>` of Twilio's default second.
    pub fn new() -> Self {
        Self::default()
    }
}

setters!(Pause {
    /// Sets `length` in seconds.
    length: u32,
});

impl Gather {
    /// `<Gather/>` with Twilio's defaults and no prompt.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a `<Say>` prompt.
    #[must_use]
    pub fn say(mut self, say: Say) -> Self {
        self.prompts.push(Prompt::Say(say));
        self
    }

    /// Appends a `<Play>` prompt.
    #[must_use]
    pub fn play(mut self, play: Play) -> Self {
        self.prompts.push(Prompt::Play(play));
        self
    }

    /// Appends a `<Pause>` in the prompt.
    #[must_use]
    pub fn pause(mut self, pause: Pause) -> Self {
        self.prompts.push(Prompt::Pause(pause));
        self
    }
}

setters!(Gather {
    /// Sets `input`.
    input: GatherInput,
    /// Sets `numDigits`.
    num_digits: u32,
    /// Sets `timeout` in seconds.
    timeout: u32,
    /// Sets `action`.
    action: String,
    /// Sets `method`.
    method: Method,
    /// Sets `finishOnKey`.
    finish_on_key: String,
    /// Sets `actionOnEmptyResult`.
    action_on_empty_result: bool,
});

impl Dial {
    /// `<Dial/>` with Twilio's defaults and no target yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a `<Conference>`.
    #[must_use]
    pub fn conference(mut self, conference: Conference) -> Self {
        self.targets.push(DialTarget::Conference(conference));
        self
    }

    /// Appends a `<Number>`.
    #[must_use]
    pub fn number(mut self, number: impl Into<String>) -> Self {
        self.targets.push(DialTarget::Number(number.into()));
        self
    }

    /// Appends a `<Client>`.
    #[must_use]
    pub fn client(mut self, identity: impl Into<String>) -> Self {
        self.targets.push(DialTarget::Client(identity.into()));
        self
    }

    /// Appends a `<Sip>`.
    #[must_use]
    pub fn sip(mut self, uri: impl Into<String>) -> Self {
        self.targets.push(DialTarget::Sip(uri.into()));
        self
    }
}

setters!(Dial {
    /// Sets `callerId`.
    caller_id: String,
    /// Sets `timeout` in seconds.
    timeout: u32,
    /// Sets `action`.
    action: String,
    /// Sets `method`.
    method: Method,
    /// Sets `record`.
    record: DialRecord,
    /// Sets `answerOnBridge`.
    answer_on_bridge: bool,
    /// Sets `timeLimit` in seconds.
    time_limit: u32,
    /// Sets `hangupOnStar`.
    hangup_on_star: bool,
});

impl Conference {
    /// `<Conference>name</Conference>` with Twilio's defaults.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            start_conference_on_enter: None,
            end_conference_on_exit: None,
            wait_url: None,
            wait_method: None,
            beep: None,
            muted: None,
            max_participants: None,
            record: None,
            status_callback: None,
            status_callback_event: Vec::new(),
            status_callback_method: None,
            recording_status_callback: None,
            recording_status_callback_method: None,
            recording_status_callback_event: Vec::new(),
            participant_label: None,
        }
    }

    /// Sets `statusCallbackEvent` (replacing any earlier list).
    #[must_use]
    pub fn status_callback_event(
        mut self,
        events: impl IntoIterator<Item = ConferenceCallbackEvent>,
    ) -> Self {
        self.status_callback_event = events.into_iter().collect();
        self
    }

    /// Sets `recordingStatusCallbackEvent` (replacing any earlier list).
    #[must_use]
    pub fn recording_status_callback_event(
        mut self,
        events: impl IntoIterator<Item = RecordingCallbackEvent>,
    ) -> Self {
        self.recording_status_callback_event = events.into_iter().collect();
        self
    }
}

setters!(Conference {
    /// Sets `startConferenceOnEnter`.
    start_conference_on_enter: bool,
    /// Sets `endConferenceOnExit`.
    end_conference_on_exit: bool,
    /// Sets `waitUrl`.
    wait_url: String,
    /// Sets `waitMethod`.
    wait_method: Method,
    /// Sets `beep`.
    beep: ConferenceBeep,
    /// Sets `muted`.
    muted: bool,
    /// Sets `maxParticipants`.
    max_participants: u32,
    /// Sets `record`.
    record: ConferenceRecord,
    /// Sets `statusCallback`.
    status_callback: String,
    /// Sets `statusCallbackMethod`.
    status_callback_method: Method,
    /// Sets `recordingStatusCallback`.
    recording_status_callback: String,
    /// Sets `recordingStatusCallbackMethod`.
    recording_status_callback_method: Method,
    /// Sets `participantLabel`.
    participant_label: String,
});

impl Redirect {
    /// `<Redirect>url</Redirect>`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            method: None,
        }
    }
}

setters!(Redirect {
    /// Sets `method`.
    method: Method,
});

impl Reject {
    /// `<Reject/>` with Twilio's default reason.
    pub fn new() -> Self {
        Self::default()
    }
}

setters!(Reject {
    /// Sets `reason`.
    reason: RejectReason,
});

// ---------------------------------------------------------------------------------------
// Attribute values
// ---------------------------------------------------------------------------------------

/// A typed attribute value: how it is written and read back.
trait AttrValue: Sized {
    /// What a valid value looks like, for error messages.
    const EXPECTED: &'static str;
    fn render(&self) -> String;
    fn from_attr(s: &str) -> Option<Self>;
}

impl AttrValue for String {
    const EXPECTED: &'static str = "text";
    fn render(&self) -> String {
        self.clone()
    }
    fn from_attr(s: &str) -> Option<Self> {
        Some(s.to_string())
    }
}

impl AttrValue for u32 {
    const EXPECTED: &'static str = "a whole number from 0 to 4294967295";
    fn render(&self) -> String {
        self.to_string()
    }
    fn from_attr(s: &str) -> Option<Self> {
        // Digits only: `str::parse` would also take a leading `+`.
        if s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    }
}

impl AttrValue for bool {
    const EXPECTED: &'static str = "true or false";
    fn render(&self) -> String {
        // Python's library writes `str(True).lower()`.
        if *self { "true" } else { "false" }.to_string()
    }
    fn from_attr(s: &str) -> Option<Self> {
        match s {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------

const DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// An element's attributes as (name, value) before escaping.
#[derive(Default)]
struct Attrs(Vec<(&'static str, String)>);

impl Attrs {
    fn opt<T: AttrValue>(mut self, name: &'static str, value: &Option<T>) -> Self {
        if let Some(v) = value {
            self.0.push((name, v.render()));
        }
        self
    }
}

impl VoiceResponse {
    /// The document as Twilio's Python library would write it (see the module docs).
    pub fn to_xml(&self) -> String {
        let mut out = String::from(DECLARATION);
        write_parent(
            &mut out,
            "Response",
            Attrs::default(),
            &self.verbs,
            write_verb,
        );
        out
    }
}

fn write_verb(out: &mut String, verb: &Verb) {
    match verb {
        Verb::Say(say) => write_say(out, say),
        Verb::Play(play) => write_play(out, play),
        Verb::Pause(pause) => write_pause(out, pause),
        Verb::Gather(g) => {
            let attrs = Attrs::default()
                .opt("input", &g.input)
                .opt("numDigits", &g.num_digits)
                .opt("timeout", &g.timeout)
                .opt("action", &g.action)
                .opt("method", &g.method)
                .opt("finishOnKey", &g.finish_on_key)
                .opt("actionOnEmptyResult", &g.action_on_empty_result);
            write_parent(out, "Gather", attrs, &g.prompts, |out, p| match p {
                Prompt::Say(say) => write_say(out, say),
                Prompt::Play(play) => write_play(out, play),
                Prompt::Pause(pause) => write_pause(out, pause),
            });
        }
        Verb::Dial(d) => {
            let attrs = Attrs::default()
                .opt("callerId", &d.caller_id)
                .opt("timeout", &d.timeout)
                .opt("action", &d.action)
                .opt("method", &d.method)
                .opt("record", &d.record)
                .opt("answerOnBridge", &d.answer_on_bridge)
                .opt("timeLimit", &d.time_limit)
                .opt("hangupOnStar", &d.hangup_on_star);
            write_parent(out, "Dial", attrs, &d.targets, write_target);
        }
        Verb::Redirect(r) => {
            let attrs = Attrs::default().opt("method", &r.method);
            write_leaf(out, "Redirect", attrs, &r.url);
        }
        Verb::Hangup => write_leaf(out, "Hangup", Attrs::default(), ""),
        Verb::Reject(r) => {
            let attrs = Attrs::default().opt("reason", &r.reason);
            write_leaf(out, "Reject", attrs, "");
        }
    }
}

fn write_say(out: &mut String, say: &Say) {
    let attrs = Attrs::default()
        .opt("voice", &say.voice)
        .opt("language", &say.language)
        .opt("loop", &say.loop_count);
    write_leaf(out, "Say", attrs, &say.text);
}

fn write_play(out: &mut String, play: &Play) {
    let attrs = Attrs::default()
        .opt("loop", &play.loop_count)
        .opt("digits", &play.digits);
    write_leaf(out, "Play", attrs, &play.url);
}

fn write_pause(out: &mut String, pause: &Pause) {
    let attrs = Attrs::default().opt("length", &pause.length);
    write_leaf(out, "Pause", attrs, "");
}

fn write_target(out: &mut String, target: &DialTarget) {
    match target {
        DialTarget::Conference(c) => {
            // Twilio wants event lists space-separated (the Python library would write a
            // list's repr, so callers there pass the joined string).
            let events = space_separated(&c.status_callback_event, ConferenceCallbackEvent::as_str);
            let recording_events = space_separated(
                &c.recording_status_callback_event,
                RecordingCallbackEvent::as_str,
            );
            let attrs = Attrs::default()
                .opt("startConferenceOnEnter", &c.start_conference_on_enter)
                .opt("endConferenceOnExit", &c.end_conference_on_exit)
                .opt("waitUrl", &c.wait_url)
                .opt("waitMethod", &c.wait_method)
                .opt("beep", &c.beep)
                .opt("muted", &c.muted)
                .opt("maxParticipants", &c.max_participants)
                .opt("record", &c.record)
                .opt("statusCallback", &c.status_callback)
                .opt("statusCallbackEvent", &events)
                .opt("statusCallbackMethod", &c.status_callback_method)
                .opt("recordingStatusCallback", &c.recording_status_callback)
                .opt(
                    "recordingStatusCallbackMethod",
                    &c.recording_status_callback_method,
                )
                .opt("recordingStatusCallbackEvent", &recording_events)
                .opt("participantLabel", &c.participant_label);
            write_leaf(out, "Conference", attrs, &c.name);
        }
        DialTarget::Number(n) => write_leaf(out, "Number", Attrs::default(), n),
        DialTarget::Client(c) => write_leaf(out, "Client", Attrs::default(), c),
        DialTarget::Sip(s) => write_leaf(out, "Sip", Attrs::default(), s),
    }
}

/// A list attribute's value: the words joined by spaces; `None` (no attribute) when empty.
fn space_separated<T: Copy>(items: &[T], word: fn(T) -> &'static str) -> Option<String> {
    (!items.is_empty()).then(|| items.iter().map(|i| word(*i)).collect::<Vec<_>>().join(" "))
}

/// `<name attrs` with the attributes sorted by name, as the Python library sorts them.
fn write_open(out: &mut String, name: &str, attrs: Attrs) {
    let mut attrs = attrs.0;
    attrs.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push('<');
    out.push_str(name);
    for (key, value) in attrs {
        out.push(' ');
        out.push_str(key);
        out.push_str("=\"");
        escape_attr(out, &value);
        out.push('"');
    }
}

/// An element holding only text; `<name attrs />` when the text is empty, as
/// `xml.etree` writes it.
fn write_leaf(out: &mut String, name: &str, attrs: Attrs, text: &str) {
    write_open(out, name, attrs);
    if text.is_empty() {
        out.push_str(" />");
    } else {
        out.push('>');
        escape_text(out, text);
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    }
}

/// An element holding only child elements; `<name attrs />` when there are none.
fn write_parent<T>(
    out: &mut String,
    name: &str,
    attrs: Attrs,
    children: &[T],
    write_child: impl Fn(&mut String, &T),
) {
    write_open(out, name, attrs);
    if children.is_empty() {
        out.push_str(" />");
    } else {
        out.push('>');
        for child in children {
            write_child(out, child);
        }
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    }
}

/// Can XML 1.0 carry this character at all (the spec's `Char` production)?
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Text content as `xml.etree` escapes it, plus `\r` as a reference (see the module docs).
fn escape_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            _ => {}
        }
    }
}

/// An attribute value as `xml.etree` escapes it (in double quotes).
fn escape_attr(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#09;"),
            c if is_xml_char(c) => out.push(c),
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

type Node<'a, 'input> = roxmltree::Node<'a, 'input>;

impl VoiceResponse {
    /// Reads a `<Response>` document into typed verbs; anything unknown is an error naming
    /// the element or attribute. Whitespace between elements is ignored; the text of
    /// `<Say>`, `<Play>`, `<Conference>` … is kept exactly.
    pub fn parse(xml: &str) -> Result<Self, TwimlError> {
        // roxmltree refuses DTDs by default, so no entity expansion can happen.
        let doc = roxmltree::Document::parse(xml)?;
        let root = doc.root_element();
        let name = element_name(root);
        if name != "Response" {
            return Err(TwimlError::NotResponse(name));
        }
        check_attrs(root, &[])?;
        let verbs = child_elements(root)?
            .into_iter()
            .map(parse_verb)
            .collect::<Result<_, _>>()?;
        Ok(Self { verbs })
    }
}

fn parse_verb(node: Node) -> Result<Verb, TwimlError> {
    Ok(match element_name(node).as_str() {
        "Say" => Verb::Say(parse_say(node)?),
        "Play" => Verb::Play(parse_play(node)?),
        "Pause" => Verb::Pause(parse_pause(node)?),
        "Gather" => {
            check_attrs(
                node,
                &[
                    "input",
                    "numDigits",
                    "timeout",
                    "action",
                    "method",
                    "finishOnKey",
                    "actionOnEmptyResult",
                ],
            )?;
            let prompts = child_elements(node)?
                .into_iter()
                .map(|child| {
                    Ok(match element_name(child).as_str() {
                        "Say" => Prompt::Say(parse_say(child)?),
                        "Play" => Prompt::Play(parse_play(child)?),
                        "Pause" => Prompt::Pause(parse_pause(child)?),
                        _ => return Err(unknown_element(child)),
                    })
                })
                .collect::<Result<_, _>>()?;
            Verb::Gather(Gather {
                input: attr(node, "input")?,
                num_digits: attr(node, "numDigits")?,
                timeout: attr(node, "timeout")?,
                action: attr(node, "action")?,
                method: attr(node, "method")?,
                finish_on_key: attr(node, "finishOnKey")?,
                action_on_empty_result: attr(node, "actionOnEmptyResult")?,
                prompts,
            })
        }
        "Dial" => {
            check_attrs(
                node,
                &[
                    "callerId",
                    "timeout",
                    "action",
                    "method",
                    "record",
                    "answerOnBridge",
                    "timeLimit",
                    "hangupOnStar",
                ],
            )?;
            let targets = child_elements(node)?
                .into_iter()
                .map(parse_target)
                .collect::<Result<_, _>>()?;
            Verb::Dial(Dial {
                caller_id: attr(node, "callerId")?,
                timeout: attr(node, "timeout")?,
                action: attr(node, "action")?,
                method: attr(node, "method")?,
                record: attr(node, "record")?,
                answer_on_bridge: attr(node, "answerOnBridge")?,
                time_limit: attr(node, "timeLimit")?,
                hangup_on_star: attr(node, "hangupOnStar")?,
                targets,
            })
        }
        "Redirect" => {
            check_attrs(node, &["method"])?;
            Verb::Redirect(Redirect {
                url: leaf_text(node)?,
                method: attr(node, "method")?,
            })
        }
        "Hangup" => {
            check_attrs(node, &[])?;
            empty(node)?;
            Verb::Hangup
        }
        "Reject" => {
            check_attrs(node, &["reason"])?;
            empty(node)?;
            Verb::Reject(Reject {
                reason: attr(node, "reason")?,
            })
        }
        _ => return Err(unknown_element(node)),
    })
}

fn parse_say(node: Node) -> Result<Say, TwimlError> {
    check_attrs(node, &["voice", "language", "loop"])?;
    Ok(Say {
        text: leaf_text(node)?,
        voice: attr(node, "voice")?,
        language: attr(node, "language")?,
        loop_count: attr(node, "loop")?,
    })
}

fn parse_play(node: Node) -> Result<Play, TwimlError> {
    check_attrs(node, &["loop", "digits"])?;
    Ok(Play {
        url: leaf_text(node)?,
        loop_count: attr(node, "loop")?,
        digits: attr(node, "digits")?,
    })
}

fn parse_pause(node: Node) -> Result<Pause, TwimlError> {
    check_attrs(node, &["length"])?;
    empty(node)?;
    Ok(Pause {
        length: attr(node, "length")?,
    })
}

fn parse_target(node: Node) -> Result<DialTarget, TwimlError> {
    Ok(match element_name(node).as_str() {
        "Conference" => {
            check_attrs(
                node,
                &[
                    "startConferenceOnEnter",
                    "endConferenceOnExit",
                    "waitUrl",
                    "waitMethod",
                    "beep",
                    "muted",
                    "maxParticipants",
                    "record",
                    "statusCallback",
                    "statusCallbackEvent",
                    "statusCallbackMethod",
                    "recordingStatusCallback",
                    "recordingStatusCallbackMethod",
                    "recordingStatusCallbackEvent",
                    "participantLabel",
                ],
            )?;
            let status_callback_event = attr_list(
                node,
                "statusCallbackEvent",
                "space-separated start, end, join, leave, mute, hold, modify, speaker or announcement",
            )?;
            let recording_status_callback_event = attr_list(
                node,
                "recordingStatusCallbackEvent",
                "space-separated in-progress, completed or absent",
            )?;
            DialTarget::Conference(Conference {
                name: leaf_text(node)?,
                start_conference_on_enter: attr(node, "startConferenceOnEnter")?,
                end_conference_on_exit: attr(node, "endConferenceOnExit")?,
                wait_url: attr(node, "waitUrl")?,
                wait_method: attr(node, "waitMethod")?,
                beep: attr(node, "beep")?,
                muted: attr(node, "muted")?,
                max_participants: attr(node, "maxParticipants")?,
                record: attr(node, "record")?,
                status_callback: attr(node, "statusCallback")?,
                status_callback_event,
                status_callback_method: attr(node, "statusCallbackMethod")?,
                recording_status_callback: attr(node, "recordingStatusCallback")?,
                recording_status_callback_method: attr(node, "recordingStatusCallbackMethod")?,
                recording_status_callback_event,
                participant_label: attr(node, "participantLabel")?,
            })
        }
        "Number" => {
            check_attrs(node, &[])?;
            DialTarget::Number(leaf_text(node)?)
        }
        "Client" => {
            check_attrs(node, &[])?;
            DialTarget::Client(leaf_text(node)?)
        }
        "Sip" => {
            check_attrs(node, &[])?;
            DialTarget::Sip(leaf_text(node)?)
        }
        _ => return Err(unknown_element(node)),
    })
}

/// The element's name; a namespaced element is shown as `{namespace}name` so it never
/// matches a TwiML verb by its local name alone.
fn element_name(node: Node) -> String {
    match node.tag_name().namespace() {
        Some(ns) => format!("{{{ns}}}{}", node.tag_name().name()),
        None => node.tag_name().name().to_string(),
    }
}

fn unknown_element(node: Node) -> TwimlError {
    TwimlError::UnknownElement {
        parent: node.parent_element().map_or_else(String::new, element_name),
        element: element_name(node),
    }
}

fn invalid(node: Node, attribute: &str, value: &str, expected: &'static str) -> TwimlError {
    TwimlError::InvalidAttribute {
        element: element_name(node),
        attribute: attribute.to_string(),
        value: value.to_string(),
        expected,
    }
}

/// Every attribute must be one of `allowed` (namespaced ones never are).
fn check_attrs(node: Node, allowed: &[&str]) -> Result<(), TwimlError> {
    for a in node.attributes() {
        if a.namespace().is_some() || !allowed.contains(&a.name()) {
            let attribute = match a.namespace() {
                Some(ns) => format!("{{{ns}}}{}", a.name()),
                None => a.name().to_string(),
            };
            return Err(TwimlError::UnknownAttribute {
                element: element_name(node),
                attribute,
            });
        }
    }
    Ok(())
}

fn attr<T: AttrValue>(node: Node, name: &str) -> Result<Option<T>, TwimlError> {
    node.attribute(name)
        .map(|value| T::from_attr(value).ok_or_else(|| invalid(node, name, value, T::EXPECTED)))
        .transpose()
}

/// A space-separated list attribute (`statusCallbackEvent="start end"`); absent is empty.
fn attr_list<T: AttrValue>(
    node: Node,
    name: &str,
    expected: &'static str,
) -> Result<Vec<T>, TwimlError> {
    let Some(list) = node.attribute(name) else {
        return Ok(Vec::new());
    };
    list.split_ascii_whitespace()
        .map(|word| T::from_attr(word).ok_or_else(|| invalid(node, name, list, expected)))
        .collect()
}

/// The text of an element that holds only text (comments are skipped, child elements are
/// an error), exactly as written.
fn leaf_text(node: Node) -> Result<String, TwimlError> {
    let mut text = String::new();
    for child in node.children() {
        if child.is_element() {
            return Err(unknown_element(child));
        }
        if let Some(t) = child.text().filter(|_| child.is_text()) {
            text.push_str(t);
        }
    }
    Ok(text)
}

/// The child elements of an element that holds only elements; whitespace-only text is
/// layout and ignored, other text is an error.
fn child_elements<'a, 'input>(node: Node<'a, 'input>) -> Result<Vec<Node<'a, 'input>>, TwimlError> {
    let mut elements = Vec::new();
    for child in node.children() {
        if child.is_element() {
            elements.push(child);
        } else if child.is_text() {
            let text = child.text().unwrap_or("");
            if !text.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r')) {
                return Err(TwimlError::UnexpectedText {
                    element: element_name(node),
                    text: text.chars().take(80).collect(),
                });
            }
        }
    }
    Ok(elements)
}

/// An element that may hold nothing but whitespace.
fn empty(node: Node) -> Result<(), TwimlError> {
    match child_elements(node)?.first() {
        Some(child) => Err(unknown_element(*child)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_err(xml: &str) -> TwimlError {
        VoiceResponse::parse(xml).expect_err("should be rejected")
    }

    #[test]
    fn parse_pretty_printed_twiml_ignores_layout_whitespace() {
        let xml = "<?xml version=\"1.0\"?>\n<Response>\n  <!-- greeting -->\n  <Gather numDigits=\"1\">\n    <Say> Hi </Say>\n  </Gather>\n  <Hangup/>\n</Response>\n";
        let expected = VoiceResponse::new()
            .gather(Gather::new().num_digits(1u32).say(Say::new(" Hi ")))
            .hangup();
        assert_eq!(VoiceResponse::parse(xml).unwrap(), expected);
    }

    #[test]
    fn parse_unknown_verb_names_element_and_parent() {
        let err = parse_err("<Response><Enqueue>q</Enqueue></Response>");
        assert!(
            matches!(&err, TwimlError::UnknownElement { parent, element } if parent == "Response" && element == "Enqueue"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "<Enqueue> is not allowed inside <Response>"
        );
    }

    #[test]
    fn parse_verb_in_wrong_parent_is_rejected() {
        let err = parse_err("<Response><Gather><Dial>+1</Dial></Gather></Response>");
        assert!(
            matches!(&err, TwimlError::UnknownElement { parent, element } if parent == "Gather" && element == "Dial"),
            "{err:?}"
        );
        let err =
            parse_err("<Response><Say>Hi <prosody rate=\"slow\">there</prosody></Say></Response>");
        assert!(
            matches!(&err, TwimlError::UnknownElement { parent, element } if parent == "Say" && element == "prosody"),
            "{err:?}"
        );
    }

    #[test]
    fn parse_unknown_attribute_names_element_and_attribute() {
        let err =
            parse_err("<Response><Dial><Conference coach=\"CA1\">r</Conference></Dial></Response>");
        assert!(
            matches!(&err, TwimlError::UnknownAttribute { element, attribute } if element == "Conference" && attribute == "coach"),
            "{err:?}"
        );
        let err = parse_err("<Response><Hangup reason=\"x\"/></Response>");
        assert!(
            matches!(err, TwimlError::UnknownAttribute { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn parse_badly_typed_attribute_values_are_rejected_with_expectation() {
        for (xml, attribute) in [
            (
                "<Response><Gather actionOnEmptyResult=\"True\"/></Response>",
                "actionOnEmptyResult",
            ),
            ("<Response><Pause length=\"-1\"/></Response>", "length"),
            ("<Response><Pause length=\"+1\"/></Response>", "length"),
            (
                "<Response><Pause length=\"99999999999\"/></Response>",
                "length",
            ),
            (
                "<Response><Redirect method=\"post\">u</Redirect></Response>",
                "method",
            ),
            (
                "<Response><Reject reason=\"declined\"/></Response>",
                "reason",
            ),
            (
                "<Response><Dial><Conference statusCallbackEvent=\"start bogus\">r</Conference></Dial></Response>",
                "statusCallbackEvent",
            ),
            (
                "<Response><Dial><Conference recordingStatusCallbackEvent=\"completed failed\">r</Conference></Dial></Response>",
                "recordingStatusCallbackEvent",
            ),
            (
                "<Response><Dial><Conference record=\"true\">r</Conference></Dial></Response>",
                "record",
            ),
        ] {
            let err = parse_err(xml);
            assert!(
                matches!(&err, TwimlError::InvalidAttribute { attribute: a, .. } if a == attribute),
                "{xml}: {err:?}"
            );
        }
        let err = parse_err("<Response><Pause length=\"x\"/></Response>");
        assert!(err.to_string().contains("expected a whole number"), "{err}");
    }

    #[test]
    fn parse_text_outside_text_elements_is_rejected() {
        let err = parse_err("<Response>Hello<Hangup/></Response>");
        assert!(
            matches!(&err, TwimlError::UnexpectedText { element, text } if element == "Response" && text == "Hello"),
            "{err:?}"
        );
        assert!(matches!(
            parse_err("<Response><Dial>+14155550123</Dial></Response>"),
            TwimlError::UnexpectedText { .. }
        ));
        assert!(matches!(
            parse_err("<Response><Pause>1</Pause></Response>"),
            TwimlError::UnexpectedText { .. }
        ));
    }

    #[test]
    fn parse_non_twiml_documents_are_rejected() {
        assert!(matches!(parse_err("<Say>x</Say>"), TwimlError::NotResponse(n) if n == "Say"));
        assert!(matches!(parse_err("<Response><Say>"), TwimlError::Xml(_)));
        assert!(matches!(
            parse_err("<Response xmlns:t=\"urn:x\"><t:Say>x</t:Say></Response>"),
            TwimlError::UnknownElement { .. }
        ));
        let dtd = "<!DOCTYPE Response [<!ENTITY e \"boom\">]><Response><Say>&e;</Say></Response>";
        assert!(matches!(parse_err(dtd), TwimlError::Xml(_)));
    }

    #[test]
    fn to_xml_carriage_return_in_text_survives_round_trip() {
        let r = VoiceResponse::new().say(Say::new("a\r\nb\rc").voice("x\ry"));
        let xml = r.to_xml();
        assert!(xml.contains(">a&#13;\nb&#13;c</Say>"), "{xml}");
        assert!(xml.contains("voice=\"x&#13;y\""), "{xml}");
        assert_eq!(VoiceResponse::parse(&xml).unwrap(), r);
    }

    #[test]
    fn to_xml_characters_xml_cannot_carry_are_dropped() {
        let r = VoiceResponse::new().say(Say::new("a\u{0}b\u{1b}c\u{fffe}").language("e\u{7}n"));
        let xml = r.to_xml();
        assert!(
            xml.ends_with("<Say language=\"en\">abc</Say></Response>"),
            "{xml}"
        );
        let parsed = VoiceResponse::parse(&xml).unwrap();
        assert_eq!(
            parsed,
            VoiceResponse::new().say(Say::new("abc").language("en"))
        );
    }

    #[test]
    fn conference_recording_attributes_are_written_sorted_and_read_back() {
        let r = VoiceResponse::new().dial(
            Dial::new().conference(
                Conference::new("call-7")
                    .record(ConferenceRecord::RecordFromStart)
                    .recording_status_callback(
                        "https://d.example.com/twilio/calls/7/recording?a=1&b=2",
                    )
                    .recording_status_callback_method(Method::Post)
                    .recording_status_callback_event([
                        RecordingCallbackEvent::Completed,
                        RecordingCallbackEvent::Absent,
                    ]),
            ),
        );
        let xml = r.to_xml();
        assert!(
            xml.contains(
                "<Conference record=\"record-from-start\" \
                 recordingStatusCallback=\"https://d.example.com/twilio/calls/7/recording?a=1&amp;b=2\" \
                 recordingStatusCallbackEvent=\"completed absent\" \
                 recordingStatusCallbackMethod=\"POST\">call-7</Conference>"
            ),
            "{xml}"
        );
        assert_eq!(VoiceResponse::parse(&xml).unwrap(), r);
        // Without them, none is written: an empty event list is no attribute at all.
        let plain = VoiceResponse::new()
            .dial(Dial::new().conference(Conference::new("call-7")))
            .to_xml();
        assert!(!plain.contains("record"), "{plain}");
    }

    #[test]
    fn enums_parse_every_value_they_write() {
        for m in Method::ALL {
            assert_eq!(Method::parse(m.as_str()), Some(*m));
        }
        for e in ConferenceCallbackEvent::ALL {
            assert_eq!(ConferenceCallbackEvent::parse(e.as_str()), Some(*e));
        }
        for e in RecordingCallbackEvent::ALL {
            assert_eq!(RecordingCallbackEvent::parse(e.as_str()), Some(*e));
        }
        assert_eq!(
            ConferenceBeep::parse("onExit"),
            Some(ConferenceBeep::OnExit)
        );
        assert_eq!(GatherInput::parse("speech dtmf"), None);
    }

    // ----- round trip -------------------------------------------------------------------

    /// Strings rich in what escaping must handle: XML specials, whitespace of every kind,
    /// non-ASCII (including astral), plus arbitrary XML characters.
    fn text() -> impl Strategy<Value = String> {
        let special = prop::sample::select(vec![
            '&', '<', '>', '"', '\'', ';', '#', ' ', '\n', '\r', '\t', 'é', 'ë', '☎', '😀', 'a',
            'Z', '0', ']', '\u{a0}', '\u{fffd}',
        ]);
        let any_xml = any::<char>().prop_filter("XML char", |c| is_xml_char(*c));
        prop::collection::vec(prop_oneof![3 => special, 1 => any_xml], 0..24)
            .prop_map(|chars| chars.into_iter().collect())
    }

    fn opt<S: Strategy>(s: S) -> impl Strategy<Value = Option<S::Value>> {
        prop::option::of(s)
    }

    fn pick<T: Copy + fmt::Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = T> {
        prop::sample::select(all)
    }

    fn say() -> impl Strategy<Value = Say> {
        (text(), opt(text()), opt(text()), opt(any::<u32>())).prop_map(
            |(text, voice, language, loop_count)| Say {
                text,
                voice,
                language,
                loop_count,
            },
        )
    }

    fn play() -> impl Strategy<Value = Play> {
        (text(), opt(any::<u32>()), opt(text())).prop_map(|(url, loop_count, digits)| Play {
            url,
            loop_count,
            digits,
        })
    }

    fn pause() -> impl Strategy<Value = Pause> {
        opt(any::<u32>()).prop_map(|length| Pause { length })
    }

    fn gather() -> impl Strategy<Value = Gather> {
        let prompt = prop_oneof![
            say().prop_map(Prompt::Say),
            play().prop_map(Prompt::Play),
            pause().prop_map(Prompt::Pause),
        ];
        (
            opt(pick(GatherInput::ALL)),
            opt(any::<u32>()),
            opt(any::<u32>()),
            opt(text()),
            opt(pick(Method::ALL)),
            opt(text()),
            opt(any::<bool>()),
            prop::collection::vec(prompt, 0..4),
        )
            .prop_map(
                |(input, num_digits, timeout, action, method, finish_on_key, aoer, prompts)| {
                    Gather {
                        input,
                        num_digits,
                        timeout,
                        action,
                        method,
                        finish_on_key,
                        action_on_empty_result: aoer,
                        prompts,
                    }
                },
            )
    }

    fn conference() -> impl Strategy<Value = Conference> {
        (
            (
                text(),
                opt(any::<bool>()),
                opt(any::<bool>()),
                opt(text()),
                opt(pick(Method::ALL)),
                opt(pick(ConferenceBeep::ALL)),
                opt(any::<bool>()),
            ),
            (
                opt(any::<u32>()),
                opt(pick(ConferenceRecord::ALL)),
                opt(text()),
                prop::collection::vec(pick(ConferenceCallbackEvent::ALL), 0..5),
                opt(pick(Method::ALL)),
                opt(text()),
            ),
            (
                opt(text()),
                opt(pick(Method::ALL)),
                prop::collection::vec(pick(RecordingCallbackEvent::ALL), 0..4),
            ),
        )
            .prop_map(
                |((name, start, end, wait_url, wait_method, beep, muted), rest, recording)| {
                    let (max, record, status_callback, events, scb_method, label) = rest;
                    let (rec_callback, rec_method, rec_events) = recording;
                    Conference {
                        name,
                        start_conference_on_enter: start,
                        end_conference_on_exit: end,
                        wait_url,
                        wait_method,
                        beep,
                        muted,
                        max_participants: max,
                        record,
                        status_callback,
                        status_callback_event: events,
                        status_callback_method: scb_method,
                        recording_status_callback: rec_callback,
                        recording_status_callback_method: rec_method,
                        recording_status_callback_event: rec_events,
                        participant_label: label,
                    }
                },
            )
    }

    fn dial() -> impl Strategy<Value = Dial> {
        let target = prop_oneof![
            conference().prop_map(DialTarget::Conference),
            text().prop_map(DialTarget::Number),
            text().prop_map(DialTarget::Client),
            text().prop_map(DialTarget::Sip),
        ];
        (
            opt(text()),
            opt(any::<u32>()),
            opt(text()),
            opt(pick(Method::ALL)),
            opt(pick(DialRecord::ALL)),
            opt(any::<bool>()),
            opt(any::<u32>()),
            opt(any::<bool>()),
            prop::collection::vec(target, 0..3),
        )
            .prop_map(
                |(caller_id, timeout, action, method, record, aob, time_limit, hos, targets)| {
                    Dial {
                        caller_id,
                        timeout,
                        action,
                        method,
                        record,
                        answer_on_bridge: aob,
                        time_limit,
                        hangup_on_star: hos,
                        targets,
                    }
                },
            )
    }

    fn verb() -> impl Strategy<Value = Verb> {
        prop_oneof![
            say().prop_map(Verb::Say),
            play().prop_map(Verb::Play),
            pause().prop_map(Verb::Pause),
            gather().prop_map(Verb::Gather),
            dial().prop_map(Verb::Dial),
            (text(), opt(pick(Method::ALL)))
                .prop_map(|(url, method)| Verb::Redirect(Redirect { url, method })),
            Just(Verb::Hangup),
            opt(pick(RejectReason::ALL)).prop_map(|reason| Verb::Reject(Reject { reason })),
        ]
    }

    proptest! {
        #[test]
        fn to_xml_then_parse_returns_the_same_response(
            verbs in prop::collection::vec(verb(), 0..6)
        ) {
            let response = VoiceResponse { verbs };
            let xml = response.to_xml();
            let parsed = VoiceResponse::parse(&xml);
            prop_assert!(parsed.is_ok(), "{:?} for {}", parsed.err(), xml);
            prop_assert_eq!(parsed.ok(), Some(response));
        }
    }
}
