//! Leads: the people a campaign dials, imported from campaign managers' CSV files.

pub mod import;
pub mod manage;
pub mod mapping;
pub mod row;

/// The CSV template campaign managers fill in.
pub const TEMPLATE_CSV: &str = "first_name,last_name,phone,country,type,priority,do_not_call,notes\n\
Jane,Doe,(201) 555-0123,US,mobile,normal,false,Prefers mornings\n";

/// Makes a cell safe to open in a spreadsheet: a leading `=`, `+`, `-`, `@`, tab or CR
/// would start a formula, so such cells get a leading apostrophe.
pub fn spreadsheet_safe(value: &str) -> std::borrow::Cow<'_, str> {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}").into(),
        _ => value.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("+1 201 555 0123"), "'+1 201 555 0123");
        assert_eq!(spreadsheet_safe("Jane"), "Jane");
    }

    #[test]
    fn the_template_maps_every_field() {
        let header: Vec<String> = TEMPLATE_CSV
            .lines()
            .next()
            .unwrap()
            .split(',')
            .map(String::from)
            .collect();
        let cols = mapping::map_columns(header, &[]).unwrap();
        for f in mapping::Field::ALL {
            assert!(cols.get(f).is_some(), "{f} missing from the template");
        }
        assert_eq!(cols.custom().count(), 0);
    }
}
