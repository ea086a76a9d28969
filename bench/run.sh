#!/usr/bin/env bash
# gateprobe benchmark: run by hand, not in CI. Loopback only.
#
#   bash bench/run.sh            # full run (≈ 4 minutes)
#   ROUNDS=1 DURATION=3 bash bench/run.sh   # quick look
#
# Starts nginx on 127.0.0.1 (installing it with apt-get when missing and
# root), then prints side by side:
#   1. max throughput at equal connections: gateprobe --rate max vs oha, wrk,
#      hey (each where installed), alternating tools round by round, with the
#      ratio of medians to oha and to wrk;
#   2. achieved-rate error of gateprobe's open model at 1k / 5k / 20k rps;
#   3. peak RSS at 100k and 2M requests (gateprobe, and oha for scale);
#   4. the embedded simulator's throughput;
#   5. SigV4 signing's cost: gateprobe --rate max signed vs unsigned, a
#      templated POST, alternating round by round;
#   6. send precision of the open model at 1k / 5k / 20k rps: send lag p50 /
#      p99 and CPU per request with the pacing thread, beside tokio's
#      millisecond timer alone (GATEPROBE_TOKIO_TIMER=1, the engine before
#      the pacing thread), alternating; and at 1k rps the median latency
#      from the due time beside `oha -q 1000 --latency-correction`'s.
#   7. --samples: a 1M-request run with and without the CSV, alternating:
#      CPU per request, peak RSS and rate, and their ratios.
# SECTIONS="1 5" runs only those sections.
# On a 2-core machine nginx shares the cores with the load generator, as it
# would in any single-machine test: compare ratios, not absolute numbers.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS=${CONNECTIONS:-50}
DURATION=${DURATION:-8}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18181}
SECTIONS=${SECTIONS:-1 2 3 4 5 6 7}
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
URL="http://127.0.0.1:${PORT}/"

if ! command -v nginx >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
  else
    echo "nginx is required (apt-get install nginx-light)"; exit 1
  fi
fi
command -v /usr/bin/time >/dev/null 2>&1 || { [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null || true; }

# The shipped build (Cargo.toml profile.dist: thin LTO), not the default
# release profile the tests use.
cargo build --profile dist --quiet
GP=./target/dist/gateprobe

work=$(mktemp -d)
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 10000000;
  client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work;
  uwsgi_temp_path $work; scgi_temp_path $work;
  server { listen 127.0.0.1:${PORT}; location / { return 200 "hello\n"; } }
}
CONF
nginx -c "$work/nginx.conf" -p "$work" &
NGINX=$!
trap 'kill $NGINX 2>/dev/null; rm -rf "$work"' EXIT
sleep 0.5

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
json_field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval('d'+sys.argv[2]))" "$@"; }

# Each runner prints "rps cpu_seconds": the tool's own user+system CPU time,
# so that the table can show CPU per request (the generator's overhead).
timed() { /usr/bin/time -f "%U %S" -o "$work/time" "$@"; }
cpu_s() { awk '{print $1+$2}' "$work/time"; }
run_gateprobe() { timed $GP load "$URL" --rate max -c "$CONNECTIONS" --duration "${DURATION}s" --quiet --json "$work/g.json" >/dev/null; echo "$(json_field "$work/g.json" "['run']['achieved_rate_per_s']") $(cpu_s)"; }
run_oha() { timed oha -c "$CONNECTIONS" -z "${DURATION}s" --no-tui --output-format json "$URL" 2>/dev/null > "$work/oha.json"; echo "$(json_field "$work/oha.json" "['summary']['requestsPerSec']") $(cpu_s)"; }
run_wrk() { timed wrk -t2 -c "$CONNECTIONS" -d "${DURATION}s" "$URL" > "$work/wrk.txt"; echo "$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt") $(cpu_s)"; }
run_hey() { timed hey -c "$CONNECTIONS" -z "${DURATION}s" "$URL" > "$work/hey.txt"; echo "$(awk '/Requests\/sec/ {print $2}' "$work/hey.txt") $(cpu_s)"; }

tools=(gateprobe)
for tool in oha wrk hey; do command -v "$tool" >/dev/null 2>&1 && tools+=("$tool") || echo "($tool not installed: skipped)"; done
declare -A results cpus
if want 1; then
echo "== 1. max throughput, $CONNECTIONS connections, ${DURATION}s per run, $ROUNDS rounds"
for round in $(seq 1 "$ROUNDS"); do
  for tool in "${tools[@]}"; do
    read -r rps cpu < <(run_$tool)
    us=$(python3 -c "print(f'{$cpu*1e6/($rps*$DURATION):.2f}')")
    results[$tool]="${results[$tool]:-} $rps"
    cpus[$tool]="${cpus[$tool]:-} $us"
    printf "   round %d  %-10s %10.0f rps %8s µs CPU/request\n" "$round" "$tool" "$rps" "$us"
  done
