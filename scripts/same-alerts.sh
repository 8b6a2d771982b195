#!/usr/bin/env bash
# Checks that detection and alerting still give the same alerts (issue 9: "vigie eval gives
# the same alerts ... as before the change"):
# - the detector: `vigie eval --alerts-out` on eval/pheme-mixed and eval/mediaeval-dev-mixed,
#   every alert (narrative id, parent, event time, severity, cited posts, label, headline,
#   coordination) compared with the reference;
# - the alert policy (which the eval does not run): `vigie replay --alerts-to` of the IRA
#   posts, every notification (id, kind, sequence, group, severity, content; evidence lists
#   as digests, account pseudonyms left out: scripts/compact-notifications.py) compared
#   with the reference.
# References are in docs/measurements/alerts/.
#
#   scripts/same-alerts.sh            compare (exit 1 on any difference)
#   scripts/same-alerts.sh --update   write the references from this build
#
# Needs ../shared/data (or SHARED_DATA) and a release build (or TEST_VIGIE_BINARY; not
# VIGIE_…: the daemon reads every VIGIE_ variable as a configuration override):
#   cargo build --release -p vigie-daemon --bin vigie
# About 3 minutes here (2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
shared="${SHARED_DATA:-../shared/data}"
data="$shared/eval"
bin="${TEST_VIGIE_BINARY:-target/release/vigie}"
reference=docs/measurements/alerts
update=false
[[ "${1:-}" == "--update" ]] && update=true
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
# Compares the reference (argv[1], gzip) with this build's lines (argv[2]); names the first
# differing records and fields, and what one list has beyond the other.
compare=$(cat <<'PY'
import gzip, json, sys
expected = [json.loads(l) for l in gzip.open(sys.argv[1], "rt")]
actual = [json.loads(l) for l in open(sys.argv[2])]
def compare(expected, actual, key="key"):
    if expected == actual:
        print(f"same {len(actual)} records")
        sys.exit(0)
    print(f"records differ: {len(expected)} expected, {len(actual)} now")
    shown = 0
    for i, (e, a) in enumerate(zip(expected, actual)):
        if e != a:
            fields = sorted(k for k in set(e) | set(a) if e.get(k) != a.get(k))
            print(f"  #{i} {e.get(key)} vs {a.get(key)}: differ in {', '.join(fields)}")
            shown += 1
            if shown == 10:
                break
    if shown == 0:
        longer, name = (expected, "expected") if len(expected) > len(actual) else (actual, "now")
        extra = longer[min(len(expected), len(actual)):]
        print(f"  the same up to #{min(len(expected), len(actual))}; {len(extra)} more {name},"
              f" first {extra[0].get(key)}")
    sys.exit(1)
PY
)
for stream in pheme-mixed mediaeval-dev-mixed; do
    "$bin" --log warn eval "$data/$stream.jsonl.gz" --json --alerts-out "$work/$stream.jsonl" \
        > "$work/$stream.report.json"
    python3 - "$work/$stream.report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"  posts {r['posts']}, detect_secs {r['detect_secs']:.2f} "
      f"({r['posts'] / max(r['detect_secs'], 1e-9):.0f} posts/s), load_secs {r['load_secs']:.2f}")
PY
    # The cited posts are kept as their count and a digest: the reference stays small
    # and a difference still names the alert and the field.
    python3 - "$work/$stream.jsonl" > "$work/$stream.compact.jsonl" <<'PY'
import hashlib, json, sys
for line in open(sys.argv[1]):
    alert = json.loads(line)
    ids = alert.pop("member_post_ids")
    alert["cited_posts"] = len(ids)
    alert["cited_digest"] = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
    print(json.dumps(alert, ensure_ascii=False, sort_keys=True))
PY
    mv "$work/$stream.compact.jsonl" "$work/$stream.jsonl"
    if $update; then
        gzip -9n < "$work/$stream.jsonl" > "$reference/$stream.jsonl.gz"
        echo "$stream: reference written ($(wc -l < "$work/$stream.jsonl") alerts)"
        continue
    fi
    if COMPARE="$compare" python3 - "$reference/$stream.jsonl.gz" "$work/$stream.jsonl" <<'PY'
import os
exec(os.environ["COMPARE"])
compare(expected, actual)
PY
    then echo "$stream: ok"; else echo "$stream: DIFFERENT"; status=1; fi
done

# The alert policy, on the IRA posts.
ira="$shared/ira-troll-tweets/posts.jsonl.gz"
"$bin" --log warn replay "$ira" --data-dir "$work/ira-data" --alerts-to "$work/ira.raw.jsonl" \
    > /dev/null
python3 scripts/compact-notifications.py < "$work/ira.raw.jsonl" > "$work/ira.jsonl"
if $update; then
    gzip -9n < "$work/ira.jsonl" > "$reference/ira-replay-notifications.jsonl.gz"
    echo "ira replay: reference written ($(wc -l < "$work/ira.jsonl") notifications)"
elif COMPARE="$compare" python3 - "$reference/ira-replay-notifications.jsonl.gz" "$work/ira.jsonl" <<'PY'
import os
exec(os.environ["COMPARE"])
compare(expected, actual, key="id")
PY
then echo "ira replay: ok"; else echo "ira replay: DIFFERENT"; status=1; fi
exit $status
