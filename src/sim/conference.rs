//! Simulated conferences: start when a participant with `startConferenceOnEnter` joins,
//! end when one with `endConferenceOnExit` leaves (or the last one does), and report
//! start / end / join / leave to the conference's status callback. A conference joined
//! with `record="record-from-start"` is recorded from its start to its end, and the
//! recording reported to the `recordingStatusCallback` when the conference ends.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::callbacks::{Callback, Sender};
use super::journal::Event;
use super::{Recording, Shared, new_sid};

/// What a participant's call hears from its conference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// The conference started (someone with startConferenceOnEnter is in it).
    Started,
    /// The participant is out: the conference ended, or it was removed.
    Ended,
}

#[derive(Debug, Clone)]
pub struct JoinSpec {
    pub call_sid: String,
    pub label: Option<String>,
    pub start_on_enter: bool,
    pub end_on_exit: bool,
    pub muted: bool,
    pub status_callback: Option<String>,
    pub status_callback_method: String,
    /// TwiML names: start end join leave mute hold …
    pub status_callback_events: HashSet<String>,
    /// `record="record-from-start"`, and where the recording is reported.
    pub record: Option<RecordingSpec>,
}

/// A `<Conference record="record-from-start">`'s recording callback settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingSpec {
    pub callback: Option<String>,
    pub method: String,
    /// in-progress completed absent; empty means Twilio's default, `completed`.
    pub events: HashSet<String>,
}

impl RecordingSpec {
    fn wants(&self, status: &str) -> bool {
        if self.events.is_empty() {
            status == "completed"
        } else {
            self.events.contains(status)
        }
    }
}

/// The recording of a conference that is running.
struct Rolling {
    sid: String,
    started: Instant,
    started_at: DateTime<Utc>,
}

struct Member {
    spec: JoinSpec,
    hold: bool,
    tx: mpsc::UnboundedSender<Signal>,
}

struct Conf {
    sid: String,
    started: bool,
    members: Vec<Member>,
    callback: Option<(String, String, HashSet<String>)>,
    /// Recording settings, from the first participant who asked for a recording.
    record: Option<RecordingSpec>,
    recording: Option<Rolling>,
    sequence: u32,
    sender: Sender,
}

#[derive(Default)]
pub struct Conferences {
    map: Mutex<HashMap<String, Conf>>,
}

/// A participant as the REST API shows it.
#[derive(Debug, Clone)]
pub struct ParticipantView {
    pub conference_sid: String,
    pub call_sid: String,
    pub label: Option<String>,
    pub hold: bool,
    pub muted: bool,
    pub start_on_enter: bool,
    pub end_on_exit: bool,
}

impl Conferences {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Conf>> {
        // A poisoned lock only means a panic elsewhere; the map itself is consistent.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The SID of the conference named `name`, creating it (not started) if needed.
    pub fn sid_for(&self, shared: &Arc<Shared>, name: &str) -> String {
        let mut map = self.lock();
        map.entry(name.to_string())
            .or_insert_with(|| Conf {
                sid: new_sid("CF"),
                started: false,
                members: Vec::new(),
                callback: None,
                record: None,
                recording: None,
                sequence: 0,
                sender: Sender::spawn(shared.clone()),
            })
            .sid
            .clone()
    }

    /// Adds a call to a conference; the receiver hears when it starts and when the call is out.
    pub fn join(
        &self,
        shared: &Arc<Shared>,
        name: &str,
        spec: JoinSpec,
    ) -> mpsc::UnboundedReceiver<Signal> {
        self.sid_for(shared, name);
        let (tx, rx) = mpsc::unbounded_channel();
        let mut map = self.lock();
        let Some(conf) = map.get_mut(name) else {
            return rx;
        };
        if conf.callback.is_none()
            && let Some(url) = &spec.status_callback
        {
            conf.callback = Some((
                url.clone(),
                spec.status_callback_method.clone(),
                spec.status_callback_events.clone(),
            ));
        }
        if conf.record.is_none() {
            conf.record = spec.record.clone();
        }
        shared.journal.record(Event::ConferenceJoin {
            conference: name.to_string(),
            call_sid: spec.call_sid.clone(),
            start_on_enter: spec.start_on_enter,
            end_on_exit: spec.end_on_exit,
        });
        let starts = spec.start_on_enter && !conf.started;
        let member_sid = spec.call_sid.clone();
        conf.members.push(Member {
            spec,
            hold: false,
            tx,
        });
        notify(
            shared,
            name,
            conf,
            "participant-join",
            "join",
            Some(&member_sid),
        );
        if starts {
            conf.started = true;
            shared.journal.record(Event::ConferenceStart {
                conference: name.to_string(),
                conference_sid: conf.sid.clone(),
            });
            notify(shared, name, conf, "conference-start", "start", None);
            start_recording(shared, name, conf);
        }
        if conf.started {
            for m in &conf.members {
                let _ = m.tx.send(Signal::Started);
            }
        }
        rx
    }

