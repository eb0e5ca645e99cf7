#!/usr/bin/env bash
# Benchmark of gateway mode (docs/gateway.md). Prints figures and ratios measured in this one run.
#
# Through Postfix (smtp-source -> Postfix via scripts/postfix-sandbox.sh -> securelist-milter, Handlers = gateway
# -> smtp-sink), against the same Postfix without the milter, side by side, ratio per round, median of ROUNDS:
#   outbound: 100 KB plain messages from a gateway user to 10 recipients with certificates, signed
#             (multipart/signed) and encrypted (AES-256-CBC, RSA PKCS#1 v1.5) by the milter.  Goal: <= 1.3x.
#   inbound:  100 KB messages signed and encrypted by openssl to the gateway user, verified (signature and
#             chain) and decrypted by the milter.  Goal: <= 1.3x.
# CPU: the daemon's own CPU time per message (utime+stime from /proc during the milter runs) against its
# cryptographic operations measured alone with `openssl speed` in the same run (the same OpenSSL the daemon
# uses): outbound one RSA-2048 private operation (the signature), 10 public operations (one per recipient),
# SHA-256 and AES-256-CBC over the body; inbound one private operation (the content key), 2 public operations
# (the signature and the signer's certificate), SHA-256 and AES-256-CBC over the body.  Goal: <= 1.25x.
# The floor: a third Postfix with bench/refmilter.c (libmilter, C) that replaces every body with itself and swaps one
# recipient for another (same count), no cryptography: what the milter round trips and Postfix's rewrite of the
# queue file for a replaced body cost by themselves, as a ratio to the same reference.
#
# Needs root (Postfix), postfix, openssl, python3-cryptography, cc and libmilter-dev. One run takes ~2-4 minutes.
#   N=100 ROUNDS=3 CONC=4 WARMUP=20 bench/gateway/run.sh
# PROFILE=1 also samples the daemon with perf during the first round of each direction (JIT-compiled methods
# named through the runtime's perf map) and prints where its CPU goes: by library and the top functions.
#   bench/gateway/run.sh profile [ITERATIONS [TRIALS]]
# runs the in-process profile instead (bench/gateway/MilterSecureList.Gateway.Bench: the GatewayProcessor alone,
# stage by stage, against the cryptography alone, no Postfix; no root needed).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 PATH="/usr/sbin:$PATH"
if [ "${1:-}" = profile ]; then
    shift
    exec dotnet run -c Release --project bench/gateway/MilterSecureList.Gateway.Bench -- "$@"
fi
N=${N:-100}
ROUNDS=${ROUNDS:-3}
CONC=${CONC:-4}
# Messages each way before measuring: the daemon's hot methods reach their optimised (tier-1) code after a few
# dozen calls, as they do in a daemon that has been running for a while.
WARMUP=${WARMUP:-20}
PROFILE=${PROFILE:-0}
RCPTS=10
SIZE=102400
die() { echo "bench/gateway: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (Postfix)"
[ "$PROFILE" = 0 ] || command -v perf >/dev/null || die "PROFILE=1 needs perf (apt-get install linux-perf)"
. scripts/lib.sh
t=$(missing_tools smtp-source smtp-sink postfix openssl python3 bc cc) || die "$t is missing (see scripts/install-deps.sh)"
[ -f /usr/include/libmilter/mfapi.h ] || die "libmilter headers missing (apt-get install -y libmilter-dev)"
python3 -c 'import cryptography' 2>/dev/null || die "apt-get install -y python3-cryptography"

build_programs
use_workdir "$(mktemp -d /tmp/securelist-gwbench.XXXXXX)"

user=alice@gw.bench.test
peer=bob@partner.bench.test
cat >"$work/milter.ini" <<EOT
[Listener]
Socket = unix:$work/milter.sock
SocketMode = 0666
[Milter]
Handlers = gateway
[Directory]
Provider = sqlite
Path = $work/lists.db
[Keys]
Directory = $work/keys
[Notices]
Enabled = no
[Gateway]
AuthservId = gw.bench.test
TrustAnchors = $work/ca.pem
Encrypt = required
[Logging]
File = $work/milter.log
EOT

echo "== keys: a CA, the gateway user $user, the peer $peer, $RCPTS recipients (RSA-2048)"
# smtp-source -r 10 -t r@partner.bench.test sends to r@, 2r@, ... 10r@partner.bench.test: those are the recipients.
python3 - "$work" "$RCPTS" <<'PY'
import sys, os, datetime
from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
work, n = sys.argv[1], int(sys.argv[2])
now = datetime.datetime.now(datetime.timezone.utc)
def pem(path, data, mode=0o644):
    with open(os.path.join(work, path), "wb") as f:
        f.write(data)
    os.chmod(os.path.join(work, path), mode)
ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Gateway Bench CA")])
ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
      .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
      .not_valid_after(now + datetime.timedelta(days=365))
      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
      .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
      .sign(ca_key, hashes.SHA256()))
