//! What a campaign did, as the carrier simulator saw it: the campaign benchmark checks
//! the daemon's promises (dial rate, concurrency, prompt refills, prompt callback
//! answers) from outside the daemon, from the simulator's journal alone.
//!
//! Everything here is a pure function of the journal entries, except the two memory
//! readings at the end. Only lead calls count (dial requests with `agent == false` and
//! the events of those calls); agent calls are counted apart and otherwise ignored.
//! Callback latencies are the exception: every callback the daemon answered counts.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use chrono::{DateTime, Utc};

use crate::sim::journal::{Entry, Event};

/// The campaign's figures; see the functions of this module for each definition.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignReport {
    pub dials: DialRate,
    pub concurrency: Concurrency,
    /// The campaign's `max_concurrent` the slot-refill latencies were measured against.
    pub limit: usize,
    pub slot_refill: SlotRefill,
    pub callbacks: CallbackLatency,
    /// Lead calls by the status of their `CallEnd`.
    pub outcomes: BTreeMap<String, usize>,
}

impl CampaignReport {
    /// The report for a campaign run with `max_concurrent = limit`; callbacks slower than
    /// `callback_threshold_ms` (100 ms in the benchmark) are counted as slow.
    pub fn from_journal(entries: &[Entry], limit: usize, callback_threshold_ms: f64) -> Self {
        Self {
            dials: dial_rate(entries),
            concurrency: concurrency(entries),
            limit,
            slot_refill: slot_refill(entries, limit),
            callbacks: callback_latency(entries, callback_threshold_ms),
            outcomes: outcomes(entries),
        }
    }
}

/// The 50th, 90th and 99th percentile (nearest rank) and the maximum of some latencies, in ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// `None` for no samples.
    pub fn of(mut samples: Vec<f64>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let rank = |q: f64| samples[((n as f64 * q).ceil() as usize).clamp(1, n) - 1];
        Some(Self {
            count: n,
            p50_ms: rank(0.50),
            p90_ms: rank(0.90),
            p99_ms: rank(0.99),
            max_ms: samples[n - 1],
        })
    }
}

impl fmt::Display for Percentiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "n={} p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
            self.count, self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms
        )
    }
}

/// How many lead calls were requested and how fast.
#[derive(Debug, Clone, PartialEq)]
pub struct DialRate {
    /// Lead dial requests (the CPS limit is judged on these).
    pub total: usize,
    /// Agent calls, not counted anywhere else.
    pub agent_calls: usize,
    /// The most lead dial requests in any window `[t, t + 1 s)` of the simulator's
    /// monotonic clock (`t_ms`), wherever it starts.
    pub max_per_sliding_second: usize,
    /// The most lead dial requests within one calendar second of the wall clock (`at`),
    /// and which second that was (the first, if several tie).
    pub max_per_calendar_second: usize,
    pub busiest_second: Option<DateTime<Utc>>,
}

/// Dial counts and the highest rates: a sliding window catches a burst that straddles
/// two calendar seconds, which a per-second count splits in two and hides.
pub fn dial_rate(entries: &[Entry]) -> DialRate {
    let mut times = Vec::new();
    let mut agent_calls = 0;
    let mut per_second: BTreeMap<i64, usize> = BTreeMap::new();
    for e in entries {
        if let Event::DialRequest { agent, .. } = &e.event {
            if *agent {
                agent_calls += 1;
                continue;
            }
            times.push(e.t_ms);
            *per_second.entry(e.at.timestamp()).or_default() += 1;
        }
    }
    times.sort_by(f64::total_cmp);
    let mut max_sliding = 0;
    let mut start = 0;
    for (end, &t) in times.iter().enumerate() {
        while times[start] <= t - 1000.0 {
            start += 1;
        }
        max_sliding = max_sliding.max(end + 1 - start);
    }
    // The first second with the highest count (`max_by_key` would give the last).
    let busiest = per_second
        .iter()
        .fold(None::<(i64, usize)>, |best, (&s, &n)| match best {
            Some((_, m)) if m >= n => best,
            _ => Some((s, n)),
        });
    DialRate {
        total: times.len(),
        agent_calls,
        max_per_sliding_second: max_sliding,
        max_per_calendar_second: busiest.map_or(0, |(_, n)| n),
        busiest_second: busiest.and_then(|(s, _)| DateTime::from_timestamp(s, 0)),
    }
}

/// The most lead calls live at once.
#[derive(Debug, Clone, PartialEq)]
pub struct Concurrency {
    pub max_live: usize,
    /// When `max_live` was first reached (the dial request that reached it).
    pub at: Option<DateTime<Utc>>,
    pub t_ms: Option<f64>,
    /// Lead calls requested but never ended in the journal.
    pub live_at_end: usize,
}

