//! One CSV row to a clean lead or a reason it is rejected. Pure: the checks that need
//! the database (duplicates of existing leads, DNC lists) come after, in `import`.

use serde::Serialize;

use super::mapping::{Columns, Field};
use crate::phone::{PhoneError, PhoneNumber, Region};

/// Why a row did not become a lead; each has its own count in the report.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    EmptyRequiredField,
    InvalidPhone,
    UnknownCountry,
    InvalidPriority,
    InvalidDoNotCall,
    MalformedRow,
    DuplicateInFile,
    DuplicateInCampaign,
    DncTenant,
    DncGlobal,
    /// `do_not_call` was true in the row: the number went onto the tenant's DNC list.
    DoNotCallFlag,
}

impl RejectCode {
    pub fn as_str(&self) -> &'static str {
        match self {
            RejectCode::EmptyRequiredField => "empty_required_field",
            RejectCode::InvalidPhone => "invalid_phone",
            RejectCode::UnknownCountry => "unknown_country",
            RejectCode::InvalidPriority => "invalid_priority",
            RejectCode::InvalidDoNotCall => "invalid_do_not_call",
            RejectCode::MalformedRow => "malformed_row",
            RejectCode::DuplicateInFile => "duplicate_in_file",
            RejectCode::DuplicateInCampaign => "duplicate_in_campaign",
            RejectCode::DncTenant => "dnc_tenant",
            RejectCode::DncGlobal => "dnc_global",
            RejectCode::DoNotCallFlag => "do_not_call_flag",
        }
    }
}

/// A rejected row: where, what, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RowError {
    /// Row number as a spreadsheet shows it: the header is row 1.
    pub row: u64,
    #[schema(required = true)]
    pub column: Option<String>,
    #[schema(required = true)]
    pub value: Option<String>,
    pub code: RejectCode,
    pub reason: String,
}

/// A row that passed every check that needs no database.
#[derive(Debug, Clone)]
pub struct CleanLead {
    pub row: u64,
    pub phone_raw: String,
    pub phone: PhoneNumber,
    /// The E.164 digits as a number, for compact duplicate and DNC sets.
    pub phone_key: u64,
    pub region: Option<Region>,
    pub zones: &'static [&'static str],
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone_type: Option<String>,
    /// 1 low … 4 urgent.
    pub priority: i16,
    pub notes: Option<String>,
    /// Custom columns as a JSON object, already serialised.
    pub custom: String,
    pub do_not_call: bool,
}

/// The E.164 digits as a number (at most 15 digits, so it fits).
pub fn phone_key(p: &PhoneNumber) -> u64 {
    key_of_e164(p.as_str())
}

/// The same key from an E.164 number as stored (`+` and up to 15 digits).
pub fn key_of_e164(e164: &str) -> u64 {
    e164.trim_start_matches('+').parse().unwrap_or(0)
}

