//! What the simulator saw and did, in order: tests and benchmarks read it to check the
//! daemon's promises from outside (dial rate, concurrency, bridges, callbacks).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// Milliseconds since the simulator started (monotonic).
    pub t_ms: f64,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A create-call request was accepted (the moment the CPS limit is judged on).
    DialRequest {
        call_sid: String,
        to: String,
        from: String,
        agent: bool,
        /// The URL whose TwiML the call runs once answered (`None` for inline TwiML and
        /// conference participants); an agent leg's names the call it is offered.
        #[serde(default)]
        url: Option<String>,
    },
    /// The call left the CPS queue and started.
    DialStart { call_sid: String },
    /// The call's status changed.
    Status {
        call_sid: String,
        status: String,
        sequence: u32,
    },
    /// The AMD verdict was reached.
    Amd {
        call_sid: String,
        answered_by: String,
    },
    /// TwiML was fetched (or failed to be).
    Twiml {
        call_sid: String,
        url: String,
        http_status: Option<u16>,
        error: Option<String>,
        /// From just before the request was sent to its whole body read; `None` without a response.
        #[serde(default)]
        latency_ms: Option<f64>,
    },
    /// A verb started on the call.
    Verb {
        call_sid: String,
        verb: String,
        /// What a `<Say>` said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// Digits the party pressed.
    Digits { call_sid: String, digits: String },
    ConferenceStart {
        conference: String,
        conference_sid: String,
    },
    ConferenceEnd {
        conference: String,
        conference_sid: String,
    },
    ConferenceJoin {
        conference: String,
        call_sid: String,
        start_on_enter: bool,
        end_on_exit: bool,
    },
    ConferenceLeave {
        conference: String,
        call_sid: String,
    },
    /// A conference with `record="record-from-start"` started, and its recording with it.
    RecordingStart {
        conference: String,
        conference_sid: String,
        recording_sid: String,
    },
    /// The recorded conference ended: the recording is `completed` (or `absent`, when
    /// nothing is left of it), `duration_secs` long in simulated time.
    RecordingEnd {
        conference: String,
        conference_sid: String,
        recording_sid: String,
        status: String,
        duration_secs: u32,
    },
    /// A callback was delivered (or failed).
    Callback {
        call_sid: String,
        kind: String,
        url: String,
        http_status: Option<u16>,
        duplicate: bool,
        /// From just before the request was sent to the response headers; `None` without a response.
        #[serde(default)]
        latency_ms: Option<f64>,
        /// When the request was sent, on the clock of `t_ms` (which is when the answer came).
        #[serde(default)]
        sent_ms: Option<f64>,
    },
    /// A REST request was refused (401, 404, 429 …).
    Refused {
        method: String,
        path: String,
        http_status: u16,
        code: u32,
    },
    /// The call ended.
    CallEnd {
        call_sid: String,
        status: String,
        duration_secs: u32,
        bridged: bool,
    },
}

impl Event {
    pub fn call_sid(&self) -> Option<&str> {
        match self {
            Event::DialRequest { call_sid, .. }
            | Event::DialStart { call_sid }
            | Event::Status { call_sid, .. }
            | Event::Amd { call_sid, .. }
            | Event::Twiml { call_sid, .. }
            | Event::Verb { call_sid, .. }
            | Event::Digits { call_sid, .. }
            | Event::ConferenceJoin { call_sid, .. }
            | Event::ConferenceLeave { call_sid, .. }
            | Event::Callback { call_sid, .. }
            | Event::CallEnd { call_sid, .. } => Some(call_sid),
            _ => None,
        }
    }
}

/// Shared, append-only; optionally mirrored to a JSON-lines file.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Mutex<Inner>>,
    started: Instant,
}

struct Inner {
    entries: Vec<Entry>,
    file: Option<std::io::BufWriter<std::fs::File>>,
}

impl Journal {
    pub fn new(file: Option<std::fs::File>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                entries: Vec::new(),
                file: file.map(std::io::BufWriter::new),
            })),
            started: Instant::now(),
        }
    }

    /// `at` on the journal's clock: milliseconds since the simulator started, as `t_ms`.
    pub fn ms_at(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.started).as_secs_f64() * 1000.0
    }

    pub fn record(&self, event: Event) {
        let entry = Entry {
            t_ms: self.ms_at(Instant::now()),
            at: Utc::now(),
            event,
        };
        // A poisoned lock only means another thread panicked mid-push; the Vec is intact.
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = inner.file.as_mut()
            && let Ok(line) = serde_json::to_string(&entry)
        {
            let _ = writeln!(f, "{line}");
            let _ = f.flush();
        }
        inner.entries.push(entry);
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entries
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_request_timed_before_its_entry_is_earlier_on_the_same_clock() {
        let journal = Journal::new(None);
        std::thread::sleep(Duration::from_millis(5));
        let sent = Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        journal.record(Event::Callback {
            call_sid: "CA1".into(),
            kind: "amd".into(),
            url: "http://127.0.0.1/twilio/calls/7/amd".into(),
            http_status: Some(204),
            duplicate: false,
            latency_ms: Some(20.0),
            sent_ms: Some(journal.ms_at(sent)),
        });
        let e = &journal.entries()[0];
        let Event::Callback {
            sent_ms: Some(sent_ms),
            ..
        } = e.event
        else {
            panic!("{e:?}");
        };
        assert!(sent_ms >= 5.0, "since the journal started: {sent_ms}");
        assert!(e.t_ms - sent_ms >= 20.0, "{} - {sent_ms}", e.t_ms);
    }

    #[test]
    fn entries_journaled_before_the_request_timings_still_parse() {
        let dial = r#"{"t_ms":1.0,"at":"2026-01-05T12:00:00Z","type":"dial_request","call_sid":"CA1","to":"client:a","from":"+14155550100","agent":true}"#;
        let twiml = r#"{"t_ms":2.0,"at":"2026-01-05T12:00:00Z","type":"twiml","call_sid":"CA1","url":"u","http_status":200,"error":null}"#;
        let dial: Entry = serde_json::from_str(dial).unwrap();
        let twiml: Entry = serde_json::from_str(twiml).unwrap();
        assert!(matches!(dial.event, Event::DialRequest { url: None, .. }));
        assert!(matches!(
            twiml.event,
            Event::Twiml {
                latency_ms: None,
                ..
            }
        ));
    }
}
