//! The TwiML documents the daemon answers with: holding a lead, the voicemail drop, the
//! agent's whisper and what follows it. Built with the typed builder; user data (lead
//! names, campaign messages) is only ever text inside it, escaped by the builder.

use crate::call::CallId;
use crate::telephony::twiml::{Conference, Dial, Gather, Say, Verb, VoiceResponse};

/// The conference's events the daemon follows (TwiML names).
const CONFERENCE_EVENTS: [&str; 4] = ["start", "end", "join", "leave"];

fn url(base: &str, id: CallId, tail: &str) -> String {
    format!("{}/twilio/calls/{id}/{tail}", base.trim_end_matches('/'))
}

fn conference(id: CallId, base: &str, start_on_enter: bool) -> Conference {
    Conference {
        name: id.conference_name(),
        start_conference_on_enter: Some(start_on_enter),
        end_conference_on_exit: Some(true),
        beep: Some(false),
        // Silence rather than hold music: the lead just said hello.
        wait_url: Some(String::new()),
        status_callback: Some(url(base, id, "conference")),
        status_callback_event: CONFERENCE_EVENTS.iter().map(|e| e.to_string()).collect(),
    }
}

/// The lead waits, in silence, in the attempt's conference; it starts when the agent
/// joins, and ends when either leaves.
pub fn lead_hold(id: CallId, base: &str) -> VoiceResponse {
    VoiceResponse::new().verb(Verb::Dial(Dial {
        action: None,
        conference: Some(conference(id, base, false)),
    }))
}

/// The campaign's voicemail message (its audio if it has one), then hang up.
pub fn voicemail_drop(text: Option<&str>, audio_url: Option<&str>) -> VoiceResponse {
    let r = match (audio_url, text) {
        (Some(url), _) => VoiceResponse::new().verb(Verb::Play(crate::telephony::twiml::Play {
            url: url.to_string(),
        })),
        (None, Some(text)) => VoiceResponse::new().verb(Verb::Say(Say {
            text: text.to_string(),
            voice: None,
        })),
        (None, None) => VoiceResponse::new(),
    };
    r.verb(Verb::Hangup)
}

/// The agent hears who is waiting and presses 1 to take the call; silence declines.
pub fn agent_whisper(id: CallId, base: &str, lead_name: &str) -> VoiceResponse {
    let who = if lead_name.trim().is_empty() {
        "a customer".to_string()
    } else {
        lead_name.trim().to_string()
    };
    VoiceResponse::new().verb(Verb::Gather(Gather {
        num_digits: Some(1),
        timeout: Some(8),
        action: Some(url(base, id, "agent/accept")),
        action_on_empty_result: Some(true),
        children: vec![Verb::Say(Say {
            text: format!("Connecting you with {who}. Press 1 to accept."),
            voice: None,
        })],
    }))
}

/// The agent accepted: join the lead's conference, which starts now.
pub fn agent_join(id: CallId, base: &str) -> VoiceResponse {
    VoiceResponse::new().verb(Verb::Dial(Dial {
        action: None,
        conference: Some(conference(id, base, true)),
    }))
}

pub fn agent_declined() -> VoiceResponse {
    VoiceResponse::new()
        .verb(Verb::Say(Say {
            text: "Call declined.".into(),
            voice: None,
        }))
        .verb(Verb::Hangup)
}

pub fn agent_lead_gone() -> VoiceResponse {
    VoiceResponse::new()
        .verb(Verb::Say(Say {
            text: "Sorry, the caller has hung up.".into(),
            voice: None,
        }))
        .verb(Verb::Hangup)
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
