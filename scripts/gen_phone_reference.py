#!/usr/bin/env python3
"""Generate tests/data/phone_reference.csv: Google libphonenumber reference results.

Provenance: every expected value is computed with the Python port of Google's
libphonenumber, `phonenumbers` version 9.0.33 (pinned: its metadata is
libphonenumber 9.0.33, the same metadata compiled into the Rust `phonenumber`
crate 0.3.10+9.0.33 that dialer uses). Data: Copyright (C) The
Libphonenumber Authors, Apache-2.0; see data/NOTICE-libphonenumber.txt.

Regenerate (from the repo root):

    pip install phonenumbers==9.0.33
    python3 scripts/gen_phone_reference.py

The output is deterministic (fixed random seed 20250933, fixed region list,
fixed generation order); rerunning with the same phonenumbers version
gives a byte-identical file. The script refuses to run with another
phonenumbers version unless --allow-other-version is given.

The CSV is plain (no comment lines), UTF-8, LF line endings, header:

    input,region,expected_e164,expected_valid,expected_zones

  input           the raw string as a lead file might contain it
  region          ISO 3166-1 alpha-2 default region passed to parse()
  expected_e164   format_number(parse(input, region), E164) when parse()
                  succeeds and is_valid_number() is true; else empty
  expected_valid  "true" if parse() succeeds and is_valid_number() is true,
                  else "false" (parse errors are "false")
  expected_zones  '&'-joined phonenumbers.timezone.time_zones_for_number()
                  for valid numbers; empty for invalid numbers. The unknown
                  sentinel "Etc/Unknown" is written as empty too, matching
                  data/phone_tz.tsv which omits it.

Rows, per region (US, CA, GB, ... 52 regions, see REGIONS):
  - libphonenumber example numbers for FIXED_LINE, MOBILE, TOLL_FREE (all
    52 regions have all three in 9.0.33), each written as E164,
    INTERNATIONAL, NATIONAL, RFC3966 ("tel:+..."), the national form with
    odd punctuation (dots, doubled spaces, parentheses, dashes, padding;
    one variant picked at random), and the IDD form: "00 <intl>" where 00 is
    an IDD of the region, plus the literal preferred IDD where it differs
    (e.g. "011 1 201-555-0123" for US, "0011 61 ..." for AU, "010 81 ..."
    for JP); regions whose IDD is neither 00 nor a literal digit string get
    no IDD row. Note HK: "00 852 ..." is INVALID for Google with region HK,
    because HK's IDD pattern 00(?:30|5[09]|[126-9]?) greedily strips "008"
    (a carrier IDD) and leaves "52..." (Mexico); the rows keep Google's answer;
  - one example as national digits only, and one in INTERNATIONAL form
    parsed with a different default region (the '+' must win);
  - one more valid number, made by randomising the last 4 digits of an
    example number (E164 plus national or odd-punctuation form);
  - for regions spanning several time zones (MULTI_ZONE), 6 valid numbers
    built from random prefixes of data/phone_tz.tsv, to exercise the
    longest-prefix zone lookup;
  - invalid inputs, 4 per region picked at random among: too short, a bit
    short, too long, far too long (parse error), placeholder text ("n/a",
    "", "call me", ...), another region's national number (sometimes valid
    there: the expected columns say what Google says), bad country code;
    plus every placeholder with region US;
  - a handful of hand-written cases: extensions (E.164 drops them), vanity
    letters ("1-800-CALL-NOW" is valid for Google), "+44 (0) 20 ...",
    "0044 ..." parsed as US, RFC3966 with phone-context.

As a self-check, every valid row's zones are recomputed from
data/phone_tz.tsv (longest-prefix lookup for geographical number types,
country code alone otherwise) and must equal expected_zones; run
scripts/gen_phone_tz.py first.
"""

import argparse
import csv
import os
import random
import re

import phonenumbers
from phonenumbers import PhoneNumberFormat as F
from phonenumbers import PhoneNumberType as T
from phonenumbers.phonenumberutil import is_number_type_geographical
from phonenumbers.timezone import time_zones_for_number

PINNED_VERSION = "9.0.33"
SEED = 20250933
UNKNOWN_TIMEZONE = "Etc/Unknown"

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_CSV = os.path.join(REPO_ROOT, "tests", "data", "phone_reference.csv")
TZ_TSV = os.path.join(REPO_ROOT, "data", "phone_tz.tsv")

REGIONS = (
    "US CA GB IE FR DE ES IT NL BE CH AT SE NO DK FI PL PT GR CZ RO HU "
    "AU NZ JP KR CN HK SG IN BR MX AR CL CO ZA NG KE EG IL AE TR RU UA PH "
    "ID MY TH SA PE PK VN"
).split()

TYPES = (("fixed_line", T.FIXED_LINE), ("mobile", T.MOBILE), ("toll_free", T.TOLL_FREE))

