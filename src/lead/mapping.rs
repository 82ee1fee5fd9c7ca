//! Reading a campaign manager's CSV: what encoding and delimiter it uses, and which of
//! its columns mean which lead field. Pure functions; no I/O.

use std::fmt;

/// A lead field a CSV column can map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    FirstName,
    LastName,
    Phone,
    Country,
    Type,
    Priority,
    DoNotCall,
    Notes,
}

impl Field {
    pub const ALL: [Field; 8] = [
        Field::FirstName,
        Field::LastName,
        Field::Phone,
        Field::Country,
        Field::Type,
        Field::Priority,
        Field::DoNotCall,
        Field::Notes,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Field::FirstName => "first_name",
            Field::LastName => "last_name",
            Field::Phone => "phone",
            Field::Country => "country",
            Field::Type => "type",
            Field::Priority => "priority",
            Field::DoNotCall => "do_not_call",
            Field::Notes => "notes",
        }
    }

    pub fn parse(raw: &str) -> Option<Field> {
        let n = normalise(raw);
        Field::ALL.into_iter().find(|f| normalise(f.name()) == n)
    }

    /// Header spellings seen in CRM and spreadsheet exports, normalised.
    fn synonyms(&self) -> &'static [&'static str] {
        match self {
            Field::FirstName => &[
                "firstname",
                "first",
                "givenname",
                "fname",
                "forename",
                "name1",
            ],
            Field::LastName => &[
                "lastname",
                "last",
                "surname",
                "familyname",
                "lname",
                "name2",
            ],
            Field::Phone => &[
                "phone",
                "phonenumber",
                "phoneno",
                "mobile",
                "mobilephone",
                "mobilenumber",
                "cell",
                "cellphone",
                "cellnumber",
                "telephone",
                "telephonenumber",
                "tel",
                "number",
                "contactnumber",
                "primaryphone",
                "msisdn",
                "e164",
            ],
            Field::Country => &[
                "country",
                "countrycode",
                "countryiso",
                "iso",
                "region",
                "nation",
            ],
            Field::Type => &["type", "phonetype", "linetype", "numbertype"],
            Field::Priority => &["priority", "prio", "leadpriority"],
            Field::DoNotCall => &["donotcall", "dnc", "optout", "donotcontact", "nocall"],
            Field::Notes => &[
                "notes",
                "note",
                "comments",
                "comment",
                "remarks",
                "description",
            ],
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Lower-case, letters and digits only: "Phone Number" and "phone_number" are the same.
pub fn normalise(header: &str) -> String {
    header
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Which column index holds each field; the other columns are custom fields.
#[derive(Debug, Clone)]
pub struct Columns {
    pub headers: Vec<String>,
    slots: [Option<usize>; 8],
}

impl Columns {
    pub fn get(&self, field: Field) -> Option<usize> {
        self.slots[field as usize]
    }

    /// Columns that map to no field, with their header: they go to the lead's custom JSON.
    pub fn custom(&self) -> impl Iterator<Item = (usize, &str)> {
        self.headers
            .iter()
            .enumerate()
            .filter(|(i, h)| !self.slots.contains(&Some(*i)) && !h.trim().is_empty())
            .map(|(i, h)| (i, h.as_str()))
    }

    pub fn header_of(&self, field: Field) -> &str {
        self.get(field)
            .map(|i| self.headers[i].as_str())
            .unwrap_or(field.name())
    }
}

/// Why a file cannot be imported at all; nothing is written when one of these occurs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("the file is empty")]
    Empty,
    #[error("{0}")]
    NotCsv(String),
    #[error("{0}")]
    Encoding(String),
    #[error(
        "no phone column in the header ({found}); name one `phone` (or Phone Number, Mobile …) or map it with --map \"COLUMN=phone\""
    )]
    NoPhoneColumn { found: String },
    #[error("--map {0}")]
    BadMapping(String),
    #[error(
        "columns `{first}` and `{second}` both look like `{field}`; say which one with --map \"COLUMN={field}\""
    )]
    Ambiguous {
        field: &'static str,
        first: String,
        second: String,
    },
}

