//! NANP (+1) number → US state or Canadian province/territory (ISO 3166-2, `US-FL`),
//! for per-subdivision legal calling windows. From Google libphonenumber's geocoding
//! data (`data/nanp_subdivisions.tsv`, Apache-2.0; regenerate with
//! `scripts/gen_nanp_subdivisions.py`).

use std::collections::HashMap;
use std::sync::LazyLock;

const DATA: &str = include_str!("../../data/nanp_subdivisions.tsv");

/// National prefix (digits after +1) → ISO 3166-2 code, parsed once.
static TABLE: LazyLock<Table> = LazyLock::new(|| Table::parse(DATA));

struct Table {
    by_prefix: HashMap<&'static str, &'static str>,
    longest: usize,
}

impl Table {
    fn parse(text: &'static str) -> Self {
        let mut by_prefix = HashMap::new();
        let mut longest = 0;
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let Some((prefix, code)) = line.split_once('\t') else {
                continue;
            };
            longest = longest.max(prefix.len());
            by_prefix.insert(prefix, code);
        }
        Self { by_prefix, longest }
    }

    fn longest_prefix(&self, national: &str) -> Option<&'static str> {
        let max = self.longest.min(national.len());
        (1..=max)
            .rev()
            .find_map(|n| self.by_prefix.get(&national[..n]).copied())
    }
}

/// The ISO 3166-2 subdivision of an E.164 number (`+13055550123` → `US-FL`): the US
/// state (or `US-DC`) or Canadian province/territory of its area code; `None` outside
/// +1, for the Caribbean members and US territories of the plan, for non-geographic
/// codes such as 800, and where an area code spans provinces and the exchange is not
/// known.
pub fn subdivision(e164: &str) -> Option<&'static str> {
    let national = e164.strip_prefix("+1")?;
    if national.len() != 10 || !national.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    TABLE.longest_prefix(national)
}

/// Whether `code` (`US-FL`, upper case) is one that `subdivision` can return, so that a
/// per-subdivision setting for it can ever apply.
pub fn is_known(code: &str) -> bool {
    TABLE.by_prefix.values().any(|c| *c == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn us_and_canadian_area_codes_give_their_state_or_province() {
        assert_eq!(subdivision("+13055550123"), Some("US-FL"));
        assert_eq!(subdivision("+12125550123"), Some("US-NY"));
        assert_eq!(subdivision("+12025550123"), Some("US-DC"));
        assert_eq!(subdivision("+12065550123"), Some("US-WA"));
        assert_eq!(subdivision("+14165550123"), Some("CA-ON"));
        assert_eq!(subdivision("+15145550123"), Some("CA-QC"));
        // 203 is named exchange by exchange in the source, all in Connecticut.
        assert_eq!(subdivision("+12039990123"), Some("US-CT"));
    }

    #[test]
    fn area_codes_shared_by_provinces_go_by_exchange() {
        assert_eq!(subdivision("+19024200123"), Some("CA-NS"));
        assert_eq!(subdivision("+19023670123"), Some("CA-PE"));
        // An exchange the source does not name: NS or PE, unknown.
        assert_eq!(subdivision("+19029990123"), None);
    }

    #[test]
    fn numbers_without_a_state_or_province_have_none() {
        assert_eq!(subdivision("+18005550123"), None, "toll-free");
        assert_eq!(subdivision("+12423020123"), None, "Bahamas");
        assert_eq!(subdivision("+17875550123"), None, "Puerto Rico");
        assert_eq!(subdivision("+442079460123"), None, "not NANP");
        assert_eq!(subdivision("+1305555"), None, "too short");
        assert_eq!(subdivision("13055550123"), None, "not E.164");
    }

    #[test]
    fn every_code_is_a_us_or_canadian_subdivision() {
        assert!(TABLE.by_prefix.len() > 400);
        for (prefix, code) in &TABLE.by_prefix {
            assert!(prefix.bytes().all(|b| b.is_ascii_digit()), "{prefix}");
            let (country, sub) = code.split_once('-').unwrap();
            assert!(matches!(country, "US" | "CA"), "{prefix} {code}");
            assert!(
                sub.len() == 2 && sub.bytes().all(|b| b.is_ascii_uppercase()),
                "{code}"
            );
        }
    }

    #[test]
    fn every_state_dc_province_and_territory_is_known() {
        let codes: std::collections::BTreeSet<_> = TABLE.by_prefix.values().collect();
        assert_eq!(codes.len(), 50 + 1 + 13);
        assert!(is_known("US-FL") && is_known("CA-NU") && is_known("US-DC"));
        assert!(!is_known("US-PR") && !is_known("us-fl") && !is_known("GB-ENG"));
    }
}
