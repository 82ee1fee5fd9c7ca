//! Phone-number prefix → IANA time zones, from Google libphonenumber's data
//! (`data/phone_tz.tsv`, Apache-2.0; regenerate with `scripts/gen_phone_tz.py`).

use std::collections::HashMap;
use std::sync::LazyLock;

const DATA: &str = include_str!("../../data/phone_tz.tsv");

/// The table, parsed once.
pub static TABLE: LazyLock<TzTable> = LazyLock::new(|| TzTable::parse(DATA));

pub struct TzTable {
    by_prefix: HashMap<&'static str, Box<[&'static str]>>,
    longest: usize,
}

impl TzTable {
    fn parse(text: &'static str) -> Self {
        let mut by_prefix = HashMap::new();
        let mut longest = 0;
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let Some((prefix, zones)) = line.split_once('\t') else {
                continue;
            };
            longest = longest.max(prefix.len());
            by_prefix.insert(
                prefix,
                zones.split('&').collect::<Vec<_>>().into_boxed_slice(),
            );
        }
        Self { by_prefix, longest }
    }

    /// The zones of the longest prefix of `digits` in the table (empty if none).
    pub fn longest_prefix(&self, digits: &str) -> &[&'static str] {
        let max = self.longest.min(digits.len());
        (1..=max)
            .rev()
            .find_map(|n| self.by_prefix.get(&digits[..n]))
            .map(|z| &z[..])
            .unwrap_or(&[])
    }

    /// The zones of exactly this prefix (e.g. a bare country code).
    pub fn exact(&self, prefix: &str) -> &[&'static str] {
        self.by_prefix.get(prefix).map(|z| &z[..]).unwrap_or(&[])
    }

    pub fn len(&self) -> usize {
        self.by_prefix.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_prefix.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_zone_in_the_table_is_known_to_chrono_tz() {
        assert!(TABLE.len() > 3000);
        for zones in TABLE.by_prefix.values() {
            for z in zones.iter() {
                assert!(
                    z.parse::<chrono_tz::Tz>().is_ok(),
                    "{z} is not a zone chrono-tz knows"
                );
            }
        }
    }

    #[test]
    fn longest_prefix_wins() {
        assert_eq!(TABLE.longest_prefix("12015550123"), ["America/New_York"]);
        assert!(TABLE.longest_prefix("1").len() > 20);
        assert_eq!(TABLE.longest_prefix("").len(), 0);
    }
}
