#!/usr/bin/env bash
# Fetches the newer S/MIME readers the EC interop tests need, as private copies beside the system: NSS 3.110
# (cmsutil, certutil, pk12util) and gpgsm/gpg-agent 2.4 from Debian 13 "trixie". Debian 12's NSS 3.87 cannot read
# any KeyAgreeRecipientInfo and its gpgsm 2.2.40 cannot import an EC key, so members inside a shared kari can only
# be proven readable with these (docs/design.md, "One ephemeral key per curve").
#
# Nothing is installed into system paths and Debian 12's own gpgsm and NSS stay what the other tests use. The
# packages are unpacked with dpkg-deb -x into a cache directory outside the checkout:
#   $SECURELIST_READERS_DIR, else /var/cache/securelist-tests/trixie-readers as root,
#   else ${XDG_CACHE_HOME:-~/.cache}/securelist-tests/trixie-readers
# and run through wrappers in its bin/: NSS with the system's glibc and NSPR (trixie's NSS needs glibc >= 2.34 and
# NSPR >= 4.34, which Debian 12 has), GnuPG 2.4 (which needs glibc 2.38) through trixie's own dynamic loader and
# libraries. tests/MilterSecureList.Testing/NewerReaders.cs looks in the same places.
#
# What is downloaded is verified before use: the trixie InRelease file with gpgv against Debian's archive keyring
# (debian-archive-keyring in Debian 12 carries the trixie signing keys), the Packages index against the SHA-256 in
# that signed file, each .deb against the SHA-256 in that index. Runs again in well under a second once the cache is
# complete (no network); remove the directory to fetch the then-current trixie versions.
set -euo pipefail

mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=trixie
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
layout=2 # bump when the directory layout below changes, so older caches are rebuilt
nss_packages=(libnss3 libnss3-tools)
gnupg_packages=(gpgsm gpg-agent gpgconf libgcrypt20 libgpg-error0 libassuan9 libksba8 libnpth0t64
                libreadline8t64 libtinfo6 libc6 libgcc-s1)

die() { echo "install-newer-readers: $*" >&2; exit 1; }

if [ -n "${SECURELIST_READERS_DIR:-}" ]; then
    dest=$SECURELIST_READERS_DIR
elif [ "$(id -u)" = 0 ]; then
    dest=/var/cache/securelist-tests/trixie-readers
else
    dest=${XDG_CACHE_HOME:-$HOME/.cache}/securelist-tests/trixie-readers
fi

complete() { [ "$(cat "$dest/.complete" 2>/dev/null)" = "$layout" ]; }
if complete; then
    exit 0
fi

[ "$(dpkg --print-architecture 2>/dev/null)" = amd64 ] || die "only amd64 is supported (the readers are Debian's amd64 builds)"
for t in curl gpgv dpkg-deb sha256sum xz flock; do
    command -v "$t" >/dev/null || die "$t is missing (apt-get install -y curl gpgv dpkg xz-utils util-linux)"
done
[ -r "$keyring" ] || die "$keyring is missing (apt-get install -y debian-archive-keyring)"

mkdir -p "$(dirname "$dest")"
exec 9>"$dest.lock"
flock 9
if complete; then # another run finished it while we waited for the lock
    exit 0
fi

