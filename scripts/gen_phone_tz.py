#!/usr/bin/env python3
"""Generate data/phone_tz.tsv: phone-number prefix -> IANA time zone(s).

Source: Google libphonenumber's timezone mapping data
(resources/timezones/map_data.txt in libphonenumber), as shipped in the
Python `phonenumbers` package (module phonenumbers.tzdata, TIMEZONE_DATA).
Pinned to phonenumbers==9.0.33, whose metadata matches the libphonenumber
9.0.33 metadata compiled into the Rust `phonenumber` crate 0.3.10+9.0.33
that dialer uses.

License of the data: Apache License 2.0, Copyright (C) The Libphonenumber
Authors. See data/NOTICE-libphonenumber.txt.

Regenerate (from the repo root):

    pip install phonenumbers==9.0.33
    python3 scripts/gen_phone_tz.py

The script refuses to run against another phonenumbers version unless
--allow-other-version is given (the version then recorded in the header is
the one actually used).

Output format (UTF-8, LF line endings):
  - leading lines starting with '#' are comments;
  - then one line per prefix, sorted by prefix (plain string order):
        <digits-prefix>\t<Zone1>&<Zone2>...
    The prefix is the leading digits of the E.164 number without '+'
    (country calling code included). Zones are joined with '&' exactly as
    in Google's source file.

Checks performed (the script exits non-zero if any fails):
  - every prefix is all digits, every zone list non-empty;
  - no zone name contains '&' or a tab;
  - the ICU unknown-zone sentinel "Etc/Unknown" is dropped from zone lists and
    a prefix left with no zone is omitted (none exist in 9.0.33; the count of
    omitted prefixes is printed and written to the header);
  - every zone name is in zoneinfo.available_timezones() (the system IANA
    tz database); names not found are reported and cause failure.
"""

import argparse
import os
import sys
import zoneinfo

import phonenumbers
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

PINNED_VERSION = "9.0.33"
UNKNOWN_TIMEZONE = "Etc/Unknown"

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_TSV = os.path.join(REPO_ROOT, "data", "phone_tz.tsv")
OUT_NOTICE = os.path.join(REPO_ROOT, "data", "NOTICE-libphonenumber.txt")

NOTICE = """\
dialer includes data derived from Google's libphonenumber project:

  data/phone_tz.tsv            phone-number prefix to IANA time zone mapping
  data/nanp_subdivisions.tsv   NANP area code / exchange to US state or Canadian
                               province (from the English geocoding data)
  tests/data/phone_reference.csv
                               reference parse/format/validity/time-zone results
                               produced with libphonenumber's metadata

libphonenumber
Copyright (C) The Libphonenumber Authors
https://github.com/google/libphonenumber

The data was extracted with the Python port `phonenumbers` version {version}
(https://github.com/daviddrysdale/python-phonenumbers, Apache-2.0), which
ships libphonenumber's metadata and timezone mapping data.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use these files except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.

Changes: the timezone data was converted from the phonenumbers Python module
to a tab-separated text file; entries mapping only to "Etc/Unknown" (if any)
were omitted. No other change was made to the mapping.
"""


