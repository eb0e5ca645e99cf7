#!/usr/bin/env bash
# Package tests for securelist. Builds the .deb and .rpm, checks them with lintian and
# rpm, installs the .deb on this Debian 12 machine (root; meant for a throwaway CI machine), checks files,
# user and modes, upgrades, removes and purges it, and puts the machine back as it was.
# Exit status 0 only if every check passed; the last line is a summary.
#   SKIP_BUILD=1  test the packages already in packaging/out
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=$here/out
passed=0
failed=0
warnings=()

ok()   { passed=$((passed + 1)); echo "ok   - $*"; }
bad()  { failed=$((failed + 1)); echo "FAIL - $*"; }
check() { # check DESCRIPTION COMMAND...
    local what=$1; shift
    if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi
}
expect_eq() { # expect_eq DESCRIPTION EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: expected '$2', got '$3'"; fi
}
summary() {
    echo "packages: $passed checks passed, $failed failed, lintian warnings: ${#warnings[@]} (${SECONDS}s)"
    [ "$failed" -eq 0 ]
}
fatal() { bad "$*"; summary; exit 1; }

[ "$(id -u)" -eq 0 ] || fatal "must run as root (dpkg -i on a throwaway machine)"
for tool in dpkg-deb dpkg lintian rpm rpmbuild groff systemd-analyze openssl miltertest; do
    command -v "$tool" >/dev/null || fatal "'$tool' is missing (apt-get install -y dpkg lintian rpm groff systemd openssl miltertest)"
done

# --- Refuse to disturb a machine that already has securelist -------------------------------------
if dpkg-query -W -f '${Status}' securelist 2>/dev/null | grep -q installed; then
    fatal "securelist is already installed here; refusing to touch it"
fi
for path in /etc/securelist /var/lib/securelist /usr/lib/securelist; do
    [ -e "$path" ] && fatal "$path exists already; refusing to touch it"
done
user_existed=0; getent passwd securelist >/dev/null && user_existed=1
group_existed=0; getent group securelist >/dev/null && group_existed=1
installed=0

cleanup() {
    if [ -n "${daemon_pid:-}" ] && [ "${started_by:-}" = runuser ]; then kill "$daemon_pid" >/dev/null 2>&1 || true; fi
    if [ "$installed" = 1 ]; then dpkg -P securelist >/dev/null 2>&1 || true; fi
    # Debian policy keeps system users on purge; this test created it, so it removes it.
    if [ "$user_existed" = 0 ] && getent passwd securelist >/dev/null; then userdel securelist >/dev/null 2>&1 || true; fi
    if [ "$group_existed" = 0 ] && getent group securelist >/dev/null; then groupdel securelist >/dev/null 2>&1 || true; fi
    rm -rf "${tmp:-/nonexistent-securelist-test}"
}
trap cleanup EXIT
tmp=$(mktemp -d /tmp/securelist-pkgtest.XXXXXX)

# --- Build --------------------------------------------------------------------------------------
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    # gzip instead of xz: same contents, a minute less on 2 shared cores.
    if DEB_COMPRESSION=gzip RPM_PAYLOAD=w6.gzdio "$here/build.sh" all >"$tmp/build.log" 2>&1; then
        grep -E '^(==|built)' "$tmp/build.log" | sed 's/^/     /'
        ok "build.sh all"
    else
        tail -30 "$tmp/build.log"
        fatal "build.sh all failed"
    fi
fi
deb=$(ls "$out"/securelist_*_amd64.deb 2>/dev/null | head -1)
rpmfile=$(ls "$out"/securelist-*.x86_64.rpm 2>/dev/null | head -1)
[ -f "$deb" ] || fatal "no .deb in $out"
[ -f "$rpmfile" ] || fatal "no .rpm in $out"

# --- lintian ------------------------------------------------------------------------------------
lintian --tag-display-limit 0 "$deb" >"$tmp/lintian.txt" 2>&1
errors=$(grep -c '^E: ' "$tmp/lintian.txt" || true)
mapfile -t warnings < <(grep '^W: ' "$tmp/lintian.txt")
if [ "$errors" -eq 0 ]; then ok "lintian: no errors"; else grep '^E: ' "$tmp/lintian.txt"; bad "lintian: $errors error(s)"; fi
for w in "${warnings[@]}"; do echo "     lintian warning: $w"; done

