#!/usr/bin/env python3
"""Check that sample_leads.csv (or the CSV given as argument) imports cleanly.

Uses Google's libphonenumber via the Python `phonenumbers` package (written
against version 9.0.33, the metadata of the Rust `phonenumber` crate
0.3.10+9.0.33 that dialer uses):

    pip install phonenumbers==9.0.33
    python3 scripts/check_sample_leads.py [path/to/leads.csv]

Checks, each violation printed with its line number; exit status 1 if any:
  - header is exactly first_name,last_name,phone,country,type,priority,do_not_call,notes
  - every row has 8 fields; first_name and phone non-empty
  - country is a region libphonenumber knows (ISO 3166-1 alpha-2, upper case)
  - phone parses with country as default region and is_valid_number() is true,
    and the number belongs to that country (region_code_for_number)
  - type is "mobile" or "landline" and agrees with number_type():
    MOBILE -> mobile, FIXED_LINE -> landline, FIXED_LINE_OR_MOBILE (US, CA,
    MX, IN, ... where the ranges are shared) -> either
  - priority is one of low, normal, high, urgent
  - do_not_call is "false" (the sample must be dialable; use --allow-dnc to
    accept "true" as well)
  - no two rows have the same E.164 number
A summary (rows, countries, types, priorities) is printed at the end.
"""

import argparse
import collections
import csv
import os
import sys

import phonenumbers
from phonenumbers import PhoneNumberType as T

HEADER = ["first_name", "last_name", "phone", "country", "type", "priority",
          "do_not_call", "notes"]
PRIORITIES = {"low", "normal", "high", "urgent"}
TYPE_OK = {
    T.MOBILE: {"mobile"},
    T.FIXED_LINE: {"landline"},
    T.FIXED_LINE_OR_MOBILE: {"mobile", "landline"},
}

DEFAULT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "sample_leads.csv")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", nargs="?", default=DEFAULT)
    ap.add_argument("--allow-dnc", action="store_true",
                    help='accept do_not_call "true" too')
    args = ap.parse_args()

    errors = []
    seen = {}
    stats = collections.Counter()
    countries = collections.Counter()
    with open(args.path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != HEADER:
            errors.append(f"line 1: header {header!r} != {HEADER!r}")
        rows = 0
        for row in reader:
            line = reader.line_num
            rows += 1
            if len(row) != len(HEADER):
                errors.append(f"line {line}: {len(row)} fields, expected {len(HEADER)}")
                continue
            r = dict(zip(HEADER, row))
            if not r["first_name"].strip():
                errors.append(f"line {line}: empty first_name")
            if not r["phone"].strip():
                errors.append(f"line {line}: empty phone")
                continue
            country = r["country"]
            if country not in phonenumbers.SUPPORTED_REGIONS:
                errors.append(f"line {line}: unknown country {country!r}")
                continue
            countries[country] += 1
            try:
                n = phonenumbers.parse(r["phone"], country)
            except phonenumbers.NumberParseException as e:
                errors.append(f"line {line}: {r['phone']!r} does not parse for {country}: {e}")
                continue
            if not phonenumbers.is_valid_number(n):
                errors.append(f"line {line}: {r['phone']!r} is not a valid {country} number")
                continue
            owner = phonenumbers.region_code_for_number(n)
            if owner != country:
                errors.append(f"line {line}: {r['phone']!r} belongs to {owner}, not {country}")
            e164 = phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)
            if e164 in seen:
                errors.append(f"line {line}: duplicate number {e164} (first on line {seen[e164]})")
            else:
                seen[e164] = line
            ntype = phonenumbers.number_type(n)
            allowed = TYPE_OK.get(ntype, set())
            if r["type"] not in allowed:
                errors.append(f"line {line}: type {r['type']!r} but libphonenumber says "
                              f"{T.to_string(ntype)} (allowed: {sorted(allowed) or 'none'})")
            if r["priority"] not in PRIORITIES:
                errors.append(f"line {line}: priority {r['priority']!r} not in {sorted(PRIORITIES)}")
            dnc_ok = {"false", "true"} if args.allow_dnc else {"false"}
            if r["do_not_call"] not in dnc_ok:
                errors.append(f"line {line}: do_not_call {r['do_not_call']!r} not in {sorted(dnc_ok)}")
            stats["type=" + r["type"]] += 1
            stats["priority=" + r["priority"]] += 1
            stats["notes=" + ("empty" if not r["notes"] else "set")] += 1

    for e in errors:
        print(e, file=sys.stderr)
    print(f"{args.path}: {rows} rows, {len(seen)} distinct numbers, "
          f"{len(countries)} countries ({', '.join(f'{c}:{k}' for c, k in sorted(countries.items()))}); "
          + ", ".join(f"{k}:{v}" for k, v in sorted(stats.items()))
          + f"; phonenumbers {phonenumbers.__version__}")
    if errors:
        print(f"FAILED: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