done
declare -A med medcpu
for tool in "${tools[@]}"; do
  med[$tool]=$(echo "${results[$tool]}" | tr ' ' '\n' | grep -v '^$' | median)
  medcpu[$tool]=$(echo "${cpus[$tool]}" | tr ' ' '\n' | grep -v '^$' | median)
done
printf "   %-10s %12s %8s %8s %16s %10s\n" tool "median rps" "÷ oha" "÷ wrk" "µs CPU/request" "÷ oha"
for tool in "${tools[@]}"; do
  ratio_oha=$( [ -n "${med[oha]:-}" ] && python3 -c "print(f'{${med[$tool]}/${med[oha]}:.2f}')" || echo -)
  ratio_wrk=$( [ -n "${med[wrk]:-}" ] && python3 -c "print(f'{${med[$tool]}/${med[wrk]}:.2f}')" || echo -)
  cpu_oha=$( [ -n "${medcpu[oha]:-}" ] && python3 -c "print(f'{${medcpu[$tool]}/${medcpu[oha]}:.2f}')" || echo -)
  printf "   %-10s %12.0f %8s %8s %16s %10s\n" "$tool" "${med[$tool]}" "$ratio_oha" "$ratio_wrk" "${medcpu[$tool]}" "$cpu_oha"
done
fi

if want 2; then
echo "== 2. open-model rate accuracy (gateprobe, ${DURATION}s each)"
printf "   %8s %12s %10s %22s %12s\n" target achieved error "worst second vs target" "dropped"
for rate in 1000 5000 20000; do
  $GP load "$URL" --rate "$rate" --duration "${DURATION}s" --quiet --json "$work/r.json" >/dev/null
  python3 - "$work/r.json" "$rate" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); target = float(sys.argv[2])
run = r["run"]; sent = r["series"]["sent"]
full = sent[:int(run["duration_s"])]  # whole seconds only
worst = max(full) / target - 1 if full else 0
print(f"   {target:8.0f} {run['achieved_rate_per_s']:12.1f} {100*(run['achieved_rate_per_s']/target-1):+9.2f}% {100*worst:+21.2f}% {run['dropped']:12d}")
PY
done
fi

if want 3; then
echo "== 3. peak RSS (closed model, $CONNECTIONS connections)"
printf "   %-10s %10s %12s\n" tool requests "peak RSS MB"
for count in 100000 2000000; do
  $GP load "$URL" --rate max -c "$CONNECTIONS" -n "$count" --quiet --json "$work/m.json" >/dev/null
  printf "   %-10s %10d %12.1f\n" gateprobe "$count" "$(json_field "$work/m.json" "['run']['peak_rss_bytes']/1e6")"
  if command -v oha >/dev/null && [ -x /usr/bin/time ]; then
    kb=$( { /usr/bin/time -f '%M' oha -c "$CONNECTIONS" -n "$count" --no-tui "$URL" >/dev/null; } 2>&1 | tail -1)
    printf "   %-10s %10d %12.1f\n" oha "$count" "$(python3 -c "print($kb*1024/1e6)")"
  fi
done
fi

if want 4; then
echo "== 4. the embedded simulator's throughput (default config, GET /DEV/hello, $CONNECTIONS connections)"
SIM_PORT=$((PORT + 1))
$GP sim --listen "127.0.0.1:${SIM_PORT}" --seed 1 >/dev/null &
SIM=$!
trap 'kill $NGINX $SIM 2>/dev/null; rm -rf "$work"' EXIT
sleep 0.5
# Past the account throttle (10,000 rps, burst 5,000) answers are 429s: still
# answers the simulator had to compute, which is what this measures.
if command -v wrk >/dev/null; then
  printf "   %-10s %10.0f answers/s\n" wrk "$(wrk -t1 -c "$CONNECTIONS" -d "${DURATION}s" "http://127.0.0.1:${SIM_PORT}/DEV/hello" | awk '/Requests\/sec/ {print $2}')"
fi
$GP load "http://127.0.0.1:${SIM_PORT}/DEV/hello" --rate max -c "$CONNECTIONS" --duration "${DURATION}s" --quiet --json "$work/s.json" >/dev/null
printf "   %-10s %10.0f answers/s\n" gateprobe "$(json_field "$work/s.json" "['run']['achieved_rate_per_s']")"
fi