# Regions whose numbers span several zones: extra rows from tz prefixes.
MULTI_ZONE = ("US", "CA", "AU", "RU", "BR", "MX", "AR", "ID", "CL", "CN")

PLACEHOLDERS = [
    "n/a", "N/A", "none", "unknown", "-", "--", "?", "tbd", "no phone",
    "call me", "abc", "phone", "x", "null", "NULL", "0", "00", "+", "tel:",
    "", " ", "+-", "()", "ask reception", "see notes",
]


def fmt(n, f):
    return phonenumbers.format_number(n, f)


def expected(inp, region):
    try:
        n = phonenumbers.parse(inp, region)
    except phonenumbers.NumberParseException:
        return "", "false", ""
    if not phonenumbers.is_valid_number(n):
        return "", "false", ""
    zones = [z for z in time_zones_for_number(n) if z != UNKNOWN_TIMEZONE]
    return fmt(n, F.E164), "true", "&".join(zones)


def idd_forms(region):
    """IDD strings usable as a literal dialling prefix for this region."""
    md = phonenumbers.PhoneMetadata.metadata_for_region(region)
    out = []
    if re.fullmatch(md.international_prefix, "00"):
        out.append("00")
    pref = md.preferred_international_prefix
    if pref and pref.isdigit() and pref not in out:
        out.append(pref)
    if not out and md.international_prefix.isdigit():
        out.append(md.international_prefix)
    return out


def odd_punctuation(natl, rng):
    """One messy human rendering of a national-format number."""
    groups = re.findall(r"\d+", natl)
    digits = "".join(groups)
    variants = [natl.replace(" ", "  ").replace("-", " - ")]
    if len(groups) >= 2:
        variants.append(".".join(groups))
        variants.append("  ".join(groups) + " ")
        variants.append("(" + groups[0] + ") " + "-".join(groups[1:]))
        variants.append(" " + "-".join(groups) + "  ")
        variants.append(groups[0] + " / " + " ".join(groups[1:]))
    else:
        variants.append(".".join([digits[:3], digits[3:6], digits[6:]]).strip("."))
        variants.append("(" + digits[:3] + ") " + digits[3:])
    return rng.choice(variants)


def core_formats(n, region, rng):
    """E164, INTERNATIONAL, NATIONAL, RFC3966, odd punctuation, IDD form(s)."""
    intl = fmt(n, F.INTERNATIONAL)
    natl = fmt(n, F.NATIONAL)
    out = [fmt(n, F.E164), intl, natl, fmt(n, F.RFC3966), odd_punctuation(natl, rng)]
    for idd in idd_forms(region):
        out.append(idd + " " + intl[1:])
    return [(s, region) for s in out]


def perturb(n, region, ntype, rng, last=4, tries=50):
    """A valid number of the same type: example with random last digits."""
    nsn = phonenumbers.national_significant_number(n)
    for _ in range(tries):
        cand = nsn[:-last] + "".join(rng.choice("0123456789") for _ in range(last))
        if cand == nsn:
            continue
        m = phonenumbers.parse("+" + str(n.country_code) + cand, region)
        if phonenumbers.is_valid_number(m) and phonenumbers.number_type(m) == ntype:
            return m
    return None


