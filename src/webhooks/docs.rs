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

/// The agent accepted: join the lead's conference, which starts now.
pub fn agent_join(id: CallId, base: &str) -> VoiceResponse {
    VoiceResponse::new().dial(Dial::new().conference(conference(id, base, true)))
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
