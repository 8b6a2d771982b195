#!/usr/bin/env python3
"""Memory over a long stream (issue 9): replays a JSONL(.gz) file N times (default 9:
the 223k IRA posts become ~2 million) through `vigie replay -`, each copy with new ids and
its event times shifted past the previous copy, and samples the daemon's resident memory as
it goes. Prints RSS per 250k posts, the peak (VmHWM), and the slope of RSS against posts
after the first 500k (least squares, MiB per million posts): flat memory means ~0.

    cargo build --release -p vigie-daemon --bin vigie
    python3 benches/memory.py ../shared/data/ira-troll-tweets/posts.jsonl.gz [copies]

Needs only the Python standard library. Full detection and alerting run (default config,
no sinks); the index grows on disk in a temporary data dir.
"""

import datetime as dt
import gzip
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

REPORT_EVERY = 250_000
FLAT_AFTER = 500_000


def open_text(path):
    with open(path, "rb") as probe:
        magic = probe.read(2)
    return gzip.open(path, "rt", encoding="utf-8") if magic == b"\x1f\x8b" else open(path, encoding="utf-8")


def parse_time(text):
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def rss_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/ira-troll-tweets/posts.jsonl.gz"
    copies = int(sys.argv[2]) if len(sys.argv) > 2 else 9
    binary = os.environ.get("TEST_VIGIE_BINARY", "target/release/vigie")
    with open_text(path) as lines:
        posts = [json.loads(line) for line in lines if line.strip()]
    times = [parse_time(p["created_at"]) for p in posts]
    span = max(times) - min(times) + dt.timedelta(days=1)
    total = len(posts) * copies
    print(f"{len(posts)} posts x {copies} copies = {total} posts; each copy shifted by {span}")

    data_dir = tempfile.mkdtemp(prefix="vigie-memory-")
    daemon = subprocess.Popen(
        [binary, "replay", "--no-progress", "--log", "warn", "--data-dir", data_dir, "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        bufsize=1 << 16,
    )
    written = [0]

    def produce():
        try:
            for copy in range(copies):
                shift = span * copy
                for post, at in zip(posts, times):
                    shifted = dict(post)
                    shifted["id"] = f"{post['id']}-c{copy}"
                    shifted["created_at"] = (at + shift).strftime("%Y-%m-%dT%H:%M:%SZ")
                    daemon.stdin.write(json.dumps(shifted, ensure_ascii=False) + "\n")
                    written[0] += 1
        except BrokenPipeError:
            pass
        finally:
            try:
                daemon.stdin.close()
            except BrokenPipeError:
                pass

    producer = threading.Thread(target=produce, daemon=True)
    started = time.monotonic()
    producer.start()
    samples = []  # (posts written, RSS MiB)
    next_report = REPORT_EVERY
    peak = 0  # KiB, VmHWM at the last sample before exit
    print(f"{'posts':>10} {'secs':>8} {'RSS MiB':>9}")
    while daemon.poll() is None:
        rss = rss_kib(daemon.pid, "VmRSS")
        if rss is not None:
            samples.append((written[0], rss / 1024))
            if written[0] >= next_report:
                print(f"{written[0]:>10} {time.monotonic() - started:>8.0f} {rss / 1024:>9.0f}", flush=True)
                next_report += REPORT_EVERY
        peak = rss_kib(daemon.pid, "VmHWM") or peak
        time.sleep(1.0)
    producer.join()
    elapsed = time.monotonic() - started
    if daemon.returncode != 0:
        sys.exit(f"vigie replay failed with status {daemon.returncode}")
    late = [(n, m) for n, m in samples if n >= FLAT_AFTER]
    slope = float("nan")
    if len(late) >= 2:
        mean_n = sum(n for n, _ in late) / len(late)
        mean_m = sum(m for _, m in late) / len(late)
        var = sum((n - mean_n) ** 2 for n, _ in late)
        if var > 0:
            slope = sum((n - mean_n) * (m - mean_m) for n, m in late) / var * 1e6
    peak_mib = max([m for _, m in samples] + [peak / 1024])
    print(f"{written[0]} posts in {elapsed:.0f} s ({written[0] / elapsed:.0f} posts/s)")
    print(f"peak RSS {peak_mib:.0f} MiB; slope after {FLAT_AFTER} posts: {slope:+.1f} MiB per million posts")
    subprocess.run(["rm", "-rf", data_dir], check=False)


if __name__ == "__main__":
    main()
