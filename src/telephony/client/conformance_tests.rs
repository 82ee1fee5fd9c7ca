//! Conformance to Twilio's own OpenAPI description: every request the client makes is
//! captured and checked against `tests/data/twilio_openapi_subset.json` (extracted from
//! twilio/twilio-oai by `scripts/extract_openapi_subset.py`) by a small validator that
//! walks the spec. The negative tests prove the validator rejects what Twilio rejects.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::Value;

use super::tests::{ACCOUNT, CALL, CONFERENCE, CaptureServer, Captured};
use super::*;

static SPEC: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/twilio_openapi_subset.json"
    )))
    .unwrap()
});

const FORM: &str = "application/x-www-form-urlencoded";

/// Follows a local `$ref` (`#/components/schemas/x`) to its target.
fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').unwrap();
            resolve(spec, spec.pointer(pointer).unwrap())
        }
        None => schema,
    }
}

/// `%XX` decoding of one path segment (no `+` rule: that is for forms only).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = segment
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// Matches `/a/{X}.json/b` against a request path; returns the path parameters.
fn match_template(template: &str, path: &str) -> Option<BTreeMap<String, String>> {
    let template: Vec<&str> = template.split('/').collect();
    let actual: Vec<&str> = path.split('/').collect();
    if template.len() != actual.len() {
        return None;
    }
    let mut params = BTreeMap::new();
    for (t, raw) in template.iter().zip(actual) {
        let value = percent_decode(raw);
        match (t.find('{'), t.find('}')) {
            (Some(open), Some(close)) => {
                let (prefix, suffix) = (&t[..open], &t[close + 1..]);
                let inner = value.strip_prefix(prefix)?.strip_suffix(suffix)?;
                if inner.is_empty() {
                    return None;
                }
                params.insert(t[open + 1..close].to_string(), inner.to_string());
            }
            _ if *t == value => {}
            _ => return None,
        }
    }
    Some(params)
}

