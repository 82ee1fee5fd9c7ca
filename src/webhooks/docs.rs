//! The TwiML documents the daemon answers with: holding a lead, the voicemail drop, the
//! agent's whisper and what follows it. Built with the typed builder; user data (lead
//! names, campaign messages) is only ever text inside it, escaped by the builder.

use crate::call::CallId;
use crate::campaign::RecordingPolicy;
use crate::telephony::twiml::{
    Conference, ConferenceBeep, ConferenceCallbackEvent, ConferenceRecord, Dial, Gather, Method,
    Play, RecordingCallbackEvent, Say, VoiceResponse,
};

/// The conference's events the daemon follows.
const CONFERENCE_EVENTS: [ConferenceCallbackEvent; 4] = [
    ConferenceCallbackEvent::Start,
    ConferenceCallbackEvent::End,
    ConferenceCallbackEvent::Join,
    ConferenceCallbackEvent::Leave,
];

/// The URL of one of an attempt's webhooks.
pub fn url(base: &str, id: CallId, tail: &str) -> String {
    format!("{}/twilio/calls/{id}/{tail}", base.trim_end_matches('/'))
}

/// The recording events the daemon follows: the file is ready, or there is none.
const RECORDING_EVENTS: [RecordingCallbackEvent; 2] = [
    RecordingCallbackEvent::Completed,
    RecordingCallbackEvent::Absent,
];

/// The attempt's conference as one leg joins it. Both legs carry the same recording
/// attributes, so the conference is set up alike whichever leg's TwiML the carrier takes
/// them from; without recording there are none at all.
fn conference(
    id: CallId,
    base: &str,
    start_on_enter: bool,
    recording: &RecordingPolicy,
) -> Conference {
    let c = Conference::new(id.conference_name())
        .start_conference_on_enter(start_on_enter)
        .end_conference_on_exit(true)
        .beep(ConferenceBeep::Never)
        // Silence rather than hold music: the lead just said hello.
        .wait_url(String::new())
        .status_callback(url(base, id, "conference"))
        .status_callback_event(CONFERENCE_EVENTS);
    if !recording.enabled {
        return c;
    }
    // `record-from-start` records from the conference's start, which is the agent's
    // entry (the lead waits with startConferenceOnEnter=false): the bridge is recorded,
    // the hold is not.
    c.record(ConferenceRecord::RecordFromStart)
        .recording_status_callback(url(base, id, "recording"))
        .recording_status_callback_method(Method::Post)
        .recording_status_callback_event(RECORDING_EVENTS)
}

/// The lead waits, in silence, in the attempt's conference; it starts when the agent
/// joins, and ends when either leaves.
///
/// A recorded campaign's consent notice is said here, first, before the `<Dial>`: the
/// lead leg's own TwiML is the one place only the person hears, and a `<Say>` runs to its
/// end before the next verb, so the person has heard the whole notice before they can be
/// in the conference — before anything they say can be on the recording, even when the
/// agent has already started it. The alternatives fail that: a `<Say>` in the agent's join
/// TwiML reaches only the agent; as the conference's hold message (`waitUrl`) it is cut
/// off the moment the agent's entry starts the conference; an announcement into the
/// conference plays once the recording runs, and is on it. The cost: the person hears it
/// right after hello, also when no agent then comes (a call that *may* be recorded).
pub fn lead_hold(id: CallId, base: &str, recording: &RecordingPolicy) -> VoiceResponse {
    let r = match (&recording.consent_message, recording.enabled) {
        (Some(notice), true) => VoiceResponse::new().say(Say::new(notice.as_str())),
        _ => VoiceResponse::new(),
    };
    r.dial(Dial::new().conference(conference(id, base, false, recording)))
}

/// The campaign's voicemail message (its audio if it has one), then hang up.
pub fn voicemail_drop(text: Option<&str>, audio_url: Option<&str>) -> VoiceResponse {
    let r = match (audio_url, text) {
        (Some(url), _) => VoiceResponse::new().play(Play::new(url)),
        (None, Some(text)) => VoiceResponse::new().say(Say::new(text)),
        (None, None) => VoiceResponse::new(),
    };
    r.hangup()
}

