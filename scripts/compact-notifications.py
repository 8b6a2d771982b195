#!/usr/bin/env python3
"""Compacts `vigie replay --alerts-to` output for scripts/same-alerts.sh: one line per
notification, its identity and state as they are (id, kind, sequence, times, group,
severity, narrative, labels, title, summary), and its evidence lists (representative
posts, links, accounts, languages, reasons) as a count and a digest. Account pseudonyms
are left out: their key is random per data dir, so two runs never share them."""
import hashlib
import json
import sys

PSEUDONYMOUS = ("account", "author")


def strip(value):
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in PSEUDONYMOUS}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


def digest(value):
    text = json.dumps(strip(value), ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


for line in sys.stdin:
    notification = json.loads(line)
    alert = notification.pop("alert")
    for key, value in list(alert.items()):
        if isinstance(value, list):
            alert[key] = {"count": len(value), "digest": digest(value)}
    notification["alert"] = strip(alert)
    print(json.dumps(notification, ensure_ascii=False, sort_keys=True))
