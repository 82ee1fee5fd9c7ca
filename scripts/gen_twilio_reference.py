#!/usr/bin/env python3
"""Generate tests/data/twiml_reference.json and tests/data/signature_reference.json.

Provenance: every expected value comes from Twilio's official Python helper library,
`twilio` version 9.8.0 (pinned; the script refuses another version):

- TwiML: `twilio.twiml.voice_response.VoiceResponse`, `str(response)`.
- Signatures: `twilio.request_validator.RequestValidator` (`compute_signature`,
  `compute_hash`, and `validate`, whose verdict is recorded and asserted).

Regenerate (from the repo root):

    pip install twilio==9.8.0
    python3 scripts/gen_twilio_reference.py

The output is deterministic. src/telephony/reference_tests.rs rebuilds every TwiML case
with the Rust builder (matched by case name) and checks the signature verdicts.

Notes on the library's behaviour that the fixtures rely on:
- VoiceResponse writes attributes sorted by name, whatever the keyword order; keywords
  are still passed here in the Rust builder's field order.
- A list attribute value would be written as its Python repr ("['start', 'end']"), so
  statusCallbackEvent is passed as the space-separated string Twilio expects.
- RequestValidator.get_values tries `getall` (webob / multidict), then `getlist`
  (werkzeug MultiDict, Django QueryDict), then `[params[name]]`: a plain dict of lists
  fails (a list is unhashable in `set(values)`), so repeated keys use MultiDict below.
"""

import json
import os
import sys

import twilio
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

VERSION = "9.8.0"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")

ESCAPES = "Tom & Jerry <\"quoted\"> 'apos'"
NON_ASCII = "Zoë ☎"


def twiml_cases():
    cases = []

    def case(name, response):
        cases.append({"name": name, "xml": str(response)})

    r = VoiceResponse()
    case("empty_response", r)

    r = VoiceResponse()
    r.say("Hello")
    r.hangup()
    case("say_then_hangup", r)

    r = VoiceResponse()
    r.say("Bonjour", voice="Polly.Celine", language="fr-FR", loop=2)
    case("say_all_attributes", r)

    r = VoiceResponse()
    r.say(ESCAPES)
    case("say_escapes_xml_specials", r)

    r = VoiceResponse()
    r.say("Line one\nLine\ttwo " + NON_ASCII)
    case("say_newline_tab_non_ascii", r)

    r = VoiceResponse()
    r.say("x", voice=ESCAPES + "\n\t" + NON_ASCII, language="en-US")
    case("attribute_escapes_specials_and_whitespace", r)

    r = VoiceResponse()
    r.play("https://example.com/audio.mp3?a=1&b=2", loop=0, digits="ww1234#")
    r.play(digits="1")
    case("play_url_and_digits", r)

    r = VoiceResponse()
    r.pause(length=3)
    r.pause()
    case("pause_with_and_without_length", r)

    r = VoiceResponse()
    g = Gather(input="dtmf", num_digits=1, timeout=5,
               action="https://dialer.example.com/twiml/gather?call=7&step=2",
               method="POST", finish_on_key="#", action_on_empty_result=True)
    g.say("Press 1 to talk to an agent.", voice="alice", language="en-US")
    g.play("https://example.com/beep.wav")
    g.pause(length=2)
    r.append(g)
    r.say("We did not receive any input. Goodbye.")
    case("gather_all_attributes_with_prompts", r)

    r = VoiceResponse()
    r.append(Gather(input="dtmf speech", finish_on_key="", action_on_empty_result=False))
    case("gather_empty_finish_key_no_prompt", r)

    r = VoiceResponse()
    d = Dial(caller_id="+14155550100", timeout=20,
             action="https://dialer.example.com/twiml/dial-done", method="GET",
             record="record-from-answer-dual", answer_on_bridge=True, time_limit=3600,
             hangup_on_star=False)
    d.number("+14155550123")
    r.append(d)
    case("dial_all_attributes_number", r)

    r = VoiceResponse()
    d = Dial()
    d.conference(
        "campaign-42-agent-7",
        start_conference_on_enter=False,
        end_conference_on_exit=True,
        wait_url="https://dialer.example.com/hold.xml?x=1&y=2",
        wait_method="GET",
        beep="onEnter",
        muted=False,
        max_participants=3,
        record="record-from-start",
        status_callback="https://dialer.example.com/callbacks/conference?tenant=1&c=42",
        status_callback_event="start end join leave mute hold modify speaker announcement",
        status_callback_method="POST",
        recording_status_callback="https://dialer.example.com/twilio/calls/42/recording?a=1&b=2",
        recording_status_callback_method="POST",
        recording_status_callback_event="in-progress completed absent",
        participant_label="lead " + NON_ASCII,
    )
    r.append(d)
    case("dial_conference_all_attributes", r)

    r = VoiceResponse()
    d = Dial()
    d.conference(ESCAPES + " " + NON_ASCII, beep=False, wait_url="")
    r.append(d)
    case("conference_name_escaped_empty_wait_url", r)

    r = VoiceResponse()
    d = Dial(hangup_on_star=True)
    d.client("agent_7")
    d.sip("sip:agent7@pbx.example.com;transport=tls")
    d.number("+442071838750")
    r.append(d)
    case("dial_client_sip_number", r)

    r = VoiceResponse()
    g = Gather(num_digits=1, timeout=10, action="/twiml/whisper?lead=9")
    g.say("Lead: " + NON_ASCII + ". Press 1 to accept.")
    r.append(g)
    d = Dial()
    d.conference("room-9", start_conference_on_enter=True, end_conference_on_exit=True,
                 beep="false")
    r.append(d)
    case("agent_whisper_then_conference", r)

    r = VoiceResponse()
    r.redirect("https://dialer.example.com/twiml/next?a=1&b=<2>", method="GET")
    case("redirect_with_method", r)

    r = VoiceResponse()
    r.reject(reason="busy")
    r.reject()
    case("reject_with_and_without_reason", r)

    return cases


