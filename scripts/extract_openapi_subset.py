#!/usr/bin/env python3
"""Extract tests/data/twilio_openapi_subset.json from Twilio's OpenAPI spec.

Source: Twilio's official OpenAPI 3.0.1 description of the 2010-04-01 REST API,
file spec/json/twilio_api_v2010.json of the public repository twilio/twilio-oai
at commit d50069b44ea8cd23141385bdb6db48f16ff75bb5, licensed Apache-2.0
(Copyright Twilio Inc.). The copy this script reads differs from upstream in one
way: form-encoded request bodies with array fields carry
`encoding: {style: form, explode: true}` (repeated keys, as Twilio expects).

The subset keeps the original structure (openapi, info, servers, security,
components, paths) with only the operations the dialer's REST client calls
(src/telephony/client.rs) and every component they reference, transitively.
The conformance tests in that module read the result, so it is committed: CI
runs on a clean clone without the full spec.

Regenerate (from the repo root):

    python3 scripts/extract_openapi_subset.py [/path/to/twilio_api_v2010.json]

Default input: /work/shared/twilio/twilio_api_v2010.json.
Output: tests/data/twilio_openapi_subset.json (UTF-8, 2-space indent, LF).
"""

import json
import sys
from pathlib import Path

SOURCE_COMMIT = "d50069b44ea8cd23141385bdb6db48f16ff75bb5"
DEFAULT_INPUT = "/work/shared/twilio/twilio_api_v2010.json"
OUTPUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "twilio_openapi_subset.json"

# (path, method) pairs the client uses.
OPERATIONS = [
    ("/2010-04-01/Accounts/{AccountSid}/Calls.json", "post"),  # CreateCall
    ("/2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json", "post"),  # UpdateCall
    ("/2010-04-01/Accounts/{AccountSid}/Conferences/{Sid}.json", "post"),  # UpdateConference
    ("/2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Participants.json", "post"),  # CreateParticipant
    ("/2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Participants/{CallSid}.json", "post"),  # UpdateParticipant
    ("/2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Participants/{CallSid}.json", "delete"),  # DeleteParticipant
]

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def refs_in(node):
    """Every local $ref target name ("#/components/<kind>/<name>") under node."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs_in(item)


def main() -> int:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_INPUT)
    spec = json.loads(source.read_text(encoding="utf-8"))

    paths = {}
    for path, method in OPERATIONS:
        item = spec["paths"][path]
        if method not in item:
            raise SystemExit(f"{method.upper()} {path} is not in {source}")
        kept = paths.setdefault(path, {k: v for k, v in item.items() if k not in HTTP_METHODS})
        kept[method] = item[method]

    # Transitive closure of the components the kept operations reference.
    components = {}
    pending = list(refs_in(paths))
    while pending:
        ref = pending.pop()
        parts = ref.split("/")
        if parts[:2] != ["#", "components"] or len(parts) != 4:
            raise SystemExit(f"unsupported $ref {ref!r}")
        kind, name = parts[2], parts[3]
        if name in components.get(kind, {}):
            continue
        target = spec["components"][kind][name]
        components.setdefault(kind, {})[name] = target
        pending.extend(refs_in(target))
    # Security schemes are named by `security`, not by $ref.
    components["securitySchemes"] = spec["components"]["securitySchemes"]
    components = {
        kind: dict(sorted(entries.items())) for kind, entries in sorted(components.items())
    }

    subset = {
        "x-source": {
            "repository": "https://github.com/twilio/twilio-oai",
            "path": "spec/json/twilio_api_v2010.json",
            "commit": SOURCE_COMMIT,
            "license": "Apache-2.0 (Copyright Twilio Inc.)",
            "modifications": "Only the operations below and the components they reference; "
            "array form fields carry encoding {style: form, explode: true}. "
            "Extracted by scripts/extract_openapi_subset.py.",
            "operations": [f"{m.upper()} {p}" for p, m in OPERATIONS],
        },
        "openapi": spec["openapi"],
        "info": spec["info"],
        "servers": spec["servers"],
        "security": spec["security"],
        "components": components,
        "paths": paths,
    }
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(subset, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUT} ({len(paths)} paths, "
          f"{sum(len(v) for v in components.values())} components)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
