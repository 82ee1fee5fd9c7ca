//! What happens to each simulated call: drawn from a seeded mix, or pinned per number.
//! Pure: no I/O, no clock.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// How the called party behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A person answers, says hello and stays on the line for the talk time.
    Human,
    /// An answering machine: a greeting, then a beep (or silence), then it records.
    Machine,
    Busy,
    /// Rings until the dial timeout.
    NoAnswer,
    /// The number does not exist or the carrier cannot route it.
    Failed,
}

/// How a machine's greeting ends; decides `AnsweredBy` under `DetectMessageEnd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GreetingEnd {
    Beep,
    Silence,
    Other,
}

/// Relative weights of the outcomes (any non-negative numbers).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mix {
    pub human: f64,
    pub machine: f64,
    pub busy: f64,
    pub no_answer: f64,
    pub failed: f64,
}

impl Default for Mix {
    fn default() -> Self {
        Self {
            human: 40.0,
            machine: 25.0,
            busy: 10.0,
            no_answer: 15.0,
            failed: 10.0,
        }
    }
}

/// Ranges `[min, max]` in simulated seconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timing {
    /// Ringing before a human or machine answers (if longer than the dial timeout: no answer).
    pub ring_secs: [f64; 2],
    /// Before busy / failed is reported.
    pub reject_secs: [f64; 2],
    /// How long a bridged human talks with the agent.
    pub talk_secs: [f64; 2],
    /// How long a human waits on hold for an agent before hanging up.
    pub hold_patience_secs: [f64; 2],
    /// Until AMD recognises a human.
    pub human_detect_secs: [f64; 2],
    /// A machine's greeting (AMD answers at its end, under DetectMessageEnd).
    pub greeting_secs: [f64; 2],
    /// How long a machine records before it hangs up, if nothing else ends the call.
    pub machine_record_secs: [f64; 2],
    /// An agent's phone rings this long before the agent answers.
    pub agent_answer_secs: [f64; 2],
    /// The agent presses a key this long into the whisper's Gather.
    pub agent_press_secs: [f64; 2],
    /// Time a `<Play>` takes (the simulator does not fetch audio).
    pub play_secs: f64,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            ring_secs: [3.0, 12.0],
            reject_secs: [0.5, 2.0],
            talk_secs: [20.0, 120.0],
            hold_patience_secs: [8.0, 20.0],
            human_detect_secs: [1.5, 3.5],
            greeting_secs: [4.0, 10.0],
            machine_record_secs: [30.0, 60.0],
            agent_answer_secs: [1.0, 3.0],
            agent_press_secs: [0.5, 1.5],
            play_secs: 5.0,
        }
    }
}

/// Everything decided in advance about one call to a party.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    pub outcome: Outcome,
    pub ring_secs: f64,
    pub reject_secs: f64,
    pub talk_secs: f64,
    pub hold_patience_secs: f64,
    pub detect_secs: f64,
    pub greeting_end: GreetingEnd,
    pub record_secs: f64,
}

/// Draws scenarios: the same seed, number and call count give the same scenario,
/// whatever order calls arrive in.
#[derive(Debug, Clone)]
pub struct Scenarios {
    pub seed: u64,
    pub mix: Mix,
    pub timing: Timing,
    /// Numbers whose outcome is fixed (tests and demos pin them).
    pub numbers: BTreeMap<String, Outcome>,
}

impl Scenarios {
    /// The `nth` call (from 0) to `to`.
    pub fn draw(&self, to: &str, nth: u64) -> Scenario {
        let mut rng = StdRng::seed_from_u64(
            self.seed ^ fnv1a(to.as_bytes()) ^ nth.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let t = &self.timing;
        let pick = |rng: &mut StdRng, r: [f64; 2]| {
            if r[1] > r[0] {
                rng.random_range(r[0]..=r[1])
            } else {
                r[0]
            }
        };
        let outcome = match self.numbers.get(to) {
            Some(o) => *o,
            None => self.pick_outcome(&mut rng),
        };
        let greeting_end = match rng.random_range(0..10) {
            0..=6 => GreetingEnd::Beep,
            7..=8 => GreetingEnd::Silence,
            _ => GreetingEnd::Other,
        };
        let greeting = pick(&mut rng, t.greeting_secs);
        let human = pick(&mut rng, t.human_detect_secs);
        Scenario {
            outcome,
            ring_secs: pick(&mut rng, t.ring_secs),
            reject_secs: pick(&mut rng, t.reject_secs),
            talk_secs: pick(&mut rng, t.talk_secs),
            hold_patience_secs: pick(&mut rng, t.hold_patience_secs),
            detect_secs: if outcome == Outcome::Machine {
                greeting
            } else {
                human
            },
            greeting_end,
            record_secs: pick(&mut rng, t.machine_record_secs),
        }
    }

    fn pick_outcome(&self, rng: &mut StdRng) -> Outcome {
        let m = &self.mix;
        let weights = [
            (Outcome::Human, m.human),
            (Outcome::Machine, m.machine),
            (Outcome::Busy, m.busy),
            (Outcome::NoAnswer, m.no_answer),
            (Outcome::Failed, m.failed),
        ];
        let total: f64 = weights.iter().map(|(_, w)| w.max(0.0)).sum();
        if total <= 0.0 {
            return Outcome::Human;
        }
        let mut x = rng.random_range(0.0..total);
        for (o, w) in weights {
            let w = w.max(0.0);
            if x < w {
                return o;
            }
            x -= w;
        }
        Outcome::Human
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenarios() -> Scenarios {
        Scenarios {
            seed: 7,
            mix: Mix::default(),
            timing: Timing::default(),
            numbers: BTreeMap::new(),
        }
    }

    #[test]
    fn same_seed_number_and_count_give_the_same_scenario() {
        let s = scenarios();
        assert_eq!(s.draw("+14155550100", 0), s.draw("+14155550100", 0));
        let other_seed = Scenarios {
            seed: 8,
            ..scenarios()
        };
        let differs =
            (0..20).any(|n| s.draw("+14155550100", n) != other_seed.draw("+14155550100", n));
        assert!(differs);
    }

    #[test]
    fn the_mix_is_followed_over_many_calls() {
        let s = scenarios();
        let n = 20_000;
        let humans = (0..n)
            .filter(|i| s.draw(&format!("+1415555{i:04}"), 0).outcome == Outcome::Human)
            .count();
        let share = humans as f64 / n as f64;
        assert!((0.37..0.43).contains(&share), "human share {share}");
    }

    #[test]
    fn pinned_numbers_always_get_their_outcome() {
        let mut s = scenarios();
        s.numbers.insert("+14155550123".into(), Outcome::Busy);
        assert!((0..50).all(|n| s.draw("+14155550123", n).outcome == Outcome::Busy));
    }

    #[test]
    fn timings_stay_within_their_ranges() {
        let s = scenarios();
        for i in 0..500 {
            let c = s.draw(&format!("+1212555{i:04}"), 0);
            assert!((3.0..=12.0).contains(&c.ring_secs));
            assert!((20.0..=120.0).contains(&c.talk_secs));
        }
    }
}
