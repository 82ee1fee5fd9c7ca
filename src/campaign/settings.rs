//! Campaign settings as a campaign manager writes them (`09:00-20:00`, `mon-fri`, `60m`),
//! parsed into values that are valid by construction. No I/O here.

use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Tz;
use serde::Serialize;

use crate::phone::{PhoneNumber, Region};

/// A setting that failed to parse: which field, what value, why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field} `{value}`: {reason}")]
pub struct SettingError {
    pub field: &'static str,
    pub value: String,
    pub reason: String,
}

fn err(field: &'static str, value: &str, reason: impl Into<String>) -> SettingError {
    SettingError {
        field,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// A daily time window `[start, end)` in some zone; start is before end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DailyWindow {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl DailyWindow {
    /// Parses `HH:MM-HH:MM`.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, SettingError> {
        let (a, b) = raw
            .split_once('-')
            .ok_or_else(|| err(field, raw, "expected HH:MM-HH:MM, e.g. 09:00-20:00"))?;
        let parse = |t: &str| {
            NaiveTime::parse_from_str(t.trim(), "%H:%M")
                .map_err(|_| err(field, raw, format!("`{}` is not a time HH:MM", t.trim())))
        };
        let (start, end) = (parse(a)?, parse(b)?);
        if start >= end {
            return Err(err(field, raw, "the start must be before the end"));
        }
        Ok(Self { start, end })
    }
}

/// Days of the week as a bit set: bit 0 Monday … bit 6 Sunday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct WeekDays(pub u8);

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl WeekDays {
    pub const WEEKDAYS: WeekDays = WeekDays(0b001_1111);
    pub const ALL: WeekDays = WeekDays(0b111_1111);

    /// Parses `mon-fri`, `mon,wed,fri`, `sat-sun`, `all`, `weekdays`.
    pub fn parse(raw: &str) -> Result<Self, SettingError> {
        let day = |d: &str| {
            let d = d.trim().to_ascii_lowercase();
            DAY_NAMES
                .iter()
                .position(|n| d.get(..3).is_some_and(|p| n.starts_with(p)))
                .ok_or_else(|| err("days", raw, format!("`{d}` is not a day (mon … sun)")))
        };
        let lower = raw.trim().to_ascii_lowercase();
        match lower.as_str() {
            "all" | "daily" => return Ok(Self::ALL),
            "weekdays" => return Ok(Self::WEEKDAYS),
            "" => return Err(err("days", raw, "at least one day is needed")),
            _ => {}
        }
        let mut bits = 0u8;
        for part in lower.split(',') {
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (day(a)?, day(b)?);
                    if a > b {
                        return Err(err("days", raw, format!("range `{part}` runs backwards")));
                    }
                    for d in a..=b {
                        bits |= 1 << d;
                    }
                }
                None => bits |= 1 << day(part)?,
            }
        }
        Ok(Self(bits))
    }

    pub fn contains(&self, weekday: chrono::Weekday) -> bool {
        self.0 & (1 << weekday.num_days_from_monday()) != 0
    }

    pub fn to_text(&self) -> String {
        DAY_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Parses a delay such as `90s`, `60m`, `2h`, `1d`, a bare number of seconds, or `none`
/// (no retry: `None`).
pub fn parse_delay(field: &'static str, raw: &str) -> Result<Option<u32>, SettingError> {
    let t = raw.trim().to_ascii_lowercase();
    if matches!(t.as_str(), "none" | "never" | "off") {
        return Ok(None);
    }
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u32 = num.parse().map_err(|_| {
        err(
            field,
            raw,
            "expected a delay such as 90s, 60m, 2h, 1d or none",
        )
    })?;
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => {
            return Err(err(
                field,
                raw,
                format!("unknown unit `{other}` (s, m, h, d)"),
            ));
        }
    };
    n.checked_mul(mult)
        .map(Some)
        .ok_or_else(|| err(field, raw, "too large"))
}

pub fn parse_time_zone(field: &'static str, raw: &str) -> Result<Tz, SettingError> {
    raw.trim()
        .parse::<Tz>()
        .map_err(|_| err(field, raw, "not an IANA time zone such as America/New_York"))
}

pub fn parse_date(field: &'static str, raw: &str) -> Result<NaiveDate, SettingError> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| err(field, raw, "expected YYYY-MM-DD"))
}

pub fn parse_e164(field: &'static str, raw: &str) -> Result<PhoneNumber, SettingError> {
    PhoneNumber::parse(raw, None).map_err(|e| {
        err(
            field,
            raw,
            format!("{e} (give the number in international form, +CC…)"),
        )
    })
}