    /// The call left (hung up, was redirected, or its Dial ended).
    pub fn leave(&self, shared: &Arc<Shared>, name: &str, call_sid: &str) {
        let mut map = self.lock();
        let Some(conf) = map.get_mut(name) else {
            return;
        };
        let Some(pos) = conf
            .members
            .iter()
            .position(|m| m.spec.call_sid == call_sid)
        else {
            return;
        };
        let member = conf.members.remove(pos);
        let _ = member.tx.send(Signal::Ended);
        shared.journal.record(Event::ConferenceLeave {
            conference: name.to_string(),
            call_sid: call_sid.to_string(),
        });
        notify(
            shared,
            name,
            conf,
            "participant-leave",
            "leave",
            Some(call_sid),
        );
        let ends = (member.spec.end_on_exit && conf.started) || conf.members.is_empty();
        if ends {
            end_locked(shared, &mut map, name);
        }
    }

    /// Ends the conference: every participant is out (REST `Status=completed`).
    pub fn end(&self, shared: &Arc<Shared>, name_or_sid: &str) -> bool {
        let mut map = self.lock();
        let Some(name) = find_name(&map, name_or_sid) else {
            return false;
        };
        end_locked(shared, &mut map, &name);
        true
    }

    /// Removes one participant (by call SID or label) from the conference.
    pub fn kick(&self, shared: &Arc<Shared>, name_or_sid: &str, who: &str) -> bool {
        let call_sid = {
            let map = self.lock();
            let Some(name) = find_name(&map, name_or_sid) else {
                return false;
            };
            let conf = &map[&name];
            match conf
                .members
                .iter()
                .find(|m| m.spec.call_sid == who || m.spec.label.as_deref() == Some(who))
            {
                Some(m) => (name, m.spec.call_sid.clone()),
                None => return false,
            }
        };
        self.leave(shared, &call_sid.0, &call_sid.1);
        true
    }

    /// Changes hold / mute of a participant; `None` if there is no such participant.
    pub fn update(
        &self,
        name_or_sid: &str,
        who: &str,
        hold: Option<bool>,
        muted: Option<bool>,
    ) -> Option<ParticipantView> {
        let mut map = self.lock();
        let name = find_name(&map, name_or_sid)?;
        let conf = map.get_mut(&name)?;
        let sid = conf.sid.clone();
        let m = conf
            .members
            .iter_mut()
            .find(|m| m.spec.call_sid == who || m.spec.label.as_deref() == Some(who))?;
        if let Some(h) = hold {
            m.hold = h;
        }
        if let Some(mu) = muted {
            m.spec.muted = mu;
        }
        Some(view(&sid, m))
    }

    pub fn participant(&self, name_or_sid: &str, who: &str) -> Option<ParticipantView> {
        let map = self.lock();
        let name = find_name(&map, name_or_sid)?;
        let conf = map.get(&name)?;
        let m = conf
            .members
            .iter()
            .find(|m| m.spec.call_sid == who || m.spec.label.as_deref() == Some(who))?;
        Some(view(&conf.sid, m))
    }

