//! `dialer bench transfer`: the warm transfer under a burst of people answering. Every
//! lead is a person; a group of agents (one call each) accepts at once, talks briefly
//! and wraps up, so agents come free again and again. The daemon runs in this process
//! (against a scratch database), with the carrier simulator and the simulated agents.
//!
//! Two figures, both timed in the simulator from its journal:
//! - A: the AMD `human` callback for a call leaving the simulator → the simulator
//!   receiving the create-call request of that call's agent leg (linked by our call id in
//!   the agent leg's whisper URL);
//! - B: the agent's accept (`Digits=1`) leaving the simulator → its join TwiML read in full.
//!
//! Both include the loopback HTTP round trip (and for A the simulator's handling of the
//! create-call request): an upper bound on the daemon's own time. A person answered while
//! every agent was busy waits for one, which is queueing and not the daemon's time: A is
//! given apart for them (see [`waited_for_an_agent`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::ScratchDb;
use super::campaign_report::Percentiles;
use crate::config::Settings;
use crate::engine::transfer::NOBODY_FREE_RETRY;
use crate::sim::journal::{Entry, Event};

#[derive(Debug, Clone)]
pub struct TransferBench {
    pub leads: u64,
    pub agents: u32,
    /// The campaign's `max_concurrent`; the dial ratio is this over the agents.
    pub concurrency: u32,
    pub timeout: Duration,
}

/// The targets of the warm transfer (issue "Agents and the warm transfer").
const TARGET_A_P99_MS: f64 = 50.0;
const TARGET_B_P99_MS: f64 = 20.0;

const ACCOUNT: &str = "AC0000000000000000000000000000be01";
const TOKEN: &str = "bench-auth-token";

pub async fn run(settings: &Settings, b: TransferBench) -> anyhow::Result<()> {
    anyhow::ensure!(b.agents >= 1, "--agents must be at least 1");
    anyhow::ensure!(b.concurrency >= 1, "--concurrency must be at least 1");
    let (scratch, s) = ScratchDb::create(settings).await?;
    let prefix = format!("dialer-bench-{}:", uuid::Uuid::new_v4().simple());
    let result = run_in(s.clone(), &b, &prefix).await;
    let _ = super::delete_prefix(&s.redis.url, &prefix).await;
    scratch.drop_now().await;
    result
}

/// Every lead a person who waits on hold as long as the campaign lets them; agents who
/// answer and press 1 within a fraction of a second; short talks.
fn sim_config() -> crate::sim::SimConfig {
    let mut c = crate::sim::SimConfig {
        listen: "127.0.0.1:0".into(),
        account_sid: ACCOUNT.into(),
        auth_token: TOKEN.into(),
        speed: 1.0,
        cps: 400.0,
        max_concurrent_requests: 10_000,
        seed: 5,
        agent_accept_probability: 1.0,
        mix: crate::sim::Mix {
            human: 1.0,
            machine: 0.0,
            busy: 0.0,
            no_answer: 0.0,
            failed: 0.0,
        },
        ..Default::default()
    };
    c.timing.ring_secs = [1.0, 3.0];
    c.timing.human_detect_secs = [1.0, 2.0];
    c.timing.talk_secs = [1.0, 3.0];
    c.timing.hold_patience_secs = [120.0, 120.0];
    c.timing.agent_answer_secs = [0.1, 0.3];
    c.timing.agent_press_secs = [0.1, 0.3];
    c
}