/// The peak of live lead calls, where a call is live from its `DialRequest` (when it
/// starts to count against `max_concurrent`) until its `CallEnd` with the same `call_sid`.
pub fn concurrency(entries: &[Entry]) -> Concurrency {
    let mut report = Concurrency {
        max_live: 0,
        at: None,
        t_ms: None,
        live_at_end: 0,
    };
    let mut live = HashSet::new();
    for e in in_time_order(entries) {
        match &e.event {
            Event::DialRequest {
                call_sid,
                agent: false,
                ..
            } => {
                live.insert(call_sid.as_str());
                if live.len() > report.max_live {
                    report.max_live = live.len();
                    report.at = Some(e.at);
                    report.t_ms = Some(e.t_ms);
                }
            }
            Event::CallEnd { call_sid, .. } => {
                live.remove(call_sid.as_str());
            }
            _ => {}
        }
    }
    report.live_at_end = live.len();
    report
}

/// How quickly a slot freed at the concurrency limit is used again.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotRefill {
    pub latency: Option<Percentiles>,
    /// Slots freed at the limit with no lead dial after them (the campaign ran out of leads
    /// or the journal ends): not latencies, so counted apart.
    pub never_refilled: usize,
}

/// Free-slot → next-dial latency. When a lead call ends while exactly `limit` lead calls
/// were live (so the campaign was full and this end frees the one slot it may refill), the
/// time from that `CallEnd` to the next lead `DialRequest`. Ends below the limit are not
/// counted: the pacer was not waiting for a slot then, so the gap says nothing about how
/// promptly it reacts. (An end while more than `limit` were live, which the daemon should
/// never allow, leaves the campaign still full and is not counted either; the concurrency
/// peak shows such overshoots.) Since every later end happens below the limit until a dial
/// fills the slot again, at most one freed slot waits at a time.
pub fn slot_refill(entries: &[Entry], limit: usize) -> SlotRefill {
    let mut live = HashSet::new();
    let mut freed_at: Option<f64> = None;
    let mut latencies = Vec::new();
    for e in in_time_order(entries) {
        match &e.event {
            Event::DialRequest {
                call_sid,
                agent: false,
                ..
            } => {
                if let Some(freed) = freed_at.take() {
                    latencies.push(e.t_ms - freed);
                }
                live.insert(call_sid.as_str());
            }
            Event::CallEnd { call_sid, .. } => {
                let was_live = live.len();
                if live.remove(call_sid.as_str()) && was_live == limit && limit > 0 {
                    freed_at = Some(e.t_ms);
                }
            }
            _ => {}
        }
    }
    SlotRefill {
        latency: Percentiles::of(latencies),
        never_refilled: usize::from(freed_at.is_some()),
    }
}

/// How quickly the daemon answered the simulator's callbacks.
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackLatency {
    /// Over every answered callback (lead and agent calls, duplicates included: each is a request the daemon served).
    pub latency: Option<Percentiles>,
    pub threshold_ms: f64,
    /// Answered callbacks slower than `threshold_ms`.
    pub over_threshold: usize,
    /// The slow ones by callback kind (`status`, `amd`, `voice` …), to say where a tail is.
    pub over_threshold_by_kind: BTreeMap<String, usize>,
    /// Callbacks without a response (transport error or timeout), or journaled before latencies were recorded.
    pub unanswered: usize,
    /// Answered with a status outside 2xx.
    pub not_2xx: usize,
}

/// Callback latencies: from just before the simulator sent the request to the response headers.
pub fn callback_latency(entries: &[Entry], threshold_ms: f64) -> CallbackLatency {
    let mut latencies = Vec::new();
    let mut over_threshold_by_kind = BTreeMap::new();
    let mut unanswered = 0;
    let mut not_2xx = 0;
    for e in entries {
        if let Event::Callback {
            kind,
            latency_ms,
            http_status,
            ..
        } = &e.event
        {
            match latency_ms {
                Some(ms) => {
                    latencies.push(*ms);
                    if *ms > threshold_ms {
                        *over_threshold_by_kind.entry(kind.clone()).or_default() += 1;
                    }
                }
                None => unanswered += 1,
            }
            if http_status.is_some_and(|s| !(200..300).contains(&s)) {
                not_2xx += 1;
            }
        }
    }
    CallbackLatency {
        over_threshold: latencies.iter().filter(|&&ms| ms > threshold_ms).count(),
        over_threshold_by_kind,
        latency: Percentiles::of(latencies),
        threshold_ms,
        unanswered,
        not_2xx,
    }
}

