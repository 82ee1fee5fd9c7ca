//! Agreement with Twilio's own Python helper library (`twilio` 9.8.0): the fixtures under
//! tests/data/ are written by scripts/gen_twilio_reference.py from `VoiceResponse` and
//! `RequestValidator`; here the Rust builder and validator must give the same answers.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::signature;
use super::twiml::{
    Conference, ConferenceBeep, ConferenceCallbackEvent as Ev, ConferenceRecord, Dial, DialRecord,
    Gather, GatherInput, Method, Pause, Play, RecordingCallbackEvent, Redirect, Reject,
    RejectReason, Say, VoiceResponse,
};

const TWIML: &str = include_str!("../../tests/data/twiml_reference.json");
const SIGNATURES: &str = include_str!("../../tests/data/signature_reference.json");

const ESCAPES: &str = "Tom & Jerry <\"quoted\"> 'apos'";
const NON_ASCII: &str = "Zoë ☎";

#[derive(Deserialize)]
struct TwimlCase {
    name: String,
    xml: String,
}

#[derive(Deserialize)]
struct SignatureCase {
    name: String,
    token: String,
    url: String,
    /// The URL Python's `compute_signature` signed (differs from `url` in port cases).
    signed_url: String,
    /// Form parameters; absent for the JSON body cases.
    params: Option<Vec<(String, String)>>,
    /// The raw JSON body (its hash is in `url`'s `bodySHA256`).
    body: Option<String>,
    signature: String,
    valid: bool,
}

/// The Rust twin of every Python case, by the same name.
fn rust_twiml(name: &str) -> Option<VoiceResponse> {
    let r = VoiceResponse::new();
    Some(match name {
        "empty_response" => r,
        "say_then_hangup" => r.say(Say::new("Hello")).hangup(),
        "say_all_attributes" => r.say(
            Say::new("Bonjour")
                .voice("Polly.Celine")
                .language("fr-FR")
                .loop_count(2u32),
        ),
        "say_escapes_xml_specials" => r.say(Say::new(ESCAPES)),
        "say_newline_tab_non_ascii" => r.say(Say::new(format!("Line one\nLine\ttwo {NON_ASCII}"))),
        "attribute_escapes_specials_and_whitespace" => r.say(
            Say::new("x")
                .voice(format!("{ESCAPES}\n\t{NON_ASCII}"))
                .language("en-US"),
        ),
        "play_url_and_digits" => r
            .play(
                Play::new("https://example.com/audio.mp3?a=1&b=2")
                    .loop_count(0u32)
                    .digits("ww1234#"),
            )
            .play(Play::dtmf("1")),
        "pause_with_and_without_length" => r.pause(Pause::new().length(3u32)).pause(Pause::new()),
        "gather_all_attributes_with_prompts" => r
            .gather(
                Gather::new()
                    .input(GatherInput::Dtmf)
                    .num_digits(1u32)
                    .timeout(5u32)
                    .action("https://dialer.example.com/twiml/gather?call=7&step=2")
                    .method(Method::Post)
                    .finish_on_key("#")
                    .action_on_empty_result(true)
                    .say(
                        Say::new("Press 1 to talk to an agent.")
                            .voice("alice")
                            .language("en-US"),
                    )
                    .play(Play::new("https://example.com/beep.wav"))
                    .pause(Pause::new().length(2u32)),
            )
            .say(Say::new("We did not receive any input. Goodbye.")),
        "gather_empty_finish_key_no_prompt" => r.gather(
            Gather::new()
                .input(GatherInput::DtmfSpeech)
                .finish_on_key("")
                .action_on_empty_result(false),
        ),
        "dial_all_attributes_number" => r.dial(
            Dial::new()
                .caller_id("+14155550100")
                .timeout(20u32)
                .action("https://dialer.example.com/twiml/dial-done")
                .method(Method::Get)
                .record(DialRecord::RecordFromAnswerDual)
                .answer_on_bridge(true)
                .time_limit(3600u32)
                .hangup_on_star(false)
                .number("+14155550123"),
        ),
        "dial_conference_all_attributes" => r.dial(
            Dial::new().conference(
                Conference::new("campaign-42-agent-7")
                    .start_conference_on_enter(false)
                    .end_conference_on_exit(true)
                    .wait_url("https://dialer.example.com/hold.xml?x=1&y=2")
                    .wait_method(Method::Get)
                    .beep(ConferenceBeep::OnEnter)
                    .muted(false)
                    .max_participants(3u32)
                    .record(ConferenceRecord::RecordFromStart)
                    .status_callback(
                        "https://dialer.example.com/callbacks/conference?tenant=1&c=42",
                    )
                    .status_callback_event([
                        Ev::Start,
                        Ev::End,
                        Ev::Join,
                        Ev::Leave,
                        Ev::Mute,
                        Ev::Hold,
                        Ev::Modify,
                        Ev::Speaker,
                        Ev::Announcement,
                    ])
                    .status_callback_method(Method::Post)
                    .recording_status_callback(
                        "https://dialer.example.com/twilio/calls/42/recording?a=1&b=2",
                    )
                    .recording_status_callback_method(Method::Post)
                    .recording_status_callback_event([
                        RecordingCallbackEvent::InProgress,
                        RecordingCallbackEvent::Completed,
                        RecordingCallbackEvent::Absent,
                    ])
                    .participant_label(format!("lead {NON_ASCII}")),
            ),
        ),
        "conference_name_escaped_empty_wait_url" => r.dial(
            Dial::new().conference(
                Conference::new(format!("{ESCAPES} {NON_ASCII}"))
                    .beep(ConferenceBeep::Never)
                    .wait_url(""),
            ),
        ),
        "dial_client_sip_number" => r.dial(
            Dial::new()
                .hangup_on_star(true)
                .client("agent_7")
                .sip("sip:agent7@pbx.example.com;transport=tls")
                .number("+442071838750"),
        ),
        "agent_whisper_then_conference" => r
            .gather(
                Gather::new()
                    .num_digits(1u32)
                    .timeout(10u32)
                    .action("/twiml/whisper?lead=9")
                    .say(Say::new(format!("Lead: {NON_ASCII}. Press 1 to accept."))),
            )
            .dial(
                Dial::new().conference(
                    Conference::new("room-9")
                        .start_conference_on_enter(true)
                        .end_conference_on_exit(true)
                        .beep(ConferenceBeep::Never),
                ),
            ),
        "redirect_with_method" => r.redirect(
            Redirect::new("https://dialer.example.com/twiml/next?a=1&b=<2>").method(Method::Get),
        ),
        "reject_with_and_without_reason" => r
            .reject(Reject::new().reason(RejectReason::Busy))
            .reject(Reject::new()),
        _ => return None,
    })
}

