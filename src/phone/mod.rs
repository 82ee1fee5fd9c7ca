//! Phone numbers: `PhoneNumber` is an E.164 number that libphonenumber's metadata
//! says is valid; the only way to get one is `PhoneNumber::parse`.

use std::cell::RefCell;
use std::fmt;
use std::str::FromStr;

use phonenumber::country;
use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use rustc_hash::FxHashMap as HashMap;
use serde::Serialize;

pub mod subdivision;
pub mod tz;

/// An ISO 3166-1 alpha-2 region known to libphonenumber (`US`, `GB`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region(country::Id);

impl Region {
    pub fn parse(raw: &str) -> Result<Self, PhoneError> {
        let t = raw.trim().as_bytes();
        let &[a, b] = t else {
            return Err(PhoneError::UnknownRegion(raw.to_string()));
        };
        if !a.is_ascii_alphabetic() || !b.is_ascii_alphabetic() {
            return Err(PhoneError::UnknownRegion(raw.to_string()));
        }
        // strum's from_str walks every variant, and imports ask for a handful of codes
        // millions of times: every two-letter code is looked up once, into a table.
        static BY_CODE: std::sync::OnceLock<Vec<Option<country::Id>>> = std::sync::OnceLock::new();
        let table = BY_CODE.get_or_init(|| {
            (0..26 * 26)
                .map(|i| {
                    let code = [b'A' + (i / 26) as u8, b'A' + (i % 26) as u8];
                    std::str::from_utf8(&code)
                        .ok()
                        .and_then(|k| country::Id::from_str(k).ok())
                })
                .collect()
        });
        let index = |c: u8| usize::from(c.to_ascii_uppercase() - b'A');
        table[index(a) * 26 + index(b)]
            .map(Region)
            .ok_or_else(|| PhoneError::UnknownRegion(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a dialable phone number; the message is shown to campaign managers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("empty")]
    Empty,
    #[error("not a phone number")]
    NotANumber,
    #[error("unknown country calling code")]
    UnknownCountryCode,
    #[error("too short")]
    TooShort,
    #[error("too long")]
    TooLong,
    #[error("not a valid number for {0}")]
    InvalidForRegion(String),
    #[error("`{0}` is not an ISO 3166 country code known to the phone-number metadata")]
    UnknownRegion(String),
}

/// A valid phone number in E.164 form (`+14155550123`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses `raw` as written by a person or a CRM; national numbers are read in `region`.
    pub fn parse(raw: &str, region: Option<Region>) -> Result<Self, PhoneError> {
        Self::parse_detailed(raw, region).map(|p| p.number)
    }

    /// Parses and also tells the number's own region and line type, evaluating the
    /// metadata patterns once (the costly part of validation).
    pub fn parse_detailed(raw: &str, region: Option<Region>) -> Result<ParsedPhone, PhoneError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Empty);
        }
        // RFC 3966 `tel:NATIONAL;phone-context=+CC`: a national number in CC's main region.
        let (trimmed, region) = match rfc3966_context(trimmed) {
            Some((national, context_region)) => (national, Some(context_region)),
            None => (trimmed, region),
        };
        let parsed =
            phonenumber::parse(region.map(|r| r.0), trimmed).map_err(|e| match e {
                phonenumber::ParseError::NoNumber
                | phonenumber::ParseError::MalformedInteger(_) => PhoneError::NotANumber,
                phonenumber::ParseError::InvalidCountryCode => PhoneError::UnknownCountryCode,
                phonenumber::ParseError::TooShortAfterIdd
                | phonenumber::ParseError::TooShortNsn => PhoneError::TooShort,
                phonenumber::ParseError::TooLong => PhoneError::TooLong,
            })?;
        let code = parsed.code().value();
        let (national, meta, kind) = classify(code, parsed.national().to_string(), region);
        if kind == LineKind::Unknown {
            if national.len() < 4 {
                return Err(PhoneError::TooShort);
            }
            let place = parsed
                .country()
                .id()
                .map(|id| id.as_ref().to_string())
                .or_else(|| region.map(|r| r.as_str().to_string()))
                .unwrap_or_else(|| format!("country code +{}", parsed.code().value()));
            return Err(PhoneError::InvalidForRegion(place));
        }
        // E.164 is + country code + national significant number (leading zeros included).
        let number = PhoneNumber(format!("+{code}{national}"));
        let region = meta.and_then(|m| Region::parse(m.id()).ok());
        Ok(ParsedPhone {
            number,
            region,
            kind,
            country_code: code,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits after `+`, for prefix lookups.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

/// What `parse_detailed` learns about a number besides its E.164 form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPhone {
    pub number: PhoneNumber,
    /// The region the number belongs to (`None` for non-geographic codes such as +800).
    pub region: Option<Region>,
    pub kind: LineKind,
    pub country_code: u16,
}

impl ParsedPhone {
    /// libphonenumber's rule: only geographic numbers (fixed lines, and mobiles in the
    /// few countries that assign them by area) are located by prefix.
    pub fn is_geographic(&self) -> bool {
        match self.kind {
            LineKind::FixedLine | LineKind::FixedLineOrMobile => true,
            LineKind::Mobile => matches!(self.country_code, 52 | 54 | 55 | 62 | 86),
            _ => false,
        }
    }

    /// The candidate IANA zones of the number (empty when unknown).
    pub fn time_zones(&self) -> &'static [&'static str] {
        let digits = self.number.digits();
        if self.is_geographic() {
            tz::TABLE.longest_prefix(digits)
        } else {
            tz::TABLE.exact(&self.country_code.to_string())
        }
    }
}

