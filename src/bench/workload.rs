//! Realistic lead files for `dialer bench import`.
//!
//! The generator streams: its state is a seeded `StdRng`, a few counters per number
//! pool and reusable cell buffers, so memory does not grow with the row count.
//!
//! What a file holds, for a given seed always byte-for-byte the same:
//! - phone numbers that libphonenumber accepts, in a realistic mix of countries
//!   (≈ 70 % US, 10 % GB, 5 % each CA, DE, FR, AU) and of formats (national with
//!   punctuation, `+CC …`, E.164, `00`/`0011` international dialling for non-NANP);
//!   the `country` cell is the number's ISO code, or empty on ≈ 10 % of rows that are
//!   written with a leading `+`;
//! - ≈ 5 % duplicates: the number of an earlier *clean* lead, often in another format;
//! - ≈ 5 % rows the importer rejects (`GenStats::invalid`): 4.5 % bad phone cells (too
//!   short, letters, an area code starting with 0 or 1, empty, too long) and 0.5 %
//!   priority `asap`;
//! - ≈ 0.5 % `do_not_call` = `true` (valid rows, counted in neither figure).
//!
//! Numbers are unique by construction: each pool (US, CA, GB mobile, London, DE, FR,
//! AU) maps a counter through a keyed permutation of its number space, so the only
//! repeats are the counted duplicates. Duplicates point only at clean leads (never at a
//! `do_not_call` or `asap` row, whose numbers come from the other end of the space).

use std::io::{self, Write};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The header row: the eight standard lead columns plus one custom column.
pub const HEADER: [&str; 9] = [
    "first_name",
    "last_name",
    "phone",
    "country",
    "type",
    "priority",
    "do_not_call",
    "notes",
    "account_id",
];

/// What [`write_leads_csv`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenStats {
    /// Data rows, header excluded.
    pub rows: u64,
    /// Rows whose phone repeats the number of an earlier clean lead.
    pub duplicates: u64,
    /// Rows the importer must reject: bad or empty phone, or priority `asap`.
    pub invalid: u64,
    /// Bytes written, header included.
    pub bytes: u64,
}

/// Writes a CSV lead file of `rows` data rows (plus the header) to `out`, deterministic for a seed.
pub fn write_leads_csv<W: Write>(out: W, rows: u64, seed: u64) -> io::Result<GenStats> {
    generate(out, rows, seed, |_, _| {})
}

/// Peak resident set size of this process in bytes (VmHWM from /proc/self/status), None if unavailable.
pub fn peak_rss_bytes() -> Option<u64> {
    super::campaign_report::peak_rss_bytes()
}

/// Resets the peak RSS counter where the kernel allows it (write "5" to /proc/self/clear_refs); returns whether it worked.
pub fn reset_peak_rss() -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/clear_refs")
        .and_then(|mut f| f.write_all(b"5"))
        .is_ok()
}

// ---------------------------------------------------------------------------------
// Row kinds

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowKind {
    /// A clean lead with a fresh number.
    Lead,
    /// The number of an earlier `Lead`.
    Duplicate,
    /// A phone cell the importer rejects.
    InvalidPhone,
    /// A fresh valid number but priority `asap`.
    InvalidPriority,
    /// A fresh valid number with `do_not_call` = `true`.
    DoNotCall,
}

impl RowKind {
    #[cfg(test)]
    fn as_str(self) -> &'static str {
        match self {
            RowKind::Lead => "lead",
            RowKind::Duplicate => "duplicate",
            RowKind::InvalidPhone => "invalid_phone",
            RowKind::InvalidPriority => "invalid_priority",
            RowKind::DoNotCall => "do_not_call",
        }
    }
}

// ---------------------------------------------------------------------------------
// Number pools

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Country {
    Us,
    Ca,
    Gb,
    De,
    Fr,
    Au,
}

impl Country {
    fn iso(self) -> &'static str {
        match self {
            Country::Us => "US",
            Country::Ca => "CA",
            Country::Gb => "GB",
            Country::De => "DE",
            Country::Fr => "FR",
            Country::Au => "AU",
        }
    }

    fn calling_code(self) -> &'static str {
        match self {
            Country::Us | Country::Ca => "1",
            Country::Gb => "44",
            Country::De => "49",
            Country::Fr => "33",
            Country::Au => "61",
        }
    }

    fn is_nanp(self) -> bool {
        matches!(self, Country::Us | Country::Ca)
    }
}

