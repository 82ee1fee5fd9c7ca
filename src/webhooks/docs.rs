//! The TwiML documents the daemon answers with: holding a lead, the voicemail drop, the
//! agent's whisper and what follows it. Built with the typed builder; user data (lead
//! names, campaign messages) is only ever text inside it, escaped by the builder.

use crate::call::CallId;
use crate::telephony::twiml::{
    Conference, ConferenceBeep, ConferenceCallbackEvent, Dial, Gather, Play, Say, VoiceResponse,
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

fn conference(id: CallId, base: &str, start_on_enter: bool) -> Conference {
    Conference::new(id.conference_name())
        .start_conference_on_enter(start_on_enter)
        .end_conference_on_exit(true)
        .beep(ConferenceBeep::Never)
        // Silence rather than hold music: the lead just said hello.
        .wait_url(String::new())
        .status_callback(url(base, id, "conference"))
        .status_callback_event(CONFERENCE_EVENTS)
}

/// The lead waits, in silence, in the attempt's conference; it starts when the agent
/// joins, and ends when either leaves.
pub fn lead_hold(id: CallId, base: &str) -> VoiceResponse {
    VoiceResponse::new().dial(Dial::new().conference(conference(id, base, false)))
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

/// The agent hears who is waiting and presses 1 to take the call; silence declines.
pub fn agent_whisper(id: CallId, base: &str, lead_name: &str) -> VoiceResponse {
    let who = if lead_name.trim().is_empty() {
        "a customer".to_string()
    } else {
        lead_name.trim().to_string()
    };
    VoiceResponse::new().gather(
        Gather::new()
            .num_digits(1u32)
            .timeout(8u32)
            .action(url(base, id, "agent/accept"))
            .action_on_empty_result(true)
            .say(Say::new(format!(
                "Connecting you with {who}. Press 1 to accept."
            ))),
    )
}

/// The agent accepted: join the lead's conference, which starts now.
pub fn agent_join(id: CallId, base: &str) -> VoiceResponse {
    VoiceResponse::new().dial(Dial::new().conference(conference(id, base, true)))
}

/// Nobody could take the person's call: the campaign's message, then hang up.
pub fn abandon(message: &str) -> VoiceResponse {
    VoiceResponse::new().say(Say::new(message)).hangup()
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
        let xml = agent_whisper(CallId(7), "https://d.example.com", "Tom & <Jerry>").to_xml();
        assert!(xml.contains("Tom &amp; &lt;Jerry&gt;"), "{xml}");
        assert_eq!(
            VoiceResponse::parse(&xml).unwrap(),
            agent_whisper(CallId(7), "https://d.example.com", "Tom & <Jerry>")
        );
    }

    #[test]
    fn lead_waits_without_starting_the_conference_and_agent_starts_it() {
        let hold = lead_hold(CallId(9), "https://d.example.com/").to_xml();
        assert!(hold.contains(r#"startConferenceOnEnter="false""#));
        assert!(
            hold.contains(r#"statusCallback="https://d.example.com/twilio/calls/9/conference""#),
            "{hold}"
        );
        let join = agent_join(CallId(9), "https://d.example.com").to_xml();
        assert!(
            join.contains(r#"startConferenceOnEnter="true""#)
                && join.contains(r#"endConferenceOnExit="true""#)
        );
    }
}
