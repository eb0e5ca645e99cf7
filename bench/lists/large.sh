#!/usr/bin/env bash
# A 1 MB post to a very large list (default 100,000 members). Prints figures measured in this one run:
#
#   setup    member certificates: a few hundred RSA-2048 key pairs (KEYS, default 256) behind MEMBERS distinct
#            certificates and addresses, signed by one P-256 issuer (key generation is not what is measured;
#            a re-key costs one RSA public operation per member whether keys repeat or not), imported with
#            `securelist member import --dir`.
#   cold     the directory's expansion of the list right after start (bench/directory --database), against a
#            bare SQLite read of the same rows.
#   direct   milterload replays the encrypted post over the milter socket, one daemon for the whole run: the
#            first post after start (cold), then warm posts split into copies of PER_COPY members ([Policy]
#            MembersPerCopy; the copies go to an smtp-sink) and, with UNSPLIT=1, as one copy to every member
#            (MembersPerCopy = 0, every member an ADDRCPT). Time per post, the daemon's peak RSS (VmHWM).
#   postfix  smtp-source -> Postfix (contrib snippet, scripts/postfix-sandbox.sh) -> securelist-milter ->
#            smtp-sink: one post, until Postfix has logged status=sent for every member (split, then unsplit),
#            against the same Postfix without the milter delivering the same post as MEMBERS/1000 messages of
#            1,000 RCPTs each (what the split post makes of it; Postfix's own expansion of a 100,000-address
#            virtual alias was still in cleanup after 10 minutes, so it is no usable reference).
#
# Needs root (Postfix), postfix, openssl, cc, python3-cryptography. Takes 10-20 minutes on 2 shared cores.
#   MEMBERS=100000 KEYS=256 NDIRECT=3 PER_COPY=1000 UNSPLIT=1 POSTFIX=1 bench/lists/large.sh
#   (UNSPLIT=0: through Postfix only the split post; REUSE=DIR KEEP=1: reuse an earlier run's set-up)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 PATH="/usr/sbin:$PATH" MSBUILDDISABLENODEREUSE=1 DOTNET_CLI_USE_MSBUILD_SERVER=0
MEMBERS=${MEMBERS:-100000}
KEYS=${KEYS:-256}
NDIRECT=${NDIRECT:-3}
POSTFIX=${POSTFIX:-1}
DIRECT=${DIRECT:-1}
PER_COPY=${PER_COPY:-1000}
UNSPLIT=${UNSPLIT:-1}
[ "$(id -u)" = 0 ] || { echo "bench/lists/large: run as root (Postfix)" >&2; exit 1; }
. scripts/lib.sh
t=$(missing_tools smtp-source smtp-sink postfix openssl cc python3) || { echo "bench/lists/large: $t is missing (see scripts/install-deps.sh)" >&2; exit 1; }
python3 -c 'import cryptography' 2>/dev/null || { echo "bench/lists/large: apt-get install -y python3-cryptography" >&2; exit 1; }
echo "== $(date -u '+%F %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"

build_programs
dotnet build bench/directory -c Release --nologo -v q -clp:ErrorsOnly >/dev/null
dirbench=$root/bench/directory/bin/Release/net10.0/directory-bench

# REUSE=DIR: a directory kept by an earlier run (KEEP=1): its certificates, database and post are used again.
if [ -n "${REUSE:-}" ]; then use_workdir "$REUSE"; KEEP=1; else use_workdir "$(mktemp -d /tmp/securelist-large.XXXXXX)"; fi
rm -rf "$work"/pf-* "$work/milter.sock"
cc -O2 -Wall -o "$work/milterload" bench/milterload.c -pthread
. bench/lists/common.sh
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l; }
# milterload always sends RCPT <rcpt1@example.com>: that is the list's address for the direct run.
list=rcpt1@example.com

write_milter_ini "$work"