async fn run_in(mut s: Settings, b: &TransferBench, prefix: &str) -> anyhow::Result<()> {
    let sim = crate::sim::Simulator::start(sim_config()).await?;
    super::against_simulator(&mut s, &sim);
    s.twilio.cps = 100;
    s.redis.key_prefix = prefix.to_string();
    let app = crate::startup::Application::build(s).await?;
    let state = app.state().clone();

    let (tenant, campaign) =
        super::campaign::seed_campaign(&state.db, b.leads, b.concurrency).await?;
    let tenant = crate::tenant::TenantId(tenant);
    let group = crate::demo::run::agent_group(&state.db, tenant, "bench", b.agents as i32).await?;
    let ratio = (f64::from(b.concurrency) / f64::from(b.agents)).clamp(1.0, 10.0);
    sqlx::query(
        // The longest hold allowed: people are abandoned only if agents stay busy a minute.
        "UPDATE campaigns SET agent_group_id = $2, dial_ratio = $3, max_hold_ms = 60000 WHERE id = $1",
    )
    .bind(campaign)
    .bind(group)
    .bind(ratio)
    .execute(&state.db)
    .await?;
    println!(
        "transfer: {} leads (every one a person), {} agents (one call each) in the campaign's group, \
         max_concurrent {}, dial ratio {ratio:.1}",
        b.leads, b.agents, b.concurrency
    );
    println!(
        "  the daemon, the simulator and the simulated agents share this process ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let token = CancellationToken::new();
    let agents = tokio::spawn(crate::demo::run::simulated_agents(state.clone(), tenant));
    let server = tokio::spawn(app.run_until_stopped(token.clone()));
    let started = Instant::now();
    let outcome =
        super::campaign::wait_completed(&state.db, campaign, &sim, b.timeout, || Ok(())).await;
    let took = started.elapsed();
    sim.wait_idle(Duration::from_secs(5)).await;
    let journal = sim.journal();
    let figures = match outcome {
        Ok(()) => Figures::read(&state.db, campaign).await,
        Err(e) => Err(e),
    };
    agents.abort();
    token.cancel();
    let _ = server.await;
    sim.stop().await;
    let figures = figures?;

    println!(
        "  completed in {:.1} s: {} people answered, {} bridged to an agent, {} abandoned",
        took.as_secs_f64(),
        figures.answered,
        figures.bridged,
        figures.abandoned
    );
    let a = answer_to_agent_dial(&journal);
    let (free, waited): (Vec<_>, Vec<_>) =
        a.iter().partition(|(id, _)| !figures.waited.contains(id));
    let ms = |v: Vec<(&i64, &f64)>| v.into_iter().map(|(_, ms)| *ms).collect::<Vec<f64>>();
    println!("  A  AMD \"human\" callback sent → the agent leg's create-call request received");
    println!(
        "       an agent was free        {}",
        against(Percentiles::of(ms(free)), TARGET_A_P99_MS)
    );
    println!(
        "       waited for a free agent  {}",
        Percentiles::of(ms(waited)).map_or("none".into(), |p| p.to_string())
    );
    println!(
        "         (offered {} ms or more after the answer: queueing for agents, not our time)",
        NOBODY_FREE_RETRY.as_millis()
    );
    let b_times = accept_to_join(&journal);
    println!("  B  accept (Digits=1) sent → the join TwiML read in full");
    println!(
        "                                {}",
        against(Percentiles::of(b_times.latencies_ms), TARGET_B_P99_MS)
    );
    if b_times.failed > 0 {
        println!("       {} accept requests failed", b_times.failed);
    }
    println!(
        "  Both are timed in the simulator: they include loopback HTTP both ways (and for A the \
         simulator's handling of the create-call request), so they bound the daemon's own time from above."
    );
    Ok(())
}

fn against(p: Option<Percentiles>, target_p99_ms: f64) -> String {
    match p {
        Some(p) => format!(
            "{p}   target p99 < {target_p99_ms} ms: {}",
            if p.p99_ms < target_p99_ms {
                "met"
            } else {
                "over"
            }
        ),
        None => format!("none measured   target p99 < {target_p99_ms} ms"),
    }
}

/// What the daemon recorded of the campaign's calls.
struct Figures {
    answered: i64,
    bridged: i64,
    abandoned: i64,
    waited: HashSet<i64>,
}

impl Figures {
    async fn read(db: &PgPool, campaign: uuid::Uuid) -> anyhow::Result<Self> {
        let (answered, bridged, abandoned): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE answered_by = 'human'),
                    count(*) FILTER (WHERE bridged_at IS NOT NULL),
                    count(*) FILTER (WHERE disposition = 'abandoned')
               FROM calls WHERE campaign_id = $1",
        )
        .bind(campaign)
        .fetch_one(db)
        .await?;
        let offered: Vec<(i64, f64)> = sqlx::query_as(
            "SELECT k.id, (extract(epoch FROM min(o.offered_at) - k.human_detected_at) * 1000)::float8
               FROM calls k JOIN agent_offers o ON o.call_id = k.id
              WHERE k.campaign_id = $1 AND k.human_detected_at IS NOT NULL
              GROUP BY k.id",
        )
        .bind(campaign)
        .fetch_all(db)
        .await?;
        Ok(Self {
            answered,
            bridged,
            abandoned,
            waited: waited_for_an_agent(&offered),
        })
    }
}