/// The agent hears who is waiting and for which campaign, and presses 1 to take the call;
/// anything else, or silence, declines.
pub fn agent_whisper(
    id: CallId,
    offer: i64,
    base: &str,
    lead_name: &str,
    campaign: &str,
) -> VoiceResponse {
    let who = if lead_name.trim().is_empty() {
        "a customer".to_string()
    } else {
        lead_name.trim().to_string()
    };
    VoiceResponse::new().gather(
        Gather::new()
            .num_digits(1u32)
            .timeout(8u32)
            .action(url(base, id, &format!("offers/{offer}/accept")))
            .action_on_empty_result(true)
            .say(Say::new(format!(
                "Connecting you with {who} from {}; press 1 to accept.",
                campaign.trim()
            ))),
    )
}

/// The agent accepted: join the lead's conference, which starts now (and with it the
/// recording, when the campaign records).
pub fn agent_join(id: CallId, base: &str, recording: &RecordingPolicy) -> VoiceResponse {
    VoiceResponse::new().dial(Dial::new().conference(conference(id, base, true, recording)))
}

/// Nobody could take the person's call: who called and how to call back (the campaign's
/// seller name and call-back number, else `fallback`), the key that stops these calls,
/// then hang up.
pub fn abandon(
    id: CallId,
    base: &str,
    seller: Option<&str>,
    callback_number: Option<&str>,
    fallback: &str,
) -> VoiceResponse {
    let message = match (seller, callback_number) {
        (Some(seller), Some(number)) => format!(
            "This is {seller}. Sorry, all of our agents are busy right now. Please call us back at {}.",
            spoken_number(number)
        ),
        (Some(seller), None) => format!("This is {seller}. {fallback}"),
        (None, Some(number)) => format!(
            "{fallback} You can call us back at {}.",
            spoken_number(number)
        ),
        (None, None) => fallback.to_string(),
    };
    VoiceResponse::new()
        .gather(
            Gather::new()
                .num_digits(1u32)
                .timeout(4u32)
                .action(url(base, id, "abandon/optout"))
                .say(Say::new(message))
                .say(Say::new("To stop these calls, press 9.")),
        )
        .say(Say::new("Goodbye."))
        .hangup()
}

/// `+14155550100` as a voice reads it: the digits one by one.
fn spoken_number(e164: &str) -> String {
    e164.trim_start_matches('+')
        .chars()
        .filter(char::is_ascii_digit)
        .map(String::from)
        .collect::<Vec<_>>()
        .join(" ")
}

/// After the abandon message: 9 puts the number on the tenant's do-not-call list.
pub fn opt_out(done: bool) -> VoiceResponse {
    let text = if done {
        "You will not be called again. Goodbye."
    } else {
        "Goodbye."
    };
    VoiceResponse::new().say(Say::new(text)).hangup()
}

pub fn agent_declined() -> VoiceResponse {
    VoiceResponse::new()
        .say(Say::new("Call declined."))
        .hangup()
}

