#!/usr/bin/env python3
"""Verifies Vigie's signed webhook requests with the reference Standard Webhooks library
(PyPI `standardwebhooks`), as a receiver would.

Reads JSON on stdin: {"secret": "whsec_...", "requests": [{"headers": {...}, "body": "..."}]}.
Prints {"verified": N, "types": {...}, "levels": {...}, "parents": {...}} on success; exits 1
naming the first request that does not verify.
"""
import collections
import json
import sys

from standardwebhooks.webhooks import Webhook


def main() -> int:
    given = json.load(sys.stdin)
    hook = Webhook(given["secret"])
    types = collections.Counter()
    levels = collections.Counter()
    parents = collections.Counter()
    for index, request in enumerate(given["requests"]):
        headers = {name.lower(): value for name, value in request["headers"].items()}
        try:
            payload = hook.verify(request["body"], headers)
        except Exception as err:  # the library raises WebhookVerificationError and others
            print(f"request {index} does not verify: {err!r}", file=sys.stderr)
            return 1
        for key in ("type", "timestamp", "data"):
            if key not in payload:
                print(f"request {index}: payload has no {key!r}", file=sys.stderr)
                return 1
        alert = payload["data"]["alert"]
        types[payload["type"]] += 1
        levels[alert.get("level", "?")] += 1
        if alert.get("parent") is not None:
            parents[str(alert["parent"])] += 1
    print(json.dumps({"verified": len(given["requests"]), "types": types,
                      "levels": levels, "parents": parents}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
