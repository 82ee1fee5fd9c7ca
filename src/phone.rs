//! Phone numbers: `PhoneNumber` is an E.164 number that libphonenumber's metadata
//! says is valid; the only way to get one is `PhoneNumber::parse`.

use std::fmt;
use std::str::FromStr;

use phonenumber::country;
use serde::Serialize;

/// An ISO 3166-1 alpha-2 region known to libphonenumber (`US`, `GB`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region(country::Id);

impl Region {
    pub fn parse(raw: &str) -> Result<Self, PhoneError> {
        let upper = raw.trim().to_ascii_uppercase();
        if upper.len() != 2 {
            return Err(PhoneError::UnknownRegion(raw.to_string()));
        }
        country::Id::from_str(&upper)
            .map(Region)
            .map_err(|_| PhoneError::UnknownRegion(raw.to_string()))
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
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Empty);
        }
        let parsed =
            phonenumber::parse(region.map(|r| r.0), trimmed).map_err(|e| match e {
                phonenumber::ParseError::NoNumber
                | phonenumber::ParseError::MalformedInteger(_) => PhoneError::NotANumber,
                phonenumber::ParseError::InvalidCountryCode => PhoneError::UnknownCountryCode,
                phonenumber::ParseError::TooShortAfterIdd
                | phonenumber::ParseError::TooShortNsn => PhoneError::TooShort,
                phonenumber::ParseError::TooLong => PhoneError::TooLong,
            })?;
        if !phonenumber::is_valid(&parsed) {
            let digits = parsed.national().value().to_string().len();
            if digits < 4 {
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
        let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
        Ok(PhoneNumber(e164))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits after `+`, for prefix lookups.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
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

    #[test]
    fn unknown_region_is_refused() {
        assert!(Region::parse("XX").is_err());
        assert!(Region::parse("USA").is_err());
        assert_eq!(Region::parse(" gb ").unwrap().as_str(), "GB");
    }
}