# --- .deb metadata --------------------------------------------------------------------------------
expect_eq "deb conffiles" "/etc/securelist/milter.ini" "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)"
dpkg-deb -c "$deb" >"$tmp/deb-contents.txt"
for path in ./usr/lib/securelist/securelist-milter ./usr/lib/securelist/securelist ./usr/sbin/securelist-milter \
        ./usr/bin/securelist ./etc/securelist/milter.ini ./lib/systemd/system/securelist-milter.service \
        ./usr/lib/sysusers.d/securelist.conf ./usr/lib/tmpfiles.d/securelist.conf \
        ./usr/share/man/man8/securelist-milter.8.gz ./usr/share/man/man1/securelist.1.gz \
        ./usr/share/man/man5/milter.ini.5.gz ./usr/share/doc/securelist/copyright ./usr/share/doc/securelist/changelog.gz; do
    check "deb contains $path" grep -q " $path\( \|$\)" "$tmp/deb-contents.txt"
done
check "deb has no libcoreclrtraceptprovider.so (needs lttng)" bash -c "! grep -q libcoreclrtraceptprovider '$tmp/deb-contents.txt'"

# --- .rpm ----------------------------------------------------------------------------------------
rpm -qpl "$rpmfile" >"$tmp/rpm-files.txt" 2>/dev/null
for path in /usr/lib/securelist/securelist-milter /usr/lib/securelist/securelist /usr/sbin/securelist-milter \
        /usr/bin/securelist /etc/securelist/milter.ini /usr/lib/systemd/system/securelist-milter.service \
        /usr/lib/sysusers.d/securelist.conf /usr/lib/tmpfiles.d/securelist.conf /var/lib/securelist \
        /var/lib/securelist/keys /usr/share/man/man8/securelist-milter.8.gz /usr/share/man/man1/securelist.1.gz \
        /usr/share/man/man5/milter.ini.5.gz /usr/share/doc/securelist/copyright; do
    check "rpm -qpl lists $path" grep -qx "$path" "$tmp/rpm-files.txt"
done
expect_eq "rpm config file" "/etc/securelist/milter.ini" "$(rpm -qp --configfiles "$rpmfile" 2>/dev/null)"
rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]' "$rpmfile" >"$tmp/rpm-modes.txt" 2>/dev/null
check "rpm: milter.ini is 0640 root:securelist" grep -qx -- '-rw-r----- root:securelist /etc/securelist/milter.ini' "$tmp/rpm-modes.txt"
check "rpm: /var/lib/securelist is 0750 securelist" grep -qx -- 'drwxr-x--- securelist:securelist /var/lib/securelist' "$tmp/rpm-modes.txt"
check "rpm: keys dir is 0700 securelist" grep -qx -- 'drwx------ securelist:securelist /var/lib/securelist/keys' "$tmp/rpm-modes.txt"
rpm -qp --scripts "$rpmfile" >"$tmp/rpm-scripts.txt" 2>/dev/null
check "rpm %pre creates the securelist user" grep -q 'useradd -r -g securelist' "$tmp/rpm-scripts.txt"
check "rpm %pre adds securelist to the postfix group" grep -q 'usermod -a -G postfix securelist' "$tmp/rpm-scripts.txt"
check "rpm %post enables the unit on first install" grep -q 'systemctl enable securelist-milter.service' "$tmp/rpm-scripts.txt"
check "rpm %preun stops and disables on erase" grep -q 'disable --now securelist-milter.service' "$tmp/rpm-scripts.txt"
check "rpm %postun restarts on upgrade" grep -q 'try-restart securelist-milter.service' "$tmp/rpm-scripts.txt"
check "rpm requires OpenSSL 3" bash -c "rpm -qpR '$rpmfile' 2>/dev/null | grep -qx 'libssl.so.3()(64bit)'"

# --- Install the .deb ------------------------------------------------------------------------------
if dpkg -i "$deb" >"$tmp/dpkg-i.log" 2>&1; then
    installed=1
    ok "dpkg -i"
else
    cat "$tmp/dpkg-i.log"
    installed=1
    fatal "dpkg -i failed"
fi

