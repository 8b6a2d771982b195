#!/usr/bin/env bash
# Fault soak (issue 12): builds the `vigie` binary (debug build; dependencies are optimised
# in dev builds) and runs the #[ignore]d tests of tests/tests/soak.rs one at a time against
# a real broker (Tansu), then prints a summary table of the figures they report.
#
#   scripts/soak.sh                 # every scenario: ~30 minutes with the defaults
#   scripts/soak.sh sigkill_20      # only the tests whose name contains this filter
#   scripts/soak.sh --skip webhook  # any libtest filter arguments
#
# Knobs (environment): SOAK_SEED (kill points, printed), SOAK_POSTS (50000), SOAK_KILLS (20),
# SOAK_RATE (posts/s during the kills, 125), SOAK_FAST_RATE (posts/s otherwise, 1000),
# SOAK_WEBHOOK_DOWN_SECS (600),
# SOAK_BROKER_DOWN_SECS (10). The broker-restart scenario needs `python3 -m moto.server`
# (PyPI: moto[server]) as Tansu's persistent S3 storage.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
filters=("$@")
[[ ${#filters[@]} -gt 0 ]] || filters=(soak_)
out=$(mktemp -t vigie-soak.XXXXXX)
trap 'rm -f "$out"' EXIT

bash scripts/test-broker.sh install
cargo build -p vigie-daemon
started=$(date +%s)
status=0
cargo test -p vigie-tests --test soak -- --ignored --nocapture --test-threads=1 "${filters[@]}" \
  2>&1 | tee "$out" || status=$?

echo
echo "== fault soak summary ($(( $(date +%s) - started )) s, exit $status) =="
grep -E '^SOAK ' "$out" | sed 's/^SOAK //' | while read -r scenario fields; do
  printf '%-20s' "$scenario"
  for field in $fields; do printf ' %s' "$field"; done
  printf '\n'
done
grep -E '^test .* \.\.\. (ok|FAILED)$|^test result:' "$out" || true
exit "$status"