/// The line type, as libphonenumber classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    FixedLine,
    Mobile,
    FixedLineOrMobile,
    TollFree,
    PremiumRate,
    SharedCost,
    Voip,
    PersonalNumber,
    Pager,
    Uan,
    Voicemail,
    Unknown,
}

/// Finds the metadata and line type of `national`. The crate sometimes strips a national
/// prefix that libphonenumber keeps (its viability check looks at the number before
/// stripping, and it strips with the default region's rules even after `+CC`), e.g.
/// `+7 800 123-45-67` becomes 001234567; when the result is invalid, the number with the
/// national prefix put back is tried too.
fn classify(
    code: u16,
    national: String,
    region: Option<Region>,
) -> (String, Option<&'static Metadata>, LineKind) {
    let meta = metadata_for(code, &national);
    let kind = meta
        .map(|m| line_kind(m, &national))
        .unwrap_or(LineKind::Unknown);
    if kind != LineKind::Unknown {
        return (national, meta, kind);
    }
    let own = DATABASE
        .region(&code)
        .and_then(|r| r.into_iter().next())
        .and_then(|r| DATABASE.by_id(r));
    let given = region.and_then(|r| DATABASE.by_id(r.as_str()));
    for prefix in [given, own]
        .into_iter()
        .flatten()
        .filter_map(|m| m.national_prefix())
    {
        let restored = format!("{prefix}{national}");
        if let Some(m) = metadata_for(code, &restored) {
            let k = line_kind(m, &restored);
            if k != LineKind::Unknown {
                return (restored, Some(m), k);
            }
        }
    }
    (national, meta, kind)
}

/// Splits `tel:NUMBER;phone-context=+CC` into the number and CC's main region.
fn rfc3966_context(raw: &str) -> Option<(&str, Region)> {
    let rest = raw
        .strip_prefix("tel:")
        .or_else(|| raw.strip_prefix("TEL:"))?;
    let (number, params) = rest.split_once(';')?;
    let context = params
        .split(';')
        .find_map(|p| p.strip_prefix("phone-context="))?
        .strip_prefix('+')?;
    let code: u16 = context.parse().ok()?;
    let main = DATABASE.region(&code)?.into_iter().next()?;
    Some((number, Region::parse(main).ok()?))
}

/// The metadata that governs `national` under calling code `code`: libphonenumber's
/// `getRegionCodeForNumberFromRegionList`, with the national number's leading zeros kept
/// (the crate drops them here, which loses Italian fixed lines).
fn metadata_for(code: u16, national: &str) -> Option<&'static Metadata> {
    let regions = DATABASE.region(&code)?;
    if let [only] = regions.as_slice() {
        return if *only == "001" {
            DATABASE.by_code(&code).and_then(|m| m.into_iter().next())
        } else {
            DATABASE.by_id(*only)
        };
    }
    regions
        .into_iter()
        .filter_map(|r| DATABASE.by_id(r))
        .find(|meta| match meta.leading_digits() {
            Some(pattern) => pattern_matches(pattern.as_str(), national, Anchor::Start),
            None => line_kind(meta, national) != LineKind::Unknown,
        })
}

#[derive(Clone, Copy)]
enum Anchor {
    /// The pattern must match the whole string.
    Whole,
    /// The pattern must match at the start.
    Start,
}

/// Matches a metadata pattern, compiled once per thread.
///
/// The `phonenumber` crate matches through `regex-cache`, which takes one global mutex for
/// every match and keeps only 100 compiled patterns, so its validation neither scales over
/// cores nor stays compiled.
fn pattern_matches(source: &'static str, text: &str, anchor: Anchor) -> bool {
    thread_local! {
        static COMPILED: RefCell<HashMap<(usize, bool), Option<regex::Regex>>> = RefCell::new(HashMap::default());
    }
    let whole = matches!(anchor, Anchor::Whole);
    COMPILED.with(|cache| {
        let mut cache = cache.borrow_mut();
        // Keyed by the address of the pattern text, which lives in the static metadata.
        let compiled = cache
            .entry((source.as_ptr() as usize, whole))
            .or_insert_with(|| {
                let anchored = if whole {
                    format!("^(?:{source})$")
                } else {
                    format!("^(?:{source})")
                };
                regex::RegexBuilder::new(&anchored)
                    .ignore_whitespace(true)
                    .build()
                    .ok()
            });
        compiled.as_ref().is_some_and(|re| re.is_match(text))
    })
}