pem("ca.pem", ca.public_bytes(serialization.Encoding.PEM))
def issue(addr, key, stem):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, addr)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(addr)]), critical=False)
            .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem(stem + ".pem", cert.public_bytes(serialization.Encoding.PEM))
    pem(stem + ".key", key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), 0o600)
issue("alice@gw.bench.test", rsa.generate_private_key(public_exponent=65537, key_size=2048), "alice")
issue("bob@partner.bench.test", rsa.generate_private_key(public_exponent=65537, key_size=2048), "bob")
# One key behind the recipients' certificates (key generation is not what is measured).
rkey = rsa.generate_private_key(public_exponent=65537, key_size=2048)
for i in range(1, n + 1):
    issue(f"{i if i > 1 else ''}r@partner.bench.test", rkey, f"r{i}")
PY
"$securelist" --config "$work/milter.ini" user import "$user" --cert "$work/alice.pem" --key "$work/alice.key" >/dev/null
for i in $(seq "$RCPTS"); do
    n=$i; [ "$i" = 1 ] && n=""
    "$securelist" --config "$work/milter.ini" cert import "${n}r@partner.bench.test" "$work/r$i.pem" >/dev/null
done

# The messages: 100 KB of text lines. Outbound plain from the user; inbound signed then encrypted by openssl.
python3 - "$SIZE" >"$work/text" <<'PY'
import sys, base64, os
n = int(sys.argv[1])
b = base64.encodebytes(os.urandom(n * 3 // 4 + 64)).decode().replace("\n", "\r\n")
sys.stdout.write(b[:n - n % 78])
PY
to=$(seq -f "%gr@partner.bench.test" 1 "$RCPTS" | sed 's/^1r@/r@/' | paste -sd, | sed 's/,/, /g')
{ printf 'From: %s\r\nTo: %s\r\nSubject: gateway bench out\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n' "$user" "$to"; cat "$work/text"; } >"$work/out.eml"
{ printf 'Content-Type: text/plain; charset=us-ascii\r\n\r\n'; cat "$work/text"; } >"$work/entity"
openssl cms -sign -in "$work/entity" -signer "$work/bob.pem" -inkey "$work/bob.key" -out "$work/signed"
openssl cms -encrypt -aes256 -from "$peer" -to "$user" -subject "gateway bench in" -in "$work/signed" -out "$work/in.eml" "$work/alice.pem"

if [ "$PROFILE" = 0 ]; then
    "$milter" --config "$work/milter.ini" >"$work/milter.out" 2>&1 &
else
    DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 "$milter" --config "$work/milter.ini" >"$work/milter.out" 2>&1 &
fi
milter_pid=$!
wait_socket "$work/milter.sock" || { cat "$work/milter.out"; die "securelist-milter did not start"; }
cc -O2 -Wall -Wno-unused-parameter -o "$work/refmilter" bench/refmilter.c -lmilter -pthread
(umask 000; exec "$work/refmilter" -k 1 "unix:$work/ref.sock" >"$work/refmilter.out" 2>&1) &
extra_pids="$!"
wait_socket "$work/ref.sock" || die "refmilter did not start"

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$milter_pid/stat"; }
# Minor page faults: memory the daemon touches for the first time (fresh heap pages the kernel must map and zero).
faults() { awk '{print $10}' "/proc/$milter_pid/stat"; }
hz=$(getconf CLK_TCK)
declare -A smtp_port
start_postfix() { # name milter(unix:..|none)
    local sink
    read -r "smtp_port[$1]" sink <<<"$(free_port 2)"
    scripts/postfix-sandbox.sh start "$work/pf-$1" "${smtp_port[$1]}" "$sink" "$2" lists.bench.test >/dev/null
}
send() { # name direction count -> prints seconds
    local name=$1 dir=$work/pf-$1 count=$3 t0 t1 args
    if [ "$2" = out ]; then args=(-f "$user" -t r@partner.bench.test -r "$RCPTS" -F "$work/out.eml"); else args=(-f "$peer" -t "$user" -F "$work/in.eml"); fi
    rm -f "$dir"/sink/*
    t0=$(now)
    smtp-source -c -m "$count" -s "$CONC" "${args[@]}" "127.0.0.1:${smtp_port[$name]}" >/dev/null
    scripts/postfix-sandbox.sh wait "$dir" "$count" 600
    t1=$(now)
    check "$name" "$2" "$count"
    echo "$t1 - $t0" | bc -l
}
check() { # name direction count: what the sink got is what the gateway promises
    local dir=$work/pf-$1 want rc enc plain
    if [ "$2" = out ]; then want=$(($3 * RCPTS)); else want=$3; fi
    rc=$(cat "$dir"/sink/* | grep -c '^X-Rcpt-Args:' || true)
    [ "$rc" = "$want" ] || die "$1 $2: $rc recipients delivered, expected $want"
    [ "$1" = m ] || return 0
    if [ "$2" = out ]; then
        enc=$(grep -l '^Content-Type: application/pkcs7-mime; smime-type=enveloped-data' "$dir"/sink/* | wc -l)
        plain=$(grep -l "$(sed -n 1p "$work/text" | tr -d '\r')" "$dir"/sink/* | wc -l || true)
        [ "$enc" = "$3" ] && [ "$plain" = 0 ] || die "outbound: $enc of $3 encrypted, $plain with plaintext"
    else
        enc=$(grep -l '^Authentication-Results: gw.bench.test; smime=pass body.smime-identifier=bob@partner.bench.test' "$dir"/sink/* | wc -l)
        plain=$(grep -l "$(sed -n 1p "$work/text" | tr -d '\r')" "$dir"/sink/* | wc -l || true)
        [ "$enc" = "$3" ] && [ "$plain" = "$3" ] || die "inbound: $enc of $3 verified, $plain decrypted"
    fi
}
start_postfix m "unix:$work/milter.sock"
start_postfix b none
start_postfix r "unix:$work/ref.sock"
for d in out in; do send m $d "$WARMUP" >/dev/null; send b $d 2 >/dev/null; send r $d 2 >/dev/null; done # warm-up (JIT, caches, process start)
# One sample of each kind read back by openssl: a recipient decrypts and verifies what the gateway sent.
send m out 1 >/dev/null
sample=$(ls "$work"/pf-m/sink/* | head -1)
sed '1,/^$/{/^X-/d}' "$sample" >"$work/sample.eml"
openssl cms -decrypt -in "$work/sample.eml" -recip "$work/r3.pem" -inkey "$work/r3.key" -out "$work/sample.dec"
openssl cms -verify -in "$work/sample.dec" -CAfile "$work/ca.pem" -out /dev/null 2>/dev/null || die "the sample does not verify with openssl"

crypto_ms() { # private public -> ms of crypto per message, from openssl speed in this run
    local rsa aes sha
    rsa=$(openssl speed -mr -seconds 2 rsa2048 2>/dev/null | sed -n 's/^+F2:[0-9]*:2048:\([0-9.]*\):\([0-9.]*\)$/\1 \2/p')
    aes=$(openssl speed -mr -seconds 2 -bytes "$SIZE" -evp aes-256-cbc 2>/dev/null | sed -n 's/^+F:[0-9]*:AES-256-CBC:\([0-9.]*\)$/\1/p')
    sha=$(openssl speed -mr -seconds 2 -bytes "$SIZE" -evp sha256 2>/dev/null | sed -n 's/^+F:[0-9]*:sha256:\([0-9.]*\)$/\1/p')
    read -r sign verify <<<"$rsa"
    [ -n "$sign" ] && [ -n "$aes" ] && [ -n "$sha" ] || die "cannot read openssl speed output"
    echo "1000 * ($1 / $sign + $2 / $verify + $SIZE / $aes + $SIZE / $sha)" | bc -l
}

echo "== through Postfix (smtp-source -s $CONC), $N messages of 100 KB per run, median of $ROUNDS rounds; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-58s %6s %8s %9s\n' run msgs secs msgs/s
line() { printf '%-58s %6d %8.2f %9.1f\n' "$1" "$N" "$2" "$(echo "$N / $2" | bc -l)"; }
verdict() { if [ "$(echo "$1 <= $2" | bc -l)" = 1 ]; then echo "meets goal <= $2"; else echo "MISSES goal <= $2"; fi; }
summary=""
for d in out in; do
    : >"$work/t-m"; : >"$work/t-b"; : >"$work/r"; : >"$work/cpu"; : >"$work/crypto"; : >"$work/t-r"; : >"$work/rr"; : >"$work/faults"
    for round in $(seq "$ROUNDS"); do
        perf_pid=""
        if [ "$PROFILE" != 0 ] && [ "$round" = 1 ]; then
            perf record -q -F 999 -g -p "$milter_pid" -o "$work/perf-$d.data" 2>/dev/null &
            perf_pid=$!
            sleep 1
        fi
        c0=$(cpu_ticks); f0=$(faults)
        tm=$(send m $d "$N")
        c1=$(cpu_ticks); f1=$(faults)
        if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
        tb=$(send b $d "$N")
        tref=$(send r $d "$N")
        echo "$tm" >>"$work/t-m"; echo "$tb" >>"$work/t-b"; echo "$tm / $tb" | bc -l >>"$work/r"
        echo "$tref" >>"$work/t-r"; echo "$tref / $tb" | bc -l >>"$work/rr"
        echo "($c1 - $c0) * 1000 / $hz / $N" | bc -l >>"$work/cpu"
        echo "($f1 - $f0) / $N" | bc -l >>"$work/faults"
        if [ $d = out ]; then crypto_ms 1 "$RCPTS" >>"$work/crypto"; else crypto_ms 1 2 >>"$work/crypto"; fi
    done
    if [ $d = out ]; then label="outbound, sign+encrypt to $RCPTS"; else label="inbound, verify+decrypt"; fi
    line "100 KB $label, securelist-milter" "$(median <"$work/t-m")"
    line "100 KB $label, no milter (reference)" "$(median <"$work/t-b")"
    line "100 KB $label, libmilter body replaced, no crypto" "$(median <"$work/t-r")"
    r=$(median <"$work/r"); cpu=$(median <"$work/cpu"); crypto=$(median <"$work/crypto")
    summary+=$(printf '%s: time ratio milter/reference %.2f (%s; rounds %s)' "$label" "$r" "$(verdict "$r" 1.3)" "$(xargs printf '%.2f ' <"$work/r")")$'\n'
    summary+=$(printf '%s: floor, libmilter replacing the body, no crypto: ratio %.2f (rounds %s)' "$label" "$(median <"$work/rr")" "$(xargs printf '%.2f ' <"$work/rr")")$'\n'
    summary+=$(printf '%s: daemon CPU %.2f ms per message, crypto alone %.2f ms, ratio %.2f (%s)' "$label" "$cpu" "$crypto" "$(echo "$cpu / $crypto" | bc -l)" "$(verdict "$(echo "$cpu / $crypto" | bc -l)" 1.25)")$'\n'
    summary+=$(printf '%s: daemon minor page faults %.0f per message' "$label" "$(median <"$work/faults")")$'\n'
done
printf '%s' "$summary"
if [ "$PROFILE" != 0 ]; then
    for d in out in; do
        echo "== where the daemon's CPU goes, $d (perf, first round): by library, then the top functions"
        # head closes the pipe early: with pipefail that is not a failure of the run.
        perf report -i "$work/perf-$d.data" --no-children --sort dso -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -12 || true
        perf report -i "$work/perf-$d.data" --no-children --sort dso,sym -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40 || true
    done
fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
signed=$(grep -c 'gateway audit: signed for' "$work/milter.log" || true)
decrypted=$(grep -c 'gateway audit: decrypted for' "$work/milter.log" || true)
echo "audit lines: $signed signatures, $decrypted decryptions"