expect_eq "securelist-milter on the PATH" /usr/sbin/securelist-milter "$(command -v securelist-milter)"
expect_eq "securelist on the PATH" /usr/bin/securelist "$(command -v securelist)"
expect_eq "symlink to the runtime directory" /usr/lib/securelist/securelist-milter "$(readlink -f /usr/sbin/securelist-milter)"
# Self-contained: runs with a bare environment and no dotnet anywhere on the PATH.
check "securelist-milter --version runs without a .NET install" \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin /usr/sbin/securelist-milter --version
check "securelist --help runs without a .NET install" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin /usr/bin/securelist --help
expect_eq "securelist-keyd on the PATH" /usr/sbin/securelist-keyd "$(command -v securelist-keyd)"
check "securelist-keyd --version runs without a .NET install" \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin /usr/sbin/securelist-keyd --version

# User and groups.
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd securelist)
check "securelist user exists" test -n "${uid:-}"
check "securelist is a system user (uid $uid < 1000)" test "${uid:-1000}" -lt 1000
expect_eq "securelist home" /var/lib/securelist "${home:-}"
check "securelist has no login shell ($shell)" bash -c "case '${shell:-}' in */nologin|*/false) exit 0;; *) exit 1;; esac"
if getent group postfix >/dev/null; then
    check "securelist is in the postfix group (for SocketGroup = postfix)" bash -c "id -nG securelist | tr ' ' '\n' | grep -qx postfix"
fi

# Modes.
expect_eq "/etc/securelist/milter.ini mode" "640 root securelist" "$(stat -c '%a %U %G' /etc/securelist/milter.ini)"
expect_eq "/var/lib/securelist mode" "750 securelist securelist" "$(stat -c '%a %U %G' /var/lib/securelist)"
expect_eq "/var/lib/securelist/keys mode" "700 securelist securelist" "$(stat -c '%a %U %G' /var/lib/securelist/keys)"
expect_eq "/run/securelist (tmpfiles.d) mode" "755 securelist securelist" "$(stat -c '%a %U %G' /run/securelist 2>&1)"

# Production defaults in the conffile.
ini=/etc/securelist/milter.ini
check "milter.ini: Socket under /run/securelist" grep -qx 'Socket = unix:/run/securelist/milter.sock' "$ini"
check "milter.ini: SocketGroup = postfix" grep -qx 'SocketGroup = postfix' "$ini"
check "milter.ini: SQLite in /var/lib/securelist" grep -qx 'Path = /var/lib/securelist/lists.db' "$ini"
check "milter.ini: keys in /var/lib/securelist/keys" grep -qx 'Directory = /var/lib/securelist/keys' "$ini"
check "milter.ini keeps the example's documentation comments" bash -c "[ \$(grep -c '^[[:space:]]*[#;]' '$ini') -gt 3 ]"

# The configuration check of the real daemon, as the service user.
if runuser -u securelist -- /usr/sbin/securelist-milter --config /etc/securelist/milter.ini --check-config >"$tmp/check.log" 2>&1; then
    ok "securelist-milter --config /etc/securelist/milter.ini --check-config (as securelist)"
else
    sed 's/^/     /' "$tmp/check.log"
    bad "securelist-milter --check-config"
fi

# --- The README's operator commands, as root, against the installed package ---------------------------
# README "For mail operators" step 3, verbatim (addresses and file names included), run by root in a scratch
# directory; then one post through the daemon running as the securelist user. Root-created keys and database
# must belong to securelist, or the daemon tempfails every post.
ops=$tmp/operator
mkdir -p "$ops"
make_member() { # make_member ADDRESS NAME: a member's key pair and S/MIME certificate, as the member would have
    # P-256 keeps the re-keyed post under the ~1 KiB body miltertest can take back (see readme-post.lua).
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=$1" \
        -addext "subjectAltName=email:$1" -addext "keyUsage=critical,keyAgreement,digitalSignature" \
        -keyout "$ops/$2.key" -out "$ops/$2.pem" 2>/dev/null
}
make_member alice@example.org alice
make_member bob@example.org bob
echo "bob@example.org,bob.pem" >"$ops/members.csv"
readme_ok=1
run_readme() { # run_readme COMMAND...: one README command in the scratch directory, as root
    if (cd "$ops" && "$@") >>"$ops/readme.log" 2>&1; then ok "README as root: $*"; else readme_ok=0; tail -3 "$ops/readme.log" | sed 's/^/     /'; bad "README as root: $*"; fi
}
run_readme securelist list create crypto@lists.example.org --owner owner@example.org
run_readme securelist member add crypto@lists.example.org alice@example.org --cert alice.pem
run_readme securelist member import crypto@lists.example.org --csv members.csv
run_readme sh -c 'securelist list export-cert crypto@lists.example.org > crypto.pem'
run_readme securelist list set crypto@lists.example.org --policy members-only --option plaintext=reject
keyfile=$(ls /var/lib/securelist/keys/crypto@lists.example.org.*.key.pem 2>/dev/null | head -1)
expect_eq "list key written by root belongs to securelist, 0600" "600 securelist securelist" "$(stat -c '%a %U %G' "$keyfile" 2>&1)"
expect_eq "SQLite database created by root belongs to securelist" "securelist securelist" "$(stat -c '%U %G' /var/lib/securelist/lists.db 2>&1)"

