#!/usr/bin/env bash
# End-to-end demo: start the built-in mock server on a free port, profile it with 200 streaming chat
# requests at concurrency 8, and stop the server again whatever happens. Exits with the profile's code.
#
# Environment:
#   AIPERF_HPC        the CLI to run (default: .venv/bin/aiperf-hpc, else aiperf-hpc on PATH)
#   ARTIFACT_DIR      where the profile writes its artifacts (default: artifacts/demo)
#   START_TIMEOUT_S   how long the mock server may take to report its port (default: 30)
# Extra arguments are passed on to `aiperf-hpc profile`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ -n "${AIPERF_HPC:-}" ]]; then
  cli="$AIPERF_HPC"
  # A relative path means relative to where the caller stands, not to the repository root.
  if [[ "$cli" == */* && "$cli" != /* ]]; then
    cli="$(cd "$(dirname "$cli")" && pwd)/$(basename "$cli")"
  fi
elif [[ -x "$root/.venv/bin/aiperf-hpc" ]]; then
  cli="$root/.venv/bin/aiperf-hpc"
elif command -v aiperf-hpc >/dev/null 2>&1; then
  cli="aiperf-hpc"
else
  echo "demo: aiperf-hpc not found; run 'make install' (or 'make demo') first" >&2
  exit 1
fi
cd "$root"

artifact_dir="${ARTIFACT_DIR:-artifacts/demo}"
start_timeout_s="${START_TIMEOUT_S:-30}"
stop_timeout_s=10
poll_interval_s=0.05

work_dir="$(mktemp -d)"
server_out="$work_dir/mock-server.out"
server_err="$work_dir/mock-server.err"
server_pid=""
: >"$server_out"
: >"$server_err"

show_server_output() {
  echo "--- mock-server stdout (last 50 lines) ---" >&2
  tail -n 50 "$server_out" >&2 || true
  echo "--- mock-server stderr (last 50 lines) ---" >&2
  tail -n 50 "$server_err" >&2 || true
}

# SIGTERM first, SIGKILL once stop_timeout_s has passed; bash reaps the exited child on its own,
# so `kill -0` turns false as soon as the server is gone.
stop_server() {
  [[ -n "$server_pid" ]] || return 0
  if kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    local deadline=$((SECONDS + stop_timeout_s))
    while kill -0 "$server_pid" 2>/dev/null && ((SECONDS < deadline)); do
      sleep "$poll_interval_s"
    done
    if kill -0 "$server_pid" 2>/dev/null; then
      echo "demo: mock server ignored SIGTERM for ${stop_timeout_s}s; killing it" >&2
      kill -KILL "$server_pid" 2>/dev/null || true
    fi
  fi
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

on_exit() {
  local rc=$?
  stop_server
  rm -rf "$work_dir"
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$cli" mock-server --port 0 --ttft-ms 20 --itl-ms 2 >"$server_out" 2>"$server_err" &
server_pid=$!

# The server's first stdout line is `mock-server listening on http://HOST:PORT`. `read` succeeds
# only on a complete (newline-terminated) line, so a half-written port number is never taken.
port=""
deadline=$((SECONDS + start_timeout_s))
while [[ -z "$port" ]]; do
  if IFS= read -r first_line <"$server_out"; then
    if [[ "$first_line" =~ ^mock-server\ listening\ on\ http://[^[:space:]]+:([0-9]+)/?$ ]]; then
      port="${BASH_REMATCH[1]}"
      break
    fi
    echo "demo: unexpected first line from the mock server: '$first_line'" >&2
    show_server_output
    exit 1
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "demo: the mock server exited before reporting its port" >&2
    show_server_output
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    echo "demo: the mock server did not report its port within ${start_timeout_s}s" >&2
    show_server_output
    exit 1
  fi
  sleep "$poll_interval_s"
done
echo "demo: mock server (pid $server_pid) listening on port $port"

profile_rc=0
"$cli" profile \
  -u "http://127.0.0.1:$port" \
  -m mock-model \
  --endpoint-type chat \
  --streaming \
  --concurrency 8 \
  --request-count 200 \
  --artifact-dir "$artifact_dir" \
  "$@" || profile_rc=$?

if ((profile_rc == 0)); then
  echo "demo: done; artifacts in $artifact_dir/"
else
  echo "demo: aiperf-hpc profile exited with code $profile_rc" >&2
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "demo: the mock server is no longer running" >&2
  fi
  show_server_output
fi
exit "$profile_rc"