/// Real geographic US area codes (all exchanges 200–999 are valid in libphonenumber's metadata).
const US_AREAS: &[u16] = &[
    201, 202, 203, 205, 206, 207, 208, 210, 212, 213, 214, 215, 216, 217, 303, 304, 305, 312, 313,
    314, 315, 317, 404, 405, 406, 407, 408, 410, 412, 414, 415, 425, 480, 501, 503, 504, 505, 512,
    513, 515, 516, 602, 603, 608, 612, 614, 615, 616, 617, 619, 702, 703, 704, 713, 714, 717, 718,
    720, 801, 802, 808, 813, 816, 817, 818, 901, 904, 907, 913, 916, 919, 971,
];

const CA_AREAS: &[u16] = &[416, 604, 514, 403, 613, 647, 905, 780, 902, 306];

/// NANP exchanges: 200–999 without N11 and without 555.
const EXCHANGES: [u16; 791] = {
    let mut table = [0u16; 791];
    let mut exchange = 200u16;
    let mut i = 0;
    while exchange < 1000 {
        if exchange % 100 != 11 && exchange != 555 {
            table[i] = exchange;
            i += 1;
        }
        exchange += 1;
    }
    assert!(i == 791);
    table
};

/// (leading digits of the national significant number, digits that follow).
/// GB mobiles: 07400–07999 without the blocks libphonenumber does not fully allocate
/// (745x, 750x, 752x, 76xx pagers, 770x, 778x, 779x, 782x, 783x, 791x, 793x).
const GB_MOBILE: &[(u32, u32)] = &[
    (740, 7),
    (741, 7),
    (742, 7),
    (743, 7),
    (744, 7),
    (746, 7),
    (747, 7),
    (748, 7),
    (749, 7),
    (751, 7),
    (753, 7),
    (754, 7),
    (755, 7),
    (756, 7),
    (757, 7),
    (758, 7),
    (759, 7),
    (771, 7),
    (772, 7),
    (773, 7),
    (774, 7),
    (775, 7),
    (776, 7),
    (777, 7),
    (780, 7),
    (781, 7),
    (784, 7),
    (785, 7),
    (786, 7),
    (787, 7),
    (788, 7),
    (789, 7),
    (790, 7),
    (792, 7),
    (794, 7),
    (795, 7),
    (796, 7),
    (797, 7),
    (798, 7),
    (799, 7),
];
/// London: 020 7xxx xxxx and 020 8xxx xxxx.
const GB_LONDON: &[(u32, u32)] = &[(207, 7), (208, 7)];
/// German mobiles: 015x with 8 digits after the prefix, 016x/017x mostly with 7.
const DE_MOBILE: &[(u32, u32)] = &[
    (151, 8),
    (152, 8),
    (157, 8),
    (159, 8),
    (160, 7),
    (162, 7),
    (170, 7),
    (171, 7),
    (172, 7),
    (173, 7),
    (174, 7),
    (175, 7),
    (176, 8),
    (177, 7),
    (178, 7),
    (179, 7),
];
/// French mobiles: 06 (without 063x/069x) and 073–079.
const FR_MOBILE: &[(u32, u32)] = &[
    (60, 7),
    (61, 7),
    (62, 7),
    (64, 7),
    (65, 7),
    (66, 7),
    (67, 7),
    (68, 7),
    (73, 7),
    (74, 7),
    (75, 7),
    (76, 7),
    (77, 7),
    (78, 7),
    (79, 7),
];
/// Australian mobiles: 040x–043x and 046x.
const AU_MOBILE: &[(u32, u32)] = &[(40, 7), (41, 7), (42, 7), (43, 7), (46, 7)];