pub fn agent_lead_gone() -> VoiceResponse {
    VoiceResponse::new()
        .say(Say::new("Sorry, the caller has hung up."))
        .hangup()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lead_names_are_escaped_not_pasted() {
        let doc = agent_whisper(
            CallId(7),
            3,
            "https://d.example.com",
            "Tom & <Jerry>",
            "Spring",
        );
        let xml = doc.to_xml();
        assert!(xml.contains("Tom &amp; &lt;Jerry&gt; from Spring"), "{xml}");
        assert!(xml.contains("/twilio/calls/7/offers/3/accept"), "{xml}");
        assert_eq!(VoiceResponse::parse(&xml).unwrap(), doc);
    }

    fn recorded(notice: Option<&str>) -> RecordingPolicy {
        RecordingPolicy {
            enabled: true,
            consent_message: notice.map(str::to_string),
        }
    }

    #[test]
    fn lead_waits_without_starting_the_conference_and_agent_starts_it() {
        let off = RecordingPolicy::default();
        let hold = lead_hold(CallId(9), "https://d.example.com/", &off).to_xml();
        assert!(hold.contains(r#"startConferenceOnEnter="false""#));
        assert!(
            hold.contains(r#"statusCallback="https://d.example.com/twilio/calls/9/conference""#),
            "{hold}"
        );
        let join = agent_join(CallId(9), "https://d.example.com", &off).to_xml();
        assert!(
            join.contains(r#"startConferenceOnEnter="true""#)
                && join.contains(r#"endConferenceOnExit="true""#)
        );
        // Not recorded: no recording attribute on either leg, no notice.
        for xml in [&hold, &join] {
            assert!(!xml.contains("record"), "{xml}");
            assert!(!xml.contains("<Say"), "{xml}");
        }
    }

    #[test]
    fn a_recorded_conference_records_from_its_start_and_reports_to_the_recording_url() {
        let rec = recorded(None);
        for doc in [
            lead_hold(CallId(9), "https://d.example.com", &rec),
            agent_join(CallId(9), "https://d.example.com", &rec),
        ] {
            let xml = doc.to_xml();
            assert!(xml.contains(r#"record="record-from-start""#), "{xml}");
            assert!(
                xml.contains(
                    r#"recordingStatusCallback="https://d.example.com/twilio/calls/9/recording""#
                ),
                "{xml}"
            );
            assert!(
                xml.contains(r#"recordingStatusCallbackEvent="completed absent""#),
                "{xml}"
            );
            assert!(
                xml.contains(r#"recordingStatusCallbackMethod="POST""#),
                "{xml}"
            );
            assert!(!xml.contains("<Say"), "no notice configured: {xml}");
            assert_eq!(VoiceResponse::parse(&xml).unwrap(), doc);
        }
    }

    #[test]
    fn the_consent_notice_is_said_to_the_person_before_they_enter_the_conference() {
        let rec = recorded(Some("This call is recorded & kept <90 days>."));
        let lead = lead_hold(CallId(9), "https://d.example.com", &rec).to_xml();
        let say = lead
            .find("<Say>This call is recorded &amp; kept &lt;90 days&gt;.</Say>")
            .expect("the notice, escaped");
        assert!(say < lead.find("<Dial>").unwrap(), "{lead}");
        // The agent does not hear it; their entry starts the recording.
        let agent = agent_join(CallId(9), "https://d.example.com", &rec).to_xml();
        assert!(!agent.contains("<Say"), "{agent}");
        // A notice left over on a campaign that does not record is never said.
        let off = RecordingPolicy {
            enabled: false,
            consent_message: Some("This call is recorded.".into()),
        };
        let lead = lead_hold(CallId(9), "https://d.example.com", &off).to_xml();
        assert!(!lead.contains("<Say") && !lead.contains("record"), "{lead}");
    }

    #[test]
    fn the_abandon_message_names_the_seller_and_number_and_offers_the_opt_out_key() {
        let xml = abandon(
            CallId(4),
            "https://d.example.com",
            Some("Acme Solar"),
            Some("+14155550100"),
            "Sorry.",
        )
        .to_xml();
        assert!(xml.contains("This is Acme Solar."), "{xml}");
        assert!(
            xml.contains("call us back at 1 4 1 5 5 5 5 0 1 0 0"),
            "{xml}"
        );
        assert!(xml.contains("press 9"), "{xml}");
        assert!(xml.contains("/twilio/calls/4/abandon/optout"), "{xml}");
        assert!(xml.ends_with("<Hangup /></Response>"), "{xml}");
        let plain = abandon(
            CallId(4),
            "https://d.example.com",
            None,
            None,
            "Sorry, busy.",
        )
        .to_xml();
        assert!(plain.contains("Sorry, busy."), "{plain}");
    }
}