work=$(mktemp -d "$dest.tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT
fetch() { # URL-PATH FILE
    curl -fsS --retry 3 --connect-timeout 20 --max-time 300 -o "$2" "$mirror/$1" || die "cannot download $mirror/$1"
}

# 1. The suite's release file, signed by Debian's archive keys.
fetch "dists/$suite/InRelease" "$work/InRelease"
# As apt judges it: at least one good signature by a key of the keyring, and none bad, expired or revoked. (gpgv
# itself also fails when one of the archive's signatures is by a key the keyring does not hold yet.)
gpgv --status-fd 3 --keyring "$keyring" --output "$work/Release" "$work/InRelease" 3>"$work/gpgv.status" 2>"$work/gpgv.log" || true
if ! grep -q '^\[GNUPG:\] VALIDSIG ' "$work/gpgv.status" \
    || grep -qE '^\[GNUPG:\] (BADSIG|EXPSIG|EXPKEYSIG|REVKEYSIG) ' "$work/gpgv.status" || [ ! -s "$work/Release" ]; then
    die "the $suite InRelease signature does not verify against $keyring: $(tr '\n' ' ' <"$work/gpgv.log")"
fi
grep -qx "Codename: $suite" "$work/Release" || die "the signed release file is not for $suite"

# 2. The package index, checked against the SHA-256 the signed release file gives.
index=main/binary-amd64/Packages.xz
want=$(awk -v f="$index" '/^SHA256:/ { s = 1; next } /^[^ ]/ { s = 0 } s && $3 == f { print $1 }' "$work/Release")
[ -n "$want" ] || die "the $suite release file lists no SHA-256 for $index"
fetch "dists/$suite/$index" "$work/Packages.xz"
echo "$want  $work/Packages.xz" | sha256sum --status -c - || die "$index does not match the SHA-256 in the signed release file"
xz -dc "$work/Packages.xz" >"$work/Packages"

# 3. Each package, checked against the SHA-256 of that index, unpacked into its own tree.
: >"$work/VERSIONS"
unpack() { # TREE PACKAGE...
    local tree=$work/$1 p entry version file sum
    shift
    mkdir -p "$tree"
    for p in "$@"; do
        entry=$(awk -v p="$p" 'BEGIN { RS = ""; FS = "\n" } { for (i = 1; i <= NF; i++) if ($i == "Package: " p) { print; exit } }' "$work/Packages")
        [ -n "$entry" ] || die "$p is not in $suite's package index"
        version=$(sed -n 's/^Version: //p' <<<"$entry")
        file=$(sed -n 's/^Filename: //p' <<<"$entry")
        sum=$(sed -n 's/^SHA256: //p' <<<"$entry")
        [ -n "$file" ] && [ -n "$sum" ] || die "$p has no Filename or SHA256 in the package index"
        fetch "$file" "$work/pkg.deb"
        echo "$sum  $work/pkg.deb" | sha256sum --status -c - || die "$file does not match the SHA-256 in the package index"
        dpkg-deb -x "$work/pkg.deb" "$tree"
        echo "$p $version sha256:$sum" >>"$work/VERSIONS"
    done
    rm -f "$work/pkg.deb"
}
unpack nss "${nss_packages[@]}"
unpack gnupg "${gnupg_packages[@]}"
# InRelease and Packages.xz stay beside VERSIONS: what was fetched can be checked again later with gpgv and
# sha256sum, and the tests replay them to prove that a tampered file is refused (NewerReadersFetchTests).
rm -f "$work/Packages" "$work/Release" "$work/gpgv.log" "$work/gpgv.status"

# 4. Wrappers. Each finds its tree from its own location, so the cache can move.
mkdir -p "$work/bin"
for tool in cmsutil certutil pk12util; do
    cat >"$work/bin/$tool" <<EOF
#!/bin/sh
# NSS from Debian $suite on the system's glibc and NSPR (scripts/install-newer-readers.sh).
here=\$(dirname "\$(readlink -f "\$0")")
LD_LIBRARY_PATH=\$here/../nss/usr/lib/x86_64-linux-gnu exec "\$here/../nss/usr/bin/$tool" "\$@"
EOF
done
for tool in gpg-agent gpgconf gpgsm; do
    extra=""
    # gpgsm starts its agent itself: it must be the 2.4 agent, through the same loader.
    [ "$tool" = gpgsm ] && extra='--agent-program "$here/gpg-agent" '
    cat >"$work/bin/$tool" <<EOF
#!/bin/sh
# GnuPG from Debian $suite through $suite's own dynamic loader and libraries (scripts/install-newer-readers.sh).
here=\$(dirname "\$(readlink -f "\$0")")
root=\$here/../gnupg
exec "\$root/usr/lib64/ld-linux-x86-64.so.2" --library-path "\$root/usr/lib/x86_64-linux-gnu" "\$root/usr/bin/$tool" $extra"\$@"
EOF
done
chmod 755 "$work"/bin/*

# 5. Each wrapper must run here before the cache is declared complete.
usage=$("$work/bin/cmsutil" -H 2>&1 || true)
grep -q "decode a CMS message" <<<"$usage" || die "the unpacked cmsutil does not run: $(head -1 <<<"$usage")"
"$work/bin/gpgsm" --version | head -1 | grep -q "^gpgsm (GnuPG) 2\.[4-9]" || die "the unpacked gpgsm does not run: $("$work/bin/gpgsm" --version 2>&1 | head -3)"
"$work/bin/gpg-agent" --version >/dev/null || die "the unpacked gpg-agent does not run"

echo "$layout" >"$work/.complete"
rm -rf "$dest"
chmod 755 "$work"
mv "$work" "$dest"
trap - EXIT
echo "install-newer-readers: $(awk '{ printf "%s%s %s", s, $1, $2; s = ", " }' "$dest/VERSIONS") in $dest"