# The daemon as the service user: under systemd when this machine runs it, else as the unit would run it.
daemon_pid=
if [ -d /run/systemd/system ]; then
    systemctl restart securelist-milter.service
    daemon_pid=$(systemctl show -p MainPID --value securelist-milter.service)
    started_by=systemd
else
    runuser -u securelist -- /usr/sbin/securelist-milter --config /etc/securelist/milter.ini >"$ops/daemon.log" 2>&1 &
    daemon_pid=$!
    started_by=runuser
fi
for _ in $(seq 1 300); do [ -S /run/securelist/milter.sock ] && break; sleep 0.1; done
check "daemon ($started_by) listens on /run/securelist/milter.sock" test -S /run/securelist/milter.sock
# Under runuser, $! is runuser itself (root); the daemon is its child.
daemon_user=$(ps -o user= -p "${daemon_pid:-0}" 2>/dev/null | tr -d ' ')
[ "$started_by" = runuser ] && daemon_user=$(ps -o user= --ppid "${daemon_pid:-0}" 2>/dev/null | head -1 | tr -d ' ')
expect_eq "daemon runs as securelist" securelist "$daemon_user"
expect_eq "milter socket created by the daemon as securelist" "securelist postfix" "$(stat -c '%U %G' /run/securelist/milter.sock 2>&1)"
openssl cms -encrypt -aes256 -in <(printf 'Content-Type: text/plain\r\n\r\nREADME post\r\n') -subject "README post" \
    -from alice@example.org -to crypto@lists.example.org -out "$ops/post.eml" "$ops/crypto.pem" 2>/dev/null
if miltertest -s "$here/readme-post.lua" -D MILTER=unix:/run/securelist/milter.sock -D POST="$ops/post.eml" \
        -D FROM=alice@example.org -D LIST=crypto@lists.example.org -D MEMBERS=alice@example.org,bob@example.org \
        >"$ops/miltertest.log" 2>&1 &&
        grep -q 'readme-post.lua: OK' "$ops/miltertest.log"; then
    ok "a post from the README's commands is re-keyed for alice and bob by the daemon running as securelist"
else
    sed 's/^/     /' "$ops/miltertest.log"
    [ "$started_by" = runuser ] && tail -5 "$ops/daemon.log" | sed 's/^/     daemon: /'
    bad "post through the daemon as securelist"
fi
if [ "$started_by" = systemd ]; then
    systemctl stop securelist-milter.service
else
    kill "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null
fi