if [ -z "${REUSE:-}" ]; then
echo "== setup: $MEMBERS member certificates over $KEYS RSA-2048 key pairs"
t0=$(now)
python3 - "$work" "$MEMBERS" "$KEYS" <<'PY'
import sys, os, datetime
from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa, ec
work, members, nkeys = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key() for _ in range(nkeys)]
issuer_key = ec.generate_private_key(ec.SECP256R1())
issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench CA")])
now = datetime.datetime.now(datetime.timezone.utc)
out = os.path.join(work, "members")
os.makedirs(out)
ku = x509.KeyUsage(True, False, True, False, False, False, False, False, False)
eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION])
for i in range(1, members + 1):
    addr = f"m{i}@bench.test"
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, addr)]))
            .issuer_name(issuer).public_key(keys[i % nkeys]).serial_number(i)
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(addr)]), critical=False)
            .add_extension(ku, critical=True).add_extension(eku, critical=False)
            .sign(issuer_key, hashes.SHA256()))
    with open(os.path.join(out, addr + ".pem"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
PY
echo "certificates: $(since "$t0") s (setup, not a figure)"
t0=$(now)
"$securelist" --config "$work/milter.ini" list create "$list" >/dev/null
"$securelist" --config "$work/milter.ini" member import "$list" --dir "$work/members" >/dev/null 2>"$work/import.log"
n=$("$securelist" --config "$work/milter.ini" member ls "$list" --plain | wc -l)
[ "$n" = "$MEMBERS" ] || { echo "bench/lists/large: member import gave $n members" >&2; tail -5 "$work/import.log" >&2; exit 1; }
echo "member import --dir: $(since "$t0") s"
"$securelist" --config "$work/milter.ini" list export-cert "$list" >"$work/list.pem"
make_entity 1048576 "$work/entity"
openssl cms -encrypt -binary -aes256 -from sender@bench.test -to "$list" -subject "bench 1 MB" -in "$work/entity" -out "$work/post.eml" "$work/list.pem"
fi
echo "post: $(stat -c %s "$work/post.eml") bytes (1 MB text, encrypted to the list, base64)"

echo "== cold directory expansion (bench/directory --database, a fresh process and cache)"
"$dirbench" --database "$work/lists.db" --list "$list" | sed 's/^/  /'

# Two ways to send the post: one copy to every member ([Policy] MembersPerCopy = 0: one CMS with every member's
# RecipientInfo) and split into copies of PER_COPY members (the default, each copy re-keyed for its group).
read -r copy_sink <<<"$(free_port 1)"
smtp-sink -u postfix "127.0.0.1:$copy_sink" 256 >"$work/copy-sink.log" 2>&1 &
copy_sink_pid=$!
extra_pids="$copy_sink_pid"
set_policy() { # membersPerCopy copyServer: [Policy] of milter.ini; a running milter re-reads it on SIGHUP
    sed -i '/^\[Policy\]/,$d' "$work/milter.ini"
    printf '[Policy]\nMembersPerCopy = %s\nCopyServer = %s\n' "$1" "$2" >>"$work/milter.ini"
    if [ -n "$milter_pid" ]; then
        local before
        before=$(grep -c "reloaded" "$work/milter.log" || true)
        kill -HUP "$milter_pid"
        for _ in $(seq 600); do [ "$(grep -c "reloaded" "$work/milter.log" || true)" -gt "$before" ] && return 0; sleep 0.1; done
        echo "bench/lists/large: the milter did not reload" >&2; exit 1
    fi
}
hwm() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$milter_pid/status"; }
added() { if [ "$1" = 0 ] || [ "$1" -ge "$MEMBERS" ]; then echo "$MEMBERS"; else echo "$1"; fi; }
load() { # count expected-addrcpt
    "$work/milterload" -t "unix:$work/milter.sock" -c 1 -n "$1" -W 0 -r 1 -f "$work/post.eml" -k "$2" -T 3600000 2>&1 | tail -1
}
check() { grep -q "errors=0" <<<"$1" || { echo "bench/lists/large: milterload: $1" >&2; tail -5 "$work/milter.log" >&2; exit 1; }; }
direct() { # label membersPerCopy
    local k rest p50 bytes
    set_policy "$2" "127.0.0.1:$copy_sink"
    k=$(added "$2")
    rest=$(load "$NDIRECT" "$k")
    check "$rest"
    p50=$(sed -n 's/.* p50_ms=\([0-9.]*\).*/\1/p' <<<"$rest")
    bytes=$(sed -n 's/.* bytes_replaced=\([0-9]*\).*/\1/p' <<<"$rest")
    echo "RESULT direct, $1 (MembersPerCopy = $2): $p50 ms per post (p50 of $NDIRECT, warm), $k ADDRCPTs, replaced body $((bytes / NDIRECT)) bytes; milter VmHWM so far $(hwm) MB"
    grep -E "re-keyed in|further copies" "$work/milter.log" | tail -2 | sed 's/^/  log: /' || true
}
# One daemon for the whole run (the cold expansion and certificate import happen once); [Policy] is switched
# with SIGHUP. The split post comes first, so the VmHWM printed after it is the split path's own peak.
set_policy "$PER_COPY" "127.0.0.1:$copy_sink"
rm -f "$work/milter.sock"
"$milter" --config "$work/milter.ini" >"$work/milter.out" 2>&1 &
milter_pid=$!
wait_socket "$work/milter.sock" || { cat "$work/milter.out"; echo "securelist-milter did not start" >&2; exit 1; }
echo "== directly: milterload, one connection, copies of a split post go to an smtp-sink; milter VmHWM at start $(hwm) MB"
t0=$(now)
first=$(load 1 "$(added "$PER_COPY")")
check "$first"
echo "RESULT direct, first post after start (cold: expansion, $MEMBERS certificates read, split): $(since "$t0") s; milter VmHWM $(hwm) MB"
if [ "$DIRECT" = 1 ]; then
    direct "split into copies of $PER_COPY" "$PER_COPY"
    peak=$(hwm)
    if [ "$peak" -le 300 ]; then t="meets target <= 300 MB"; else t="MISSES target <= 300 MB"; fi
    echo "RESULT peak RSS of securelist-milter, split posts (VmHWM): $peak MB ($t)"
    [ "$UNSPLIT" = 1 ] && direct "one copy to every member" 0
fi

[ "$POSTFIX" = 1 ] || exit 0
echo "== through Postfix: one post, every member delivered to smtp-sink (counted from Postfix's status=sent lines)"
start_postfix() { # name milter(unix:..|none) -> sets port_NAME
    local dir=$work/pf-$1 smtp sink
    read -r smtp sink <<<"$(free_port 2)"
    scripts/postfix-sandbox.sh start "$dir" "$smtp" "$sink" "$2" lists.bench.test >/dev/null
    # smtp-sink without -d: 100,000 deliveries of a large body would fill the disk with copies.
    kill "$(cat "$dir/sink.pid")" 2>/dev/null || true
    for _ in $(seq 50); do ss -Hltn "sport = :$sink" | grep -q . || break; sleep 0.1; done
    smtp-sink -u postfix "127.0.0.1:$sink" 256 >"$dir/sink.log" 2>&1 &
    echo $! >"$dir/sink.pid"
    eval "port_$1=$smtp"
}
deliver() { # name rcpt [smtp-source options] -> prints seconds until MEMBERS status=sent lines and an empty queue
    local dir=$work/pf-$1 port t0 sent queued name=$1 rcpt=$2
    shift 2
    port=$(eval echo "\$port_$name")
    : >"$dir/maillog"
    t0=$(now)
    smtp-source -c -m 1 -s 1 "$@" -f sender@bench.test -t "$rcpt" -F "$work/post.eml" "127.0.0.1:$port" >/dev/null
    for _ in $(seq 36000); do
        sent=$(grep -c "status=sent" "$dir/maillog" || true)
        queued=$(find "$dir/queue/incoming" "$dir/queue/active" "$dir/queue/deferred" -type f 2>/dev/null | wc -l)
        [ "$sent" -ge "$MEMBERS" ] && [ "$queued" = 0 ] && break
        sleep 0.1
    done
    [ "$sent" = "$MEMBERS" ] || { echo "bench/lists/large: $name delivered $sent of $MEMBERS" >&2; tail -5 "$dir/maillog" >&2; exit 1; }
    echo "$(since "$t0")"
}
start_postfix m "unix:$work/milter.sock"
start_postfix a none
ta=$(deliver a member@bench.test -m $((MEMBERS / 1000)) -r 1000)
echo "RESULT no milter, the same post as $((MEMBERS / 1000)) messages of 1,000 RCPTs: $ta s to the last delivery"
for per in "$PER_COPY" $([ "$UNSPLIT" = 1 ] && echo 0); do
    set_policy "$per" "127.0.0.1:$port_m"
    tm=$(deliver m "$list")
    files=$(grep -c "qmgr.*from=<sender@bench.test>, size=" "$work/pf-m/maillog" || true)
    size=$(grep -o "qmgr.*from=<sender@bench.test>, size=[0-9]*" "$work/pf-m/maillog" | sed 's/.*size=//' | sort -n | tail -1)
    echo "RESULT through Postfix, MembersPerCopy = $per: $tm s to the last delivery ($(echo "$tm / $ta" | bc -l | xargs printf '%.2f')x the reference), $files queue files, largest $size bytes; milter VmHWM $(hwm) MB"
done
kill "$copy_sink_pid" 2>/dev/null || true
echo "== done, load average $(cut -d' ' -f1-3 /proc/loadavg)"