/// Checks one scalar wire value against a (resolved) schema.
fn check_value(spec: &Value, schema: &Value, value: &str) -> Result<(), String> {
    let schema = resolve(spec, schema);
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") if value.parse::<i64>().is_err() => {
            return Err(format!("{value:?} is not an integer"));
        }
        Some("number") if value.parse::<f64>().is_err() => {
            return Err(format!("{value:?} is not a number"));
        }
        Some("boolean") if !matches!(value, "true" | "false") => {
            return Err(format!("{value:?} is not true/false"));
        }
        Some("array") | Some("object") => {
            return Err(format!("{value:?} given where the schema is not a scalar"));
        }
        _ => {}
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.iter().any(|o| o.as_str() == Some(value))
    {
        return Err(format!("{value:?} is not one of {options:?}"));
    }
    if schema.get("format").and_then(Value::as_str) == Some("uri") {
        let parsed = url::Url::parse(value).map_err(|e| format!("{value:?} is not a URI: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("{value:?} is not an http(s) URI"));
        }
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
        && !regex::Regex::new(pattern).unwrap().is_match(value)
    {
        return Err(format!("{value:?} does not match {pattern}"));
    }
    let chars = value.chars().count() as u64;
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && chars < min
    {
        return Err(format!("{value:?} is shorter than {min}"));
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && chars > max
    {
        return Err(format!("{value:?} is longer than {max}"));
    }
    Ok(())
}

/// Validates a request against the spec's operations; every problem is listed.
fn validate(spec: &Value, req: &Captured) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let paths = spec["paths"].as_object().unwrap();
    let matched: Vec<(&String, &Value, BTreeMap<String, String>)> = paths
        .iter()
        .filter_map(|(template, item)| Some((template, item, match_template(template, &req.path)?)))
        .collect();
    let method = req.method.to_ascii_lowercase();
    let Some((template, item, params)) = matched
        .into_iter()
        .find(|(_, item, _)| item.get(&method).is_some())
    else {
        return Err(vec![format!(
            "no {} operation for path {}",
            req.method, req.path
        )]);
    };
    let operation = &item[&method];

    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        let parameter = resolve(spec, parameter);
        if parameter["in"] != "path" {
            continue;
        }
        let name = parameter["name"].as_str().unwrap();
        match params.get(name) {
            Some(value) => {
                if let Err(e) = check_value(spec, &parameter["schema"], value) {
                    problems.push(format!("path parameter {name} of {template}: {e}"));
                }
            }
            None => problems.push(format!("path parameter {name} missing")),
        }
    }

    if operation.get("security").or(spec.get("security")).is_some()
        && !req
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Basic "))
    {
        problems.push("no HTTP Basic authorization".into());
    }

    let Some(body_spec) = operation.get("requestBody") else {
        if !req.body.is_empty() {
            problems.push(format!("{} {template} takes no body", req.method));
        }
        return if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        };
    };
    if req.content_type.as_deref() != Some(FORM) {
        problems.push(format!(
            "content type {:?}, expected {FORM}",
            req.content_type
        ));
    }
    let schema = resolve(spec, &body_spec["content"][FORM]["schema"]);
    let properties = schema["properties"].as_object().unwrap();
    let mut sent: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in req.pairs() {
        sent.entry(key).or_default().push(value);
    }
    for (key, values) in &sent {
        let Some(property) = properties.get(key) else {
            problems.push(format!("{key} is not a parameter of {template}"));
            continue;
        };
        let property = resolve(spec, property);
        if property["type"] == "array" {
            for value in values {
                if let Err(e) = check_value(spec, &property["items"], value) {
                    problems.push(format!("{key}[]: {e}"));
                }
            }
        } else if values.len() > 1 {
            problems.push(format!("{key} repeated but not an array"));
        } else if let Err(e) = check_value(spec, property, &values[0]) {
            problems.push(format!("{key}: {e}"));
        }
    }
    for required in schema["required"].as_array().into_iter().flatten() {
        let name = required.as_str().unwrap();
        if !sent.contains_key(name) {
            problems.push(format!("required {name} missing"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Calls every client method with realistic values; returns what went on the wire.
async fn every_request() -> Vec<Captured> {
    let server = CaptureServer::start().await;
    exercise_every_method(&server.client()).await;
    server.requests()
}

/// Every client method, with realistic values, panicking on any error. 13 requests.
async fn exercise_every_method(client: &TwilioClient) {
    let sid = CallSid::parse(CALL).unwrap();

    let mut call = CreateCall::new(
        "+14155550199",
        "+14155550100",
        Instructions::Url {
            url: "https://dialer.example.com/twiml/answer?lead=9&campaign=42".into(),
            method: Some(HttpMethod::Post),
        },
    );
    call.status_callback = Some("https://dialer.example.com/hooks/status".into());
    call.status_callback_method = Some(HttpMethod::Post);
    call.status_callback_event = vec![
        CallEvent::Initiated,
        CallEvent::Ringing,
        CallEvent::Answered,
        CallEvent::Completed,
    ];
    call.timeout_secs = Some(25);
    call.machine_detection = Some(MachineDetection::DetectMessageEnd);
    call.machine_detection_timeout_secs = Some(30);
    call.async_amd = Some(true);
    call.async_amd_status_callback = Some("https://dialer.example.com/hooks/amd".into());
    call.async_amd_status_callback_method = Some(HttpMethod::Post);
    call.record = Some(true);
    call.recording_status_callback = Some("https://dialer.example.com/hooks/recording".into());
    call.recording_status_callback_event = vec![
        RecordingEvent::InProgress,
        RecordingEvent::Completed,
        RecordingEvent::Absent,
    ];
    client.create_call(&call).await.unwrap();

    let mut inline = CreateCall::new(
        "+442071838750",
        "+14155550100",
        Instructions::Twiml("<Response><Say>Hello</Say></Response>".into()),
    );
    inline.machine_detection = Some(MachineDetection::Enable);
    client.create_call(&inline).await.unwrap();

    for update in [
        UpdateCall::Redirect(Instructions::Url {
            url: "https://dialer.example.com/twiml/bridge".into(),
            method: Some(HttpMethod::Get),
        }),
        UpdateCall::Redirect(Instructions::Twiml(
            "<Response><Dial><Conference>campaign-42</Conference></Dial></Response>".into(),
        )),
        UpdateCall::End(EndCall::Canceled),
        UpdateCall::End(EndCall::Completed),
    ] {
        client.update_call(&sid, &update).await.unwrap();
    }

    let mut agent = AddParticipant::new("+14155550100", "+14155550142");
    agent.label = Some("agent-7".into());
    agent.timeout_secs = Some(20);
    agent.start_conference_on_enter = Some(true);
    agent.end_conference_on_exit = Some(true);
    agent.beep = Some(Beep::Never);
    agent.muted = Some(false);
    agent.status_callback = Some("https://dialer.example.com/hooks/participant".into());
    agent.status_callback_method = Some(HttpMethod::Post);
    agent.status_callback_event = vec![
        CallEvent::Ringing,
        CallEvent::Answered,
        CallEvent::Completed,
    ];
    agent.conference_status_callback = Some("https://dialer.example.com/hooks/conference".into());
    agent.conference_status_callback_method = Some(HttpMethod::Post);
    agent.conference_status_callback_event = vec![
        ConferenceCallbackEvent::Start,
        ConferenceCallbackEvent::End,
        ConferenceCallbackEvent::Join,
        ConferenceCallbackEvent::Leave,
        ConferenceCallbackEvent::Hold,
        ConferenceCallbackEvent::Announcement,
    ];
    agent.early_media = Some(true);
    agent.wait_url = Some("https://dialer.example.com/twiml/wait".into());
    agent.caller_id = Some("+14155550100".into());
    agent.record = Some(false);
    client.add_participant("campaign 42", &agent).await.unwrap();
    client
        .add_participant(
            CONFERENCE,
            &AddParticipant::new("+14155550100", "+14155550143"),
        )
        .await
        .unwrap();

    let hold = UpdateParticipant {
        hold: Some(true),
        hold_url: Some("https://dialer.example.com/twiml/hold".into()),
        hold_method: Some(HttpMethod::Get),
        muted: Some(true),
        announce_url: Some("https://dialer.example.com/twiml/announce".into()),
        announce_method: Some(HttpMethod::Post),
        end_conference_on_exit: Some(false),
        coaching: Some(true),
        call_sid_to_coach: Some(sid.clone()),
    };
    client
        .update_participant(CONFERENCE, "agent-7", &hold)
        .await
        .unwrap();
    client
        .update_participant(CONFERENCE, CALL, &UpdateParticipant::default())
        .await
        .unwrap();
    client.remove_participant(CONFERENCE, CALL).await.unwrap();
    client
        .remove_participant(CONFERENCE, "agent-7")
        .await
        .unwrap();

    client
        .update_conference(
            CONFERENCE,
            &UpdateConference {
                end: true,
                announce_url: Some("https://dialer.example.com/twiml/bye".into()),
                announce_method: Some(HttpMethod::Post),
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn every_client_request_conforms_to_twilio_openapi() {
    let requests = every_request().await;
    assert_eq!(requests.len(), 13);
    let methods: Vec<&str> = requests.iter().map(|r| r.method.as_str()).collect();
    assert!(methods.contains(&"DELETE"));
    for req in &requests {
        if let Err(problems) = validate(&SPEC, req) {
            panic!(
                "{} {} {} violates the spec: {problems:#?}",
                req.method, req.path, req.body
            );
        }
    }
}

#[test]
fn spec_subset_names_its_source_and_covers_the_client_operations() {
    let source = &SPEC["x-source"];
    assert_eq!(source["commit"], "d50069b44ea8cd23141385bdb6db48f16ff75bb5");
    assert!(
        source["license"]
            .as_str()
            .unwrap()
            .starts_with("Apache-2.0")
    );
    let operations = [
        (
            "/2010-04-01/Accounts/{AccountSid}/Calls.json",
            "post",
            "CreateCall",
        ),
        (
            "/2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json",
            "post",
            "UpdateCall",
        ),
        (
            "/2010-04-01/Accounts/{AccountSid}/Conferences/{Sid}.json",
            "post",
            "UpdateConference",
        ),
        (
            "/2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Participants.json",
            "post",
            "CreateParticipant",
        ),
        (
            "/2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Participants/{CallSid}.json",
            "post",
            "UpdateParticipant",
        ),
        (
            "/2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Participants/{CallSid}.json",
            "delete",
            "DeleteParticipant",
        ),
    ];
    for (path, method, id) in operations {
        assert_eq!(
            SPEC["paths"][path][method]["operationId"], id,
            "{method} {path}"
        );
    }
}

/// A valid create-call request to mutate in the negative tests.
fn good_create() -> Captured {
    Captured {
        method: "POST".into(),
        path: format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json"),
        content_type: Some(FORM.into()),
        authorization: Some("Basic QUM6dG9rZW4=".into()),
        body: "To=%2B14155550199&From=%2B14155550100&Url=https%3A%2F%2Fx.example%2Ft&Timeout=25\
               &StatusCallbackEvent=initiated&StatusCallbackEvent=completed&Record=true"
            .into(),
    }
}

fn problems_of(req: &Captured) -> String {
    validate(&SPEC, req)
        .expect_err("the validator must reject this")
        .join("\n")
}

#[test]
fn validator_accepts_a_known_good_request() {
    assert_eq!(validate(&SPEC, &good_create()), Ok(()));
}

#[test]
fn validator_rejects_missing_required_to() {
    let mut req = good_create();
    req.body = req.body.replace("To=%2B14155550199&", "");
    assert!(problems_of(&req).contains("required To missing"));
}

#[test]
fn validator_rejects_non_integer_timeout() {
    let mut req = good_create();
    req.body = req.body.replace("Timeout=25", "Timeout=abc");
    assert!(problems_of(&req).contains("Timeout: \"abc\" is not an integer"));
}

#[test]
fn validator_rejects_unknown_key() {
    let mut req = good_create();
    req.body.push_str("&Whisper=hello");
    assert!(problems_of(&req).contains("Whisper is not a parameter"));
}

#[test]
fn validator_rejects_boolean_not_true_false() {
    let mut req = good_create();
    req.body = req.body.replace("Record=true", "Record=1");
    assert!(problems_of(&req).contains("Record: \"1\" is not true/false"));
}

#[test]
fn validator_rejects_repeated_scalar_key() {
    let mut req = good_create();
    req.body.push_str("&To=%2B14155550198");
    assert!(problems_of(&req).contains("To repeated but not an array"));
}

#[test]
fn validator_rejects_malformed_uri_and_enum() {
    let mut req = good_create();
    req.body
        .push_str("&StatusCallback=not%20a%20url&StatusCallbackMethod=PUT");
    let problems = problems_of(&req);
    assert!(
        problems.contains("StatusCallback: \"not a url\" is not a URI"),
        "{problems}"
    );
    assert!(
        problems.contains("StatusCallbackMethod: \"PUT\" is not one of"),
        "{problems}"
    );
}

#[test]
fn validator_rejects_bad_update_status() {
    let req = Captured {
        path: format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL}.json"),
        body: "Status=hangup".into(),
        ..good_create()
    };
    assert!(problems_of(&req).contains("Status: \"hangup\" is not one of"));
}

#[test]
fn validator_rejects_malformed_account_sid_and_wrong_method() {
    let bad_account = Captured {
        path: "/2010-04-01/Accounts/AC123/Calls.json".into(),
        ..good_create()
    };
    assert!(problems_of(&bad_account).contains("path parameter AccountSid"));
    let put = Captured {
        method: "PUT".into(),
        ..good_create()
    };
    assert!(problems_of(&put).contains("no PUT operation"));
    let unknown = Captured {
        path: format!("/2010-04-01/Accounts/{ACCOUNT}/Queues.json"),
        ..good_create()
    };
    assert!(problems_of(&unknown).contains("no POST operation"));
}

#[test]
fn validator_rejects_missing_auth_and_json_body() {
    let req = Captured {
        authorization: None,
        content_type: Some("application/json".into()),
        ..good_create()
    };
    let problems = problems_of(&req);
    assert!(
        problems.contains("no HTTP Basic authorization"),
        "{problems}"
    );
    assert!(problems.contains("content type"), "{problems}");
}

/// Twilio's spec takes a conference friendly name only when adding a participant: the
/// update/delete paths require a `CF` SID. The client passes what it is given; callers
/// address existing participants by the SID from the conference callbacks.
#[test]
fn validator_rejects_friendly_name_for_participant_update() {
    let by_name = Captured {
        path: format!(
            "/2010-04-01/Accounts/{ACCOUNT}/Conferences/campaign-42/Participants/{CALL}.json"
        ),
        body: "Hold=true".into(),
        ..good_create()
    };
    assert!(problems_of(&by_name).contains("path parameter ConferenceSid"));
    let by_sid = Captured {
        path: format!(
            "/2010-04-01/Accounts/{ACCOUNT}/Conferences/{CONFERENCE}/Participants/{CALL}.json"
        ),
        ..by_name
    };
    assert_eq!(validate(&SPEC, &by_sid), Ok(()));
}

#[test]
fn validator_rejects_body_on_delete() {
    let req = Captured {
        method: "DELETE".into(),
        path: format!(
            "/2010-04-01/Accounts/{ACCOUNT}/Conferences/{CONFERENCE}/Participants/{CALL}.json"
        ),
        body: "Hold=true".into(),
        ..good_create()
    };
    assert!(problems_of(&req).contains("takes no body"));
}

/// Manual check against Prism (see scripts/check_client_with_prism.sh): every client
/// request must get a 2xx from a mock that enforces the full spec.
#[tokio::test]
#[ignore = "needs a Prism mock server: PRISM_URL=http://127.0.0.1:4010"]
async fn every_client_request_is_accepted_by_prism() {
    let base = std::env::var("PRISM_URL").expect("PRISM_URL");
    let client = TwilioClient::new(
        ACCOUNT.to_string(),
        secrecy::SecretString::from("prism-token"),
        &base,
        std::time::Duration::from_secs(10),
        RetryPolicy::default(),
    )
    .unwrap();
    exercise_every_method(&client).await;
    let hold = UpdateParticipant {
        hold: Some(true),
        ..UpdateParticipant::default()
    };
    // And Prism must reject what the spec forbids, or the check above proves nothing.
    let refused = client
        .update_participant("campaign-42", CALL, &hold)
        .await
        .expect_err("friendly name where the spec wants a CF SID");
    println!("update_participant by name -> {refused}");
    assert!(
        matches!(refused, TwilioError::Api { status: 422, .. }),
        "{refused:?}"
    );
}
