#!/usr/bin/env bash
# The main job, end to end, on the embedded defaults (SQLite directory, key files, unix socket):
# creates a demo list with three members and fresh keys, starts securelist-milter and a throwaway Postfix on
# loopback, sends a signed-then-encrypted post to the list (openssl cms, as any S/MIME client would), and
# shows what each member received: decrypted by openssl with the member's own key, signature verified.
# Everything lives in a temp dir and is stopped and removed at the end (KEEP=1 keeps the dir).
set -euo pipefail
cd "$(dirname "$0")"
root=$(pwd)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 MSBUILDDISABLENODEREUSE=1 DOTNET_CLI_USE_MSBUILD_SERVER=0

bash scripts/install-deps.sh
echo "== building (Release)"
dotnet build src/MilterSecureList.Daemon -c Release --nologo -v q -clp:ErrorsOnly
dotnet build src/MilterSecureList.Admin -c Release --nologo -v q -clp:ErrorsOnly
milter=$root/src/MilterSecureList.Daemon/bin/Release/net10.0/securelist-milter
securelist=$root/src/MilterSecureList.Admin/bin/Release/net10.0/securelist

work=$(mktemp -d /tmp/securelist-demo.XXXXXX)
chmod 755 "$work"
milter_pid=""
cleanup() {
    [ -n "$milter_pid" ] && kill "$milter_pid" 2>/dev/null && wait "$milter_pid" 2>/dev/null || true
    scripts/postfix-sandbox.sh stop "$work/postfix" >/dev/null 2>&1 || true
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

. scripts/lib.sh
read -r smtp_port sink_port <<<"$(free_port 2)"
list=crypto@lists.demo.test

cat >"$work/milter.ini" <<EOT
[Listener]
Socket = unix:$work/milter.sock
SocketMode = 0666
[Milter]
Handler = lists
[Directory]
Provider = sqlite
Path = $work/lists.db
[Keys]
Directory = $work/keys
[Notices]
SmtpServer = 127.0.0.1:$smtp_port
From = securelist@demo.test
[Logging]
File = $work/milter.log
EOT

echo "== creating $list with three members (fresh RSA-2048 keys)"
"$securelist" --config "$work/milter.ini" list create "$list" --owner owner@demo.test >/dev/null
mkcert() { # name
    openssl req -x509 -newkey rsa:2048 -nodes -days 365 -keyout "$work/$1.key" -out "$work/$1.pem" \
        -subj "/CN=$1/emailAddress=$1@demo.test" -addext "subjectAltName=email:$1@demo.test" \
        -addext "keyUsage=critical,digitalSignature,keyEncipherment" -addext "extendedKeyUsage=emailProtection" 2>/dev/null
}
for m in alice bob carol mallory; do mkcert $m; done
for m in alice bob carol; do
    "$securelist" --config "$work/milter.ini" member add "$list" "$m@demo.test" --cert "$work/$m.pem" >/dev/null
done
"$securelist" --config "$work/milter.ini" list export-cert "$list" >"$work/list.pem"

echo "== starting securelist-milter and Postfix on 127.0.0.1:$smtp_port"
"$milter" --config "$work/milter.ini" >"$work/milter.out" 2>&1 &
milter_pid=$!
wait_socket "$work/milter.sock" || { cat "$work/milter.out"; echo "securelist-milter did not start" >&2; exit 1; }
scripts/postfix-sandbox.sh start "$work/postfix" "$smtp_port" "$sink_port" "unix:$work/milter.sock" lists.demo.test

echo "== alice signs a post and encrypts it to the list certificate (openssl cms), then sends it"
printf 'Content-Type: text/plain; charset=utf-8\r\n\r\nMeeting moved to Thursday, 10:00.\r\n' >"$work/entity.txt"
openssl cms -sign -md sha256 -signer "$work/alice.pem" -inkey "$work/alice.key" -in "$work/entity.txt" -out "$work/signed.eml"
openssl cms -encrypt -aes256 -from alice@demo.test -to "$list" -subject "Secret meeting" \
    -in "$work/signed.eml" -out "$work/post.eml" "$work/list.pem"
swaks --server "127.0.0.1:$smtp_port" --from alice@demo.test --to "$list" --data "$work/post.eml" >"$work/swaks.log" 2>&1 \
    || { tail -5 "$work/swaks.log"; exit 1; }
scripts/postfix-sandbox.sh wait "$work/postfix" 1 60
received=$(find "$work/postfix/sink" -type f | head -1)

echo
echo "Envelope recipients the list message was delivered to:"
grep '^X-Rcpt-Args:' "$received" | sed 's/^X-Rcpt-Args: /  /'
grep -q "$list" <(grep '^X-Rcpt-Args:' "$received") && { echo "the list address itself was delivered: FAIL" >&2; exit 1; }
echo "Headers added by the milter:"
grep -E '^(List-Id|List-Post|X-SecureList):' "$received" | sed 's/^/  /'
echo
printf '%-20s %-10s %-20s %-10s\n' member decrypted "signature verified" identical
status=0
for m in alice bob carol mallory; do
    dec=no ver=no same=no
    if openssl cms -decrypt -recip "$work/$m.pem" -inkey "$work/$m.key" -in "$received" -out "$work/$m.plain" 2>/dev/null; then
        dec=yes
        openssl cms -verify -CAfile "$work/alice.pem" -in "$work/$m.plain" -out /dev/null 2>/dev/null && ver=yes
        cmp -s <(tr -d '\r' <"$work/$m.plain") <(tr -d '\r' <"$work/signed.eml") && same=yes
    fi
    printf '%-20s %-10s %-20s %-10s\n' "$m@demo.test" "$dec" "$ver" "$same"
    if [ $m = mallory ]; then [ $dec = no ] || status=1; else [ "$dec$ver$same" = yesyesyes ] || status=1; fi
done
echo "(mallory is not a member: she must not be able to decrypt)"
echo
grep -E "re-keyed|continue" "$work/milter.log" 2>/dev/null | tail -2 || true
[ $status = 0 ] && echo "demo: OK" || echo "demo: FAILED"
exit $status