/// Whole-string match of a metadata pattern, as libphonenumber's `matchesNationalNumber`.
fn desc_matches(desc: &'static Descriptor, national: &str) -> bool {
    let lengths = desc.possible_length();
    if !lengths.is_empty() && !lengths.contains(&(national.len() as u16)) {
        return false;
    }
    pattern_matches(desc.national_number().as_str(), national, Anchor::Whole)
}

/// libphonenumber's `getNumberType`, in its order of checks; `Unknown` means invalid.
fn line_kind(meta: &'static Metadata, national: &str) -> LineKind {
    let d = meta.descriptors();
    if !desc_matches(d.general(), national) {
        return LineKind::Unknown;
    }
    let matches =
        |desc: Option<&'static Descriptor>| desc.is_some_and(|x| desc_matches(x, national));
    let ordered = [
        (d.premium_rate(), LineKind::PremiumRate),
        (d.toll_free(), LineKind::TollFree),
        (d.shared_cost(), LineKind::SharedCost),
        (d.voip(), LineKind::Voip),
        (d.personal_number(), LineKind::PersonalNumber),
        (d.pager(), LineKind::Pager),
        (d.uan(), LineKind::Uan),
        (d.voicemail(), LineKind::Voicemail),
    ];
    if let Some((_, kind)) = ordered.iter().find(|(desc, _)| matches(*desc)) {
        return *kind;
    }
    if matches(d.fixed_line()) {
        let same_patterns = d.fixed_line().map(|x| x.national_number().as_str())
            == d.mobile().map(|x| x.national_number().as_str());
        return if same_patterns || matches(d.mobile()) {
            LineKind::FixedLineOrMobile
        } else {
            LineKind::FixedLine
        };
    }
    if matches(d.mobile()) {
        return LineKind::Mobile;
    }
    LineKind::Unknown
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> Option<Region> {
        Some(Region::parse("us").unwrap())
    }

    #[test]
    fn national_and_international_forms_agree() {
        for raw in [
            "(201) 555-0123",
            "201.555.0123",
            "+1 201 555 0123",
            "tel:+1-201-555-0123",
        ] {
            assert_eq!(
                PhoneNumber::parse(raw, us()).unwrap().as_str(),
                "+12015550123",
                "{raw}"
            );
        }
    }

    #[test]
    fn reasons_are_specific() {
        assert_eq!(PhoneNumber::parse("  ", us()), Err(PhoneError::Empty));
        assert_eq!(PhoneNumber::parse("n/a", us()), Err(PhoneError::NotANumber));
        assert_eq!(PhoneNumber::parse("12", us()), Err(PhoneError::TooShort));
        assert!(matches!(
            PhoneNumber::parse("+1 201 555", us()),
            Err(PhoneError::TooShort | PhoneError::InvalidForRegion(_))
        ));
        assert_eq!(
            PhoneNumber::parse("+1 099 555 0123", us()),
            Err(PhoneError::InvalidForRegion("US".into()))
        );
    }

    /// Google's libphonenumber (via Python `phonenumbers` 9.0.33, the crate's metadata
    /// version) is the reference: `tests/data/phone_reference.csv`, regenerated by
    /// `scripts/gen_phone_reference.py`.
    #[test]
    fn normalisation_and_zones_agree_with_libphonenumber() {
        let data = include_str!("../../tests/data/phone_reference.csv");
        let mut reader = csv::Reader::from_reader(data.as_bytes());
        let (mut checked, mut valid) = (0, 0);
        let mut disagreements = Vec::new();
        for row in reader.records() {
            let row = row.unwrap();
            let (input, region, e164, is_valid, zones) =
                (&row[0], &row[1], &row[2], &row[3] == "true", &row[4]);
            let region = Region::parse(region).ok();
            let got = PhoneNumber::parse_detailed(input, region);
            checked += 1;
            match (&got, is_valid) {
                (Ok(p), true) => {
                    valid += 1;
                    let mut want: Vec<&str> = zones.split('&').filter(|z| !z.is_empty()).collect();
                    let mut have: Vec<&str> = p.time_zones().to_vec();
                    want.sort();
                    have.sort();
                    if p.number.as_str() != e164 || want != have {
                        disagreements.push(format!(
                            "{input} ({region:?}): {} {have:?}, want {e164} {want:?}",
                            p.number
                        ));
                    }
                }
                (Err(_), false) => {}
                (Ok(p), false) => disagreements.push(format!(
                    "{input} ({region:?}): accepted as {}, Google rejects",
                    p.number
                )),
                (Err(e), true) => disagreements.push(format!(
                    "{input} ({region:?}): rejected ({e}), Google accepts {e164}"
                )),
            }
        }
        assert!(
            checked > 1000 && valid > 900,
            "fixture too small: {checked} rows"
        );
        assert!(
            disagreements.is_empty(),
            "{} of {checked} disagree:\n{}",
            disagreements.len(),
            disagreements.join("\n")
        );
    }

    #[test]
    fn unknown_region_is_refused() {
        assert!(Region::parse("XX").is_err());
        assert!(Region::parse("USA").is_err());
        assert_eq!(Region::parse(" gb ").unwrap().as_str(), "GB");
    }
}