enum Space {
    /// Area code × exchange × line.
    Nanp(&'static [u16]),
    /// Leading digits followed by any digits.
    Blocks(&'static [(u32, u32)]),
}

enum LineType {
    Mobile,
    Landline,
    Either,
}

struct Pool {
    country: Country,
    space: Space,
    /// Share of rows, per mille.
    weight: u32,
    line: LineType,
}

const POOLS: [Pool; 7] = [
    Pool {
        country: Country::Us,
        space: Space::Nanp(US_AREAS),
        weight: 700,
        line: LineType::Either,
    },
    Pool {
        country: Country::Gb,
        space: Space::Blocks(GB_MOBILE),
        weight: 70,
        line: LineType::Mobile,
    },
    Pool {
        country: Country::Gb,
        space: Space::Blocks(GB_LONDON),
        weight: 30,
        line: LineType::Landline,
    },
    Pool {
        country: Country::Ca,
        space: Space::Nanp(CA_AREAS),
        weight: 50,
        line: LineType::Either,
    },
    Pool {
        country: Country::De,
        space: Space::Blocks(DE_MOBILE),
        weight: 50,
        line: LineType::Mobile,
    },
    Pool {
        country: Country::Fr,
        space: Space::Blocks(FR_MOBILE),
        weight: 50,
        line: LineType::Mobile,
    },
    Pool {
        country: Country::Au,
        space: Space::Blocks(AU_MOBILE),
        weight: 50,
        line: LineType::Mobile,
    },
];

const fn pow10(n: u32) -> u64 {
    10u64.pow(n)
}

/// A national significant number as ASCII digits (never starts with 0 in these pools).
struct Nsn {
    buf: [u8; 16],
    len: usize,
}

impl Nsn {
    fn new() -> Self {
        Nsn {
            buf: [0; 16],
            len: 0,
        }
    }

    /// Appends `value` as exactly `width` digits (zero-padded).
    fn push(&mut self, mut value: u64, width: usize) {
        for k in (0..width).rev() {
            self.buf[self.len + k] = b'0' + (value % 10) as u8;
            value /= 10;
        }
        self.len += width;
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits are ever written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

fn digit_count(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 10 {
        v /= 10;
        n += 1;
    }
    n
}

impl Pool {
    fn size(&self) -> u64 {
        match self.space {
            Space::Nanp(areas) => areas.len() as u64 * EXCHANGES.len() as u64 * 10_000,
            Space::Blocks(blocks) => blocks.iter().map(|&(_, rest)| pow10(rest)).sum(),
        }
    }

    /// The `idx`-th number of the pool (`idx < size()`).
    fn number(&self, mut idx: u64) -> Nsn {
        let mut nsn = Nsn::new();
        match self.space {
            Space::Nanp(areas) => {
                let per_area = EXCHANGES.len() as u64 * 10_000;
                let area = areas[(idx / per_area) as usize % areas.len()];
                let rem = idx % per_area;
                nsn.push(area as u64, 3);
                nsn.push(EXCHANGES[(rem / 10_000) as usize] as u64, 3);
                nsn.push(rem % 10_000, 4);
            }
            Space::Blocks(blocks) => {
                for &(prefix, rest) in blocks {
                    let size = pow10(rest);
                    if idx < size {
                        nsn.push(prefix as u64, digit_count(prefix as u64));
                        nsn.push(idx, rest as usize);
                        return nsn;
                    }
                    idx -= size;
                }
                unreachable!("index beyond the pool");
            }
        }
        nsn
    }
}

// ---------------------------------------------------------------------------------
// A keyed permutation of 0..n (balanced Feistel network with cycle walking), so a
// counter becomes a scattered, never-repeating number within the pool.

fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct Permutation {
    n: u64,
    half_bits: u32,
    mask: u64,
    keys: [u64; 4],
}

impl Permutation {
    fn new(n: u64, key: u64) -> Self {
        let bits = 64 - (n - 1).leading_zeros();
        let half_bits = bits.div_ceil(2).max(1);
        let mut keys = [0u64; 4];
        for (i, k) in keys.iter_mut().enumerate() {
            *k = mix64(key ^ (i as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
        }
        Permutation {
            n,
            half_bits,
            mask: (1u64 << half_bits) - 1,
            keys,
        }
    }

    fn round_trip(&self, x: u64) -> u64 {
        let (mut left, mut right) = (x >> self.half_bits, x & self.mask);
        for &k in &self.keys {
            let f = mix64(right ^ k) & self.mask;
            (left, right) = (right, left ^ f);
        }
        (left << self.half_bits) | right
    }

    /// `x < n` maps to a distinct value `< n`.
    fn apply(&self, mut x: u64) -> u64 {
        loop {
            x = self.round_trip(x);
            if x < self.n {
                return x;
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Names, notes

const FIRST_NAMES: &[&str] = &[
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Maria",
    "José",
    "Juan",
    "Ana",
    "Sofía",
    "Luis",
    "Wei",
    "Mei",
    "Priya",
    "Arjun",
    "Mohammed",
    "Fatima",
    "Olivia",
    "Noah",
    "Emma",
    "Liam",
    "Zoë",
    "Chloé",
    "Renée",
    "François",
    "Jürgen",
    "Björn",
    "Søren",
    "Siobhán",
    "Seán",
    "Aoife",
    "Hannah",
    "Lukas",
    "Léa",
    "Camille",
    "Chidi",
    "Ngozi",
    "Kenji",
    "Yuki",
    "Charlotte",
    "Jack",
    "Oliver",
    "Amelia",
    "Ethan",
    "Isabella",
    "Mary-Kate",
    "D'Andre",
];

const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernández",
    "López",
    "González",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Nguyen",
    "Kim",
    "Chen",
    "Patel",
    "Singh",
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Dubois",
    "Lefèvre",
    "Moreau",
    "O'Brien",
    "O'Connor",
    "MacDonald",
    "Murphy",
    "Kelly",
    "Walsh",
    "Evans",
    "Roberts",
    "Smith-Jones",
    "van der Berg",
    "Ødegaard",
    "Kowalski",
    "Nowak",
    "Rossi",
    "Russo",
    "Tanaka",
    "Okafor",
    "Cohen",
];

const NOTES: &[&str] = &[
    "Call after 5pm",
    "Interested in the premium plan, call back Tuesday",
    "Said \"not now\", try again next month",
    "Prefers email; do not leave voicemail",
    "Left voicemail",
    "Asked for \"Bob\" - wrong person?",
    "Referral from trade show, booth 12",
    "Spoke to assistant, decision maker out until Monday",
    "Renewal due 2025-03-01, send quote",
    "Requested callback re: invoice #4471",
    "Customer since 2019, flagged \"VIP\"",
    "Hablar en español, por favor",
    "Rappeler après 18h, merci",
    "First call: voicemail\nSecond call: busy",
    "Price, not features, is the concern",
    "Timezone unclear",
];

const LETTER_PHONES: &[&str] = &[
    "call me",
    "n/a",
    "unknown",
    "ask reception",
    "see notes",
    "none",
    "TBD",
    "no phone",
];

// ---------------------------------------------------------------------------------
// Phone formatting

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    /// National digits with the country's punctuation and trunk prefix.
    National,
    /// `+CC` and groups.
    International,
    /// `+CCNSN`.
    E164,
    /// The international dialling prefix (`00`, `0011` in AU) instead of `+`.
    Idd,
}

/// Display grouping of a national significant number (international form).
fn groups(country: Country, nsn: &str) -> &'static [usize] {
    match country {
        Country::Us | Country::Ca => &[3, 3, 4],
        Country::Gb if nsn.starts_with("20") => &[2, 4, 4],
        Country::Gb => &[4, 6],
        Country::De if nsn.len() == 11 => &[3, 8],
        Country::De => &[3, 7],
        Country::Fr => &[1, 2, 2, 2, 2],
        Country::Au => &[3, 3, 3],
    }
}

fn push_grouped(out: &mut String, nsn: &str, groups: &[usize], sep: &str) {
    let mut at = 0;
    for (i, &g) in groups.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(&nsn[at..at + g]);
        at += g;
    }
}

fn write_phone(out: &mut String, country: Country, nsn: &str, style: Style, rng: &mut StdRng) {
    let cc = country.calling_code();
    let g = groups(country, nsn);
    match style {
        Style::E164 => {
            out.push('+');
            out.push_str(cc);
            out.push_str(nsn);
        }
        Style::International if country.is_nanp() => {
            let (a, e, l) = (&nsn[..3], &nsn[3..6], &nsn[6..]);
            match rng.random_range(0..4u32) {
                0 | 1 => push_all(out, &["+1 ", a, " ", e, " ", l]),
                2 => push_all(out, &["+1 (", a, ") ", e, "-", l]),
                _ => push_all(out, &["+1-", a, "-", e, "-", l]),
            }
        }
        Style::International | Style::Idd => {
            out.push_str(match style {
                Style::International => "+",
                _ if country == Country::Au => "0011 ",
                _ => "00",
            });
            out.push_str(cc);
            out.push(' ');
            push_grouped(out, nsn, g, " ");
        }
        Style::National if country.is_nanp() => {
            let (a, e, l) = (&nsn[..3], &nsn[3..6], &nsn[6..]);
            match rng.random_range(0..20u32) {
                0..8 => push_all(out, &["(", a, ") ", e, "-", l]),
                8..13 => push_all(out, &[a, "-", e, "-", l]),
                13..16 => push_all(out, &[a, ".", e, ".", l]),
                16..18 => out.push_str(nsn),
                18 => push_all(out, &["1-", a, "-", e, "-", l]),
                _ => push_all(out, &["(", a, ")", e, "-", l]),
            }
        }
        Style::National => {
            let r = rng.random_range(0..20u32);
            let sep = match country {
                Country::Gb if nsn.starts_with("20") && r < 3 => {
                    out.push_str("(020) ");
                    push_grouped(out, &nsn[2..], &[4, 4], " ");
                    return;
                }
                Country::Gb | Country::Au => {
                    if r < 14 {
                        " "
                    } else {
                        ""
                    }
                }
                Country::De => match r {
                    0..10 => " ",
                    10..14 => "/",
                    14..17 => "-",
                    _ => "",
                },
                Country::Fr => match r {
                    0..12 => " ",
                    12..16 => ".",
                    _ => "",
                },
                Country::Us | Country::Ca => unreachable!(),
            };
            out.push('0');
            push_grouped(out, nsn, g, sep);
        }
    }
}

fn push_all(out: &mut String, parts: &[&str]) {
    for p in parts {
        out.push_str(p);
    }
}

/// Writes a phone cell the importer rejects; returns the `country` cell to go with it.
fn write_invalid_phone(out: &mut String, rng: &mut StdRng) -> &'static str {
    let area = US_AREAS[rng.random_range(0..US_AREAS.len())];
    let exchange = EXCHANGES[rng.random_range(0..EXCHANGES.len())];
    let line = rng.random_range(0..10_000u32);
    match rng.random_range(0..100u32) {
        // Too short.
        0..25 => match rng.random_range(0..5u32) {
            0..3 => {
                push_num(out, area as u64, 3);
                out.push('-');
                push_num(out, exchange as u64, 3);
                "US"
            }
            3 => {
                out.push_str("07700 9001");
                push_num(out, rng.random_range(0..10) as u64, 1);
                "GB"
            }
            _ => {
                out.push_str("06 12 34 ");
                push_num(out, rng.random_range(0..100) as u64, 2);
                "FR"
            }
        },
        // Letters.
        25..45 => {
            out.push_str(LETTER_PHONES[rng.random_range(0..LETTER_PHONES.len())]);
            if rng.random_bool(0.8) { "US" } else { "GB" }
        }
        // Area code starting with 0 or 1.
        45..65 => {
            out.push('(');
            push_num(out, rng.random_range(0..2) as u64, 1);
            push_num(out, rng.random_range(0..100) as u64, 2);
            out.push_str(") ");
            push_num(out, exchange as u64, 3);
            out.push('-');
            push_num(out, line as u64, 4);
            "US"
        }
        // Empty.
        65..80 => "US",
        // Too long.
        _ => {
            out.push_str("+1 ");
            push_num(out, area as u64, 3);
            out.push(' ');
            push_num(out, exchange as u64, 3);
            out.push(' ');
            push_num(out, line as u64, 4);
            out.push(' ');
            push_num(out, rng.random_range(0..100_000) as u64, 5);
            if rng.random_bool(0.5) { "" } else { "US" }
        }
    }
}

fn push_num(out: &mut String, value: u64, width: usize) {
    let mut nsn = Nsn::new();
    nsn.push(value, width);
    out.push_str(nsn.as_str());
}

// ---------------------------------------------------------------------------------
// The generator

/// Counts bytes on their way to the real writer.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn pick_pool(rng: &mut StdRng) -> usize {
    let mut r = rng.random_range(0..1000u32);
    for (i, pool) in POOLS.iter().enumerate() {
        if r < pool.weight {
            return i;
        }
        r -= pool.weight;
    }
    0
}

fn generate<W: Write>(
    out: W,
    rows: u64,
    seed: u64,
    mut on_row: impl FnMut(u64, RowKind),
) -> io::Result<GenStats> {
    let mut rng = StdRng::seed_from_u64(seed);
    let sizes: [u64; 7] = std::array::from_fn(|p| POOLS[p].size());
    let perms: [Permutation; 7] =
        std::array::from_fn(|p| Permutation::new(sizes[p], mix64(seed ^ mix64(p as u64 + 1))));
    // Numbers handed out per pool: clean leads count up from 0, `asap` and
    // `do_not_call` rows count down from the end, so duplicates only hit clean leads.
    let mut leads = [0u64; 7];
    let mut others = [0u64; 7];

    let mut wtr = csv::WriterBuilder::new()
        .buffer_capacity(1 << 16)
        .from_writer(Counting {
            inner: out,
            bytes: 0,
        });
    wtr.write_record(HEADER)?;

    let mut stats = GenStats::default();
    let mut phone = String::with_capacity(32);
    let mut account = String::with_capacity(16);
    for i in 0..rows {
        let kind = if i == 0 {
            RowKind::Lead
        } else {
            match rng.random_range(0..1000u32) {
                0..50 => RowKind::Duplicate,
                50..95 => RowKind::InvalidPhone,
                95..100 => RowKind::InvalidPriority,
                100..105 => RowKind::DoNotCall,
                _ => RowKind::Lead,
            }
        };
        phone.clear();
        let (country, line_type): (&str, &LineType) = if kind == RowKind::InvalidPhone {
            (write_invalid_phone(&mut phone, &mut rng), &LineType::Either)
        } else {
            let (p, index) = match kind {
                RowKind::Duplicate => {
                    let mut p = pick_pool(&mut rng);
                    if leads[p] == 0 {
                        // Row 0 is always a lead, so some pool has one.
                        p = leads.iter().position(|&n| n > 0).unwrap_or(0);
                    }
                    (p, rng.random_range(0..leads[p].max(1)))
                }
                RowKind::Lead => {
                    let p = pick_pool(&mut rng);
                    leads[p] += 1;
                    (p, leads[p] - 1)
                }
                _ => {
                    let p = pick_pool(&mut rng);
                    others[p] += 1;
                    (p, sizes[p] - 1 - (others[p] - 1) % sizes[p])
                }
            };
            let pool = &POOLS[p];
            let nsn = pool.number(perms[p].apply(index % sizes[p]));
            let (style, country) = if rng.random_bool(0.10) {
                let style = if rng.random_bool(0.6) {
                    Style::International
                } else {
                    Style::E164
                };
                (style, "")
            } else {
                let style = match rng.random_range(0..100u32) {
                    0..55 => Style::National,
                    55..77 => Style::International,
                    77..90 => Style::E164,
                    _ if pool.country.is_nanp() => Style::National,
                    _ => Style::Idd,
                };
                (style, pool.country.iso())
            };
            write_phone(&mut phone, pool.country, nsn.as_str(), style, &mut rng);
            (country, &pool.line)
        };

        let first = if rng.random_bool(0.01) {
            ""
        } else {
            FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())]
        };
        let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
        let typ = if rng.random_bool(0.03) {
            ""
        } else {
            match line_type {
                LineType::Mobile => "mobile",
                LineType::Landline => "landline",
                LineType::Either => {
                    if rng.random_bool(0.55) {
                        "mobile"
                    } else {
                        "landline"
                    }
                }
            }
        };
        let priority = if kind == RowKind::InvalidPriority {
            "asap"
        } else {
            match rng.random_range(0..1000u32) {
                0..50 => "",
                50..750 => "normal",
                750..830 => "low",
                830..950 => "high",
                950..990 => "urgent",
                _ => "High",
            }
        };
        let dnc = if kind == RowKind::DoNotCall {
            "true"
        } else {
            "false"
        };
        let notes = if rng.random_bool(0.55) {
            ""
        } else {
            NOTES[rng.random_range(0..NOTES.len())]
        };
        account.clear();
        account.push_str("ACC-");
        push_num(&mut account, rng.random_range(1..1_000_000u32) as u64, 6);

        wtr.write_record([
            first,
            last,
            phone.as_str(),
            country,
            typ,
            priority,
            dnc,
            notes,
            account.as_str(),
        ])?;

        stats.rows += 1;
        match kind {
            RowKind::Duplicate => stats.duplicates += 1,
            RowKind::InvalidPhone | RowKind::InvalidPriority => stats.invalid += 1,
            RowKind::Lead | RowKind::DoNotCall => {}
        }
        on_row(i, kind);
    }
    let counting = wtr.into_inner().map_err(|e| e.into_error())?;
    stats.bytes = counting.bytes;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn gen_bytes(rows: u64, seed: u64) -> (Vec<u8>, GenStats, Vec<RowKind>) {
        let mut buf = Vec::new();
        let mut kinds = Vec::new();
        let stats = generate(&mut buf, rows, seed, |_, k| kinds.push(k)).unwrap();
        (buf, stats, kinds)
    }

    fn records(bytes: &[u8]) -> Vec<csv::StringRecord> {
        csv::Reader::from_reader(bytes)
            .records()
            .map(|r| r.unwrap())
            .collect()
    }

    #[test]
    fn header_line() {
        let (buf, _, _) = gen_bytes(3, 1);
        let first = buf.split(|&b| b == b'\n').next().unwrap();
        assert_eq!(
            std::str::from_utf8(first).unwrap(),
            "first_name,last_name,phone,country,type,priority,do_not_call,notes,account_id"
        );
        let (empty, stats, _) = gen_bytes(0, 1);
        assert_eq!(
            stats,
            GenStats {
                rows: 0,
                duplicates: 0,
                invalid: 0,
                bytes: empty.len() as u64
            }
        );
        assert_eq!(records(&empty).len(), 0);
    }

    #[test]
    fn row_count_and_bytes() {
        for rows in [1, 2, 17, 1000] {
            let (buf, stats, kinds) = gen_bytes(rows, 7);
            assert_eq!(stats.rows, rows);
            assert_eq!(kinds.len() as u64, rows);
            assert_eq!(records(&buf).len() as u64, rows);
            assert_eq!(stats.bytes, buf.len() as u64);
        }
    }

    #[test]
    fn deterministic_for_a_seed() {
        let (a, sa, _) = gen_bytes(5_000, 42);
        let (b, sb, _) = gen_bytes(5_000, 42);
        assert_eq!(a, b);
        assert_eq!(sa, sb);
        let (c, _, _) = gen_bytes(5_000, 43);
        assert_ne!(a, c);
        // A shorter file is a prefix of a longer one with the same seed.
        let (short, _, _) = gen_bytes(100, 42);
        assert!(a.starts_with(&short));
    }

    #[test]
    fn defect_rates() {
        for seed in [1, 2, 3, 2024] {
            let (_, stats, kinds) = gen_bytes(10_000, seed);
            let dup = stats.duplicates as f64 / stats.rows as f64;
            let inv = stats.invalid as f64 / stats.rows as f64;
            assert!((0.04..=0.06).contains(&dup), "duplicates {dup}");
            assert!((0.04..=0.06).contains(&inv), "invalid {inv}");
            let dnc = kinds.iter().filter(|&&k| k == RowKind::DoNotCall).count();
            assert!((20..=90).contains(&dnc), "do_not_call rows {dnc}");
        }
    }

    #[test]
    fn first_row_is_never_a_duplicate() {
        for seed in 0..500 {
            let (_, stats, kinds) = gen_bytes(3, seed);
            assert_eq!(kinds[0], RowKind::Lead);
            assert!(stats.duplicates <= 2);
        }
    }

    #[test]
    fn parses_with_nine_fields() {
        let (buf, stats, _) = gen_bytes(10_000, 9);
        let mut reader = csv::Reader::from_reader(&buf[..]);
        assert_eq!(reader.headers().unwrap().len(), 9);
        let mut n = 0;
        let (mut quoted, mut no_country, mut non_ascii) = (0, 0, 0);
        for rec in reader.records() {
            let rec = rec.unwrap();
            assert_eq!(rec.len(), 9);
            assert!(rec[8].starts_with("ACC-") && rec[8].len() == 10);
            quoted += rec[7].contains(['"', ',']) as u32;
            no_country += (rec[3].is_empty() && rec[2].starts_with('+')) as u32;
            non_ascii += (!rec[0].is_ascii() || !rec[1].is_ascii()) as u32;
            n += 1;
        }
        assert_eq!(n, stats.rows);
        assert!(quoted > 500, "notes needing quotes: {quoted}");
        assert!(
            (700..=1300).contains(&no_country),
            "rows without country: {no_country}"
        );
        assert!(non_ascii > 100);
    }

    /// E.164 digits of a valid phone cell, by the rules the generator writes them.
    fn key(phone: &str, country: &str) -> String {
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        if phone.starts_with('+') {
            return digits;
        }
        if let Some(rest) = digits.strip_prefix("0011").filter(|_| country == "AU") {
            return rest.to_string();
        }
        if let Some(rest) = digits.strip_prefix("00") {
            return rest.to_string();
        }
        match country {
            "US" | "CA" if digits.len() == 11 => digits,
            "US" | "CA" => format!("1{digits}"),
            "GB" => format!("44{}", &digits[1..]),
            "DE" => format!("49{}", &digits[1..]),
            "FR" => format!("33{}", &digits[1..]),
            "AU" => format!("61{}", &digits[1..]),
            other => panic!("country {other:?} for {phone}"),
        }
    }

    #[test]
    fn duplicates_are_exact() {
        let (buf, stats, kinds) = gen_bytes(20_000, 5);
        let mut leads = HashSet::new();
        let mut fresh = HashSet::new();
        let mut dups = 0;
        for (rec, kind) in records(&buf).iter().zip(&kinds) {
            if *kind == RowKind::InvalidPhone {
                continue;
            }
            let k = key(&rec[2], &rec[3]);
            assert!(k.len() >= 11 && k.len() <= 13, "{k} from {:?}", &rec[2]);
            match kind {
                RowKind::Duplicate => {
                    assert!(leads.contains(&k), "duplicate {k} of no earlier lead");
                    dups += 1;
                }
                _ => {
                    assert!(fresh.insert(k.clone()), "unplanned repeat of {k}");
                    if *kind == RowKind::Lead {
                        leads.insert(k);
                    }
                }
            }
        }
        assert_eq!(dups, stats.duplicates);
    }

    #[test]
    fn permutation_is_a_bijection() {
        for n in [1u64, 2, 3, 10, 1000, 4097] {
            let perm = Permutation::new(n, 99);
            let seen: HashSet<u64> = (0..n).map(|x| perm.apply(x)).collect();
            assert_eq!(seen.len() as u64, n);
            assert!(seen.iter().all(|&v| v < n));
        }
    }

    #[test]
    fn pool_numbers_have_expected_lengths() {
        for pool in &POOLS {
            let size = pool.size();
            for idx in [0, 1, size / 2, size - 1] {
                let nsn = pool.number(idx);
                let want: &[usize] = match pool.country {
                    Country::Us | Country::Ca | Country::Gb => &[10],
                    Country::De => &[10, 11],
                    Country::Fr | Country::Au => &[9],
                };
                assert!(want.contains(&nsn.len), "{}", nsn.as_str());
                assert_ne!(nsn.buf[0], b'0');
            }
        }
    }

    #[test]
    fn peak_rss() {
        let Some(before) = peak_rss_bytes() else {
            return; // Not Linux.
        };
        assert!(before > 0);
        let big = vec![1u8; 64 << 20];
        assert!(big.iter().step_by(4096).all(|&b| b == 1));
        let during = peak_rss_bytes().unwrap();
        assert!(during >= 64 << 20);
        drop(big);
        if reset_peak_rss() {
            assert!(peak_rss_bytes().unwrap() < during);
        }
    }

    /// Dumps a sample and each row's intended kind for an outside cross-check
    /// (e.g. Python `phonenumbers`): `cargo test -- --ignored write_sample`.
    #[test]
    #[ignore]
    fn write_sample() {
        let rows = std::env::var("GEN_SAMPLE_ROWS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2_000);
        let dir = std::env::temp_dir();
        let file = std::fs::File::create(dir.join("gen_sample.csv")).unwrap();
        let mut kinds = String::new();
        generate(io::BufWriter::new(file), rows, 1, |_, k| {
            kinds.push_str(k.as_str());
            kinds.push('\n');
        })
        .unwrap();
        std::fs::write(dir.join("gen_sample_kinds.txt"), kinds).unwrap();
    }
}
