#!/bin/bash
# bench/run.sh protocol — milter protocol benchmark: securelist-milter (echo handler, Release build)
# against a libmilter reference milter doing the same work (bench/refmilter.c), both driven by the same
# load generator (bench/milterload.c), over a unix socket and over TCP on 127.0.0.1.
#
# Shape of work (both milters): at end-of-message replace the body with itself, delete the first
# recipient, add 10 recipients. Bodies of 4 KB and 1 MB; concurrency 1, 8 and 64.
# Prints msgs/s and p99 latency per point and the ratio ours/libmilter, then our peak RSS.
# "pipelines" is the same daemon with [Listener] Transport = pipelines (Pipelines.Sockets.Unofficial's socket
# server instead of Kestrel's socket transport); "pip/kes" is its throughput over the Kestrel one's.
# Targets: unix >= 1.0x, TCP >= 5x, p99 not worse, peak RSS <= 150 MB.
# A third milter, bench/baremilter.c (no library, zero-copy, no checks), shows what the machine allows:
# "bare x" is its throughput over libmilter's and "ours/bare" ours over its (goal >= 0.8 at every point).
# Each point runs the three milters in turn, R rounds,
# and prints the median of each figure (a shared 2-CPU VM varies by 2x between identical runs).
# "cpu us" is our daemon's CPU time (user + system, from /proc) per message and "cpu/bare" it over the bare
# milter's: unlike throughput it hardly moves with what else runs on the machine (a milter with fewer threads
# than its rival gets a smaller share of a loaded machine's CPUs; the bare one runs a thread per connection).
# The warm-up seconds count in the CPU time but not in the messages, alike for every milter.
#
# usage: bench/run.sh protocol [-d SECS_PER_POINT] [-w WARMUP_SECS] [-r ROUNDS]
#        env SPOOL=512K, SPOOL_MEMORY=64M: other [Milter] SpoolThreshold / SpoolMemory than the defaults
# Needs: build-essential, libmilter-dev (apt-get install -y build-essential libmilter-dev), dotnet SDK.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "${1:-}" = protocol ] || { sed -n '2,23p' "$0"; exit 2; }
shift
DUR=2 WARM=0.5 ROUNDS=3
while getopts "d:w:r:" o; do
    case $o in d) DUR=$OPTARG ;; w) WARM=$OPTARG ;; r) ROUNDS=$OPTARG ;; *) sed -n '2,23p' "$0"; exit 2 ;; esac
done

die() { echo "bench: $*" >&2; exit 1; }
command -v cc >/dev/null || die "no C compiler (apt-get install -y build-essential)"
[ -f /usr/include/libmilter/mfapi.h ] || die "libmilter headers missing (apt-get install -y libmilter-dev)"
command -v dotnet >/dev/null || die "dotnet SDK not found"

OUT=bench/out
mkdir -p "$OUT"
cc -O2 -Wall -o "$OUT/milterload" bench/milterload.c -pthread
cc -O2 -Wall -Wno-unused-parameter -o "$OUT/refmilter" bench/refmilter.c -lmilter -pthread
cc -O2 -Wall -o "$OUT/baremilter" bench/baremilter.c -pthread
dotnet build -c Release -nologo -v q src/MilterSecureList.Daemon -o "$OUT/daemon" >"$OUT/build.log" 2>&1 || { tail -20 "$OUT/build.log"; die "dotnet build failed"; }