# systemd unit and hardening.
# verify_unit UNIT: systemd-analyze finds nothing to say, and the offline exposure score is at most 2.0.
verify_unit() {
    local unit=$1 exposure
    if systemd-analyze verify "$unit" >"$tmp/verify.log" 2>&1 && ! grep -q . "$tmp/verify.log"; then
        ok "systemd-analyze verify $unit"
    else
        sed 's/^/     /' "$tmp/verify.log"
        bad "systemd-analyze verify $unit"
    fi
    exposure=$(systemd-analyze security --offline=true "$unit" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    if [ -n "$exposure" ] && awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }'; then
        ok "systemd-analyze security $(basename "$unit"): exposure $exposure (at most 2.0)"
    else
        bad "systemd-analyze security $(basename "$unit"): exposure '${exposure:-?}', want at most 2.0"
    fi
}
unit=/lib/systemd/system/securelist-milter.service
verify_unit "$unit"
for directive in 'User=securelist' 'RuntimeDirectory=securelist' 'StateDirectory=securelist' 'ProtectSystem=strict' \
        'ProtectHome=yes' 'NoNewPrivileges=yes' 'PrivateTmp=yes' 'CapabilityBoundingSet=' 'Restart=on-failure' \
        'ReadWritePaths=/var/lib/securelist /run/securelist' 'ExecReload=/bin/kill -HUP $MAINPID' \
        'SystemCallFilter=@system-service' 'ProtectProc=invisible' 'ProcSubset=pid' 'RemoveIPC=yes' \
        'IPAddressDeny=any' 'IPAddressAllow=localhost' 'LimitCORE=0'; do
    check "unit has $directive" grep -qxF "$directive" "$unit"
done
keyd_unit=/lib/systemd/system/securelist-keyd.service
verify_unit "$keyd_unit"
for directive in 'User=securelist' 'ProtectSystem=strict' 'NoNewPrivileges=yes' 'CapabilityBoundingSet=' 'LimitCORE=0' \
        'ExecStartPre=/usr/sbin/securelist-keyd --config /etc/securelist/keyd.ini --check-config'; do
    check "keyd unit has $directive" grep -qxF "$directive" "$keyd_unit"
done
check "keyd unit is not enabled by the package (it needs keyd.ini first)" \
    test ! -e /etc/systemd/system/multi-user.target.wants/securelist-keyd.service
check "unit enabled (multi-user.target.wants)" test -L /etc/systemd/system/multi-user.target.wants/securelist-milter.service
check "sysusers.d entry" grep -q '^u securelist ' /usr/lib/sysusers.d/securelist.conf
check "tmpfiles.d entry for the keys dir" grep -q '^d /var/lib/securelist/keys  *0700 securelist securelist' /usr/lib/tmpfiles.d/securelist.conf

