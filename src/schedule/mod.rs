//! When a lead may be dialled: the campaign's own hours (its zone, daily window, week
//! days and dates) and the legal hours at the lead's end (a daily window, chosen by
//! subdivision or region, that must hold in every zone the number may be in). Pure: no
//! I/O, and the clock is an argument, so the pacer and the retry logic can ask about any
//! instant.
//!
//! Windows are half-open `[start, end)` in local wall-clock time: an instant is inside
//! iff its local time in that zone, at that instant, is. Across DST this means a window
//! whose opening time is skipped opens when the clocks go forward, and one whose opening
//! time happens twice opens the first time.

use std::collections::BTreeMap;

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveTime, Offset, TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;
use serde_json::Value;

use crate::campaign::settings::{DailyWindow, SettingError, WeekDays};
use crate::phone::{Region, subdivision};

#[cfg(test)]
mod tests;

/// How many days ahead `next_open` looks before it answers "never".
pub const HORIZON_DAYS: u64 = 400;

const OVERRIDES_FIELD: &str = "legal_window_overrides";

/// The campaign's own calling hours, read in the campaign's zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignHours {
    pub tz: Tz,
    pub window: DailyWindow,
    pub days: WeekDays,
    /// First local date of calling, inclusive.
    pub start_date: Option<NaiveDate>,
    /// Last local date of calling, inclusive.
    pub end_date: Option<NaiveDate>,
}

/// The legal calling window at the lead's end, every day of the week, in the lead's time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalHours {
    pub default: DailyWindow,
    /// Keyed by upper-case ISO 3166-1 alpha-2 region (`GB`) or ISO 3166-2 subdivision
    /// (`US-FL`).
    pub overrides: BTreeMap<String, DailyWindow>,
}

/// Where a lead is, as far as calling hours are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadPlace {
    /// Every zone the number may be in; the legal window must be open in all of them.
    /// `new` never leaves it empty; if it is, the campaign's zone stands in.
    pub zones: Vec<Tz>,
    /// Upper-case ISO 3166-1 alpha-2 (`US`).
    pub region: Option<String>,
    /// ISO 3166-2 (`US-FL`), known for NANP numbers only.
    pub subdivision: Option<String>,
}

/// Campaign hours and legal hours together: the whole answer to "may we dial now?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub campaign: CampaignHours,
    pub legal: LegalHours,
}

fn contains(window: DailyWindow, time: NaiveTime) -> bool {
    window.start <= time && time < window.end
}

impl LegalHours {
    /// Parses the campaign's `legal_window_overrides` JSONB: {"US-FL": ["08:00","20:00"], "GB": ["09:00","20:00"]};
    /// keys are ISO 3166-1 alpha-2 regions or ISO 3166-2 subdivisions ("US-FL"); a clear SettingError
    /// (field "legal_window_overrides", naming the key and value) for anything else.
    ///
    /// Keys are case-insensitive and stored upper case. `null` means no overrides. A
    /// subdivision must be a US state, DC, or a Canadian province or territory: those are
    /// the only ones a number tells (by its area code), and an override that can never
    /// apply is refused rather than silently ignored.
    pub fn from_json(default: DailyWindow, overrides: &Value) -> Result<Self, SettingError> {
        let entries = match overrides {
            Value::Null => {
                return Ok(Self {
                    default,
                    overrides: BTreeMap::new(),
                });
            }
            Value::Object(entries) => entries,
            other => {
                return Err(SettingError {
                    field: OVERRIDES_FIELD,
                    value: other.to_string(),
                    reason: r#"expected an object such as {"US-FL": ["08:00", "20:00"]}"#.into(),
                });
            }
        };
        let mut parsed = BTreeMap::new();
        for (key, value) in entries {
            let bad = |reason: String| SettingError {
                field: OVERRIDES_FIELD,
                value: format!("{key}: {value}"),
                reason,
            };
            let place = override_key(key).map_err(bad)?;
            let window = override_window(value).map_err(bad)?;
            if parsed.insert(place, window).is_some() {
                return Err(bad("the same place is given twice".into()));
            }
        }
        Ok(Self {
            default,
            overrides: parsed,
        })
    }

    /// The window that applies to a place: subdivision override, else region override, else default.
    pub fn for_place(&self, place: &LeadPlace) -> DailyWindow {
        place
            .subdivision
            .iter()
            .chain(place.region.iter())
            .find_map(|key| self.overrides.get(key))
            .copied()
            .unwrap_or(self.default)
    }
}