def build_rows():
    rows = []
    omitted = []
    dropped_sentinel = 0
    for prefix, zones in TIMEZONE_DATA.items():
        if not prefix.isdigit():
            raise SystemExit(f"non-digit prefix in TIMEZONE_DATA: {prefix!r}")
        kept = [z for z in zones if z != UNKNOWN_TIMEZONE]
        dropped_sentinel += len(zones) - len(kept)
        if not kept:
            omitted.append(prefix)
            continue
        for z in kept:
            if "&" in z or "\t" in z or not z:
                raise SystemExit(f"bad zone name {z!r} for prefix {prefix}")
        rows.append((prefix, kept))
    rows.sort(key=lambda r: r[0])
    return rows, omitted, dropped_sentinel


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

    rows, omitted, dropped_sentinel = build_rows()

    available = zoneinfo.available_timezones()
    used = sorted({z for _, zs in rows for z in zs})
    invalid = [z for z in used if z not in available]
    if invalid:
        print("zone names NOT in zoneinfo.available_timezones():", file=sys.stderr)
        for z in invalid:
            print(f"  {z}", file=sys.stderr)
        raise SystemExit(1)

    max_len = max(len(p) for p, _ in rows)
    header = [
        "# phone_tz.tsv: phone-number prefix -> IANA time zone name(s)",
        "#",
        "# Source: Google libphonenumber timezone mapping data (geocoding/timezone",
        f"# data), via the Python `phonenumbers` package version {version}",
        "# (module phonenumbers.tzdata). Matches the libphonenumber 9.0.33 metadata",
        "# of the Rust `phonenumber` crate 0.3.10+9.0.33.",
        "# Copyright (C) The Libphonenumber Authors. License: Apache-2.0",
        "# (http://www.apache.org/licenses/LICENSE-2.0); see",
        "# data/NOTICE-libphonenumber.txt.",
        "#",
        "# Regenerate: pip install phonenumbers==9.0.33 && python3 scripts/gen_phone_tz.py",
        "#",
        "# Format: one line per prefix, sorted by prefix:",
        "#   <digits-prefix><TAB><Zone1>&<Zone2>...",
        "# <digits-prefix> is a prefix of the E.164 digits (no '+', country calling",
        "# code included); zone names are IANA tz database names joined by '&'.",
        "#",
        "# Lookup: take the E.164 digits of the number (e.g. 442079460123 for",
        "# +44 20 7946 0123) and use the entry with the LONGEST prefix that matches",
        f"# its leading digits (longest prefix in this file: {max_len} digits). If no",
        "# prefix matches, the zone is unknown.",
        "# libphonenumber's time_zones_for_number() does this longest-prefix lookup",
        "# only for geographical numbers (FIXED_LINE, FIXED_LINE_OR_MOBILE, and",
        "# MOBILE in country codes 52, 54, 55, 62, 86); for any other valid type",
        "# (MOBILE elsewhere, TOLL_FREE, VOIP, ...) it looks up the country calling",
        "# code alone (e.g. '44'), and for numbers of UNKNOWN type it gives unknown.",
        "#",
        f'# The unknown-zone sentinel "{UNKNOWN_TIMEZONE}" is not in this file: it is',
        "# removed from zone lists and a prefix mapping only to it is omitted",
        f"# ({len(omitted)} prefixes omitted, {dropped_sentinel} sentinel entries"
        " removed, for this version).",
        "# A number with no matching prefix has unknown zone.",
        "#",
        "# Some names are IANA backward-compatibility links (e.g. Asia/Calcutta,",
        "# Asia/Katmandu, America/Buenos_Aires), kept as Google spells them; all",
        "# names were checked against the IANA tz database at generation time.",
        f"# Entries: {len(rows)}; distinct zone names: {len(used)}.",
    ]
    os.makedirs(os.path.dirname(OUT_TSV), exist_ok=True)
    with open(OUT_TSV, "w", encoding="utf-8", newline="\n") as f:
        for line in header:
            f.write(line + "\n")
        for prefix, zones in rows:
            f.write(f"{prefix}\t{'&'.join(zones)}\n")
    with open(OUT_NOTICE, "w", encoding="utf-8", newline="\n") as f:
        f.write(NOTICE.format(version=version))

    # Self-check: longest-prefix lookup over the written file agrees with the
    # library for every prefix key (sanity of the round trip).
    table = {p: tuple(zs) for p, zs in rows}
    assert max_len <= TIMEZONE_LONGEST_PREFIX
    for prefix, zones in TIMEZONE_DATA.items():
        kept = tuple(z for z in zones if z != UNKNOWN_TIMEZONE)
        if kept:
            assert table[prefix] == kept, prefix

    print(f"wrote {OUT_TSV}: {len(rows)} prefixes, {len(used)} distinct zones, "
          f"{len(omitted)} omitted (unknown-only), phonenumbers {version}")
    print(f"wrote {OUT_NOTICE}")


if __name__ == "__main__":
    main()