/// The calls whose first offer came a retry interval or more after the person was
/// detected (`(call id, ms from calls.human_detected_at to the first agent_offers.offered_at)`):
/// nobody was free at the first look, so the daemon looked again every
/// [`NOBODY_FREE_RETRY`] until an agent came free. An offer found at the first look comes
/// sooner, unless that one look itself took as long (such a call still counts as waited:
/// the "waited" line shows it).
pub fn waited_for_an_agent(offered: &[(i64, f64)]) -> HashSet<i64> {
    let retry_ms = NOBODY_FREE_RETRY.as_secs_f64() * 1000.0;
    offered
        .iter()
        .filter(|(_, gap_ms)| *gap_ms >= retry_ms)
        .map(|(id, _)| *id)
        .collect()
}

/// Our call id in a webhook URL of ours (`…/twilio/calls/{id}/…`).
fn call_id_in(url: &str) -> Option<i64> {
    const CALLS: &str = "/twilio/calls/";
    let rest = &url[url.find(CALLS)? + CALLS.len()..];
    rest.split(['/', '?']).next()?.parse().ok()
}

/// Per call (our id) that AMD found a person on: from its AMD callback leaving the
/// simulator (the first delivery) to the simulator receiving the create-call request of
/// its first agent leg after that, in ms. Calls that got no agent leg are absent.
pub fn answer_to_agent_dial(entries: &[Entry]) -> BTreeMap<i64, f64> {
    let people: HashSet<&str> = entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::Amd {
                call_sid,
                answered_by,
            } if answered_by == "human" => Some(call_sid.as_str()),
            _ => None,
        })
        .collect();
    let mut sent: HashMap<i64, f64> = HashMap::new();
    for e in entries {
        if let Event::Callback {
            call_sid,
            kind,
            url,
            duplicate: false,
            sent_ms: Some(at),
            ..
        } = &e.event
            && kind == "amd"
            && people.contains(call_sid.as_str())
            && let Some(id) = call_id_in(url)
        {
            let first = sent.entry(id).or_insert(*at);
            *first = first.min(*at);
        }
    }
    let mut out = BTreeMap::new();
    for e in entries {
        if let Event::DialRequest {
            agent: true,
            url: Some(url),
            ..
        } = &e.event
            && let Some(id) = call_id_in(url)
            && let Some(&at) = sent.get(&id)
            && e.t_ms >= at
        {
            let ms = out.entry(id).or_insert(e.t_ms - at);
            *ms = ms.min(e.t_ms - at);
        }
    }
    out
}

/// The agents' accept requests (the whisper's Gather action with `Digits=1`).
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptTimes {
    /// From each request leaving the simulator to its TwiML read in full, answered 2xx.
    pub latencies_ms: Vec<f64>,
    /// Requests without a response, with another status, or with invalid TwiML.
    pub failed: usize,
}