TMP=$(mktemp -d /tmp/msl-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. scripts/lib.sh

start_ours() { # $1 = listen address, $2 = transport (kestrel | pipelines); sets OURS_PID
    cat >"$TMP/milter-$2.ini" <<INI
[Listener]
Socket = $1
Transport = $2
SocketMode = 0666
MaxConnections = 1000
[Milter]
Handler = echo
EchoRecipients = 10
${SPOOL:+SpoolThreshold = $SPOOL}
${SPOOL_MEMORY:+SpoolMemory = $SPOOL_MEMORY}
[Logging]
; per-message info lines at tens of thousands of messages/s would measure the log sink
Level = warn
INI
    dotnet "$OUT/daemon/securelist-milter.dll" --config "$TMP/milter-$2.ini" >"$TMP/ours-$2.log" 2>&1 &
    OURS_PID=$!
    PIDS+=("$OURS_PID")
    wait_listen "$1" || die "nothing listens on $1"
}

start_c() { # $1 = refmilter | baremilter; $2 = its address (libmilter syntax); $3 = address to probe
    "$OUT/$1" -k 10 "$2" >"$TMP/$1.log" 2>&1 &
    C_PID=$!
    PIDS+=($!)
    wait_listen "$3" || die "nothing listens on $3"
}

median() { sort -g | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime of process $1, in clock ticks
HZ=$(getconf CLK_TCK)

load() { # $1 target, $2 body, $3 concurrency, $4 milter pid -> "msgs_per_s p99_ms errors cpu_us_per_msg"
    local line t0 t1
    t0=$(ticks "$4")
    line=$("$OUT/milterload" -t "$1" -b "$2" -c "$3" -d "$DUR" -w "$WARM" -k 10 || true)
    t1=$(ticks "$4")
    echo "$line" | awk -v t=$((t1 - t0)) -v hz="$HZ" '{for(i=1;i<=NF;i++){split($i,a,"="); v[a[1]]=a[2]}
        print v["msgs_per_s"], v["p99_ms"], v["errors"], (v["msgs"] > 0 ? t * 1e6 / hz / v["msgs"] : 0)}'
}

printf '%-9s %-6s %5s | %12s %9s | %12s %9s | %7s %8s | %7s %9s | %12s %9s %8s | %7s %8s\n' transport body conc "libmilter/s" "p99 ms" "ours/s" "p99 ms" ratio target "bare x" "ours/bare" "pipelines/s" "p99 ms" "pip/kes" "cpu us" "cpu/bare"
PEAK_KB=0
for transport in unix tcp; do
    if [ $transport = unix ]; then
        OURS_ADDR="unix:$TMP/ours.sock"; REF_ADDR="unix:$TMP/ref.sock"; REF_PROBE=$REF_ADDR; REF_LOAD=$REF_ADDR
        BARE_ADDR="unix:$TMP/bare.sock"; BARE_LOAD=$BARE_ADDR
        PIP_ADDR="unix:$TMP/pip.sock"
        target=1.0
    else
        read -r p1 p2 p3 p4 <<<"$(free_port 4)"
        PIP_ADDR="inet:127.0.0.1:$p4"
        OURS_ADDR="inet:127.0.0.1:$p1"; REF_ADDR="inet:$p2@127.0.0.1"; REF_PROBE="inet:127.0.0.1:$p2"; REF_LOAD=$REF_PROBE
        BARE_ADDR="inet:$p3@127.0.0.1"; BARE_LOAD="inet:127.0.0.1:$p3"
        target=5.0
    fi
    start_ours "$PIP_ADDR" pipelines
    PIP_PID=$OURS_PID
    start_ours "$OURS_ADDR" kestrel
    start_c refmilter "$REF_ADDR" "$REF_PROBE"
    REF_PID=$C_PID
    start_c baremilter "$BARE_ADDR" "$BARE_LOAD"
    BARE_PID=$C_PID
    for body in 4096 1048576; do
        for conc in 1 8 64; do
            : >"$TMP/ref.runs"; : >"$TMP/ours.runs"; : >"$TMP/bare.runs"; : >"$TMP/pip.runs"
            for _ in $(seq "$ROUNDS"); do
                load "$REF_LOAD" $body $conc "$REF_PID" >>"$TMP/ref.runs"
                load "$OURS_ADDR" $body $conc "$OURS_PID" >>"$TMP/ours.runs"
                load "$BARE_LOAD" $body $conc "$BARE_PID" >>"$TMP/bare.runs"
                load "$PIP_ADDR" $body $conc "$PIP_PID" >>"$TMP/pip.runs"
            done
            ref_rate=$(awk '{print $1}' "$TMP/ref.runs" | median); ref_p99=$(awk '{print $2}' "$TMP/ref.runs" | median)
            our_rate=$(awk '{print $1}' "$TMP/ours.runs" | median); our_p99=$(awk '{print $2}' "$TMP/ours.runs" | median)
            bare_rate=$(awk '{print $1}' "$TMP/bare.runs" | median)
            our_cpu=$(awk '{print $4}' "$TMP/ours.runs" | median); bare_cpu=$(awk '{print $4}' "$TMP/bare.runs" | median)
            cpu_vs_bare=$(awk -v a="$our_cpu" -v b="$bare_cpu" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "inf" }')
            pip_rate=$(awk '{print $1}' "$TMP/pip.runs" | median); pip_p99=$(awk '{print $2}' "$TMP/pip.runs" | median)
            pip=$(awk -v a="$pip_rate" -v b="$our_rate" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "inf" }')
            pip_err=$(awk '{s+=$3} END{print s+0}' "$TMP/pip.runs")
            ref_err=$(awk '{s+=$3} END{print s+0}' "$TMP/ref.runs"); our_err=$(awk '{s+=$3} END{print s+0}' "$TMP/ours.runs")
            ratio=$(awk -v a="$our_rate" -v b="$ref_rate" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "inf" }')
            bare=$(awk -v a="$bare_rate" -v b="$ref_rate" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "inf" }')
            vs_bare=$(awk -v a="$our_rate" -v b="$bare_rate" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "inf" }')
            label=$([ $body = 4096 ] && echo 4KB || echo 1MB)
            note=""
            [ "$ref_err" != 0 ] && note="$note ref_errors=$ref_err"
            [ "$our_err" != 0 ] && note="$note our_errors=$our_err"
            [ "$pip_err" != 0 ] && note="$note pipelines_errors=$pip_err"
            printf '%-9s %-6s %5s | %12s %9s | %12s %9s | %6sx %7sx | %6sx %8sx | %12s %9s %7sx | %7.0f %7sx%s\n' $transport $label $conc "$ref_rate" "$ref_p99" "$our_rate" "$our_p99" "$ratio" "$target" "$bare" "$vs_bare" "$pip_rate" "$pip_p99" "$pip" "$our_cpu" "$cpu_vs_bare" "$note"
        done
    done
    kb=$(awk '/VmHWM/{print $2}' "/proc/$OURS_PID/status")
    [ "$kb" -gt "$PEAK_KB" ] && PEAK_KB=$kb
    kb=$(awk '/VmHWM/{print $2}' "/proc/$PIP_PID/status")
    [ "$kb" -gt "${PIP_PEAK_KB:-0}" ] && PIP_PEAK_KB=$kb
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
done
printf 'peak RSS of securelist-milter (VmHWM, includes concurrency 64 with 1 MB bodies): %d MB (target <= 150 MB); with Transport = pipelines: %d MB\n' $((PEAK_KB / 1024)) $((PIP_PEAK_KB / 1024))
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) (other processes share the CPUs; compare ratios, not absolute figures)"
