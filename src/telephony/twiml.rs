//! TwiML (provisional minimal version; replaced by the full builder).

use std::fmt::Write;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct VoiceResponse {
    pub verbs: Vec<Verb>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verb {
    Say(Say),
    Play(Play),
    Pause(Pause),
    Gather(Gather),
    Dial(Dial),
    Redirect(Redirect),
    Hangup,
    Reject(Reject),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Say {
    pub text: String,
    pub voice: Option<String>,
}
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Play {
    pub url: String,
}
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pause {
    pub length: Option<u32>,
}
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Gather {
    pub num_digits: Option<u32>,
    pub timeout: Option<u32>,
    pub action: Option<String>,
    pub action_on_empty_result: Option<bool>,
    pub children: Vec<Verb>,
}
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dial {
    pub action: Option<String>,
    pub conference: Option<Conference>,
}
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Conference {
    pub name: String,
    pub start_conference_on_enter: Option<bool>,
    pub end_conference_on_exit: Option<bool>,
    pub wait_url: Option<String>,
    pub beep: Option<bool>,
    pub status_callback: Option<String>,
    pub status_callback_event: Vec<String>,
}
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Redirect {
    pub url: String,
}
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reject {
    pub reason: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TwimlError(String);

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn attr(out: &mut String, name: &str, v: Option<String>) {
    if let Some(v) = v {
        let _ = write!(out, " {name}=\"{}\"", esc(&v));
    }
}

impl VoiceResponse {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn verb(mut self, v: Verb) -> Self {
        self.verbs.push(v);
        self
    }
    pub fn to_xml(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>");
        for v in &self.verbs {
            write_verb(&mut out, v);
        }
        out.push_str("</Response>");
        out
    }
    pub fn parse(xml: &str) -> Result<Self, TwimlError> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| TwimlError(e.to_string()))?;
        let root = doc.root_element();
        if root.tag_name().name() != "Response" {
            return Err(TwimlError("root is not <Response>".into()));
        }
        let verbs = root
            .children()
            .filter(|n| n.is_element())
            .map(parse_verb)
            .collect::<Result<_, _>>()?;
        Ok(Self { verbs })
    }
}

fn write_verb(out: &mut String, v: &Verb) {
    match v {
        Verb::Say(s) => {
            out.push_str("<Say");
            attr(out, "voice", s.voice.clone());
            let _ = write!(out, ">{}</Say>", esc(&s.text));
        }
        Verb::Play(p) => {
            let _ = write!(out, "<Play>{}</Play>", esc(&p.url));
        }
        Verb::Pause(p) => {
            out.push_str("<Pause");
            attr(out, "length", p.length.map(|l| l.to_string()));
            out.push_str("/>");
        }
        Verb::Gather(g) => {
            out.push_str("<Gather");
            attr(out, "action", g.action.clone());
            attr(
                out,
                "actionOnEmptyResult",
                g.action_on_empty_result.map(|b| b.to_string()),
            );
            attr(out, "numDigits", g.num_digits.map(|l| l.to_string()));
            attr(out, "timeout", g.timeout.map(|l| l.to_string()));
            out.push('>');
            for c in &g.children {
                write_verb(out, c);
            }
            out.push_str("</Gather>");
        }
        Verb::Dial(d) => {
            out.push_str("<Dial");
            attr(out, "action", d.action.clone());
            out.push('>');
            if let Some(c) = &d.conference {
                out.push_str("<Conference");
                attr(out, "beep", c.beep.map(|b| b.to_string()));
                attr(
                    out,
                    "endConferenceOnExit",
                    c.end_conference_on_exit.map(|b| b.to_string()),
                );
                attr(
                    out,
                    "startConferenceOnEnter",
                    c.start_conference_on_enter.map(|b| b.to_string()),
                );
                attr(out, "statusCallback", c.status_callback.clone());
                attr(
                    out,
                    "statusCallbackEvent",
                    (!c.status_callback_event.is_empty())
                        .then(|| c.status_callback_event.join(" ")),
                );
                attr(out, "waitUrl", c.wait_url.clone());
                let _ = write!(out, ">{}</Conference>", esc(&c.name));
            }
            out.push_str("</Dial>");
        }
        Verb::Redirect(r) => {
            let _ = write!(out, "<Redirect>{}</Redirect>", esc(&r.url));
        }
        Verb::Hangup => out.push_str("<Hangup/>"),
        Verb::Reject(_) => out.push_str("<Reject/>"),
    }
}

fn b(n: roxmltree::Node, k: &str) -> Option<bool> {
    n.attribute(k).map(|v| v == "true")
}
fn u(n: roxmltree::Node, k: &str) -> Option<u32> {
    n.attribute(k).and_then(|v| v.parse().ok())
}
fn s(n: roxmltree::Node, k: &str) -> Option<String> {
    n.attribute(k).map(String::from)
}

fn parse_verb(n: roxmltree::Node) -> Result<Verb, TwimlError> {
    let text = n.text().unwrap_or("").trim().to_string();
    Ok(match n.tag_name().name() {
        "Say" => Verb::Say(Say {
            text,
            voice: s(n, "voice"),
        }),
        "Play" => Verb::Play(Play { url: text }),
        "Pause" => Verb::Pause(Pause {
            length: u(n, "length"),
        }),
        "Gather" => Verb::Gather(Gather {
            num_digits: u(n, "numDigits"),
            timeout: u(n, "timeout"),
            action: s(n, "action"),
            action_on_empty_result: b(n, "actionOnEmptyResult"),
            children: n
                .children()
                .filter(|c| c.is_element())
                .map(parse_verb)
                .collect::<Result<_, _>>()?,
        }),
        "Dial" => Verb::Dial(Dial {
            action: s(n, "action"),
            conference: n
                .children()
                .find(|c| c.has_tag_name("Conference"))
                .map(|c| Conference {
                    name: c.text().unwrap_or("").trim().to_string(),
                    start_conference_on_enter: b(c, "startConferenceOnEnter"),
                    end_conference_on_exit: b(c, "endConferenceOnExit"),
                    wait_url: s(c, "waitUrl"),
                    beep: b(c, "beep"),
                    status_callback: s(c, "statusCallback"),
                    status_callback_event: c
                        .attribute("statusCallbackEvent")
                        .map(|e| e.split_whitespace().map(String::from).collect())
                        .unwrap_or_default(),
                }),
        }),
        "Redirect" => Verb::Redirect(Redirect { url: text }),
        "Hangup" => Verb::Hangup,
        "Reject" => Verb::Reject(Reject {
            reason: s(n, "reason"),
        }),
        other => return Err(TwimlError(format!("unknown verb <{other}>"))),
    })
}