# Man pages render without groff warnings and are found by man.
for page in securelist-milter.8 securelist-keyd.8 securelist.1 milter.ini.5; do
    section=${page##*.}
    file=/usr/share/man/man$section/$page.gz
    if zcat "$file" | groff -man -Tutf8 -ww -z >"$tmp/groff.log" 2>&1 && ! grep -q . "$tmp/groff.log"; then
        ok "man page $page renders cleanly"
    else
        sed 's/^/     /' "$tmp/groff.log"
        bad "man page $page"
    fi
    check "man -w finds $page" man -w "$section" "${page%.*}"
done
check "copyright is machine-readable (DEP-5)" grep -qx 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' \
    /usr/share/doc/securelist/copyright

# --- Upgrade keeps the administrator's configuration and the data ------------------------------------
echo "# local change by test-packages.sh" >>"$ini"
echo "test key material" >/var/lib/securelist/keys/test.key
chown securelist:securelist /var/lib/securelist/keys/test.key
chmod 0600 /var/lib/securelist/keys/test.key
# A newer package with an identical conffile: dpkg must keep the local edit without asking.
mkdir -p "$tmp/next"
dpkg-deb -R "$deb" "$tmp/next/root"
version=$(dpkg-deb -f "$deb" Version)
sed -i "s/^Version: .*/Version: $version+test1/" "$tmp/next/root/DEBIAN/control"
dpkg-deb --root-owner-group -Zgzip --build "$tmp/next/root" "$tmp/next/securelist_next.deb" >/dev/null
if dpkg -i "$tmp/next/securelist_next.deb" </dev/null >"$tmp/upgrade.log" 2>&1; then ok "upgrade with dpkg -i"; else cat "$tmp/upgrade.log"; bad "upgrade"; fi
expect_eq "upgraded version" "$version+test1" "$(dpkg-query -W -f '${Version}' securelist)"
check "upgrade kept the local milter.ini change" grep -qx '# local change by test-packages.sh' "$ini"
expect_eq "milter.ini mode after upgrade" "640 root securelist" "$(stat -c '%a %U %G' "$ini")"
check "upgrade kept the keys" test -f /var/lib/securelist/keys/test.key

# --- Remove keeps configuration, lists and keys -------------------------------------------------------
if dpkg -r securelist >"$tmp/remove.log" 2>&1; then ok "dpkg -r"; else cat "$tmp/remove.log"; bad "dpkg -r"; fi
expect_eq "status after remove" "deinstall ok config-files" "$(dpkg-query -W -f '${Status}' securelist 2>/dev/null)"
check "programs gone after remove" test ! -e /usr/lib/securelist/securelist-milter -a ! -e /usr/sbin/securelist-milter -a ! -e /usr/bin/securelist
check "conffile kept after remove" grep -qx '# local change by test-packages.sh' "$ini"
check "keys kept after remove" test -f /var/lib/securelist/keys/test.key
expect_eq "keys dir mode kept after remove" "700 securelist securelist" "$(stat -c '%a %U %G' /var/lib/securelist/keys)"

# --- Purge deletes everything of ours -------------------------------------------------------------------
if dpkg -P securelist >"$tmp/purge.log" 2>&1; then ok "dpkg -P"; installed=0; else cat "$tmp/purge.log"; bad "dpkg -P"; fi
check "package unknown after purge" bash -c "! dpkg-query -W -f '\${Status}' securelist 2>/dev/null | grep -q ."
check "/etc/securelist gone after purge" test ! -e /etc/securelist
check "/var/lib/securelist (lists and keys) gone after purge" test ! -e /var/lib/securelist
check "/run/securelist gone after purge" test ! -e /run/securelist
check "no enablement symlink left after purge" test ! -e /etc/systemd/system/multi-user.target.wants/securelist-milter.service
check "no unit mask left after purge" test ! -e /etc/systemd/system/securelist-milter.service
check "no deb-systemd-helper state left after purge" bash -c "! ls /var/lib/systemd/deb-systemd-helper-enabled 2>/dev/null | grep -q securelist && ! find /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked -name '*securelist*' 2>/dev/null | grep -q ."

# --- Without systemd-sysusers: the adduser fallback of postinst ------------------------------------------
# Only when this test created the user (it must not delete a user it found). /bin is /usr/bin on Debian 12
# (merged /usr), so the maintainer scripts get a PATH of symlinks to /usr/bin minus systemd-sysusers.
if [ "$user_existed" = 0 ] && [ "$group_existed" = 0 ]; then
    userdel securelist >/dev/null 2>&1 || true
    groupdel securelist >/dev/null 2>&1 || true
    mkdir -p "$tmp/path"
    for f in /usr/bin/*; do
        [ "$(basename "$f")" = systemd-sysusers ] || ln -s "$f" "$tmp/path/$(basename "$f")"
    done
    check "systemd-sysusers is hidden from the fallback PATH" \
        env PATH="$tmp/path:/usr/sbin:/sbin" sh -c '! command -v systemd-sysusers'
    if PATH="$tmp/path:/usr/sbin:/sbin" dpkg -i "$deb" >"$tmp/fallback.log" 2>&1; then
        installed=1
        ok "dpkg -i without systemd-sysusers"
    else
        installed=1
        cat "$tmp/fallback.log"
        bad "dpkg -i without systemd-sysusers"
    fi
    IFS=: read -r _ _ uid gid _ home shell < <(getent passwd securelist)
    check "adduser fallback: system user (uid ${uid:-none} < 1000)" test "${uid:-1000}" -lt 1000
    expect_eq "adduser fallback: primary group" securelist "$(getent group "${gid:-x}" | cut -d: -f1)"
    expect_eq "adduser fallback: home" /var/lib/securelist "${home:-}"
    expect_eq "adduser fallback: shell" /usr/sbin/nologin "${shell:-}"
    expect_eq "adduser fallback: milter.ini mode" "640 root securelist" "$(stat -c '%a %U %G' /etc/securelist/milter.ini)"
    expect_eq "adduser fallback: keys dir mode" "700 securelist securelist" "$(stat -c '%a %U %G' /var/lib/securelist/keys)"
    if dpkg -P securelist >"$tmp/purge2.log" 2>&1; then ok "dpkg -P after the fallback install"; installed=0; else cat "$tmp/purge2.log"; bad "dpkg -P (fallback)"; fi
    check "/var/lib/securelist gone after the second purge" test ! -e /var/lib/securelist
fi

summary
