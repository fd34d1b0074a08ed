#!/usr/bin/env bash
# Runs every benchmark (each compares netwarden with a peer measured in the same run), collects the
# one `BENCH name=… ours=… peer=… ratio=… goal=… met=…` line each prints, and writes a Markdown
# table to a file (default: $CARGO_TARGET_DIR or ./target, bench-report.md) and to stdout.
#
# Usage: tests/bench/run-all.sh [--out FILE] [--only a,b,…] [--scale-full] [--ceiling]
#   --only        run only these benches (snmp_poll, poll_cpu, ingest, rules_eval, alert_latency, scale)
#   --scale-full  the issue's full scale run: 10,000 devices for 10 minutes (heavy: ~15 min on 2 cores)
#   --ceiling     after the scale run, step the device count up until polls are missed (~10 min more)
# Environment: NICE (default 10) for every cargo command; NETWARDEN_BENCH_* knobs pass through to the
# benches (see the top of each file in tests/benches/). Logs: <target>/bench-logs/<name>.log.
# Needs what the benches need: root for snmp_poll (a private network namespace), net-snmp, PostgreSQL,
# prometheus, prometheus-snmp-exporter (Debian packages); a bench that cannot run says why in its row.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
out="$target/bench-report.md"
only=""
nice_level="${NICE:-10}"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --scale-full) export NETWARDEN_BENCH_SCALE_DEVICES=10000 NETWARDEN_BENCH_SCALE_SECONDS=600; shift ;;
    --ceiling) export NETWARDEN_BENCH_SCALE_CEILING=1; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "run-all.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

benches=(snmp_poll poll_cpu ingest rules_eval)
# Benchmark 5 (alert → webhook latency vs Alertmanager) joins as soon as its file exists.
[ -f tests/benches/alert_latency.rs ] && benches+=(alert_latency)
benches+=(scale)
if [ -n "$only" ]; then
  IFS=',' read -r -a benches <<<"$only"
fi

logs="$target/bench-logs"
mkdir -p "$logs" "$(dirname "$out")"
cargo_nice() { nice -n "$nice_level" cargo "$@"; }

echo "building (release): the netwarden binary and the benches" >&2
cargo_nice build --release -p api --bin netwarden >"$logs/build.log" 2>&1 \
  && cargo_nice bench -p netwarden-tests --no-run >>"$logs/build.log" 2>&1 \
  || { tail -30 "$logs/build.log" >&2; echo "run-all.sh: build failed" >&2; exit 1; }

# field LINE KEY: the value of key="…" or key=… in a BENCH line.
field() {
  local re_quoted="(^|[[:space:]])$2=\"([^\"]*)\"" re_plain="(^|[[:space:]])$2=([^[:space:]]*)"
  if [[ $1 =~ $re_quoted ]]; then printf '%s' "${BASH_REMATCH[2]//|/\\|}"
  elif [[ $1 =~ $re_plain ]]; then printf '%s' "${BASH_REMATCH[2]//|/\\|}"
  fi
}

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
started="$(date -u '+%Y-%m-%d %H:%M UTC')"
rows=()
for b in "${benches[@]}"; do
  echo "running $b (log: $logs/$b.log)" >&2
  t0=$(date +%s)
  # Bounded: no bench may run longer than 40 minutes.
  timeout --signal=TERM --kill-after=60 2400 nice -n "$nice_level" \
    cargo bench -p netwarden-tests --bench "$b" >"$logs/$b.log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - t0 ))
  found=0
  while IFS= read -r line; do
    found=1
    met="$(field "$line" met)"
    rows+=("| $(field "$line" name) | $(field "$line" metric) | $(field "$line" ours) | $(field "$line" peer) | $(field "$line" peer_version) | $(field "$line" ratio) | $(field "$line" goal) | ${met} | ${secs} |")
  done < <(grep '^BENCH ' "$logs/$b.log")
  if [ "$found" = 0 ]; then
    why="$(grep -m1 -E '^skipped|panicked|error' "$logs/$b.log" || tail -1 "$logs/$b.log")"
    rows+=("| $b | no result (exit $rc): ${why//|/\\|} | | | | | | no | ${secs} |")
  fi
done

{
  echo "## Benchmarks, netwarden ÷ peer ($started)"
  echo
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), \
$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr); \
load average $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after; \
commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown). Logs: $logs/."
  echo
  echo "| benchmark | metric | ours | peer | peer version | ratio | goal | met? | run s |"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} >"$out"
cat "$out"
echo "report: $out" >&2
