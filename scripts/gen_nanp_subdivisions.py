#!/usr/bin/env python3
"""Generate data/nanp_subdivisions.tsv: NANP area code (+ exchange) -> ISO 3166-2.

For a +1 number, the US state or Canadian province/territory whose legal
calling window applies (campaign `legal_window_overrides` keys like `US-FL`).

Source: Google libphonenumber's geocoding data (resources/geocoding/en/1.txt),
as shipped in the Python `phonenumbers` package (module phonenumbers.geodata,
GEOCODE_DATA, English descriptions). Pinned to phonenumbers==9.0.33, the
metadata version of the Rust `phonenumber` crate 0.3.10+9.0.33 that dialer
uses (see scripts/gen_phone_tz.py).

License of the data: Apache License 2.0, Copyright (C) The Libphonenumber
Authors. See data/NOTICE-libphonenumber.txt.

Regenerate (from the repo root):

    pip install phonenumbers==9.0.33
    python3 scripts/gen_nanp_subdivisions.py

How descriptions become codes:
  - "Texas", "Washington State", "Washington D.C.", "Ontario", ... (state,
    district, province and territory names) map by name;
  - "Houston, TX", "Halifax, NS" map by the two-letter postal abbreviation,
    which for US states and Canadian provinces is the ISO 3166-2 suffix;
  - anything else (Caribbean NANP members such as "New Providence", US
    territories with their own ISO 3166-1 code such as "St. Croix, VI", and
    descriptions naming several provinces such as "Nova Scotia/Prince Edward
    Island") maps to nothing: the number has no subdivision, and the region's
    own override (or the default window) applies.

Output: the geocoder's own longest-prefix table with each description mapped,
and rows that say the same as their nearest shorter prefix pruned. So most
area codes are one row (`305<TAB>US-FL`), also where the geocoder names
only exchanges that all lie in one state (203, 310, 713, ...); an area code shared by several
provinces (902: NS and PE; 867: NT, NU, YT) has no area-code row but one row
per exchange the geocoder names (`902566<TAB>CA-PE`). Non-geographic area
codes (N00, 8YY toll-free, 5YY, 6YY Canadian non-geographic, 710) get no row.

The script checks, and exits non-zero otherwise, that a longest-prefix lookup
over the written rows gives, for every +1 prefix in the geocoding data, the
code its own description maps to (or nothing, where the description maps to
nothing and no shorter prefix is mapped).
"""

import argparse
import collections
import os
import re

import phonenumbers
from phonenumbers.geodata import GEOCODE_DATA

PINNED_VERSION = "9.0.33"

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_TSV = os.path.join(REPO_ROOT, "data", "nanp_subdivisions.tsv")

US_NAMES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR",
    "California": "CA", "Colorado": "CO", "Connecticut": "CT",
    "Delaware": "DE", "Florida": "FL", "Georgia": "GA", "Hawaii": "HI",
    "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA",
    "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME",
    "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI",
    "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO",
    "Montana": "MT", "Nebraska": "NE", "Nevada": "NV",
    "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM",
    "New York": "NY", "North Carolina": "NC", "North Dakota": "ND",
    "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA",
    "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD",
    "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT",
    "Virginia": "VA", "Washington State": "WA", "West Virginia": "WV",
    "Wisconsin": "WI", "Wyoming": "WY", "Washington D.C.": "DC",
}
CA_NAMES = {
    "Alberta": "AB", "British Columbia": "BC", "Manitoba": "MB",
    "New Brunswick": "NB", "Newfoundland and Labrador": "NL",
    "Nova Scotia": "NS", "Northwest Territories": "NT", "Nunavut": "NU",
    "Ontario": "ON", "Prince Edward Island": "PE", "Quebec": "QC",
    "Saskatchewan": "SK", "Yukon": "YT",
}
# Spellings in the source that are not the official name.
ALIASES = {
    "British Colombia": "CA-BC",
    # A Yukon exchange described by town only.
    "Watson Lake": "CA-YT",
}
US_CODES = set(US_NAMES.values())
CA_CODES = set(CA_NAMES.values())
assert not US_CODES & CA_CODES

# Non-geographic NANP area codes: N00 (500 … 900), 8YY toll-free, 5YY personal
# communications, 6YY Canadian non-geographic, 710 US government. A guard only:
# the geocoding data has no entries for them, and the script fails if it has.
NON_GEOGRAPHIC = (
    {f"{n}00" for n in range(2, 10)}
    | {f"8{d}{d}" for d in "3456789"}
    | {f"5{d}{d}" for d in "2346789"}
    | {f"6{d}{d}" for d in "2345678"}
    | {"710"}
)

ABBREV = re.compile(r", ([A-Z]{2})$")


