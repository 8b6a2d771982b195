#!/usr/bin/env python3
"""Checks Vigie's Slack messages with Slack's own Block Kit models (PyPI `slack_sdk`): every
block parses to a known block type, passes the SDK's validation (lengths, counts) and
serializes back to exactly what was sent, and a message has at most 50 blocks.

Reads a JSON array of message bodies on stdin. Prints {"messages": N, "blocks": M} on
success; exits 1 naming the first problem.
"""
import json
import sys

from slack_sdk.models.blocks import Block

MAX_BLOCKS = 50


def main() -> int:
    messages = json.load(sys.stdin)
    total = 0
    for index, message in enumerate(messages):
        if not isinstance(message.get("text"), str) or not message["text"]:
            print(f"message {index}: no fallback text", file=sys.stderr)
            return 1
        blocks = message.get("blocks", [])
        if len(blocks) > MAX_BLOCKS:
            print(f"message {index}: {len(blocks)} blocks", file=sys.stderr)
            return 1
        for position, (raw, parsed) in enumerate(zip(blocks, Block.parse_all(blocks))):
            where = f"message {index} block {position} ({raw.get('type')})"
            if parsed is None:
                print(f"{where}: unknown block", file=sys.stderr)
                return 1
            try:
                parsed.validate_json()
            except Exception as err:
                print(f"{where}: {err}", file=sys.stderr)
                return 1
            if parsed.to_dict() != raw:
                print(f"{where}: does not round-trip:\n{raw}\n{parsed.to_dict()}",
                      file=sys.stderr)
                return 1
            total += 1
    print(json.dumps({"messages": len(messages), "blocks": total}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