/// `GB` → `GB`, `us-fl` → `US-FL`; the reason otherwise.
fn override_key(key: &str) -> Result<String, String> {
    let key = key.trim();
    let Some((country, sub)) = key.split_once('-') else {
        return Region::parse(key)
            .map(|r| r.as_str().to_string())
            .map_err(|_| {
                "not an ISO 3166-1 alpha-2 region (GB) or ISO 3166-2 subdivision (US-FL)"
                    .to_string()
            });
    };
    let region = Region::parse(country)
        .map_err(|_| format!("`{country}` is not an ISO 3166-1 alpha-2 region"))?;
    let code = format!("{region}-{}", sub.to_ascii_uppercase());
    if !matches!(region.as_str(), "US" | "CA") {
        return Err(format!(
            "subdivisions are known only for US and Canadian numbers; use the region `{region}`"
        ));
    }
    if !subdivision::is_known(&code) {
        return Err(format!(
            "`{code}` is not a US state, DC, or Canadian province or territory"
        ));
    }
    Ok(code)
}

/// `["08:00", "20:00"]` → the window; the reason otherwise.
fn override_window(value: &Value) -> Result<DailyWindow, String> {
    let pair = match value.as_array().map(Vec::as_slice) {
        Some([Value::String(start), Value::String(end)]) => (start, end),
        _ => return Err(r#"expected ["HH:MM", "HH:MM"]"#.into()),
    };
    DailyWindow::parse(OVERRIDES_FIELD, &format!("{}-{}", pair.0, pair.1)).map_err(|e| e.reason)
}

impl LeadPlace {
    /// From stored lead columns: IANA zone names (unknown names ignored), region, E.164 number
    /// (for the subdivision, see below). With no usable zone, `fallback` (the campaign's zone) is used.
    ///
    /// The subdivision is the US state or Canadian province of a +1 number's area code
    /// ([`subdivision::subdivision`]); other numbers have none.
    pub fn new(zones: &[String], region: Option<&str>, e164: &str, fallback: Tz) -> Self {
        let mut parsed: Vec<Tz> = Vec::with_capacity(zones.len().max(1));
        for tz in zones.iter().filter_map(|z| z.trim().parse::<Tz>().ok()) {
            if !parsed.contains(&tz) {
                parsed.push(tz);
            }
        }
        if parsed.is_empty() {
            parsed.push(fallback);
        }
        Self {
            zones: parsed,
            region: region
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_ascii_uppercase),
            subdivision: subdivision::subdivision(e164.trim()).map(str::to_string),
        }
    }
}

impl Schedule {
    /// Whether the campaign's own hours are open: weekday, date range and window, all in
    /// the campaign's zone.
    pub fn campaign_open(&self, at: DateTime<Utc>) -> bool {
        let c = &self.campaign;
        let local = at.with_timezone(&c.tz);
        let date = local.date_naive();
        c.days.contains(local.weekday())
            && c.start_date.is_none_or(|d| date >= d)
            && c.end_date.is_none_or(|d| date <= d)
            && contains(c.window, local.time())
    }

    /// Whether the legal window for the place is open in every zone of the lead.
    pub fn lead_open(&self, place: &LeadPlace, at: DateTime<Utc>) -> bool {
        let window = self.legal.for_place(place);
        self.lead_zones(place)
            .iter()
            .all(|tz| contains(window, at.with_timezone(tz).time()))
    }

    /// Whether the lead may be dialled at `at`: campaign hours and legal hours both open.
    pub fn is_open(&self, place: &LeadPlace, at: DateTime<Utc>) -> bool {
        self.campaign_open(at) && self.lead_open(place, at)
    }

    /// First instant >= `from` at which `is_open` holds; None if never (campaign end_date passed,
    /// or no overlap within the next 400 days).
    ///
    /// The 400 days count from `from`, or from the campaign's start date if that is later.
    pub fn next_open(&self, place: &LeadPlace, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let window = self.legal.for_place(place);
        let zones = self.lead_zones(place);
        let mut openings = vec![(self.campaign.tz, self.campaign.window.start)];
        for &tz in zones {
            if !openings.contains(&(tz, window.start)) {
                openings.push((tz, window.start));
            }
        }
        self.search(&openings, from, |at| {
            self.campaign_open(at)
                && zones
                    .iter()
                    .all(|tz| contains(window, at.with_timezone(tz).time()))
        })
    }

    /// First instant >= `from` at which the campaign's own hours are open (legal hours
    /// not considered); None as for `next_open`.
    pub fn campaign_next_open(&self, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let openings = [(self.campaign.tz, self.campaign.window.start)];
        self.search(&openings, from, |at| self.campaign_open(at))
    }

    /// When a retry may happen: next_open(place, ended_at + delay).
    pub fn retry_at(
        &self,
        place: &LeadPlace,
        ended_at: DateTime<Utc>,
        delay: std::time::Duration,
    ) -> Option<DateTime<Utc>> {
        let earliest = ended_at.checked_add_signed(TimeDelta::from_std(delay).ok()?)?;
        self.next_open(place, earliest)
    }

