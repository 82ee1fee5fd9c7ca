//! One task per simulated call: the CPS queue, ringing, the answer, AMD, the called
//! party's behaviour, and a TwiML interpreter that follows what the daemon returns.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use super::Shared;
use super::callbacks::{Callback, Sender, deliver, with_query};
use super::conference::{JoinSpec, RecordingSpec, Signal};
use super::journal::Event;
use super::new_sid;
use super::scenario::{GreetingEnd, Outcome, Scenario};
use crate::telephony::signature;
use crate::telephony::twiml::{ConferenceRecord, DialTarget, Method, Prompt, Verb, VoiceResponse};

/// What the REST API can still do to a call.
#[derive(Debug, Clone)]
pub enum Command {
    Twiml(VoiceResponse),
    Url(String, String),
    Cancel,
    Complete,
}

/// What the REST API shows of a call.
#[derive(Debug, Clone)]
pub struct Info {
    pub sid: String,
    pub to: String,
    pub from: String,
    pub status: String,
    pub created: DateTime<Utc>,
    pub started: Option<DateTime<Utc>>,
    pub ended: Option<DateTime<Utc>>,
    pub duration_secs: Option<u32>,
    pub answered_by: Option<String>,
}

#[derive(Clone)]
pub struct Handle {
    info: Arc<Mutex<Info>>,
    cmd: mpsc::UnboundedSender<Command>,
}

