#!/usr/bin/env bash
# Exim 4.96 with the REAL securelist CLI: a list with three members made by `securelist`, a post encrypted to
# the exported list certificate with openssl, delivered by a real Exim through contrib/exim (router + the
# `securelist filter` transport filter, one delivery per member). Each member's copy must decrypt with that
# member's key to the exact entity, and with no other member's key. Runs tests/exim/test-exim.sh for the Exim
# side; its last line is "exim: N passed, N failed".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
securelist=${SECURELIST:-$root/src/MilterSecureList.Admin/bin/Release/net10.0/securelist}
[ -x "$securelist" ] || { echo "test-exim-securelist: build first: dotnet build -c Release src/MilterSecureList.Admin" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "test-exim-securelist: must run as root" >&2; exit 1; }

made_user=""
W=$(mktemp -d /tmp/exim-securelist.XXXXXX)
cleanup() {
    rm -rf "$W"
    [ -n "$made_user" ] && userdel Debian-exim 2>/dev/null || true
}
trap cleanup EXIT
chmod 755 "$W"

# The filter and the RCPT lookup run as Exim's user, so that user owns the directory and keys (contrib/exim/README.md).
if ! getent passwd Debian-exim >/dev/null; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --user-group Debian-exim
    made_user=1
fi

list=list@lists.exim.test
members="alice@members.exim.test bob@members.exim.test carol@members.exim.test"
cat >"$W/milter.ini" <<EOT
[Directory]
Path = $W/state/lists.db
[Keys]
Directory = $W/state/keys
EOT
mkdir -p "$W/state" "$W/certs"
"$securelist" --config "$W/milter.ini" list create "$list" --owner owner@exim.test >/dev/null
for m in $members; do
    n=${m%@*}
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout "$W/certs/$n.key" -out "$W/certs/$n.pem" \
        -subj "/CN=$n" -addext "subjectAltName=email:$m" -addext "keyUsage=critical,keyEncipherment,digitalSignature" 2>/dev/null
    "$securelist" --config "$W/milter.ini" member add "$list" "$m" --cert "$W/certs/$n.pem" >/dev/null
done
"$securelist" --config "$W/milter.ini" list export-cert "$list" >"$W/list.pem"
chown -R Debian-exim:Debian-exim "$W/state"
chmod 644 "$W/milter.ini"

printf 'Content-Type: text/plain; charset=us-ascii\r\n\r\nThe Exim list works.\r\n' >"$W/entity.txt"
openssl cms -encrypt -aes256 -from poster@example.net -to "$list" -subject "exim post" \
    -in "$W/entity.txt" -out "$W/post.eml" "$W/list.pem"

# Each copy: decrypts with its member's key to the entity, and not with another member's key.
check_cmd="m=\$1 f=\$2 n=\${m%@*}
openssl cms -decrypt -recip $W/certs/\$n.pem -inkey $W/certs/\$n.key -in \"\$f\" -out $W/\$n.plain 2>/dev/null || exit 1
cmp -s <(tr -d '\r' <$W/\$n.plain) <(tr -d '\r' <$W/entity.txt) || exit 1
for o in alice bob carol; do [ \$o = \$n ] && continue
  openssl cms -decrypt -recip $W/certs/\$o.pem -inkey $W/certs/\$o.key -in \"\$f\" -out /dev/null 2>/dev/null && exit 1
done; exit 0"

SECURELIST=$securelist SECURELIST_CONFIG=$W/milter.ini POST_FILE=$W/post.eml LIST_MEMBERS=$members \
    FILTER_EXPECT='^List-Id: <list\.lists\.exim\.test>' MEMBER_CHECK_CMD=$check_cmd DATA_CHECK=1 \
    bash "$here/test-exim.sh"