    fn lead_zones<'a>(&'a self, place: &'a LeadPlace) -> &'a [Tz] {
        if place.zones.is_empty() {
            std::slice::from_ref(&self.campaign.tz)
        } else {
            &place.zones
        }
    }

    /// The earliest instant >= `from` where `open` holds.
    ///
    /// `open` is an intersection of "local time in `[start, end)`" conditions (plus the
    /// campaign's weekday and dates, which change only at local midnight or at a clock
    /// change), so an open stretch begins at `from`, at an instant whose local time in
    /// some zone is that zone's opening time, or at a clock change in one of the zones
    /// (a skipped opening time, or a window that ends in an hour the clocks repeat). Those
    /// instants are generated one UTC day at a time, in order, and the first open one is
    /// the answer: exact to the second, and cheap when the answer is near. When it is
    /// far or never, weeks without a clock change are skipped.
    fn search(
        &self,
        openings: &[(Tz, NaiveTime)],
        from: DateTime<Utc>,
        open: impl Fn(DateTime<Utc>) -> bool,
    ) -> Option<DateTime<Utc>> {
        let c = &self.campaign;
        let never = c.days.0 & 0b111_1111 == 0
            || c.window.start >= c.window.end
            || matches!((c.start_date, c.end_date), (Some(s), Some(e)) if s > e);
        // Keeps the day arithmetic below far from chrono's limits (±262,000 years).
        if never || !(-100_000..=100_000).contains(&from.year()) {
            return None;
        }
        if open(from) {
            return Some(from);
        }
        // No zone is a day or more away from UTC: before the start date's UTC midnight
        // minus a day the campaign is closed, and after the end date's plus two days too.
        let midnight = |d: NaiveDate| d.and_time(NaiveTime::MIN).and_utc();
        let not_before = c
            .start_date
            .and_then(|d| d.checked_sub_days(Days::new(1)))
            .map(midnight);
        let not_after = c
            .end_date
            .and_then(|d| d.checked_add_days(Days::new(2)))
            .map(midnight);
        let first_day = not_before.map_or(from, |b| b.max(from)).date_naive();
        // From this UTC day on, every local date is on or after the start date.
        let started = c.start_date.and_then(|d| d.succ_opt()).unwrap_or(first_day);
        let mut quiet_days = 0;
        let mut candidates = Vec::new();
        for n in 0..=HORIZON_DAYS {
            let day = first_day.checked_add_days(Days::new(n))?;
            let start = midnight(day);
            if not_after.is_some_and(|last| start > last) {
                return None;
            }
            let end = start + TimeDelta::days(1);
            candidates.clear();
            for &(tz, _) in openings {
                if let Some(at) = clock_change(tz, start) {
                    candidates.push(at);
                }
            }
            let changed = !candidates.is_empty();
            // While no zone changes its clocks, open times repeat every seven days: after a
            // whole week without one, there is none until the next clock change.
            if !changed && quiet_days >= 7 {
                continue;
            }
            for &(tz, opening) in openings {
                // A local date's opening falls on this UTC day only for the dates either side.
                for date in [day.pred_opt(), Some(day), day.succ_opt()]
                    .into_iter()
                    .flatten()
                {
                    match tz.from_local_datetime(&date.and_time(opening)) {
                        LocalResult::Single(at) => candidates.push(at.to_utc()),
                        LocalResult::Ambiguous(first, second) => {
                            candidates.push(first.to_utc());
                            candidates.push(second.to_utc());
                        }
                        // Skipped by the clocks: the clock change opens it.
                        LocalResult::None => {}
                    }
                }
            }
            candidates.retain(|at| *at > from && *at >= start && *at < end);
            candidates.sort_unstable();
            candidates.dedup();
            if let Some(at) = candidates.iter().copied().find(|at| open(*at)) {
                return Some(at);
            }
            // The first day is checked only from `from`, and days before the start date
            // do not repeat.
            quiet_days = if changed || n == 0 || day < started {
                0
            } else {
                quiet_days + 1
            };
        }
        None
    }
}

/// The first second of the UTC day starting at `day_start` at which `tz` has a new UTC
/// offset, if it changes that day (zones change at most once a day).
fn clock_change(tz: Tz, day_start: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let offset = |s: i64| {
        tz.offset_from_utc_datetime(&(day_start + TimeDelta::seconds(s)).naive_utc())
            .fix()
    };
    // Seconds from day_start: `lo` has the old offset, `hi` the new one.
    let (mut lo, mut hi) = (-1_i64, 86_399_i64);
    let before = offset(lo);
    if offset(hi) == before {
        return None;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if offset(mid) == before {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(day_start + TimeDelta::seconds(hi))
}
