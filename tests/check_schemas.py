#!/usr/bin/python3
"""Validates firegw MQTT payloads against the JSON Schemas in docs/schema/.

As a program:  check_schemas.py DIR
    Every DIR/<schema name>*.json (one JSON message per file) is validated against
    docs/schema/<schema name>.json; one line per file; exit status 1 if any file
    fails or DIR holds no payloads.

As a module (integration tests):
    validate(kind, payload)  -> None if valid, else a one-line reason
    kind_of_topic(topic)     -> the schema name for an MQTT topic, or None

Stricter than a plain json.loads: NaN/Infinity and duplicate keys are errors,
because other consumers' parsers reject them.
"""
import json
import os
import re
import sys

import jsonschema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA_DIR = os.path.join(ROOT, "docs", "schema")
KINDS = ("status", "event", "detector_state", "heartbeat", "command", "command_response", "ack")

_validators = {}


def _validator(kind):
    if kind not in _validators:
        if kind not in KINDS:
            raise ValueError(f"unknown schema name {kind!r}; known: {', '.join(KINDS)}")
        with open(os.path.join(SCHEMA_DIR, kind + ".json"), encoding="utf-8") as f:
            schema = json.load(f)
        jsonschema.Draft202012Validator.check_schema(schema)
        _validators[kind] = jsonschema.Draft202012Validator(schema)
    return _validators[kind]


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def parse(payload):
    """The message in payload (bytes or str) as Python values; ValueError if not strict JSON."""
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8")
    return json.loads(payload, parse_constant=_reject_constant,
                      object_pairs_hook=_no_duplicates)


def validate(kind, payload):
    """None if payload (bytes, str or parsed value) is a valid `kind` message, else why not."""
    try:
        msg = parse(payload) if isinstance(payload, (bytes, str)) else payload
    except (ValueError, UnicodeDecodeError) as e:
        return f"not valid JSON: {e}"
    errors = sorted(_validator(kind).iter_errors(msg), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    e = errors[0]
    where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {e.message}{more}"


_TOPIC_KINDS = (
    (re.compile(r"/status$"), "status"),
    (re.compile(r"/event$"), "event"),
    (re.compile(r"/detector/[^/]+/state$"), "detector_state"),
    (re.compile(r"/heartbeat$"), "heartbeat"),
    (re.compile(r"/command$"), "command"),
    (re.compile(r"/command/response$"), "command_response"),
    (re.compile(r"/ack$"), "ack"),
)


def kind_of_topic(topic):
    """Schema name for a topic under the gateway's prefix, or None for other topics."""
    for pattern, kind in _TOPIC_KINDS:
        if pattern.search(topic):
            return kind
    return None


def kind_of_file(name):
    """Schema name a payload file belongs to: the longest schema name it starts with."""
    if not name.endswith(".json"):
        return None
    matches = [k for k in KINDS if name.startswith(k)]
    return max(matches, key=len) if matches else None


def check_dir(directory, out=sys.stdout):
    """Validate every payload file in directory; the number of failures (-1 if none found)."""
    names = sorted(n for n in os.listdir(directory) if n.endswith(".json"))
    if not names:
        print(f"FAIL {directory}: no payload files (*.json) to validate", file=out)
        return -1
    failures = 0
    for name in names:
        kind = kind_of_file(name)
        if kind is None:
            err = f"no schema matches this file name (expected one of {', '.join(KINDS)}*.json)"
        else:
            with open(os.path.join(directory, name), "rb") as f:
                err = validate(kind, f.read())
        if err:
            failures += 1
            print(f"FAIL {name}: {err}", file=out)
        else:
            print(f"ok   {name} ({kind})", file=out)
    return failures


def main(argv):
    if len(argv) != 2 or not os.path.isdir(argv[1]):
        print(f"usage: {os.path.basename(argv[0])} DIR  (a directory of <schema name>*.json files)",
              file=sys.stderr)
        return 2
    failures = check_dir(argv[1])
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