pub fn parse_region(field: &'static str, raw: &str) -> Result<Region, SettingError> {
    Region::parse(raw).map_err(|e| err(field, raw, e.to_string()))
}

/// Longest text a campaign has read out with `<Say>`: Twilio takes 4,096 characters, but a
/// notice for a person who just answered should take seconds, not minutes.
pub const MAX_SPOKEN_CHARS: usize = 1_000;

/// Words the carrier reads out to the person (`<Say>`): trimmed, empty means none. A URL is
/// refused: it would be read out letter by letter, not played.
pub fn parse_spoken(field: &'static str, raw: &str) -> Result<Option<String>, SettingError> {
    let text = raw.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.starts_with("http://") || text.starts_with("https://") {
        return Err(err(
            field,
            raw,
            "give the words to say, not the URL of a recording",
        ));
    }
    let chars = text.chars().count();
    if chars > MAX_SPOKEN_CHARS {
        return Err(err(
            field,
            &text.chars().take(40).collect::<String>(),
            format!("is {chars} characters long; at most {MAX_SPOKEN_CHARS}"),
        ));
    }
    Ok(Some(text.to_string()))
}

pub fn check_range<T: PartialOrd + std::fmt::Display + Copy>(
    field: &'static str,
    value: T,
    min: T,
    max: T,
) -> Result<T, SettingError> {
    if value < min || value > max {
        return Err(err(
            field,
            &value.to_string(),
            format!("must be between {min} and {max}"),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Weekday;

    #[test]
    fn windows_parse_and_refuse_backwards() {
        let w = DailyWindow::parse("window", "09:00-20:30").unwrap();
        assert_eq!(w.start, NaiveTime::from_hms_opt(9, 0, 0).unwrap());
        assert_eq!(w.end, NaiveTime::from_hms_opt(20, 30, 0).unwrap());
        assert!(DailyWindow::parse("window", "20:00-09:00").is_err());
        assert!(DailyWindow::parse("window", "9am-5pm").is_err());
        assert!(DailyWindow::parse("window", "09:00").is_err());
    }

    #[test]
    fn days_parse() {
        assert_eq!(WeekDays::parse("mon-fri").unwrap(), WeekDays::WEEKDAYS);
        let d = WeekDays::parse("Mon,Wed,saturday").unwrap();
        assert!(d.contains(Weekday::Mon) && d.contains(Weekday::Wed) && d.contains(Weekday::Sat));
        assert!(!d.contains(Weekday::Tue));
        assert_eq!(d.to_text(), "mon,wed,sat");
        assert!(WeekDays::parse("fri-mon").is_err());
        assert!(WeekDays::parse("funday").is_err());
        // Not a day, and not a panic: the first three bytes are not a whole character.
        assert!(WeekDays::parse("mé").is_err());
        assert!(WeekDays::parse("日曜日").is_err());
    }

    #[test]
    fn delays_parse() {
        assert_eq!(parse_delay("d", "60m").unwrap(), Some(3600));
        assert_eq!(parse_delay("d", "90").unwrap(), Some(90));
        assert_eq!(parse_delay("d", "1d").unwrap(), Some(86_400));
        assert_eq!(parse_delay("d", "none").unwrap(), None);
        assert!(parse_delay("d", "soon").is_err());
        assert!(parse_delay("d", "5y").is_err());
    }

    #[test]
    fn spoken_messages_are_trimmed_and_bounded() {
        let f = "recording_consent_message";
        assert_eq!(
            parse_spoken(f, "  This call is recorded. ").unwrap(),
            Some("This call is recorded.".to_string())
        );
        assert_eq!(parse_spoken(f, "   ").unwrap(), None);
        let e = parse_spoken(f, "https://example.com/consent.mp3").unwrap_err();
        assert_eq!(e.field, f);
        assert!(e.reason.contains("not the URL"), "{e}");
        let long = "a".repeat(MAX_SPOKEN_CHARS + 1);
        let e = parse_spoken(f, &long).unwrap_err();
        assert!(e.reason.contains("1001 characters"), "{e}");
        assert!(parse_spoken(f, &"a".repeat(MAX_SPOKEN_CHARS)).is_ok());
    }

    #[test]
    fn caller_id_must_be_international_and_valid() {
        assert_eq!(
            parse_e164("caller_id", "+1 201-555-0123").unwrap().as_str(),
            "+12015550123"
        );
        let e = parse_e164("caller_id", "201-555-0123").unwrap_err();
        assert_eq!(e.field, "caller_id");
    }
}