/// Every name `rust_twiml` knows, so a fixture that loses a case is noticed too.
const RUST_TWIML_CASES: &[&str] = &[
    "empty_response",
    "say_then_hangup",
    "say_all_attributes",
    "say_escapes_xml_specials",
    "say_newline_tab_non_ascii",
    "attribute_escapes_specials_and_whitespace",
    "play_url_and_digits",
    "pause_with_and_without_length",
    "gather_all_attributes_with_prompts",
    "gather_empty_finish_key_no_prompt",
    "dial_all_attributes_number",
    "dial_conference_all_attributes",
    "conference_name_escaped_empty_wait_url",
    "dial_client_sip_number",
    "agent_whisper_then_conference",
    "redirect_with_method",
    "reject_with_and_without_reason",
];

fn twiml_cases() -> Vec<TwimlCase> {
    serde_json::from_str(TWIML).expect("tests/data/twiml_reference.json is valid")
}

fn signature_cases() -> Vec<SignatureCase> {
    serde_json::from_str(SIGNATURES).expect("tests/data/signature_reference.json is valid")
}

#[test]
fn twiml_reference_cases_match_rust_cases_one_to_one() {
    let python: BTreeSet<String> = twiml_cases().into_iter().map(|c| c.name).collect();
    let rust: BTreeSet<String> = RUST_TWIML_CASES.iter().map(|s| s.to_string()).collect();
    assert_eq!(python, rust);
    for name in RUST_TWIML_CASES {
        assert!(rust_twiml(name).is_some(), "no Rust builder for {name}");
    }
}

#[test]
fn twiml_builder_output_equals_python_library_byte_for_byte() {
    for case in twiml_cases() {
        let built = rust_twiml(&case.name)
            .unwrap_or_else(|| panic!("no Rust builder for case {}", case.name));
        assert_eq!(built.to_xml(), case.xml, "case {}", case.name);
    }
}

#[test]
fn twiml_python_output_parses_to_the_rust_built_value() {
    for case in twiml_cases() {
        let built = rust_twiml(&case.name)
            .unwrap_or_else(|| panic!("no Rust builder for case {}", case.name));
        let parsed =
            VoiceResponse::parse(&case.xml).unwrap_or_else(|e| panic!("case {}: {e}", case.name));
        assert_eq!(parsed, built, "case {}", case.name);
    }
}

#[test]
fn signature_reference_verdicts_match_python_validator() {
    let cases = signature_cases();
    assert!(cases.iter().any(|c| c.valid) && cases.iter().any(|c| !c.valid));
    for case in cases {
        let token = case.token.as_bytes();
        let verdict = match (&case.params, &case.body) {
            (Some(params), None) => signature::validate(token, &case.url, params, &case.signature),
            (None, Some(body)) => {
                signature::validate_body(token, &case.url, body.as_bytes(), &case.signature)
            }
            _ => panic!("case {}: exactly one of params and body", case.name),
        };
        assert_eq!(verdict, case.valid, "case {}", case.name);
    }
}

#[test]
fn signature_reference_computed_signatures_match_python() {
    let mut checked = 0;
    for case in signature_cases().into_iter().filter(|c| c.valid) {
        let token = case.token.as_bytes();
        let computed = match &case.params {
            Some(params) => signature::compute(token, &case.signed_url, params),
            None => signature::compute(token, &case.signed_url, &[] as &[(&str, &str)]),
        };
        assert_eq!(computed, case.signature, "case {}", case.name);
        if case.body.is_none() && case.signed_url == case.url {
            assert_eq!(
                signature::compute(token, &case.url, case.params.as_deref().unwrap_or(&[])),
                case.signature,
                "case {}",
                case.name
            );
        }
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} valid cases");
}

#[test]
fn signature_reference_includes_twilio_published_vector() {
    let vector = signature_cases()
        .into_iter()
        .find(|c| c.name == "twilio_published_vector")
        .expect("the published vector is in the fixtures");
    assert_eq!(vector.signature, "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
    assert!(vector.valid);
}

#[test]
fn signature_body_hash_matches_python_compute_hash() {
    for case in signature_cases() {
        if let (Some(body), true) = (&case.body, case.valid) {
            let expected = format!("bodySHA256={}", signature::body_sha256(body.as_bytes()));
            assert!(case.url.ends_with(&expected), "case {}", case.name);
        }
    }
}