/// Lead calls by the status their `CallEnd` reports (`completed`, `busy`, `no-answer` …).
pub fn outcomes(entries: &[Entry]) -> BTreeMap<String, usize> {
    let leads: HashSet<&str> = lead_call_sids(entries);
    let mut counts = BTreeMap::new();
    for e in entries {
        if let Event::CallEnd {
            call_sid, status, ..
        } = &e.event
            && leads.contains(call_sid.as_str())
        {
            *counts.entry(status.clone()).or_default() += 1;
        }
    }
    counts
}

fn lead_call_sids(entries: &[Entry]) -> HashSet<&str> {
    entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::DialRequest {
                call_sid,
                agent: false,
                ..
            } => Some(call_sid.as_str()),
            _ => None,
        })
        .collect()
}

/// The entries by `t_ms`, journal order kept for ties (the journal takes the time just
/// before its lock, so its order can differ from `t_ms` order by a hair).
fn in_time_order(entries: &[Entry]) -> Vec<&Entry> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    sorted
}

impl fmt::Display for CampaignReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = |at: Option<DateTime<Utc>>, format: &str| {
            at.map_or_else(|| "-".to_string(), |t| t.format(format).to_string())
        };
        let d = &self.dials;
        writeln!(
            f,
            "campaign: {} lead dials (and {} agent calls, not counted below)",
            d.total, d.agent_calls
        )?;
        writeln!(
            f,
            "  dial rate     max {} in any 1 s window; max {} in a calendar second ({})",
            d.max_per_sliding_second,
            d.max_per_calendar_second,
            time(d.busiest_second, "%H:%M:%S UTC")
        )?;
        let c = &self.concurrency;
        writeln!(
            f,
            "  concurrency   max {} live (limit {}) first at {} (t={:.0} ms); {} still live at the end",
            c.max_live,
            self.limit,
            time(c.at, "%H:%M:%S%.3f UTC"),
            c.t_ms.unwrap_or(0.0),
            c.live_at_end
        )?;
        let s = &self.slot_refill;
        writeln!(
            f,
            "  slot refill   {}; {} freed slot(s) never refilled",
            s.latency.map_or_else(
                || "no slot freed at the limit".to_string(),
                |p| p.to_string()
            ),
            s.never_refilled
        )?;
        let cb = &self.callbacks;
        let slow_kinds: Vec<String> = cb
            .over_threshold_by_kind
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        writeln!(
            f,
            "  callbacks     {}; {} over {:.0} ms{}, {} unanswered, {} not 2xx",
            cb.latency
                .map_or_else(|| "none answered".to_string(), |p| p.to_string()),
            cb.over_threshold,
            cb.threshold_ms,
            if slow_kinds.is_empty() {
                String::new()
            } else {
                format!(" ({})", slow_kinds.join(", "))
            },
            cb.unanswered,
            cb.not_2xx
        )?;
        let outcomes: Vec<String> = self
            .outcomes
            .iter()
            .map(|(status, n)| format!("{status} {n}"))
            .collect();
        write!(
            f,
            "  outcomes      {}",
            if outcomes.is_empty() {
                "none ended".to_string()
            } else {
                outcomes.join(", ")
            }
        )
    }
}

/// The process's peak resident memory (VmHWM), where `/proc` has it.
pub fn peak_rss_bytes() -> Option<u64> {
    process_status_bytes("self", "VmHWM")
}

/// The process's resident memory now (VmRSS), where `/proc` has it.
pub fn current_rss_bytes() -> Option<u64> {
    process_status_bytes("self", "VmRSS")
}

/// A kB field (`VmRSS`, `VmHWM` …) of `/proc/<pid>/status` in bytes; `pid` may be `self`.
pub fn process_status_bytes(pid: &str, key: &str) -> Option<u64> {
    status_bytes(
        &std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?,
        key,
    )
}