def subdivision(description):
    """The ISO 3166-2 code a geocoder description names, or None."""
    if description in ALIASES:
        return ALIASES[description]
    if description in US_NAMES:
        return "US-" + US_NAMES[description]
    if description in CA_NAMES:
        return "CA-" + CA_NAMES[description]
    m = ABBREV.search(description)
    if m:
        code = m.group(1)
        if code in US_CODES:
            return "US-" + code
        if code in CA_CODES:
            return "CA-" + code
    return None


def longest(table, digits):
    for n in range(len(digits), 0, -1):
        if digits[:n] in table:
            return table[digits[:n]]
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--allow-other-version", action="store_true",
                    help=f"run even if phonenumbers != {PINNED_VERSION}")
    args = ap.parse_args()

    version = phonenumbers.__version__
    if version != PINNED_VERSION and not args.allow_other_version:
        raise SystemExit(
            f"phonenumbers {version} installed, expected {PINNED_VERSION} "
            f"(pip install phonenumbers=={PINNED_VERSION}, "
            f"or pass --allow-other-version)")

    # National prefix (digits after +1) -> mapped code (None: maps to nothing).
    source = {}
    unmapped = collections.Counter()
    for prefix, names in GEOCODE_DATA.items():
        if not prefix.startswith("1") or len(prefix) < 4:
            continue
        national = prefix[1:]
        if not national.isdigit():
            raise SystemExit(f"non-digit prefix {prefix!r}")
        if national[:3] in NON_GEOGRAPHIC:
            raise SystemExit(f"geocoding data names non-geographic +{prefix}")
        description = names.get("en", "")
        code = subdivision(description)
        if code is None:
            unmapped[description] += 1
        source[national] = code

    # An area code whose every named prefix maps to one code is that code as a
    # whole (the geocoder names 203, 310, 713, ... only exchange by exchange).
    by_area = collections.defaultdict(set)
    for prefix, code in source.items():
        by_area[prefix[:3]].add(code)
    mapped = {p: c for p, c in source.items() if c is not None}
    for area, codes in by_area.items():
        if len(codes) == 1 and None not in codes:
            mapped[area] = next(iter(codes))

    # Keep mapped prefixes whose nearest shorter mapped prefix says otherwise.
    rows = {}
    for prefix in sorted(mapped, key=lambda p: (len(p), p)):
        if longest(rows, prefix[:-1]) != mapped[prefix]:
            rows[prefix] = mapped[prefix]

    # Round trip: the table agrees with the geocoder for every source prefix,
    # and a prefix whose description maps to nothing is not given a code by a
    # shorter one (which would put, say, a Bahamas exchange in a US state).
    for prefix, code in source.items():
        got = longest(rows, prefix)
        if got != code:
            raise SystemExit(f"+1{prefix}: table says {got}, geocoder {code}")
    assert not any(p[:3] in NON_GEOGRAPHIC for p in rows)

    area_rows = sum(1 for p in rows if len(p) == 3)
    header = [
        "# nanp_subdivisions.tsv: NANP (+1) area code, or area code + exchange",
        "# digits -> ISO 3166-2 subdivision (US state or DC, Canadian province",
        "# or territory).",
        "#",
        "# Source: Google libphonenumber geocoding data (English descriptions of",
        f"# +1 prefixes), via the Python `phonenumbers` package version {version}",
        "# (module phonenumbers.geodata); descriptions mapped to ISO 3166-2 codes",
        "# by scripts/gen_nanp_subdivisions.py.",
        "# Copyright (C) The Libphonenumber Authors. License: Apache-2.0",
        "# (http://www.apache.org/licenses/LICENSE-2.0); see",
        "# data/NOTICE-libphonenumber.txt.",
        "#",
        "# Regenerate: pip install phonenumbers==9.0.33 && python3 scripts/gen_nanp_subdivisions.py",
        "#",
        "# Format: one line per prefix, sorted by prefix:",
        "#   <national-prefix><TAB><ISO 3166-2 code>",
        "# <national-prefix> is the leading digits of the number after +1. Use the",
        "# LONGEST prefix that matches; none means no subdivision (Caribbean NANP",
        "# members, US territories, non-geographic codes such as 800, and area",
        "# codes shared by several provinces outside the exchanges named here).",
        f"# Rows: {len(rows)} ({area_rows} whole area codes).",
    ]
    with open(OUT_TSV, "w", encoding="utf-8", newline="\n") as f:
        for line in header:
            f.write(line + "\n")
        for prefix in sorted(rows):
            f.write(f"{prefix}\t{rows[prefix]}\n")

    print(f"wrote {OUT_TSV}: {len(rows)} rows ({area_rows} area codes), "
          f"phonenumbers {version}")
    print("descriptions mapped to no subdivision:",
          ", ".join(f"{d} ({n})" for d, n in unmapped.most_common()))


if __name__ == "__main__":
    main()
