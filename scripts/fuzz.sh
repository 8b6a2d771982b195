#!/usr/bin/env bash
# Runs Vigie's cargo-fuzz targets (fuzz/) for a while each, then minimizes their corpora.
#
#   scripts/fuzz.sh [MINUTES] [TARGET...]     default: 10 minutes, every target
#
# Needs the nightly toolchain (rustup toolchain install nightly); installs cargo-fuzz if it
# is missing. Each target runs single-process under `nice`, FUZZ_PARALLEL (default 2) at a
# time, for MINUTES of wall clock; its corpus (fuzz/corpus/<target>, committed) grows as
# it goes and is minimized with `cargo fuzz cmin` after a clean run. A crash stops that
# target's run and leaves the input in fuzz/artifacts/<target>/; minimize it with
# `cargo +nightly fuzz tmin -O -a <target> <file>`, fix, and commit the minimized input to
# fuzz/regressions/<target>/ so that `cargo test -p vigie-tests --test fuzz_regressions`
# replays it. Logs: fuzz/artifacts/logs/<target>.log. Not part of CI (it takes an hour).
set -euo pipefail

minutes=${1:-10}
shift || true
case "$minutes" in
    '' | *[!0-9]* | 0) echo "usage: $0 [MINUTES>=1] [TARGET...]" >&2; exit 2 ;;
esac
all_targets=(decode_post analyzer search_query watchlist_query config journal)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi
parallel=${FUZZ_PARALLEL:-2}

# Longest input per target: a Kafka message or file line, a query string, a config file.
max_len() {
    case "$1" in
        decode_post | journal) echo 65536 ;;
        analyzer) echo 16384 ;;
        config) echo 32768 ;;
        search_query | watchlist_query) echo 4096 ;;
        *) echo "unknown fuzz target $1" >&2; exit 2 ;;
    esac
}

cd "$(dirname "$0")/../fuzz"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
# -O: release, as fuzzing wants; -a: debug assertions and overflow checks, as in `cargo test`.
fuzz_flags=(-O -a)
echo "building the fuzz targets (nightly, AddressSanitizer)…"
nice -n 10 cargo +nightly fuzz build "${fuzz_flags[@]}"
mkdir -p artifacts/logs

run_target() {
    local target=$1 len
    len=$(max_len "$target")
    mkdir -p "corpus/$target" "artifacts/$target"
    local log="artifacts/logs/$target.log" status=0
    nice -n 10 cargo +nightly fuzz run "${fuzz_flags[@]}" "$target" "corpus/$target" -- \
        -max_total_time=$((minutes * 60)) -max_len="$len" -rss_limit_mb=2048 -timeout=30 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    if [ "$status" -eq 0 ]; then
        nice -n 10 cargo +nightly fuzz cmin "${fuzz_flags[@]}" "$target" "corpus/$target" -- \
            -max_len="$len" -rss_limit_mb=2048 -timeout=30 >>"$log" 2>&1 || status=$?
    fi
    echo "$status" >"artifacts/logs/$target.status"
}

started=$(date +%s)
for target in "${targets[@]}"; do
    max_len "$target" >/dev/null
    while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || true; done
    echo "fuzzing $target for $minutes min…"
    run_target "$target" &
done
wait

printf '\n%-16s %8s %14s %8s %8s\n' target minutes executions crashes corpus
failed=0
for target in "${targets[@]}"; do
    log="artifacts/logs/$target.log"
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | head -n1 | grep -o '[0-9]*$' || true)
    # libFuzzer writes one test unit per finding (crash, timeout, out of memory).
    crashes=$(grep -c 'Test unit written to' "$log" || true)
    status=$(cat "artifacts/logs/$target.status")
    [ "$status" -eq 0 ] || failed=1
    printf '%-16s %8s %14s %8s %8s\n' "$target" "$minutes" "${execs:-?}" "$crashes" \
        "$(find "corpus/$target" -type f | wc -l)"
done
echo "wall clock: $(( ($(date +%s) - started) / 60 )) min; logs in fuzz/artifacts/logs/"
if [ "$failed" -ne 0 ]; then
    echo "some targets crashed or failed: see fuzz/artifacts/<target>/ and the logs" >&2
    exit 1
fi