/// The value of `key` (given in kB) in the text of a `/proc/<pid>/status`, in bytes.
fn status_bytes(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.split(':').next() == Some(key))?;
    let kib: u64 = line[key.len() + 1..]
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// Wall-clock time of the synthetic journals: 12:00:00.000 UTC plus `t_ms`, unless an
    /// entry says otherwise.
    fn base() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, 12, 0, 0).unwrap()
    }

    fn entry(t_ms: f64, event: Event) -> Entry {
        Entry {
            t_ms,
            at: base() + chrono::Duration::microseconds((t_ms * 1000.0) as i64),
            event,
        }
    }

    fn dial(t_ms: f64, sid: &str) -> Entry {
        entry(
            t_ms,
            Event::DialRequest {
                call_sid: sid.into(),
                to: "+14155550100".into(),
                from: "+14155550199".into(),
                agent: false,
                url: None,
            },
        )
    }

    fn agent_dial(t_ms: f64, sid: &str) -> Entry {
        let mut e = dial(t_ms, sid);
        if let Event::DialRequest { agent, .. } = &mut e.event {
            *agent = true;
        }
        e
    }

    fn end(t_ms: f64, sid: &str, status: &str) -> Entry {
        entry(
            t_ms,
            Event::CallEnd {
                call_sid: sid.into(),
                status: status.into(),
                duration_secs: 0,
                bridged: false,
            },
        )
    }

    fn callback(t_ms: f64, latency_ms: Option<f64>, http_status: Option<u16>) -> Entry {
        entry(
            t_ms,
            Event::Callback {
                call_sid: "CA1".into(),
                kind: "status".into(),
                url: "http://127.0.0.1/twilio/status".into(),
                http_status,
                duplicate: false,
                latency_ms,
                sent_ms: None,
            },
        )
    }

    #[test]
    fn burst_over_50_in_a_sliding_second_but_not_in_any_calendar_second() {
        // 30 dials in 12:00:00.700–.990 and 30 in 12:00:01.000–.290: 60 within 600 ms,
        // but each calendar second holds only 30.
        let mut journal: Vec<Entry> = (0..30)
            .map(|i| dial(700.0 + 10.0 * i as f64, &format!("A{i}")))
            .collect();
        journal.extend((0..30).map(|i| dial(1000.0 + 10.0 * i as f64, &format!("B{i}"))));
        // Agent calls in the same burst do not count.
        journal.push(agent_dial(1001.0, "AG1"));
        let rate = dial_rate(&journal);
        assert_eq!(rate.total, 60);
        assert_eq!(rate.agent_calls, 1);
        assert_eq!(rate.max_per_sliding_second, 60);
        assert_eq!(rate.max_per_calendar_second, 30);
        // Both seconds hold 30; the first is named.
        assert_eq!(rate.busiest_second, Some(base()));
    }

    #[test]
    fn sliding_window_is_half_open() {
        // Evenly paced at 50/s: dial 50 at exactly 1000 ms is in the next window.
        let journal: Vec<Entry> = (0..=50)
            .map(|i| dial(20.0 * i as f64, &format!("C{i}")))
            .collect();
        let rate = dial_rate(&journal);
        assert_eq!(rate.max_per_sliding_second, 50);
        assert_eq!(rate.max_per_calendar_second, 50);
        assert_eq!(rate.total, 51);
    }

    #[test]
    fn concurrency_peak_and_its_instant() {
        // live: a(1) b(2) -a(1) c(2) d(3) -b(2) -c(1) e(2); d and e never end.
        let journal = vec![
            dial(0.0, "a"),
            dial(10.0, "b"),
            end(20.0, "a", "completed"),
            dial(30.0, "c"),
            dial(40.0, "d"),
            agent_dial(45.0, "agent"),
            end(50.0, "b", "busy"),
            end(55.0, "agent", "completed"),
            end(60.0, "c", "no-answer"),
            dial(70.0, "e"),
        ];
        let c = concurrency(&journal);
        assert_eq!(c.max_live, 3);
        assert_eq!(c.t_ms, Some(40.0));
        assert_eq!(c.at, Some(base() + chrono::Duration::milliseconds(40)));
        assert_eq!(c.live_at_end, 2);

        let outcomes = outcomes(&journal);
        assert_eq!(
            outcomes.into_iter().collect::<Vec<_>>(),
            vec![
                ("busy".to_string(), 1),
                ("completed".to_string(), 1),
                ("no-answer".to_string(), 1)
            ],
            "the agent call's end is not an outcome"
        );
    }

    #[test]
    fn entries_are_taken_in_time_order() {
        // The end is journaled after the dial but happened before it.
        let journal = vec![dial(0.0, "a"), dial(30.0, "b"), end(20.0, "a", "completed")];
        assert_eq!(concurrency(&journal).max_live, 1);
    }

    #[test]
    fn refill_latency_counts_only_ends_at_the_limit() {
        // limit 2.
        let journal = vec![
            dial(0.0, "a"),
            dial(5.0, "b"),               // live 2: full
            end(100.0, "a", "completed"), // at the limit: freed at 100
            dial(112.0, "c"),             // 12 ms
            end(200.0, "b", "busy"),      // at the limit: freed at 200
            end(210.0, "c", "completed"), // live was 1: not counted
            dial(250.0, "d"),             // 50 ms after the end at 200
            dial(260.0, "e"),             // live 2 again, no pending slot
            end(300.0, "d", "completed"), // at the limit: freed at 300
            agent_dial(301.0, "agent"),   // an agent call is no refill
            dial(330.0, "f"),             // 30 ms
            end(400.0, "e", "completed"), // at the limit: never refilled
        ];
        let refill = slot_refill(&journal, 2);
        let p = refill.latency.unwrap();
        assert_eq!(p.count, 3);
        assert_eq!(p.max_ms, 50.0);
        assert_eq!(p.p50_ms, 30.0); // of 12, 30, 50
        assert_eq!(p.p99_ms, 50.0);
        assert_eq!(refill.never_refilled, 1);

        // With a limit never reached, nothing is measured.
        let refill = slot_refill(&journal, 3);
        assert_eq!(refill.latency, None);
        assert_eq!(refill.never_refilled, 0);
    }

    #[test]
    fn callback_latency_percentiles_and_slow_ones() {
        // 1..=100 ms, plus a failed delivery and a 500.
        let mut journal: Vec<Entry> = (1..=100)
            .map(|i| callback(i as f64, Some(i as f64), Some(204)))
            .collect();
        journal.push(callback(101.0, None, None));
        journal.push(callback(102.0, Some(150.0), Some(500)));
        let cb = callback_latency(&journal, 100.0);
        let p = cb.latency.unwrap();
        assert_eq!(p.count, 101);
        assert_eq!(p.p50_ms, 51.0); // rank ceil(101 * 0.5) = 51
        assert_eq!(p.p90_ms, 91.0); // rank ceil(101 * 0.9) = 91
        assert_eq!(p.p99_ms, 100.0); // rank ceil(101 * 0.99) = 100
        assert_eq!(p.max_ms, 150.0);
        assert_eq!(cb.over_threshold, 1, "100 ms itself is not over 100 ms");
        assert_eq!(
            cb.over_threshold_by_kind,
            BTreeMap::from([("status".to_string(), 1)])
        );
        assert_eq!(cb.unanswered, 1);
        assert_eq!(cb.not_2xx, 1);
    }

    #[test]
    fn callbacks_journaled_without_latency_still_parse() {
        let line = r#"{"t_ms":1.0,"at":"2026-01-05T12:00:00Z","type":"callback","call_sid":"CA1","kind":"status","url":"u","http_status":204,"duplicate":false}"#;
        let e: Entry = serde_json::from_str(line).unwrap();
        assert!(matches!(
            e.event,
            Event::Callback {
                latency_ms: None,
                ..
            }
        ));
    }

    #[test]
    fn report_displays_every_figure() {
        let journal = vec![
            dial(0.0, "a"),
            end(100.0, "a", "completed"),
            dial(120.0, "b"),
            callback(130.0, Some(3.0), Some(204)),
        ];
        let report = CampaignReport::from_journal(&journal, 1, 100.0);
        assert_eq!(report.slot_refill.latency.unwrap().p50_ms, 20.0);
        let text = report.to_string();
        for needle in [
            "2 lead dials",
            "max 2 in any 1 s window; max 2 in a calendar second (12:00:00 UTC)",
            "max 1 live (limit 1)",
            "n=1 p50 20.0 ms",
            "n=1 p50 3.0 ms",
            "0 over 100 ms",
            "completed 1",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
    }

    #[test]
    fn empty_journal_reports_nothing_without_panicking() {
        let report = CampaignReport::from_journal(&[], 10, 100.0);
        assert_eq!(report.dials.total, 0);
        assert_eq!(report.dials.busiest_second, None);
        assert_eq!(report.concurrency.max_live, 0);
        assert!(report.to_string().contains("none ended"));
    }

    #[test]
    fn status_bytes_reads_kib_fields() {
        let status = "Name:\tdialer\nVmHWM:\t  20480 kB\nVmRSS:\t   1024 kB\n";
        assert_eq!(status_bytes(status, "VmHWM"), Some(20480 * 1024));
        assert_eq!(status_bytes(status, "VmRSS"), Some(1024 * 1024));
        assert_eq!(status_bytes(status, "VmSwap"), None);
        // The current size first: the peak read afterwards can only be at least as large
        // (other tests allocate in between).
        let now = current_rss_bytes();
        let peak = peak_rss_bytes();
        if let (Some(peak), Some(now)) = (peak, now) {
            assert!(peak >= now && now > 0, "peak {peak} < current {now}");
        }
    }
}