pub fn accept_to_join(entries: &[Entry]) -> AcceptTimes {
    let mut pressed: HashMap<&str, &str> = HashMap::new();
    let mut times = AcceptTimes {
        latencies_ms: Vec::new(),
        failed: 0,
    };
    for e in entries {
        match &e.event {
            Event::Digits { call_sid, digits } => {
                pressed.insert(call_sid, digits);
            }
            Event::Twiml {
                call_sid,
                url,
                error,
                latency_ms,
                ..
            } if url.contains("/offers/")
                && url.ends_with("/accept")
                && pressed.get(call_sid.as_str()) == Some(&"1") =>
            {
                match (error, latency_ms) {
                    (None, Some(ms)) => times.latencies_ms.push(*ms),
                    _ => times.failed += 1,
                }
            }
            _ => {}
        }
    }
    times
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn entry(t_ms: f64, event: Event) -> Entry {
        let base: DateTime<Utc> = "2026-01-05T12:00:00Z".parse().unwrap();
        Entry {
            t_ms,
            at: base + chrono::Duration::microseconds((t_ms * 1000.0) as i64),
            event,
        }
    }

    const BASE: &str = "http://127.0.0.1:4000/twilio/calls";

    fn amd(t_ms: f64, sid: &str, by: &str) -> Entry {
        entry(
            t_ms,
            Event::Amd {
                call_sid: sid.into(),
                answered_by: by.into(),
            },
        )
    }

    /// The AMD callback of our call `id`, sent at `sent_ms`, answered 3 ms later.
    fn amd_callback(sent_ms: f64, sid: &str, id: i64, duplicate: bool) -> Entry {
        entry(
            sent_ms + 3.0,
            Event::Callback {
                call_sid: sid.into(),
                kind: "amd".into(),
                url: format!("{BASE}/{id}/amd"),
                http_status: Some(204),
                duplicate,
                latency_ms: Some(3.0),
                sent_ms: Some(sent_ms),
            },
        )
    }

    fn agent_dial(t_ms: f64, id: i64, offer: i64) -> Entry {
        entry(
            t_ms,
            Event::DialRequest {
                call_sid: format!("CAagent{offer}"),
                to: format!("client:agent-{offer}"),
                from: "+14155550100".into(),
                agent: true,
                url: Some(format!("{BASE}/{id}/offers/{offer}/whisper")),
            },
        )
    }

    fn digits(t_ms: f64, sid: &str, d: &str) -> Entry {
        entry(
            t_ms,
            Event::Digits {
                call_sid: sid.into(),
                digits: d.into(),
            },
        )
    }

    fn fetched(t_ms: f64, sid: &str, url: String, latency_ms: f64, error: Option<&str>) -> Entry {
        entry(
            t_ms,
            Event::Twiml {
                call_sid: sid.into(),
                url,
                http_status: Some(if error.is_some() { 500 } else { 200 }),
                error: error.map(String::from),
                latency_ms: Some(latency_ms),
            },
        )
    }

    #[test]
    fn call_ids_are_read_from_our_webhook_urls() {
        assert_eq!(call_id_in(&format!("{BASE}/42/offers/7/whisper")), Some(42));
        assert_eq!(call_id_in(&format!("{BASE}/42/amd")), Some(42));
        assert_eq!(call_id_in(&format!("{BASE}/42?x=1")), Some(42));
        assert_eq!(call_id_in("http://127.0.0.1/twilio/status"), None);
        assert_eq!(call_id_in(&format!("{BASE}/abc/amd")), None);
    }

    #[test]
    fn answer_to_agent_dial_links_each_person_to_their_first_agent_leg() {
        let journal = vec![
            amd(99.0, "CA1", "human"),
            agent_dial(112.0, 1, 10),
            // The callback's entry comes when its answer does, after the dial request.
            amd_callback(100.0, "CA1", 1, false),
            // A repeat delivery is not the moment the verdict was sent.
            amd_callback(130.0, "CA1", 1, true),
            // A second offer of the same call (the first agent declined) is not counted.
            agent_dial(400.0, 1, 11),
            amd(199.0, "CA2", "human"),
            amd_callback(200.0, "CA2", 2, false),
            agent_dial(260.0, 2, 12),
            // A machine gets no agent; a person still waiting has no agent leg yet.
            amd(299.0, "CA3", "machine_end_beep"),
            amd_callback(300.0, "CA3", 3, false),
            amd(309.0, "CA4", "human"),
            amd_callback(310.0, "CA4", 4, false),
        ];
        let a = answer_to_agent_dial(&journal);
        assert_eq!(a, BTreeMap::from([(1, 12.0), (2, 60.0)]));
    }

    #[test]
    fn agent_legs_of_other_calls_or_before_the_verdict_do_not_count() {
        let journal = vec![
            // An agent leg for call 5 from before its verdict (an earlier attempt's, say).
            agent_dial(50.0, 5, 1),
            amd(99.0, "CA5", "human"),
            amd_callback(100.0, "CA5", 5, false),
            agent_dial(130.0, 6, 2),
        ];
        assert!(answer_to_agent_dial(&journal).is_empty());
    }

    #[test]
    fn accept_to_join_times_only_accepts_and_counts_failures() {
        let accept = |id: i64, offer: i64| format!("{BASE}/{id}/offers/{offer}/accept");
        let journal = vec![
            digits(10.0, "CAa", "1"),
            fetched(14.0, "CAa", accept(1, 10), 4.0, None),
            // A decline (2) is answered too, but it is not an accept.
            digits(20.0, "CAb", "2"),
            fetched(22.0, "CAb", accept(2, 11), 2.0, None),
            // The whisper itself is not the accept.
            fetched(
                30.0,
                "CAc",
                format!("{BASE}/3/offers/12/whisper"),
                9.0,
                None,
            ),
            digits(40.0, "CAc", "1"),
            fetched(47.0, "CAc", accept(3, 12), 7.0, None),
            digits(50.0, "CAd", "1"),
            fetched(80.0, "CAd", accept(4, 13), 30.0, Some("HTTP 500")),
        ];
        assert_eq!(
            accept_to_join(&journal),
            AcceptTimes {
                latencies_ms: vec![4.0, 7.0],
                failed: 1
            }
        );
    }

    #[test]
    fn a_call_offered_a_retry_interval_after_the_answer_waited() {
        let retry = NOBODY_FREE_RETRY.as_secs_f64() * 1000.0;
        let waited = waited_for_an_agent(&[(1, 3.5), (2, retry - 0.1), (3, retry), (4, 2500.0)]);
        assert_eq!(waited, HashSet::from([3, 4]));
    }
}