/// Parses `--map "CSV column=field"` entries.
pub fn parse_mappings(raw: &[String]) -> Result<Vec<(String, Field)>, FileError> {
    raw.iter()
        .map(|m| {
            let (col, field) = m.rsplit_once('=').ok_or_else(|| {
                FileError::BadMapping(format!("`{m}`: expected \"CSV column=field\""))
            })?;
            let f = Field::parse(field).ok_or_else(|| {
                FileError::BadMapping(format!(
                    "`{m}`: `{}` is not a lead field (one of {})",
                    field.trim(),
                    Field::ALL.map(|f| f.name()).join(", ")
                ))
            })?;
            Ok((col.trim().to_string(), f))
        })
        .collect()
}

/// Maps header cells to fields: explicit mappings first, then exact names, then synonyms.
pub fn map_columns(
    headers: Vec<String>,
    explicit: &[(String, Field)],
) -> Result<Columns, FileError> {
    let mut slots: [Option<usize>; 8] = [None; 8];
    let norm: Vec<String> = headers.iter().map(|h| normalise(h)).collect();
    for (col, field) in explicit {
        let want = normalise(col);
        let idx = norm.iter().position(|h| *h == want).ok_or_else(|| {
            FileError::BadMapping(format!(
                "`{col}={field}`: the file has no column `{col}` (it has: {})",
                headers.join(", ")
            ))
        })?;
        slots[*field as usize] = Some(idx);
    }
    let taken = |slots: &[Option<usize>; 8], i: usize| slots.contains(&Some(i));
    for field in Field::ALL {
        if slots[field as usize].is_some() {
            continue;
        }
        let mut found: Option<usize> = None;
        for syn in field.synonyms() {
            for (i, h) in norm.iter().enumerate() {
                if h == syn && !taken(&slots, i) {
                    match found {
                        None => found = Some(i),
                        // Exact matches come first in the synonym list, so a later one is only
                        // ambiguous when it is the same spelling twice.
                        Some(j) if norm[j] == *h => {
                            return Err(FileError::Ambiguous {
                                field: field.name(),
                                first: headers[j].clone(),
                                second: headers[i].clone(),
                            });
                        }
                        Some(_) => {}
                    }
                }
            }
            if found.is_some() {
                break;
            }
        }
        slots[field as usize] = found;
    }
    if slots[Field::Phone as usize].is_none() {
        return Err(FileError::NoPhoneColumn {
            found: headers
                .iter()
                .map(|h| format!("`{h}`"))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(Columns { headers, slots })
}

/// What the first bytes of a file say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    pub delimiter: u8,
    /// Bytes of UTF-8 BOM to skip.
    pub bom: usize,
}

/// Looks at the start of a file: refuses what is not CSV text in UTF-8, and picks the
/// delimiter (`,` `;` or tab) that splits the header line most.
pub fn sniff(head: &[u8], complete: bool) -> Result<Sniffed, FileError> {
    if head.is_empty() {
        return Err(FileError::Empty);
    }
    if head.starts_with(b"PK\x03\x04") {
        return Err(FileError::NotCsv(
            "this is a ZIP archive (an Excel .xlsx workbook?), not CSV: save it as \"CSV UTF-8\" and upload that".into(),
        ));
    }
    if head.starts_with(b"%PDF") {
        return Err(FileError::NotCsv("this is a PDF document, not CSV".into()));
    }
    if head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        return Err(FileError::NotCsv(
            "this is an old Excel (.xls) workbook, not CSV: save it as \"CSV UTF-8\" and upload that".into(),
        ));
    }
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return Err(FileError::Encoding(
            "the file is UTF-16; save it as \"CSV UTF-8\" (UTF-8 with or without BOM is accepted)"
                .into(),
        ));
    }
    if head.contains(&0) {
        return Err(FileError::NotCsv(
            "the file contains binary data (NUL bytes), not CSV text".into(),
        ));
    }
    let bom = if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        3
    } else {
        0
    };
    let body = &head[bom..];
    // A multi-byte character may be cut at the end of the sample.
    let valid_to = match std::str::from_utf8(body) {
        Ok(_) => body.len(),
        Err(e) if e.error_len().is_none() && !complete => e.valid_up_to(),
        Err(e) => {
            let at = e.valid_up_to();
            let line = body[..at].iter().filter(|b| **b == b'\n').count() + 1;
            return Err(FileError::Encoding(format!(
                "the file is not UTF-8 (byte 0x{:02X} on line {line}; Latin-1 or Windows-1252?): save it as \"CSV UTF-8\"",
                body[at]
            )));
        }
    };
    let text = &body[..valid_to];
    let header_end = text.iter().position(|b| *b == b'\n').unwrap_or(text.len());
    let header = &text[..header_end];
    let count = |d: u8| {
        let mut quoted = false;
        header
            .iter()
            .filter(|b| {
                if **b == b'"' {
                    quoted = !quoted;
                }
                **b == d && !quoted
            })
            .count()
    };
    let delimiter = [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| (count(*d), *d == b','))
        .unwrap_or(b',');
    if std::str::from_utf8(header)
        .map(|h| h.trim().is_empty())
        .unwrap_or(true)
    {
        return Err(FileError::NotCsv(
            "the first line (the header) is empty".into(),
        ));
    }
    Ok(Sniffed { delimiter, bom })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(headers: &[&str]) -> Result<Columns, FileError> {
        map_columns(headers.iter().map(|s| s.to_string()).collect(), &[])
    }

    #[test]
    fn forgiving_headers_map_to_fields() {
        let c = cols(&[
            "\u{feff}First Name",
            "SURNAME",
            "Phone Number",
            "Country",
            "Account",
            "Notes",
        ])
        .unwrap();
        assert_eq!(c.get(Field::FirstName), Some(0));
        assert_eq!(c.get(Field::LastName), Some(1));
        assert_eq!(c.get(Field::Phone), Some(2));
        assert_eq!(c.get(Field::Notes), Some(5));
        assert_eq!(c.custom().collect::<Vec<_>>(), vec![(4, "Account")]);
        let c = cols(&["name", "Mobile"]).unwrap();
        assert_eq!(c.get(Field::Phone), Some(1));
    }

    #[test]
    fn explicit_mapping_overrides_and_names_unknown_columns() {
        let explicit = parse_mappings(&["Work Tel=phone".into()]).unwrap();
        let c = map_columns(vec!["Phone".into(), "Work Tel".into()], &explicit).unwrap();
        assert_eq!(c.get(Field::Phone), Some(1));
        // The unmapped "Phone" column becomes a custom field.
        assert_eq!(c.custom().next(), Some((0, "Phone")));
        let err = map_columns(vec!["a".into()], &explicit).unwrap_err();
        assert!(err.to_string().contains("no column `Work Tel`"), "{err}");
        assert!(
            parse_mappings(&["x=colour".into()])
                .unwrap_err()
                .to_string()
                .contains("not a lead field")
        );
        assert!(parse_mappings(&["nothing".into()]).is_err());
    }

    #[test]
    fn missing_phone_column_is_explained() {
        let err = cols(&["name", "email"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("no phone column in the header (`name`, `email`)"),
            "{err}"
        );
    }

    #[test]
    fn the_same_header_twice_is_ambiguous() {
        assert!(matches!(
            cols(&["phone", "Phone"]),
            Err(FileError::Ambiguous { .. })
        ));
        // A synonym beside the exact name is not ambiguous: the exact name wins.
        assert_eq!(
            cols(&["mobile", "phone"]).unwrap().get(Field::Phone),
            Some(1)
        );
    }

    #[test]
    fn delimiters_and_encodings_are_detected() {
        assert_eq!(sniff(b"phone,name\n1,2\n", true).unwrap().delimiter, b',');
        assert_eq!(
            sniff(b"phone;name;x\n1;2;3\n", true).unwrap().delimiter,
            b';'
        );
        assert_eq!(sniff(b"phone\tname\n", true).unwrap().delimiter, b'\t');
        assert_eq!(sniff(b"\"a;b\",phone\n", true).unwrap().delimiter, b',');
        assert_eq!(
            sniff(b"\xEF\xBB\xBFphone\n", true).unwrap(),
            Sniffed {
                delimiter: b',',
                bom: 3
            }
        );
        assert!(matches!(
            sniff(b"PK\x03\x04....", true),
            Err(FileError::NotCsv(_))
        ));
        assert!(matches!(
            sniff(b"\xFF\xFEp\0h\0", true),
            Err(FileError::Encoding(_))
        ));
        let e = sniff(b"phone,name\n1,Jos\xE9\n", true).unwrap_err();
        assert!(e.to_string().contains("0xE9 on line 2"), "{e}");
        // A character cut at the end of a partial sample is fine.
        assert!(sniff(b"phone,name\n1,Jos\xC3", false).is_ok());
        assert_eq!(sniff(b"", true), Err(FileError::Empty));
    }
}
