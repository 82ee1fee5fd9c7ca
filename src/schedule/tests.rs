use super::*;
use chrono::NaiveDateTime;
use chrono_tz::America::{Chicago, Los_Angeles, New_York};
use chrono_tz::Australia::Sydney;
use chrono_tz::Europe::London;
use serde_json::json;

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A local wall-clock time that happens exactly once in `tz`.
fn local(tz: Tz, s: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
    tz.from_local_datetime(&naive).single().unwrap().to_utc()
}

fn window(s: &str) -> DailyWindow {
    DailyWindow::parse("window", s).unwrap()
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn schedule(tz: Tz, campaign: &str, days: &str, legal: &str) -> Schedule {
    Schedule {
        campaign: CampaignHours {
            tz,
            window: window(campaign),
            days: WeekDays::parse(days).unwrap(),
            start_date: None,
            end_date: None,
        },
        legal: LegalHours {
            default: window(legal),
            overrides: BTreeMap::new(),
        },
    }
}

fn place(zones: &[Tz]) -> LeadPlace {
    LeadPlace {
        zones: zones.to_vec(),
        region: None,
        subdivision: None,
    }
}

#[test]
fn legal_window_is_open_at_its_last_second_and_closed_at_its_end() {
    let s = schedule(New_York, "00:00-23:59", "all", "08:00-21:00");
    let ny = place(&[New_York]);
    assert!(s.is_open(&ny, local(New_York, "2026-06-10 20:59:59")));
    assert!(!s.is_open(&ny, local(New_York, "2026-06-10 21:00:00")));
    assert!(s.is_open(&ny, local(New_York, "2026-06-10 08:00:00")));
    assert!(!s.is_open(&ny, local(New_York, "2026-06-10 07:59:59")));
}

#[test]
fn campaign_window_is_half_open_in_the_campaign_zone() {
    let s = schedule(Chicago, "09:00-20:00", "all", "00:00-23:59");
    assert!(s.campaign_open(local(Chicago, "2026-06-10 09:00:00")));
    assert!(s.campaign_open(local(Chicago, "2026-06-10 19:59:59")));
    assert!(!s.campaign_open(local(Chicago, "2026-06-10 20:00:00")));
    // 09:30 in New York is still 08:30 in the campaign's zone.
    assert!(!s.campaign_open(local(New_York, "2026-06-10 09:30:00")));
}

#[test]
fn number_in_two_zones_is_open_only_where_both_legal_windows_are() {
    let s = schedule(New_York, "00:00-23:59", "all", "08:00-21:00");
    let both = place(&[New_York, Chicago]);
    // 08:30 in New York is 07:30 in Chicago: too early there.
    assert!(s.is_open(&place(&[New_York]), local(New_York, "2026-06-10 08:30:00")));
    assert!(!s.is_open(&both, local(New_York, "2026-06-10 08:30:00")));
    assert!(s.is_open(&both, local(New_York, "2026-06-10 09:00:00")));
    // 21:00 in New York is 20:00 in Chicago: too late in New York.
    assert!(s.is_open(&both, local(New_York, "2026-06-10 20:59:59")));
    assert!(!s.is_open(&both, local(New_York, "2026-06-10 21:00:00")));
    assert_eq!(
        s.next_open(&both, local(New_York, "2026-06-10 07:00:00")),
        Some(local(New_York, "2026-06-10 09:00:00"))
    );
    assert_eq!(
        s.next_open(&both, local(New_York, "2026-06-10 21:00:00")),
        Some(local(New_York, "2026-06-11 09:00:00"))
    );
}

#[test]
fn weekday_campaign_closed_on_friday_evening_reopens_on_monday_morning() {
    let s = schedule(New_York, "09:00-17:00", "mon-fri", "08:00-21:00");
    let ny = place(&[New_York]);
    let monday = Some(local(New_York, "2026-06-15 09:00:00"));
    assert_eq!(
        s.next_open(&ny, local(New_York, "2026-06-12 17:00:00")),
        monday
    );
    assert_eq!(
        s.next_open(&ny, local(New_York, "2026-06-13 12:00:00")),
        monday
    );
    assert_eq!(
        s.campaign_next_open(local(New_York, "2026-06-14 23:59:59")),
        monday
    );
    // Open now means now, to the nanosecond.
    let now = local(New_York, "2026-06-12 16:59:59") + TimeDelta::milliseconds(250);
    assert_eq!(s.next_open(&ny, now), Some(now));
}

#[test]
fn window_opening_in_the_spring_forward_gap_opens_when_the_clocks_go_forward() {
    // 2026-03-08 in New York: 02:00 EST becomes 03:00 EDT, so 02:30 never happens.
    let s = schedule(New_York, "02:30-05:00", "all", "00:00-23:59");
    let from = local(New_York, "2026-03-08 00:00:00");
    assert_eq!(
        s.campaign_next_open(from),
        Some(utc("2026-03-08T07:00:00Z"))
    );
    assert!(!s.campaign_open(utc("2026-03-08T06:59:59Z")));
    // The day after, 02:30 exists again.
    assert_eq!(
        s.campaign_next_open(utc("2026-03-08T10:00:00Z")),
        Some(local(New_York, "2026-03-09 02:30:00"))
    );
}

#[test]
fn window_opening_in_the_repeated_hour_opens_the_first_time() {
    // 2026-11-01 in New York: 01:00-02:00 happens twice (EDT, then EST).
    let s = schedule(New_York, "01:30-03:00", "all", "00:00-23:59");
    let from = local(New_York, "2026-11-01 00:00:00");
    assert_eq!(
        s.campaign_next_open(from),
        Some(utc("2026-11-01T05:30:00Z"))
    );
}

#[test]
fn window_ending_in_the_repeated_hour_reopens_when_the_clocks_go_back() {
    // 01:30 EDT closes it; at 02:00 EDT the clocks say 01:00 EST, inside the window again.
    let s = schedule(New_York, "00:30-01:30", "all", "00:00-23:59");
    assert!(s.campaign_open(utc("2026-11-01T05:29:59Z")));
    assert!(!s.campaign_open(utc("2026-11-01T05:30:00Z")));
    assert_eq!(
        s.campaign_next_open(utc("2026-11-01T05:30:00Z")),
        Some(utc("2026-11-01T06:00:00Z"))
    );
}

#[test]
fn window_inside_the_repeated_hour_opens_on_both_passes() {
    // 01:15-01:45 on 2026-11-01 happens at 05:15-05:45 UTC (EDT) and 06:15-06:45 (EST).
    let s = schedule(New_York, "01:15-01:45", "all", "00:00-23:59");
    assert_eq!(
        s.campaign_next_open(utc("2026-11-01T05:45:00Z")),
        Some(utc("2026-11-01T06:15:00Z"))
    );
    assert!(!s.campaign_open(utc("2026-11-01T06:14:59Z")));
}

#[test]
fn legal_window_follows_the_leads_clock_changes_not_the_campaigns() {
    // A London campaign calling New York: the US changes clocks on 2026-03-08 and
    // 2026-11-01, London on 2026-03-29 and 2026-10-25.
    let s = schedule(London, "00:00-23:59", "all", "08:00-21:00");
    let ny = place(&[New_York]);
    // Saturday 08:00 EST is 13:00 UTC; Sunday 08:00 EDT is 12:00 UTC.
    assert_eq!(
        s.next_open(&ny, utc("2026-03-07T02:00:00Z")),
        Some(utc("2026-03-07T13:00:00Z"))
    );
    assert_eq!(
        s.next_open(&ny, utc("2026-03-08T02:00:00Z")),
        Some(utc("2026-03-08T12:00:00Z"))
    );
    // Sunday 2026-11-01 08:00 EST is 13:00 UTC, an hour later than the day before.
    assert_eq!(
        s.next_open(&ny, utc("2026-10-31T02:00:00Z")),
        Some(utc("2026-10-31T12:00:00Z"))
    );
    assert_eq!(
        s.next_open(&ny, utc("2026-11-01T02:00:00Z")),
        Some(utc("2026-11-01T13:00:00Z"))
    );
}

#[test]
fn london_campaign_reaches_sydney_only_in_a_short_overlap() {
    let s = schedule(London, "09:00-17:00", "mon-fri", "08:00-21:00");
    let sydney = place(&[Sydney]);
    // January: 09:00 GMT is 20:00 AEDT, one hour before Sydney's 21:00.
    let from = utc("2026-01-12T00:00:00Z");
    assert_eq!(
        s.next_open(&sydney, from),
        Some(utc("2026-01-12T09:00:00Z"))
    );
    assert!(s.is_open(&sydney, utc("2026-01-12T09:59:59Z")));
    assert!(!s.is_open(&sydney, utc("2026-01-12T10:00:00Z")));
    // June: 09:00 BST is 18:00 AEST, three hours before.
    assert!(s.is_open(&sydney, utc("2026-06-10T10:59:59Z")));
    assert!(!s.is_open(&sydney, utc("2026-06-10T11:00:00Z")));
}

#[test]
fn london_campaign_never_reaches_sydney_when_the_windows_never_meet() {
    // Sydney 18:00 is London 07:00 or 09:00 depending on both DSTs, never later.
    let s = schedule(London, "09:00-17:00", "all", "08:00-18:00");
    let sydney = place(&[Sydney]);
    assert_eq!(s.next_open(&sydney, utc("2026-01-12T00:00:00Z")), None);
    assert_eq!(s.next_open(&sydney, utc("2026-06-10T00:00:00Z")), None);
    assert!(s.campaign_next_open(utc("2026-06-10T00:00:00Z")).is_some());
}

#[test]
fn campaign_waits_for_its_start_date_and_stops_after_its_end_date() {
    let mut s = schedule(New_York, "09:00-17:00", "all", "08:00-21:00");
    s.campaign.start_date = Some(date("2026-07-01"));
    s.campaign.end_date = Some(date("2026-07-03"));
    let ny = place(&[New_York]);
    assert_eq!(
        s.next_open(&ny, utc("2026-06-20T15:00:00Z")),
        Some(local(New_York, "2026-07-01 09:00:00"))
    );
    assert!(s.is_open(&ny, local(New_York, "2026-07-03 16:59:59")));
    assert!(!s.is_open(&ny, local(New_York, "2026-07-04 09:00:00")));
    assert_eq!(
        s.next_open(&ny, local(New_York, "2026-07-03 17:00:00")),
        None
    );
    assert_eq!(s.campaign_next_open(utc("2026-08-01T00:00:00Z")), None);
}

#[test]
fn weekly_campaign_starting_mid_week_opens_on_its_first_calling_day() {
    // Tuesday evenings only, from Wednesday 2026-06-10: the first call is six days on.
    let mut s = schedule(New_York, "20:00-23:00", "tue", "08:00-21:00");
    s.campaign.start_date = Some(date("2026-06-10"));
    assert_eq!(
        s.campaign_next_open(utc("2026-06-01T00:00:00Z")),
        Some(local(New_York, "2026-06-16 20:00:00"))
    );
    let ny = place(&[New_York]);
    assert_eq!(
        s.next_open(&ny, utc("2026-06-01T00:00:00Z")),
        Some(local(New_York, "2026-06-16 20:00:00"))
    );
}

#[test]
fn campaign_with_no_days_never_opens() {
    let mut s = schedule(New_York, "09:00-17:00", "all", "08:00-21:00");
    s.campaign.days = WeekDays(0);
    assert_eq!(s.campaign_next_open(utc("2026-06-10T00:00:00Z")), None);
}

#[test]
fn overrides_by_subdivision_beat_region_beat_default() {
    let overrides = json!({"US-FL": ["08:00", "20:00"], "us": ["09:00", "20:30"]});
    let legal = LegalHours::from_json(window("08:00-21:00"), &overrides).unwrap();
    let zones = ["America/New_York".to_string()];
    let florida = LeadPlace::new(&zones, Some("US"), "+13055550123", New_York);
    let new_york = LeadPlace::new(&zones, Some("US"), "+12125550123", New_York);
    let toronto = LeadPlace::new(&zones, Some("CA"), "+14165550123", New_York);
    assert_eq!(florida.subdivision.as_deref(), Some("US-FL"));
    assert_eq!(legal.for_place(&florida), window("08:00-20:00"));
    assert_eq!(legal.for_place(&new_york), window("09:00-20:30"));
    assert_eq!(legal.for_place(&toronto), window("08:00-21:00"));

    // So a Florida lead is closed at 20:00 while a New York one is still open.
    let s = Schedule {
        campaign: schedule(New_York, "00:00-23:59", "all", "00:00-23:59").campaign,
        legal,
    };
    let eight_pm = local(New_York, "2026-06-10 20:00:00");
    assert!(!s.is_open(&florida, eight_pm));
    assert!(s.is_open(&new_york, eight_pm));
    assert!(!s.is_open(&new_york, local(New_York, "2026-06-10 08:30:00")));
    assert!(s.is_open(&florida, local(New_York, "2026-06-10 08:30:00")));
}

#[test]
fn no_answer_late_in_the_evening_is_retried_the_next_legal_morning() {
    // A Los Angeles campaign calling New York: the campaign is open until midnight ET.
    let s = schedule(Los_Angeles, "05:00-21:00", "all", "08:00-21:00");
    let ny = LeadPlace::new(
        &["America/New_York".into()],
        Some("US"),
        "+12125550123",
        Los_Angeles,
    );
    let hour = std::time::Duration::from_secs(3600);
    assert_eq!(
        s.retry_at(&ny, local(New_York, "2026-06-10 20:30:00"), hour),
        Some(local(New_York, "2026-06-11 08:00:00"))
    );
    // Earlier in the day the delay is all there is.
    assert_eq!(
        s.retry_at(&ny, local(New_York, "2026-06-10 10:00:00"), hour),
        Some(local(New_York, "2026-06-10 11:00:00"))
    );
}

#[test]
fn from_json_errors_name_the_field_the_key_and_the_value() {
    let default = window("08:00-21:00");
    let cases = [
        (
            json!({"Florida": ["08:00", "20:00"]}),
            "Florida",
            "ISO 3166",
        ),
        (
            json!({"US-XX": ["08:00", "20:00"]}),
            "US-XX",
            "not a US state",
        ),
        (
            json!({"GB-ENG": ["09:00", "20:00"]}),
            "GB-ENG",
            "use the region `GB`",
        ),
        (json!({"ZZ": ["09:00", "20:00"]}), "ZZ", "ISO 3166"),
        (
            json!({"GB": "09:00-20:00"}),
            "GB",
            "expected [\"HH:MM\", \"HH:MM\"]",
        ),
        (json!({"GB": ["09:00"]}), "GB", "expected"),
        (json!({"GB": ["20:00", "09:00"]}), "GB", "before the end"),
        (json!({"GB": ["9am", "5pm"]}), "GB", "not a time"),
        (
            json!({"GB": ["09:00", "20:00"], "gb": ["10:00", "20:00"]}),
            "GB",
            "twice",
        ),
    ];
    for (overrides, key, reason) in cases {
        let e = LegalHours::from_json(default, &overrides).unwrap_err();
        assert_eq!(e.field, "legal_window_overrides");
        let message = e.to_string();
        assert!(
            message.to_lowercase().contains(&key.to_lowercase()) && message.contains(reason),
            "{overrides}: {message}"
        );
    }
    let e = LegalHours::from_json(default, &json!(["US-FL", "08:00", "20:00"])).unwrap_err();
    assert!(e.to_string().contains("expected an object"), "{e}");
}

#[test]
fn from_json_takes_null_as_none_and_keys_in_any_case() {
    let default = window("08:00-21:00");
    assert!(
        LegalHours::from_json(default, &Value::Null)
            .unwrap()
            .overrides
            .is_empty()
    );
    let legal = LegalHours::from_json(
        default,
        &json!({"us-fl": ["08:00", "20:00"], " gb ": ["09:00", "20:00"]}),
    )
    .unwrap();
    let keys: Vec<_> = legal.overrides.keys().map(String::as_str).collect();
    assert_eq!(keys, ["GB", "US-FL"]);
}

#[test]
fn lead_place_ignores_unknown_zones_and_falls_back_to_the_campaign_zone() {
    let p = LeadPlace::new(
        &[
            "Mars/Olympus".into(),
            "America/Chicago".into(),
            "America/Chicago".into(),
        ],
        Some(" us "),
        "+13125550123",
        New_York,
    );
    assert_eq!(p.zones, [Chicago]);
    assert_eq!(p.region.as_deref(), Some("US"));
    assert_eq!(p.subdivision.as_deref(), Some("US-IL"));

    let p = LeadPlace::new(&["Mars/Olympus".into()], None, "+442079460123", London);
    assert_eq!(p.zones, [London]);
    assert_eq!((p.region, p.subdivision), (None, None));

    // An empty list built by hand means the campaign's zone too, never "no constraint".
    let s = schedule(New_York, "00:00-23:59", "all", "08:00-21:00");
    assert!(!s.lead_open(&place(&[]), local(New_York, "2026-06-10 07:00:00")));
}

/// splitmix64: deterministic, so a failure names a case that can be rerun.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Often a single day, since a week with one calling day is where a search that
    /// gives up too early goes wrong.
    fn days(&mut self) -> WeekDays {
        match self.below(10) {
            0..=2 => WeekDays(1 << self.below(7)),
            3 | 4 => WeekDays::WEEKDAYS,
            5 => WeekDays(0b110_0000),
            _ => WeekDays(self.below(128) as u8),
        }
    }

    /// A window, often with an edge near the small hours where clocks change.
    fn window(&mut self) -> DailyWindow {
        let edges = [0, 30, 60, 75, 90, 105, 120, 150, 180, 480, 1260, 1380];
        let minute = |rng: &mut Rng| {
            if rng.chance(40) {
                rng.pick(&edges)
            } else {
                rng.below(1440)
            }
        };
        let (a, b) = loop {
            let (a, b) = (minute(self), minute(self));
            if a != b {
                break (a.min(b), a.max(b));
            }
        };
        let time = |m: u64| NaiveTime::from_hms_opt((m / 60) as u32, (m % 60) as u32, 0).unwrap();
        DailyWindow {
            start: time(a),
            end: time(b),
        }
    }
}

