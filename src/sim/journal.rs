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

    pub fn record(&self, event: Event) {
        let entry = Entry {
            t_ms: self.started.elapsed().as_secs_f64() * 1000.0,
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