class MultiDict(dict):
    """werkzeug-style multi-valued form: the dict holds the first value, getlist all."""

    def __init__(self, pairs):
        super().__init__()
        self._pairs = list(pairs)
        for k, v in self._pairs:
            self.setdefault(k, v)

    def getlist(self, key):
        return [v for k, v in self._pairs if k == key]


VECTOR_TOKEN = "12345"
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = [
    ["CallSid", "CA1234567890ABCDE"],
    ["Caller", "+14158675309"],
    ["Digits", "1234"],
    ["From", "+14158675309"],
    ["To", "+18005551212"],
]


def signature_cases():
    cases = []

    def form(name, token, url, params, signed_url=None, signing_token=None,
             expect=True):
        """Sign `params` for `signed_url` (default `url`) with `signing_token` (default
        `token`), then record whether a validator holding `token` accepts it at `url`."""
        signed_url = signed_url or url
        signer = RequestValidator(signing_token or token)
        signature = signer.compute_signature(signed_url, MultiDict(params))
        valid = RequestValidator(token).validate(url, MultiDict(params), signature)
        assert valid is expect, (name, valid)
        cases.append({"name": name, "token": token, "url": url, "signed_url": signed_url,
                      "params": params, "signature": signature, "valid": valid})

    def body(name, token, url, body_text, signed_body=None, expect=True):
        v = RequestValidator(token)
        signed_body = body_text if signed_body is None else signed_body
        signed_url = url + "&bodySHA256=" + v.compute_hash(signed_body)
        signature = v.compute_signature(signed_url, {})
        valid = v.validate(signed_url, body_text, signature)
        assert valid is expect, (name, valid)
        cases.append({"name": name, "token": token, "url": signed_url,
                      "signed_url": signed_url, "body": body_text, "signature": signature,
                      "valid": valid})

    form("twilio_published_vector", VECTOR_TOKEN, VECTOR_URL, VECTOR_PARAMS)
    assert cases[-1]["signature"] == "RSOYDt4T1cUTdK1PDd93/VVr8B8=", cases[-1]
    form("repeated_key_values_sorted", "secret-token",
         "https://dialer.example.com/callbacks/status",
         [["StatusCallbackEvent", "ringing"], ["StatusCallbackEvent", "answered"],
          ["StatusCallbackEvent", "initiated"], ["StatusCallbackEvent", "answered"],
          ["CallSid", "CA0123456789abcdef0123456789abcdef"]])
    form("non_ascii_values", "tøken ☎",
         "https://dialer.example.com/callbacks/status?tenant=é",
         [["CallerName", "Zoë ☎"], ["FromCity", "MÜNCHEN"], ["Digits", ""],
          ["SpeechResult", ESCAPES + "\n"]])
    form("no_params_query_only", "abc", "https://dialer.example.com/twiml/next?a=1&b=2",
         [])
    form("http_url", "abc", "http://dialer.example.com/callbacks/status",
         [["CallStatus", "completed"], ["CallDuration", "42"]])
    form("explicit_non_default_port", "abc",
         "https://dialer.example.com:8443/callbacks/status?x=1",
         [["CallStatus", "ringing"]])
    form("signed_with_default_port_validated_without", "abc",
         "https://dialer.example.com/callbacks/status",
         [["CallStatus", "ringing"]],
         signed_url="https://dialer.example.com:443/callbacks/status")
    form("signed_without_port_validated_with_default_port", "abc",
         "http://dialer.example.com:80/callbacks/status?q=1",
         [["CallStatus", "busy"]],
         signed_url="http://dialer.example.com/callbacks/status?q=1")
    form("signed_without_port_validated_with_other_port", "abc",
         "http://dialer.example.com:8080/cb",
         [["AnsweredBy", "machine_end_beep"]],
         signed_url="http://dialer.example.com/cb")
    body("json_body_hash", VECTOR_TOKEN, VECTOR_URL,
         '{"property": "value", "boolean": true, "name": "Zoë"}')

    form("negative_wrong_token", "54321", VECTOR_URL, VECTOR_PARAMS,
         signing_token=VECTOR_TOKEN, expect=False)
    tampered = [list(p) for p in VECTOR_PARAMS]
    tampered[2][1] = "1235"
    signature = RequestValidator(VECTOR_TOKEN).compute_signature(
        VECTOR_URL, MultiDict(VECTOR_PARAMS))
    valid = RequestValidator(VECTOR_TOKEN).validate(VECTOR_URL, MultiDict(tampered),
                                                    signature)
    assert valid is False
    cases.append({"name": "negative_tampered_param", "token": VECTOR_TOKEN,
                  "url": VECTOR_URL, "signed_url": VECTOR_URL, "params": tampered,
                  "signature": signature, "valid": valid})
    form("negative_url_query_differs", VECTOR_TOKEN,
         "https://mycompany.com/myapp.php?foo=1&bar=3", VECTOR_PARAMS,
         signed_url=VECTOR_URL, expect=False)
    body("negative_json_body_tampered", VECTOR_TOKEN, VECTOR_URL,
         '{"property": "other"}', signed_body='{"property": "value"}', expect=False)
    return cases


def write(name, data):
    path = os.path.join(DATA, name)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(data, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(data)} cases to {os.path.relpath(path, ROOT)}")


def main():
    if twilio.__version__ != VERSION:
        sys.exit(f"need twilio=={VERSION}, found {twilio.__version__}")
    write("twiml_reference.json", twiml_cases())
    write("signature_reference.json", signature_cases())


if __name__ == "__main__":
    main()