    /// Names of conferences with at least one participant, and how many each has.
    pub fn live(&self) -> Vec<(String, usize)> {
        self.lock()
            .iter()
            .map(|(n, c)| (n.clone(), c.members.len()))
            .collect()
    }
}

fn view(conference_sid: &str, m: &Member) -> ParticipantView {
    ParticipantView {
        conference_sid: conference_sid.to_string(),
        call_sid: m.spec.call_sid.clone(),
        label: m.spec.label.clone(),
        hold: m.hold,
        muted: m.spec.muted,
        start_on_enter: m.spec.start_on_enter,
        end_on_exit: m.spec.end_on_exit,
    }
}

fn find_name(map: &HashMap<String, Conf>, name_or_sid: &str) -> Option<String> {
    if map.contains_key(name_or_sid) {
        return Some(name_or_sid.to_string());
    }
    map.iter()
        .find(|(_, c)| c.sid == name_or_sid)
        .map(|(n, _)| n.clone())
}

fn end_locked(shared: &Arc<Shared>, map: &mut HashMap<String, Conf>, name: &str) {
    let Some(mut conf) = map.remove(name) else {
        return;
    };
    for m in conf.members.drain(..) {
        let _ = m.tx.send(Signal::Ended);
        shared.journal.record(Event::ConferenceLeave {
            conference: name.to_string(),
            call_sid: m.spec.call_sid.clone(),
        });
    }
    shared.journal.record(Event::ConferenceEnd {
        conference: name.to_string(),
        conference_sid: conf.sid.clone(),
    });
    notify(shared, name, &mut conf, "conference-end", "end", None);
    end_recording(shared, name, &mut conf);
}

/// The conference started: a `record-from-start` conference's recording starts with it.
fn start_recording(shared: &Arc<Shared>, name: &str, conf: &mut Conf) {
    let Some(spec) = conf.record.clone() else {
        return;
    };
    let rolling = Rolling {
        sid: new_sid("RE"),
        started: Instant::now(),
        started_at: Utc::now(),
    };
    shared.journal.record(Event::RecordingStart {
        conference: name.to_string(),
        conference_sid: conf.sid.clone(),
        recording_sid: rolling.sid.clone(),
    });
    if spec.wants("in-progress") {
        let params = recording_params(shared, conf, &rolling, "in-progress", None);
        send_recording(conf, &spec, params);
    }
    conf.recording = Some(rolling);
}

/// The conference ended: its recording is complete (`absent` when it rounds to no second
/// at all: Twilio keeps no recording that short), and reported if the callback asked.
fn end_recording(shared: &Arc<Shared>, name: &str, conf: &mut Conf) {
    let (Some(spec), Some(rolling)) = (conf.record.clone(), conf.recording.take()) else {
        return;
    };
    let duration = (rolling.started.elapsed().as_secs_f64() * shared.config.speed).round() as u32;
    let status = if duration == 0 { "absent" } else { "completed" };
    shared.store_recording(Recording {
        sid: rolling.sid.clone(),
        call_sid: None,
        conference_sid: Some(conf.sid.clone()),
        status: status.to_string(),
        start_time: rolling.started_at,
        duration_secs: duration,
        source: "Conference",
    });
    shared.journal.record(Event::RecordingEnd {
        conference: name.to_string(),
        conference_sid: conf.sid.clone(),
        recording_sid: rolling.sid.clone(),
        status: status.to_string(),
        duration_secs: duration,
    });
    if spec.wants(status) {
        let params = recording_params(shared, conf, &rolling, status, Some(duration));
        send_recording(conf, &spec, params);
    }
}

/// A conference recording callback's parameters: no `CallSid` (the recording is the
/// conference's), the file's URL and length only once it is complete.
fn recording_params(
    shared: &Shared,
    conf: &Conf,
    rolling: &Rolling,
    status: &str,
    duration: Option<u32>,
) -> Vec<(String, String)> {
    let mut params = vec![
        ("AccountSid".to_string(), shared.config.account_sid.clone()),
        ("ConferenceSid".to_string(), conf.sid.clone()),
        ("RecordingSid".to_string(), rolling.sid.clone()),
        ("RecordingStatus".to_string(), status.to_string()),
        ("RecordingChannels".to_string(), "1".to_string()),
        ("RecordingSource".to_string(), "Conference".to_string()),
        (
            "RecordingStartTime".to_string(),
            rolling.started_at.to_rfc2822(),
        ),
    ];
    match (status, duration) {
        ("completed", Some(secs)) => {
            params.push(("RecordingUrl".into(), shared.recording_url(&rolling.sid)));
            params.push(("RecordingDuration".into(), secs.to_string()));
        }
        // Too short to keep (Twilio's error 16101).
        ("absent", _) => params.push(("ErrorCode".into(), "16101".into())),
        _ => {}
    }
    params
}

fn send_recording(conf: &Conf, spec: &RecordingSpec, params: Vec<(String, String)>) {
    let Some(url) = spec.callback.clone() else {
        return;
    };
    // On the conference's own queue: after its end event, in order.
    conf.sender.send(Callback {
        call_sid: String::new(),
        kind: "recording",
        url,
        method: spec.method.clone(),
        params,
    });
}

/// Sends a conference event to the conference's status callback if it asked for it.
fn notify(
    shared: &Arc<Shared>,
    name: &str,
    conf: &mut Conf,
    event: &str,
    twiml_name: &str,
    call_sid: Option<&str>,
) {
    let Some((url, method, events)) = conf.callback.clone() else {
        return;
    };
    if !events.is_empty() && !events.contains(twiml_name) {
        return;
    }
    let mut params = vec![
        ("AccountSid".to_string(), shared.config.account_sid.clone()),
        ("ConferenceSid".to_string(), conf.sid.clone()),
        ("FriendlyName".to_string(), name.to_string()),
        ("StatusCallbackEvent".to_string(), event.to_string()),
        ("SequenceNumber".to_string(), conf.sequence.to_string()),
        ("Timestamp".to_string(), chrono::Utc::now().to_rfc2822()),
    ];
    conf.sequence += 1;
    if let Some(sid) = call_sid {
        params.push(("CallSid".to_string(), sid.to_string()));
        if let Some(m) = conf.members.iter().find(|m| m.spec.call_sid == sid) {
            params.push((
                "StartConferenceOnEnter".into(),
                m.spec.start_on_enter.to_string(),
            ));
            params.push(("EndConferenceOnExit".into(), m.spec.end_on_exit.to_string()));
            params.push(("Muted".into(), m.spec.muted.to_string()));
            params.push(("Hold".into(), m.hold.to_string()));
            params.push(("Coaching".into(), "false".into()));
        }
    }
    conf.sender.send(Callback {
        call_sid: call_sid.unwrap_or("").to_string(),
        kind: "conference",
        url,
        method,
        params,
    });
}