if want 5; then
echo "== 5. SigV4 signing (templated POST, --rate max, $CONNECTIONS connections, ${DURATION}s per run, $ROUNDS rounds)"
export AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
post() { timed $GP load "${URL}orders/{{seq}}" -X POST -d '{"order": {{seq}}, "id": "{{uuid}}"}' --rate max -c "$CONNECTIONS" --duration "${DURATION}s" --quiet --json "$work/p.json" "$@" >/dev/null; rps=$(json_field "$work/p.json" "['run']['achieved_rate_per_s']"); echo "$rps $(python3 -c "print(f'{$(cpu_s)*1e6/($rps*$DURATION):.2f}')")"; }
unsigned=""; signed=""; ucpu=""; scpu=""
for round in $(seq 1 "$ROUNDS"); do
  read -r u uc < <(post); read -r s sc < <(post --aws-sigv4 us-east-1)
  unsigned="$unsigned $u"; signed="$signed $s"; ucpu="$ucpu $uc"; scpu="$scpu $sc"
  printf "   round %d  unsigned %8.0f rps %6s µs CPU/request   signed %8.0f rps %6s µs CPU/request\n" "$round" "$u" "$uc" "$s" "$sc"
done
mu=$(echo "$unsigned" | tr ' ' '\n' | grep -v '^$' | median)
ms=$(echo "$signed" | tr ' ' '\n' | grep -v '^$' | median)
mcu=$(echo "$ucpu" | tr ' ' '\n' | grep -v '^$' | median)
mcs=$(echo "$scpu" | tr ' ' '\n' | grep -v '^$' | median)
printf "   median   unsigned %8.0f rps %6s µs   signed %8.0f rps %6s µs   rps signed ÷ unsigned %.2f (target ≥ 0.80)\n" "$mu" "$mcu" "$ms" "$mcs" "$(python3 -c "print($ms/$mu)")"
fi

if want 6; then
echo "== 6. send precision (open model, ${DURATION}s per run, $ROUNDS rounds; the cores are shared with nginx)"
# The machine's own floor, before any load: how long a thread that never
# sleeps goes without running (the hypervisor's steal, other processes), and
# how late a plain thread wakes from a sleep to an absolute deadline every
# 1 ms. No timer in any tool can send earlier than its thread runs, so these
# bound what the send lag's tail can show on this machine.
python3 - <<'PY'
import time
end = time.perf_counter() + 3; last = time.perf_counter(); gaps = []
while last < end:
    now = time.perf_counter()
    if now - last > 100e-6: gaps.append(now - last)
    last = now
late = []
t0 = time.perf_counter()
for i in range(1, 3001):
    due = t0 + i * 1e-3
    wait = due - time.perf_counter()
    if wait > 0: time.sleep(wait)
    late.append((time.perf_counter() - due) * 1e6)
late.sort()
q = lambda p: late[min(len(late) - 1, int(p * len(late)))]
print(f"   machine floor: a spinning thread stood still {len(gaps)} times over 100 µs in 3 s "
      f"({100 * sum(gaps) / 3:.2f}% of the time, longest {max(gaps, default=0) * 1e3:.2f} ms); "
      f"a 1 ms sleep loop (Python) woke late p50 {q(.5):.0f} µs, p99 {q(.99):.0f} µs, p99.9 {q(.999):.0f} µs")
PY
printf "   %6s %-12s %12s %12s %16s %12s %13s\n" rps timer "lag p50 µs" "lag p99 µs" "µs CPU/request" "latency p50" "machine busy"
# The whole machine's busy share over a run (every core, every process:
# gateprobe, nginx and the rest), from /proc/stat: 100% is saturated.
busy_ticks() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
lag_run() { # rate timer
  read -r busy0 total0 < <(busy_ticks)
  GATEPROBE_TOKIO_TIMER=$2 timed $GP load "$URL" --rate "$1" --duration "${DURATION}s" --quiet --json "$work/lag.json" >/dev/null
  read -r busy1 total1 < <(busy_ticks)
  python3 - "$work/lag.json" "$1" "$(cpu_s)" "$(( (100 * (busy1 - busy0)) / (total1 - total0 + 1) ))" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); lag = r["schedule_lag_ms"]; sent = r["run"]["requests_sent"]