fn cell(record: &csv::StringRecord, idx: Option<usize>) -> Option<&str> {
    idx.and_then(|i| record.get(i))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// 1 low … 4 urgent; empty is normal; `None` for anything else.
pub fn parse_priority(raw: Option<&str>) -> Option<i16> {
    match raw.map(|s| s.to_ascii_lowercase()) {
        None => Some(2),
        Some(s) => match s.as_str() {
            "low" => Some(1),
            "normal" | "medium" => Some(2),
            "high" => Some(3),
            "urgent" => Some(4),
            _ => None,
        },
    }
}

/// Empty is false; `None` for anything that is not a yes or a no.
pub fn parse_yes_no(raw: Option<&str>) -> Option<bool> {
    match raw.map(|s| s.to_ascii_lowercase()) {
        None => Some(false),
        Some(s) => match s.as_str() {
            "true" | "yes" | "y" | "1" | "x" => Some(true),
            "false" | "no" | "n" | "0" => Some(false),
            _ => None,
        },
    }
}

/// Validates one record. `row` is its spreadsheet row number.
pub fn validate(
    record: &csv::StringRecord,
    row: u64,
    columns: &Columns,
    default_region: Region,
) -> Result<CleanLead, RowError> {
    let err = |field: Field, value: Option<&str>, code: RejectCode, reason: String| RowError {
        row,
        column: Some(columns.header_of(field).to_string()),
        value: value.map(str::to_string),
        code,
        reason,
    };
    if record.len() > columns.headers.len() {
        return Err(RowError {
            row,
            column: None,
            value: None,
            code: RejectCode::MalformedRow,
            reason: format!(
                "the row has {} fields but the header has {} (an unquoted delimiter in a value?)",
                record.len(),
                columns.headers.len()
            ),
        });
    }
    let raw_phone = cell(record, columns.get(Field::Phone));
    let Some(raw_phone) = raw_phone else {
        return Err(err(
            Field::Phone,
            None,
            RejectCode::EmptyRequiredField,
            "the phone number is empty".into(),
        ));
    };
    let country = cell(record, columns.get(Field::Country));
    let region = match country {
        Some(c) => Region::parse(c).map_err(|_| {
            err(
                Field::Country,
                Some(c),
                RejectCode::UnknownCountry,
                format!("`{c}` is not an ISO 3166 country code such as US or GB"),
            )
        })?,
        None => default_region,
    };
    let parsed = PhoneNumber::parse_detailed(raw_phone, Some(region)).map_err(|e| {
        let reason = match &e {
            PhoneError::TooShort | PhoneError::TooLong => {
                format!("{e} (read as a {} number)", region)
            }
            _ => e.to_string(),
        };
        err(
            Field::Phone,
            Some(raw_phone),
            RejectCode::InvalidPhone,
            reason,
        )
    })?;
    let priority_raw = cell(record, columns.get(Field::Priority));
    let priority = parse_priority(priority_raw).ok_or_else(|| {
        err(
            Field::Priority,
            priority_raw,
            RejectCode::InvalidPriority,
            "priority must be one of low, normal, high, urgent".into(),
        )
    })?;
    let dnc_raw = cell(record, columns.get(Field::DoNotCall));
    let do_not_call = parse_yes_no(dnc_raw).ok_or_else(|| {
        err(
            Field::DoNotCall,
            dnc_raw,
            RejectCode::InvalidDoNotCall,
            "do_not_call must be true or false (yes/no, 1/0)".into(),
        )
    })?;
    let mut custom = serde_json::Map::new();
    for (i, header) in columns.custom() {
        if let Some(v) = cell(record, Some(i)) {
            custom.insert(
                header.trim().to_string(),
                serde_json::Value::String(v.to_string()),
            );
        }
    }
    let zones = parsed.time_zones();
    Ok(CleanLead {
        row,
        phone_raw: raw_phone.to_string(),
        phone_key: phone_key(&parsed.number),
        phone: parsed.number,
        region: parsed.region,
        zones,
        first_name: cell(record, columns.get(Field::FirstName)).map(String::from),
        last_name: cell(record, columns.get(Field::LastName)).map(String::from),
        phone_type: cell(record, columns.get(Field::Type)).map(|s| s.to_ascii_lowercase()),
        priority,
        notes: cell(record, columns.get(Field::Notes)).map(String::from),
        custom: serde_json::Value::Object(custom).to_string(),
        do_not_call,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::mapping::map_columns;

    fn columns() -> Columns {
        map_columns(
            "first_name,last_name,phone,country,type,priority,do_not_call,notes,account"
                .split(',')
                .map(String::from)
                .collect(),
            &[],
        )
        .unwrap()
    }

    fn check(line: &str) -> Result<CleanLead, RowError> {
        let rec = csv::StringRecord::from(line.split(',').collect::<Vec<_>>());
        validate(&rec, 7, &columns(), Region::parse("US").unwrap())
    }

    #[test]
    fn a_good_row_becomes_a_clean_lead() {
        let l = check("Ann,Lee,(212) 555-0147,,Mobile,High,no,vip,ACC-1").unwrap();
        assert_eq!(l.phone.as_str(), "+12125550147");
        assert_eq!(l.zones, ["America/New_York"]);
        assert_eq!(l.priority, 3);
        assert!(!l.do_not_call);
        assert_eq!(l.phone_type.as_deref(), Some("mobile"));
        assert_eq!(l.custom, r#"{"account":"ACC-1"}"#);
        // The row's country decides how a national number is read.
        let l = check("Bo,Ek,020 7946 0958,gb,,,,,").unwrap();
        assert_eq!(l.phone.as_str(), "+442079460958");
    }

    #[test]
    fn each_problem_has_its_code_column_and_value() {
        let e = check("Ann,Lee,,,,,,,").unwrap_err();
        assert_eq!(
            (e.code, e.column.as_deref(), e.row),
            (RejectCode::EmptyRequiredField, Some("phone"), 7)
        );
        let e = check("Ann,Lee,212-555,,,,,,").unwrap_err();
        assert_eq!(e.code, RejectCode::InvalidPhone);
        assert_eq!(e.value.as_deref(), Some("212-555"));
        let e = check("Ann,Lee,(212) 555-0147,ZZ,,,,,").unwrap_err();
        assert_eq!(
            (e.code, e.column.as_deref()),
            (RejectCode::UnknownCountry, Some("country"))
        );
        let e = check("Ann,Lee,(212) 555-0147,,,asap,,,").unwrap_err();
        assert_eq!(
            (e.code, e.value.as_deref()),
            (RejectCode::InvalidPriority, Some("asap"))
        );
        let e = check("Ann,Lee,(212) 555-0147,,,,maybe,,").unwrap_err();
        assert_eq!(e.code, RejectCode::InvalidDoNotCall);
        let e = check("Ann,Lee,(212) 555-0147,,,,,,,extra").unwrap_err();
        assert_eq!(e.code, RejectCode::MalformedRow);
    }
}