#[test]
fn next_open_is_open_and_nothing_before_it_is_for_random_settings() {
    let zones: Vec<Tz> = [
        "America/New_York",
        "America/Chicago",
        "America/Denver",
        "America/Phoenix",
        "America/Los_Angeles",
        "America/St_Johns",
        "America/Santiago",
        "America/Havana",
        "Europe/London",
        "Europe/Berlin",
        "Asia/Tehran",
        "Asia/Kathmandu",
        "Australia/Sydney",
        "Australia/Lord_Howe",
        "Pacific/Chatham",
        "Pacific/Kiritimati",
        "Pacific/Pago_Pago",
        "UTC",
    ]
    .iter()
    .map(|z| z.parse().unwrap())
    .collect();
    // Clock changes in 2026: US, EU, Australia (both ways), Chile, Lord Howe, Chatham.
    let changes = [
        "2026-03-08T07:00:00Z",
        "2026-03-29T01:00:00Z",
        "2026-04-05T00:00:00Z",
        "2026-04-04T15:00:00Z",
        "2026-09-06T04:00:00Z",
        "2026-10-03T16:00:00Z",
        "2026-10-25T01:00:00Z",
        "2026-11-01T06:00:00Z",
    ]
    .map(utc);
    let year_start = utc("2026-01-01T00:00:00Z");
    let minute = TimeDelta::minutes(1);
    let mut rng = Rng(0x5EED_CA11);
    let (mut found, mut never) = (0, 0);
    for case in 0..300 {
        let mut s = Schedule {
            campaign: CampaignHours {
                tz: rng.pick(&zones),
                window: rng.window(),
                days: rng.days(),
                start_date: None,
                end_date: None,
            },
            legal: LegalHours {
                default: rng.window(),
                overrides: BTreeMap::new(),
            },
        };
        let lead = place(
            &(0..1 + rng.below(3))
                .map(|_| rng.pick(&zones))
                .collect::<Vec<_>>(),
        );
        let from = if rng.chance(50) {
            rng.pick(&changes) + TimeDelta::seconds(rng.below(2 * 86_400) as i64 - 86_400)
        } else {
            year_start + TimeDelta::seconds(rng.below(365 * 86_400) as i64)
        };
        let day = from.date_naive();
        if rng.chance(20) {
            s.campaign.start_date = day.checked_add_days(Days::new(rng.below(12)));
        }
        if rng.chance(20) {
            s.campaign.end_date = day.checked_add_days(Days::new(rng.below(20)));
        }
        let label = format!("case {case}: {s:?} {lead:?} from {from}");

        for (got, open) in [
            (
                s.next_open(&lead, from),
                &(|t| s.is_open(&lead, t)) as &dyn Fn(DateTime<Utc>) -> bool,
            ),
            (s.campaign_next_open(from), &|t| s.campaign_open(t)),
        ] {
            if let Some(at) = got {
                found += 1;
                assert!(at >= from && open(at), "{label}: {at} is not open");
                assert!(
                    at == from || !open(at - TimeDelta::seconds(1)),
                    "{label}: open a second before {at}"
                );
            } else {
                never += 1;
            }
            // Nothing before the answer is open: every minute for four days, then more
            // coarsely (a window shorter than the step may slip through) to the horizon.
            let until = got.unwrap_or(from + TimeDelta::days(HORIZON_DAYS as i64));
            let mut t = from;
            while t < until {
                assert!(!open(t), "{label}: open at {t}, before {got:?}");
                t += if t < from + TimeDelta::days(4) {
                    minute
                } else {
                    TimeDelta::minutes(37)
                };
            }
        }
    }
    // The generator exercises both answers.
    assert!(found > 300 && never > 20, "found {found}, never {never}");
}