impl Handle {
    pub fn info(&self) -> Info {
        self.info.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn command(&self, c: Command) {
        let _ = self.cmd.send(c);
    }

    fn set(&self, f: impl FnOnce(&mut Info)) {
        f(&mut self.info.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// A create-call request's parameters.
#[derive(Debug, Clone)]
pub struct CreateParams {
    pub url: Option<String>,
    pub method: String,
    pub twiml: Option<VoiceResponse>,
    pub status_callback: Option<String>,
    pub status_callback_method: String,
    pub status_events: HashSet<String>,
    pub timeout_secs: u32,
    pub machine_detection: Option<String>,
    pub async_amd: bool,
    pub amd_callback: Option<String>,
    pub amd_callback_method: String,
    pub record: bool,
    pub recording_callback: Option<String>,
}

/// An add-participant request's parameters: a call that joins a conference when answered.
#[derive(Debug, Clone)]
pub struct ParticipantParams {
    pub conference: String,
    pub label: Option<String>,
    pub start_on_enter: bool,
    pub end_on_exit: bool,
    pub muted: bool,
    pub timeout_secs: u32,
    pub status_callback: Option<String>,
    pub status_callback_method: String,
    pub status_events: HashSet<String>,
    pub conference_callback: Option<String>,
    pub conference_callback_method: String,
    pub conference_events: HashSet<String>,
}

pub enum Leg {
    Call { params: CreateParams },
    Participant { params: ParticipantParams },
}

/// One TwiML instruction as the simulator executes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Say / Play / Pause: takes time, nothing else.
    Wait {
        verb: &'static str,
        secs: f64,
        /// What a `<Say>` says (the journal keeps it).
        text: Option<String>,
    },
    Gather {
        prompt_secs: f64,
        timeout_secs: f64,
        action: Option<String>,
        method: String,
        on_empty: bool,
    },
    Conference {
        /// Boxed: it is several times the size of the other steps.
        spec: Box<ConferenceStep>,
        action: Option<(String, String)>,
    },
    /// A Dial to a number or client: the simulator does not bridge those.
    DialOther {
        action: Option<(String, String)>,
    },
    Redirect {
        url: String,
        method: String,
    },
    Hangup,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConferenceStep {
    pub name: String,
    pub start_on_enter: bool,
    pub end_on_exit: bool,
    pub muted: bool,
    pub status_callback: Option<String>,
    pub status_callback_method: String,
    pub events: HashSet<String>,
    /// `record="record-from-start"` and its recording callback.
    pub record: Option<RecordingSpec>,
}

/// Starts a call: registered at once (the REST answer shows it queued), played out in its task.
pub fn spawn(shared: &Arc<Shared>, leg: Leg, to: String, from: String) -> Handle {
    let sid = new_sid("CA");
    let (tx, rx) = mpsc::unbounded_channel();
    let handle = Handle {
        info: Arc::new(Mutex::new(Info {
            sid: sid.clone(),
            to: to.clone(),
            from: from.clone(),
            status: "queued".into(),
            created: Utc::now(),
            started: None,
            ended: None,
            duration_secs: None,
            answered_by: None,
        })),
        cmd: tx,
    };
    let agent = shared.config.is_agent(&to);
    shared.journal.record(Event::DialRequest {
        call_sid: sid.clone(),
        to: to.clone(),
        from: from.clone(),
        agent,
        url: match &leg {
            Leg::Call { params } => params.url.clone(),
            Leg::Participant { .. } => None,
        },
    });
    shared
        .calls
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(sid.clone(), handle.clone());
    let scenario = shared.scenarios.draw(&to, shared.nth_call(&to));
    let slot = shared.dial_slot();
    shared.call_started();
    let life = Life {
        shared: shared.clone(),
        handle: handle.clone(),
        sid,
        to,
        from,
        agent,
        scenario,
        leg,
        sequence: 0,
        callbacks: Sender::spawn(shared.clone()),
        answered_at: None,
        bridged: false,
        conference: None,
        doc_url: None,
        answered_by: None,
    };
    tokio::spawn(life.run(slot, rx));
    handle
}

struct Life {
    shared: Arc<Shared>,
    handle: Handle,
    sid: String,
    to: String,
    from: String,
    agent: bool,
    scenario: Scenario,
    leg: Leg,
    sequence: u32,
    callbacks: Sender,
    answered_at: Option<Instant>,
    bridged: bool,
    /// The conference this call is in, and its signals.
    conference: Option<(String, mpsc::UnboundedReceiver<Signal>)>,
    doc_url: Option<String>,
    answered_by: Option<String>,
}

/// How a call ends.
struct End {
    status: &'static str,
    sip: u16,
}

const COMPLETED: End = End {
    status: "completed",
    sip: 200,
};

impl Life {
    async fn run(mut self, slot: Instant, mut rx: mpsc::UnboundedReceiver<Command>) {
        let end = self.play(slot, &mut rx).await;
        self.finish(end).await;
        self.shared.call_ended();
    }

    fn real(&self, secs: f64) -> std::time::Duration {
        self.shared.config.real(secs)
    }

    fn status_events(&self) -> (&Option<String>, &str, &HashSet<String>) {
        match &self.leg {
            Leg::Call { params } => (
                &params.status_callback,
                &params.status_callback_method,
                &params.status_events,
            ),
            Leg::Participant { params } => (
                &params.status_callback,
                &params.status_callback_method,
                &params.status_events,
            ),
        }
    }

    fn timeout_secs(&self) -> u32 {
        match &self.leg {
            Leg::Call { params } => params.timeout_secs,
            Leg::Participant { params } => params.timeout_secs,
        }
    }

    fn base_params(&self, status: &str) -> Vec<(String, String)> {
        vec![
            ("AccountSid".into(), self.shared.config.account_sid.clone()),
            ("ApiVersion".into(), "2010-04-01".into()),
            ("CallSid".into(), self.sid.clone()),
            ("CallStatus".into(), status.into()),
            ("Called".into(), self.to.clone()),
            ("Caller".into(), self.from.clone()),
            ("Direction".into(), "outbound-api".into()),
            ("From".into(), self.from.clone()),
            ("To".into(), self.to.clone()),
        ]
    }

    /// Moves the call to `status` and sends the status callback if it was asked for.
    fn status(&mut self, status: &'static str, extra: Vec<(String, String)>) {
        self.handle.set(|i| i.status = status.to_string());
        let event = match status {
            "initiated" => "initiated",
            "ringing" => "ringing",
            "in-progress" => "answered",
            _ => "completed",
        };
        let (url, method, events) = self.status_events();
        let (url, method, wanted) = (url.clone(), method.to_string(), events.contains(event));
        self.shared.journal.record(Event::Status {
            call_sid: self.sid.clone(),
            status: status.into(),
            sequence: self.sequence,
        });
        let Some(url) = url.filter(|_| wanted) else {
            return;
        };
        let mut params = self.base_params(status);
        params.push(("CallbackSource".into(), "call-progress-events".into()));
        params.push(("SequenceNumber".into(), self.sequence.to_string()));
        params.push(("Timestamp".into(), Utc::now().to_rfc2822()));
        params.extend(extra);
        self.sequence += 1;
        self.callbacks.send(Callback {
            call_sid: self.sid.clone(),
            kind: "status",
            url,
            method,
            params,
        });
    }

    /// Waits `secs` of simulated time unless a command cancels the call first.
    async fn ring(
        &mut self,
        secs: f64,
        rx: &mut mpsc::UnboundedReceiver<Command>,
    ) -> Result<(), End> {
        let until = Instant::now() + self.real(secs);
        self.ring_until(until, rx).await
    }

    async fn ring_until(
        &mut self,
        until: Instant,
        rx: &mut mpsc::UnboundedReceiver<Command>,
    ) -> Result<(), End> {
        loop {
            tokio::select! {
                _ = sleep_until(until) => return Ok(()),
                _ = self.shared.shutdown.cancelled() => return Err(End { status: "canceled", sip: 487 }),
                cmd = rx.recv() => match cmd {
                    Some(Command::Cancel | Command::Complete) | None => return Err(End { status: "canceled", sip: 487 }),
                    // Redirecting a call that has not been answered changes what it will run.
                    Some(Command::Twiml(doc)) => self.set_initial(Some(doc), None),
                    Some(Command::Url(url, method)) => self.set_initial(None, Some((url, method))),
                },
            }
        }
    }

    fn set_initial(&mut self, doc: Option<VoiceResponse>, url: Option<(String, String)>) {
        if let Leg::Call { params } = &mut self.leg {
            params.twiml = doc;
            if let Some((u, m)) = url {
                params.url = Some(u);
                params.method = m;
            }
        }
    }

    async fn play(&mut self, slot: Instant, rx: &mut mpsc::UnboundedReceiver<Command>) -> End {
        // Queued until the account's CPS lets the call start.
        if let Err(end) = self.ring_until(slot, rx).await {
            return end;
        }
        self.shared.journal.record(Event::DialStart {
            call_sid: self.sid.clone(),
        });
        self.handle.set(|i| i.started = Some(Utc::now()));
        self.status("initiated", vec![]);
        if let Err(end) = self.ring(0.2, rx).await {
            return end;
        }
        let s = self.scenario.clone();
        let outcome = if self.agent {
            Outcome::Human
        } else {
            s.outcome
        };
        if outcome == Outcome::Failed {
            if let Err(end) = self.ring(s.reject_secs, rx).await {
                return end;
            }
            return End {
                status: "failed",
                sip: 404,
            };
        }
        self.status("ringing", vec![]);
        let timeout = f64::from(self.timeout_secs());
        let answer_after = if self.agent {
            let [lo, hi] = self.shared.config.timing.agent_answer_secs;
            if hi > lo {
                rand::rng().random_range(lo..=hi)
            } else {
                lo
            }
        } else {
            s.ring_secs
        };
        match outcome {
            Outcome::Busy => {
                if let Err(end) = self.ring(s.reject_secs, rx).await {
                    return end;
                }
                return End {
                    status: "busy",
                    sip: 486,
                };
            }
            Outcome::NoAnswer => {
                if let Err(end) = self.ring(timeout, rx).await {
                    return end;
                }
                return End {
                    status: "no-answer",
                    sip: 487,
                };
            }
            _ if answer_after > timeout => {
                if let Err(end) = self.ring(timeout, rx).await {
                    return end;
                }
                return End {
                    status: "no-answer",
                    sip: 487,
                };
            }
            _ => {
                if let Err(end) = self.ring(answer_after, rx).await {
                    return end;
                }
            }
        }
        self.answered_at = Some(Instant::now());
        self.status("in-progress", vec![]);
        self.converse(outcome, rx).await
    }

    /// What AMD concludes about this party, for `MachineDetection` = `mode`.
    fn verdict(&self, outcome: Outcome, mode: &str) -> &'static str {
        match (outcome, mode) {
            (Outcome::Machine, "DetectMessageEnd") => match self.scenario.greeting_end {
                GreetingEnd::Beep => "machine_end_beep",
                GreetingEnd::Silence => "machine_end_silence",
                GreetingEnd::Other => "machine_end_other",
            },
            (Outcome::Machine, _) => "machine_start",
            _ => "human",
        }
    }

    /// The answered call: AMD, the party's behaviour, and the TwiML it runs.
    async fn converse(
        &mut self,
        outcome: Outcome,
        rx: &mut mpsc::UnboundedReceiver<Command>,
    ) -> End {
        let start = Instant::now();
        let s = self.scenario.clone();
        // When the party hangs up on its own (a person on hold loses patience; a machine
        // stops recording); agents stay until their conference ends.
        let mut party_hangup = match (self.agent, outcome) {
            (true, _) => None,
            (false, Outcome::Machine) => Some(start + self.real(s.detect_secs + s.record_secs)),
            (false, _) => Some(start + self.real(s.hold_patience_secs)),
        };
        let mut amd_at: Option<Instant> = None;
        let mut fetch_extra = Vec::new();
        let mut steps: Vec<Step> = Vec::new();
        let mut pc = 0usize;
        match &self.leg {
            Leg::Call { params } => {
                let params = params.clone();
                if let Some(mode) = params.machine_detection.as_deref() {
                    let detect = if mode == "Enable" && outcome == Outcome::Machine {
                        s.detect_secs.min(3.0)
                    } else {
                        s.detect_secs
                    };
                    if params.async_amd {
                        amd_at = Some(start + self.real(detect));
                    } else {
                        // Synchronous AMD: the call's URL is fetched once detection is done.
                        if let Err(end) = self.ring(detect, rx).await {
                            return End {
                                status: "completed",
                                ..end
                            };
                        }
                        let by = self.verdict(outcome, mode);
                        self.record_amd(by);
                        fetch_extra.push(("AnsweredBy".to_string(), by.to_string()));
                    }
                }
                if let Some(doc) = params.twiml {
                    steps = steps_of(&doc);
                } else if let Some(url) = params.url {
                    match self.fetch(&url, &params.method, fetch_extra).await {
                        Some(st) => steps = st,
                        None => return COMPLETED,
                    }
                }
            }
            Leg::Participant { params } => {
                steps = vec![Step::Conference {
                    spec: Box::new(ConferenceStep {
                        name: params.conference.clone(),
                        start_on_enter: params.start_on_enter,
                        end_on_exit: params.end_on_exit,
                        muted: params.muted,
                        status_callback: params.conference_callback.clone(),
                        status_callback_method: params.conference_callback_method.clone(),
                        events: params.conference_events.clone(),
                        record: None,
                    }),
                    action: None,
                }];
            }
        }
        // The interpreter: one step at a time, interrupted by commands, AMD, the party
        // hanging up, and conference signals.
        let mut busy_until: Option<Instant> = None;
        let mut gather: Option<GatherState> = None;
        loop {
            if busy_until.is_none() && gather.is_none() && self.conference.is_none() {
                let Some(step) = steps.get(pc).cloned() else {
                    return COMPLETED;
                };
                pc += 1;
                match step {
                    Step::Wait { verb, secs, text } => {
                        self.verb_saying(verb, text);
                        busy_until = Some(Instant::now() + self.real(secs));
                    }
                    Step::Gather {
                        prompt_secs,
                        timeout_secs,
                        action,
                        method,
                        on_empty,
                    } => {
                        self.verb("Gather");
                        let now = Instant::now();
                        let declines =
                            self.agent && self.shared.config.declining_agents.contains(&self.to);
                        let opts_out = !self.agent
                            && outcome == Outcome::Human
                            && rand::rng().random_bool(
                                self.shared.config.opt_out_probability.clamp(0.0, 1.0),
                            );
                        let digit = if declines {
                            "2"
                        } else if opts_out {
                            "9"
                        } else {
                            "1"
                        };
                        let press_at = if opts_out {
                            Some(now + self.real(prompt_secs.min(1.0)))
                        } else if self.agent
                            && (declines
                                || rand::rng()
                                    .random_bool(self.shared.config.agent_accept_probability))
                        {
                            let [lo, hi] = self.shared.config.timing.agent_press_secs;
                            let secs = if hi > lo {
                                rand::rng().random_range(lo..=hi)
                            } else {
                                lo
                            };
                            Some(
                                now + self
                                    .real(secs.min(prompt_secs + timeout_secs - 0.01).max(0.0)),
                            )
                        } else {
                            None
                        };
                        gather = Some(GatherState {
                            press_at,
                            digit,
                            timeout_at: now + self.real(prompt_secs + timeout_secs),
                            action,
                            method,
                            on_empty,
                        });
                    }
                    Step::Conference { spec, action: _ } => {
                        self.verb("Dial");
                        let rx_conf = self.shared.conferences.join(
                            &self.shared,
                            &spec.name,
                            JoinSpec {
                                call_sid: self.sid.clone(),
                                label: match &self.leg {
                                    Leg::Participant { params } => params.label.clone(),
                                    Leg::Call { .. } => None,
                                },
                                start_on_enter: spec.start_on_enter,
                                end_on_exit: spec.end_on_exit,
                                muted: spec.muted,
                                status_callback: spec.status_callback.clone(),
                                status_callback_method: spec.status_callback_method.clone(),
                                status_callback_events: spec.events.clone(),
                                record: spec.record.clone(),
                            },
                        );
                        self.conference = Some((spec.name.clone(), rx_conf));
                    }
                    Step::DialOther { .. } => {
                        self.verb("Dial");
                    }
                    Step::Redirect { url, method } => {
                        self.verb("Redirect");
                        match self.fetch(&url, &method, vec![]).await {
                            Some(st) => {
                                steps = st;
                                pc = 0;
                            }
                            None => return COMPLETED,
                        }
                    }
                    Step::Hangup => {
                        self.verb("Hangup");
                        return COMPLETED;
                    }
                }
                continue;
            }
            let busy_deadline = busy_until.or(gather
                .as_ref()
                .map(|g| g.press_at.unwrap_or(g.timeout_at).min(g.timeout_at)));
            let conf_rx = self.conference.as_mut().map(|(_, r)| r);
            tokio::select! {
                _ = sleep_opt(busy_deadline) => {
                    busy_until = None;
                    if let Some(g) = gather.take() {
                        let digits = match g.press_at {
                            Some(t) if t <= g.timeout_at => g.digit,
                            _ => "",
                        };
                        if !digits.is_empty() {
                            self.shared.journal.record(Event::Digits { call_sid: self.sid.clone(), digits: digits.into() });
                        }
                        if !digits.is_empty() || g.on_empty {
                            let url = match g.action.or_else(|| self.doc_url.clone()) {
                                Some(u) => u,
                                None => return COMPLETED,
                            };
                            match self.fetch(&url, &g.method, vec![("Digits".into(), digits.into()), ("FinishedOnKey".into(), String::new())]).await {
                                Some(st) => {
                                    steps = st;
                                    pc = 0;
                                }
                                None => return COMPLETED,
                            }
                        }
                    }
                }
                _ = sleep_opt(amd_at) => {
                    amd_at = None;
                    let mode = match &self.leg {
                        Leg::Call { params } => params.machine_detection.clone().unwrap_or_default(),
                        Leg::Participant { .. } => String::new(),
                    };
                    let by = self.verdict(outcome, &mode);
                    self.record_amd(by);
                    self.send_amd(by, start);
                }
                _ = sleep_opt(party_hangup) => {
                    self.leave_conference();
                    return COMPLETED;
                }
                _ = self.shared.shutdown.cancelled() => {
                    self.leave_conference();
                    return COMPLETED;
                }
                signal = recv_opt(conf_rx) => match signal {
                    Some(Signal::Started) => {
                        if !self.bridged {
                            self.bridged = true;
                            // A person on hold talks once someone starts the conference.
                            if !self.agent && outcome == Outcome::Human {
                                party_hangup = Some(Instant::now() + self.real(s.talk_secs));
                            }
                        }
                    }
                    Some(Signal::Ended) | None => {
                        self.conference = None;
                    }
                },
                cmd = rx.recv() => match cmd {
                    Some(Command::Complete) | None => {
                        self.leave_conference();
                        return COMPLETED;
                    }
                    // Canceling an answered call does nothing (as on Twilio).
                    Some(Command::Cancel) => {}
                    Some(Command::Twiml(doc)) => {
                        self.leave_conference();
                        busy_until = None;
                        gather = None;
                        steps = steps_of(&doc);
                        pc = 0;
                    }
                    Some(Command::Url(url, method)) => {
                        self.leave_conference();
                        busy_until = None;
                        gather = None;
                        match self.fetch(&url, &method, vec![]).await {
                            Some(st) => {
                                steps = st;
                                pc = 0;
                            }
                            None => return COMPLETED,
                        }
                    }
                },
            }
        }
    }

    fn verb(&self, verb: &str) {
        self.verb_saying(verb, None);
    }

    fn verb_saying(&self, verb: &str, text: Option<String>) {
        self.shared.journal.record(Event::Verb {
            call_sid: self.sid.clone(),
            verb: verb.into(),
            text,
        });
    }

    fn leave_conference(&mut self) {
        if let Some((name, _)) = self.conference.take() {
            self.shared
                .conferences
                .leave(&self.shared, &name, &self.sid);
        }
    }

    fn record_amd(&mut self, by: &'static str) {
        self.answered_by = Some(by.to_string());
        self.handle.set(|i| i.answered_by = Some(by.to_string()));
        self.shared.journal.record(Event::Amd {
            call_sid: self.sid.clone(),
            answered_by: by.into(),
        });
    }

    fn send_amd(&self, by: &str, answered: Instant) {
        let Leg::Call { params } = &self.leg else {
            return;
        };
        let Some(url) = params.amd_callback.clone() else {
            return;
        };
        let ms = answered.elapsed().as_secs_f64() * self.shared.config.speed * 1000.0;
        let params_out = vec![
            (
                "AccountSid".to_string(),
                self.shared.config.account_sid.clone(),
            ),
            ("AnsweredBy".to_string(), by.to_string()),
            ("CallSid".to_string(), self.sid.clone()),
            (
                "MachineDetectionDuration".to_string(),
                format!("{}", ms.round() as u64),
            ),
        ];
        self.callbacks.send(Callback {
            call_sid: self.sid.clone(),
            kind: "amd",
            url,
            method: params.amd_callback_method.clone(),
            params: params_out,
        });
    }

    /// Fetches TwiML from the daemon (signed like Twilio) and turns it into steps. A
    /// failure is Twilio's "application error": the call hangs up.
    async fn fetch(
        &mut self,
        url: &str,
        method: &str,
        extra: Vec<(String, String)>,
    ) -> Option<Vec<Step>> {
        let url = match &self.doc_url {
            Some(base) => url::Url::parse(base)
                .and_then(|b| b.join(url))
                .map(|u| u.to_string())
                .unwrap_or_else(|_| url.to_string()),
            None => url.to_string(),
        };
        let mut params = self.base_params("in-progress");
        if let Some(by) = &self.answered_by {
            params.push(("AnsweredBy".into(), by.clone()));
        }
        params.extend(extra);
        let token = self.shared.config.auth_token.as_bytes();
        let request = if method.eq_ignore_ascii_case("GET") {
            let full = with_query(&url, &params);
            let sig = signature::compute(token, &full, &[] as &[(&str, &str)]);
            self.shared
                .http
                .get(&full)
                .header("X-Twilio-Signature", sig)
        } else {
            let sig = signature::compute(token, &url, &params);
            self.shared
                .http
                .post(&url)
                .header("X-Twilio-Signature", sig)
                .form(&params)
        };
        let sent = std::time::Instant::now();
        let (status, result, latency_ms) = match request.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let body = r.text().await;
                let latency_ms = sent.elapsed().as_secs_f64() * 1000.0;
                let result = match body {
                    Ok(body) if (200..300).contains(&status) => VoiceResponse::parse(&body)
                        .map(|doc| steps_of(&doc))
                        .map_err(|e| format!("invalid TwiML: {e}")),
                    Ok(_) => Err(format!("HTTP {status}")),
                    Err(e) => Err(e.to_string()),
                };
                (Some(status), result, Some(latency_ms))
            }
            Err(e) => (None, Err(e.to_string()), None),
        };
        self.shared.journal.record(Event::Twiml {
            call_sid: self.sid.clone(),
            url: url.clone(),
            http_status: status,
            error: result.as_ref().err().cloned(),
            latency_ms,
        });
        self.doc_url = Some(url);
        result.ok()
    }

    /// The final status callback, the recording callback, and the journal's end entry.
    async fn finish(&mut self, end: End) {
        self.leave_conference();
        let duration = self
            .answered_at
            .map(|t| (t.elapsed().as_secs_f64() * self.shared.config.speed).round() as u32)
            .unwrap_or(0);
        let status = end.status;
        self.handle.set(|i| {
            i.ended = Some(Utc::now());
            i.duration_secs = Some(duration);
        });
        let extra = vec![
            ("CallDuration".to_string(), duration.to_string()),
            ("Duration".to_string(), duration.div_ceil(60).to_string()),
            ("SipResponseCode".to_string(), end.sip.to_string()),
        ];
        self.status(status, extra);
        if let Leg::Call { params } = &self.leg
            && let (true, Some(url), Some(_)) = (
                params.record,
                params.recording_callback.clone(),
                self.answered_at,
            )
        {
            let rec = new_sid("RE");
            self.shared.store_recording(super::Recording {
                sid: rec.clone(),
                call_sid: Some(self.sid.clone()),
                conference_sid: None,
                status: "completed".into(),
                start_time: self.handle.info().started.unwrap_or_else(Utc::now),
                duration_secs: duration,
                source: "OutboundAPI",
            });
            let cb = Callback {
                call_sid: self.sid.clone(),
                kind: "recording",
                url,
                method: "POST".into(),
                params: vec![
                    ("AccountSid".into(), self.shared.config.account_sid.clone()),
                    ("CallSid".into(), self.sid.clone()),
                    ("RecordingSid".into(), rec.clone()),
                    ("RecordingUrl".into(), self.shared.recording_url(&rec)),
                    ("RecordingStatus".into(), "completed".into()),
                    ("RecordingDuration".into(), duration.to_string()),
                    ("RecordingChannels".into(), "1".into()),
                    ("RecordingSource".into(), "OutboundAPI".into()),
                ],
            };
            self.callbacks.send(cb);
        }
        self.shared.journal.record(Event::CallEnd {
            call_sid: self.sid.clone(),
            status: status.into(),
            duration_secs: duration,
            bridged: self.bridged,
        });
        let _ = deliver;
    }
}

struct GatherState {
    press_at: Option<Instant>,
    /// The key pressed at `press_at`.
    digit: &'static str,
    timeout_at: Instant,
    action: Option<String>,
    method: String,
    on_empty: bool,
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(t) => sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn recv_opt(rx: Option<&mut mpsc::UnboundedReceiver<Signal>>) -> Option<Signal> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// Simulated time a spoken text takes (about 150 words a minute).
pub fn speech_secs(text: &str) -> f64 {
    (text.split_whitespace().count() as f64 * 0.4).max(1.0)
}

/// The steps of a TwiML document, as the simulator executes them.
pub fn steps_of(doc: &VoiceResponse) -> Vec<Step> {
    doc.verbs.iter().map(step_of).collect()
}

fn method_of(m: Option<Method>) -> String {
    m.map_or("POST", Method::as_str).to_string()
}

fn prompt_secs(p: &Prompt) -> f64 {
    match p {
        Prompt::Say(s) => speech_secs(&s.text) * f64::from(s.loop_count.unwrap_or(1).max(1)),
        Prompt::Play(p) => PLAY_SECS * f64::from(p.loop_count.unwrap_or(1).max(1)),
        Prompt::Pause(p) => f64::from(p.length.unwrap_or(1)),
    }
}

/// What a `<Play>` takes: the simulator does not fetch audio.
const PLAY_SECS: f64 = 5.0;

fn step_of(verb: &Verb) -> Step {
    match verb {
        Verb::Say(s) => Step::Wait {
            verb: "Say",
            secs: prompt_secs(&Prompt::Say(s.clone())),
            text: Some(s.text.clone()),
        },
        Verb::Play(p) => Step::Wait {
            verb: "Play",
            secs: prompt_secs(&Prompt::Play(p.clone())),
            text: None,
        },
        Verb::Pause(p) => Step::Wait {
            verb: "Pause",
            secs: f64::from(p.length.unwrap_or(1)),
            text: None,
        },
        Verb::Gather(g) => Step::Gather {
            prompt_secs: g.prompts.iter().map(prompt_secs).sum(),
            timeout_secs: f64::from(g.timeout.unwrap_or(5)),
            action: g.action.clone(),
            method: method_of(g.method),
            on_empty: g.action_on_empty_result.unwrap_or(false),
        },
        Verb::Dial(d) => {
            let action = d.action.clone().map(|a| (a, method_of(d.method)));
            let conference = d.targets.iter().find_map(|t| match t {
                DialTarget::Conference(c) => Some(c),
                _ => None,
            });
            match conference {
                Some(c) => Step::Conference {
                    spec: Box::new(ConferenceStep {
                        name: c.name.clone(),
                        start_on_enter: c.start_conference_on_enter.unwrap_or(true),
                        end_on_exit: c.end_conference_on_exit.unwrap_or(false),
                        muted: c.muted.unwrap_or(false),
                        status_callback: c.status_callback.clone().filter(|s| !s.is_empty()),
                        status_callback_method: method_of(c.status_callback_method),
                        events: c
                            .status_callback_event
                            .iter()
                            .map(|e| e.as_str().to_string())
                            .collect(),
                        record: (c.record == Some(ConferenceRecord::RecordFromStart)).then(|| {
                            RecordingSpec {
                                callback: c
                                    .recording_status_callback
                                    .clone()
                                    .filter(|s| !s.is_empty()),
                                method: method_of(c.recording_status_callback_method),
                                events: c
                                    .recording_status_callback_event
                                    .iter()
                                    .map(|e| e.as_str().to_string())
                                    .collect(),
                            }
                        }),
                    }),
                    action,
                },
                None => Step::DialOther { action },
            }
        }
        Verb::Redirect(r) => Step::Redirect {
            url: r.url.clone(),
            method: method_of(r.method),
        },
        Verb::Hangup | Verb::Reject(_) => Step::Hangup,
    }
}