ok = next(iter(c for c in r["classes"].values() if c["latency_ms"]), None)
print(f"{lag['p50']*1000:.0f} {lag['p99']*1000:.0f} {float(sys.argv[3])*1e6/max(sent,1):.1f} {ok['latency_ms']['p50'] if ok else 0} {sys.argv[4]}")
PY
}
for rate in 1000 5000 20000; do
  for timer in 0 1; do
    p50s=""; p99s=""; cpus6=""; lats=""; busys=""
    for round in $(seq 1 "$ROUNDS"); do
      read -r p50 p99 cpu lat busy < <(lag_run "$rate" "$timer")
      p50s="$p50s $p50"; p99s="$p99s $p99"; cpus6="$cpus6 $cpu"; lats="$lats $lat"; busys="$busys $busy"
    done
    name=$([ "$timer" = 0 ] && echo pacing || echo "tokio 1 ms")
    m() { echo "$1" | tr ' ' '\n' | grep -v '^$' | median; }
    printf "   %6d %-12s %12s %12s %16s %9s ms %12s%%\n" "$rate" "$name" "$(m "$p50s")" "$(m "$p99s")" "$(m "$cpus6")" "$(m "$lats")" "$(m "$busys")"
  done
done
echo "   target: lag p50 ≤ 50 µs and p99 ≤ 500 µs while the machine is not saturated (machine busy well under 100%)"
if command -v oha >/dev/null; then
  # Alternating, round by round, so that both see the same machine.
  olats=""; glats=""
  for round in $(seq 1 "$ROUNDS"); do
    read -r _ _ _ glat _ < <(lag_run 1000 0)
    oha -q 1000 --latency-correction -z "${DURATION}s" --no-tui --output-format json "$URL" 2>/dev/null > "$work/ohaq.json"
    olat=$(json_field "$work/ohaq.json" "['latencyPercentiles']['p50']*1000")
    printf "   round %d  1k rps median latency from the due time: gateprobe %s ms, oha %.3f ms\n" "$round" "$glat" "$olat"
    olats="$olats $olat"; glats="$glats $glat"
  done
  ol=$(echo "$olats" | tr ' ' '\n' | grep -v '^$' | median)
  gl=$(echo "$glats" | tr ' ' '\n' | grep -v '^$' | median)
  printf "   median: gateprobe %s ms, oha -q 1000 --latency-correction %.3f ms, ratio %.2f (target ≤ 1.2)\n" "$gl" "$ol" "$(python3 -c "print($gl/$ol)")"
else
  echo "   (oha not installed: \`cargo install oha\` for the latency comparison)"
fi
fi

if want 7; then
COUNT=${SAMPLES_COUNT:-1000000}
echo "== 7. --samples: $COUNT requests (--rate max, $CONNECTIONS connections) without and with the CSV, alternating, $ROUNDS rounds"
samples_run() {
  timed $GP load "$URL" --rate max -c "$CONNECTIONS" -n "$COUNT" --quiet --json "$work/x.json" "$@" >/dev/null
  echo "$(json_field "$work/x.json" "['run']['achieved_rate_per_s']") $(python3 -c "print(f'{$(cpu_s)*1e6/$COUNT:.2f}')") $(json_field "$work/x.json" "['run']['peak_rss_bytes']/1e6")"
}
wr=""; wc=""; wm=""; sr=""; sc=""; sm=""
for round in $(seq 1 "$ROUNDS"); do
  read -r r c m < <(samples_run); wr="$wr $r"; wc="$wc $c"; wm="$wm $m"
  read -r r2 c2 m2 < <(samples_run --samples "$work/s.csv"); sr="$sr $r2"; sc="$sc $c2"; sm="$sm $m2"
  rows=$(($(wc -l < "$work/s.csv") - 1))
  printf "   round %d  without: %8.0f rps %6s µs CPU/request %7.1f MB   with: %8.0f rps %6s µs CPU/request %7.1f MB (%d rows)\n" "$round" "$r" "$c" "$m" "$r2" "$c2" "$m2" "$rows"
done
med() { echo "$1" | tr ' ' '\n' | grep -v '^$' | median; }
printf "   median: CPU/request %s → %s µs (%s µs), peak RSS %s → %s MB (ratio %s; target ≤ 1.10), rate ratio %s\n" \
  "$(med "$wc")" "$(med "$sc")" "$(python3 -c "print(f'{$(med "$sc")-$(med "$wc"):+.2f}')")" \
  "$(med "$wm")" "$(med "$sm")" "$(python3 -c "print(f'{$(med "$sm")/$(med "$wm"):.3f}')")" \
  "$(python3 -c "print(f'{$(med "$sr")/$(med "$wr"):.3f}')")"
fi