def load_tz_table():
    table = {}
    with open(TZ_TSV, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            prefix, zones = line.rstrip("\n").split("\t")
            table[prefix] = zones
    return table


def zones_from_table(table, n):
    """Reimplementation of time_zones_for_number over the TSV."""
    ntype = phonenumbers.number_type(n)
    if ntype == T.UNKNOWN:
        return ""
    if not is_number_type_geographical(ntype, n.country_code):
        return table.get(str(n.country_code), "")
    digits = fmt(n, F.E164)[1:]
    for i in range(len(digits), 0, -1):
        if digits[:i] in table:
            return table[digits[:i]]
    return ""


def geo_samples(region, table, rng, count=12):
    cc = str(phonenumbers.country_code_for_region(region))
    ex = phonenumbers.example_number_for_type(region, T.FIXED_LINE)
    nsn_len = len(phonenumbers.national_significant_number(ex))
    prefixes = sorted(p for p in table if p.startswith(cc) and len(p) > len(cc))
    found = []
    rng_prefixes = rng.sample(prefixes, k=min(len(prefixes), 200))
    for p in rng_prefixes:
        if len(found) >= count:
            break
        rest = nsn_len - (len(p) - len(cc))
        if rest <= 0:
            continue
        for _ in range(10):
            cand = p + "".join(rng.choice("0123456789") for _ in range(rest))
            m = phonenumbers.parse("+" + cand, region)
            if phonenumbers.is_valid_number(m) and phonenumbers.region_code_for_number(m) == region:
                found.append(m)
                break
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--allow-other-version", action="store_true")
    args = ap.parse_args()
    version = phonenumbers.__version__
    if version != PINNED_VERSION and not args.allow_other_version:
        raise SystemExit(f"phonenumbers {version} installed, expected {PINNED_VERSION} "
                         f"(pip install phonenumbers=={PINNED_VERSION})")

    rng = random.Random(SEED)
    table = load_tz_table()
    inputs = []          # (input, region)
    missing = []         # (region, type) without example
    natl_by_region = {}  # region -> national strings of its valid examples

    for region in REGIONS:
        natls, examples = [], []
        for tname, ntype in TYPES:
            n = phonenumbers.example_number_for_type(region, ntype)
            if n is None or not phonenumbers.is_valid_number(n):
                missing.append((region, tname))
                continue
            inputs.extend(core_formats(n, region, rng))
            natls.append(fmt(n, F.NATIONAL))
            examples.append(n)
        natl_by_region[region] = natls
        if not examples:
            continue
        # National digits only, and the international form parsed with
        # another default region (the '+' must win).
        n = rng.choice(examples)
        inputs.append((re.sub(r"\D", "", fmt(n, F.NATIONAL)), region))
        other = rng.choice([r for r in REGIONS if r != region])
        inputs.append((fmt(n, F.INTERNATIONAL), other))
        # One more valid number: an example with random last digits.
        n = rng.choice(examples)
        m = perturb(n, region, phonenumbers.number_type(n), rng)
        if m is not None:
            inputs.append((fmt(m, F.E164), region))
            inputs.append((rng.choice([fmt(m, F.NATIONAL), odd_punctuation(fmt(m, F.NATIONAL), rng)]), region))
        if region in MULTI_ZONE:
            for i, m in enumerate(geo_samples(region, table, rng, count=6)):
                inputs.append((fmt(m, F.E164 if i % 2 else F.NATIONAL), region))

    # Invalid / tricky inputs.
    for region in REGIONS:
        natls = natl_by_region[region]
        if not natls:
            continue
        natl = rng.choice(natls)
        digits = re.sub(r"\D", "", natl)
        other = rng.choice([r for r in REGIONS if r != region and natl_by_region[r]])
        kinds = [
            digits[: max(3, len(digits) // 2)],                        # too short
            digits[:-2],                                               # a bit short
            natl + rng.choice(["1", "12", "987"]),                     # too long
            digits + "12345678901234",                                 # far too long
            rng.choice(PLACEHOLDERS),                                  # letters / empty-ish
            rng.choice(natl_by_region[other]),                         # another region's number
            "+" + rng.choice(["999", "0", "882", "28"]) + " " + digits,  # bad country code
        ]
        inputs.extend((k, region) for k in rng.sample(kinds, k=4))
    for p in PLACEHOLDERS:
        inputs.append((p, "US"))
    inputs += [
        ("+1 201-555-0123 ext. 45", "US"),
        ("(201) 555-0123 x123", "US"),
        ("020 7946 0958 ext 12", "GB"),
        ("+49 30 123456-78", "DE"),
        ("+1 800 FLOWERS", "US"),
        ("1-800-CALL-NOW", "US"),
        ("555-0123", "US"),
        ("+44 (0) 20 7946 0958", "GB"),
        ("+44 020 7946 0958", "GB"),
        ("0044 20 7946 0958", "US"),
        ("011 44 20 7946 0958", "US"),
        ("+1 (555) 555-5555", "US"),
        ("+33 (0)1 23 45 67 89", "FR"),
        ("+61 (0)4 1234 5678", "AU"),
        ("+353 (0)85 012 3456", "IE"),
        ("tel:020-7946-0958;phone-context=+44", "US"),
        ("tel:+44-20-7946-0958;ext=12", "GB"),
    ]

    rows, seen = [], set()
    for inp, region in inputs:
        if (inp, region) in seen:
            continue
        seen.add((inp, region))
        e164, valid, zones = expected(inp, region)
        if valid == "true":
            n = phonenumbers.parse(inp, region)
            got = zones_from_table(table, n)
            if got != zones:
                raise SystemExit(f"TSV lookup mismatch for {inp!r}/{region}: {got!r} != {zones!r}")
        rows.append((inp, region, e164, valid, zones))

    os.makedirs(os.path.dirname(OUT_CSV), exist_ok=True)
    with open(OUT_CSV, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["input", "region", "expected_e164", "expected_valid", "expected_zones"])
        w.writerows(rows)

    nvalid = sum(1 for r in rows if r[3] == "true")
    print(f"wrote {OUT_CSV}: {len(rows)} rows ({nvalid} valid, {len(rows) - nvalid} invalid), "
          f"{len(REGIONS)} regions, phonenumbers {version}")
    if missing:
        print("no (valid) example number for:", ", ".join(f"{r}/{t}" for r, t in missing))


if __name__ == "__main__":
    main()
