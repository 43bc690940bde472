#!/usr/bin/env python3
"""Every error code the API document promises for an operation is answered by some test.

The integration tests' answer-checking proxy (crates/usher-server/tests/it/support/proxy.rs) appends one
line per answer to USHER_TEST_ANSWER_LOG (operation, status, content type, checked, problem code) and
writes the served document beside it (<log>.openapi.json). The proxy already refuses an answer whose code
the document does not list for its operation and status; this script checks the other way: each code a
response lists (the problem schema's `code` enum, narrowed per response from its description) was seen at
least once for that operation and status. What no test can provoke is listed, with the reason, in
scripts/api-codes-unreached.txt (`<METHOD path|*> <status|*> <code>  # why`); an entry there that a test
does reach is named (not failed: a test may reach a code by timing only), so the list can be shrunk.

usage: check-api-codes.py <answer log>
"""
import json
import sys
from pathlib import Path

log = Path(sys.argv[1])
doc = json.loads(Path(f"{log}.openapi.json").read_text())
seen = set()
for line in log.read_text().splitlines():
    parts = line.split("\t")
    if len(parts) >= 5 and parts[4] != "-":
        seen.add((parts[0], parts[1], parts[4]))

allowed = []
for raw in (Path(__file__).parent / "api-codes-unreached.txt").read_text().splitlines():
    text = raw.split("#", 1)[0].strip()
    if not text:
        continue
    *op, status, code = text.split()
    allowed.append((" ".join(op), status, code, raw))

def excused(op, status, code):
    return [a for a in allowed if a[0] in (op, "*") and a[1] in (status, "*") and a[2] == code]

promised = []
for path, item in doc["paths"].items():
    for method, spec in item.items():
        op = f"{method.upper()} {path}"
        for status, answer in spec.get("responses", {}).items():
            schema = answer.get("content", {}).get("application/problem+json", {}).get("schema", {})
            codes = []
            for part in schema.get("allOf", []):
                codes += part.get("properties", {}).get("code", {}).get("enum", [])
            for code in codes:
                promised.append((op, status, code))

missing = [p for p in promised if p not in seen and not excused(*p)]
used = {a[3] for p in promised if p not in seen for a in excused(*p)}
stale = [a[3] for a in allowed if a[3] not in used]
print(f"{len(promised)} codes promised by {len(doc['paths'])} paths; {len(promised) - len(missing)} answered by a test or excused")
for op, status, code in missing:
    print(f"  not answered by any test: {op} {status} {code}")
for raw in stale:
    print(f"  note: listed as unreached but answered (or no longer promised), remove it: {raw.strip()}")
sys.exit(1 if missing else 0)
