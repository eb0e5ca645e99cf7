#!/usr/bin/env bash
# Builds the securelist packages from a self-contained .NET publish (no .NET needed on the target).
#   packaging/build.sh deb|rpm|all
# Output: packaging/out/securelist_<ver>_amd64.deb and packaging/out/securelist-<ver>-1.x86_64.rpm
# Environment:
#   MILTER_INI_EXAMPLE  the annotated example to make /etc/securelist/milter.ini from (default: repo root)
#   DEB_COMPRESSION     dpkg-deb compressor (default xz), DEB_COMPRESSION_LEVEL (default 6)
#   RPM_PAYLOAD         rpm payload compression (default w6.xzdio; w6.gzdio is faster)
#   SKIP_PUBLISH=1      reuse packaging/out/build/lib from a previous run
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
target=${1:-all}
case "$target" in deb|rpm|all) ;; *) echo "usage: $0 deb|rpm|all" >&2; exit 2 ;; esac

die() { echo "build.sh: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found; install the Debian package $2"; }

need dotnet "dotnet-sdk-10.0"
need gzip gzip
need awk gawk
need strip binutils
need perl perl-base
[ "$target" = rpm ] || need dpkg-deb dpkg
[ "$target" = deb ] || need rpmbuild rpm

version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$repo/Directory.Build.props" | head -1)
[ -n "$version" ] || die "no <Version> in Directory.Build.props"
rpm_version=${version//-/\~}
example=${MILTER_INI_EXAMPLE:-$repo/milter.ini.example}
[ -f "$example" ] || die "milter.ini.example not found at $example (set MILTER_INI_EXAMPLE)"

# Reproducible dates: the last commit, unless the caller pins one.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}
man_date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)

out=$here/out
build=$out/build
lib=$build/lib
mkdir -p "$out" "$build"

# version_field FILE KEY: a string of the file's version resource (FileVersion, Assembly Version).
version_field() { strings -e l "$1" | grep -A1 -x "$2" | tail -1; }

# newer_extension ./NAME.dll: true when the Daemon's copy may serve both programs. The CLI has no ASP.NET Core
# framework reference, so it takes Microsoft.Extensions.*.Abstractions from their NuGet packages, while the
# daemon gets a newer servicing build of the same assemblies from the shared framework. With the same
# assembly version and a file version at least as new, the daemon's copy (already in $lib) is kept.
newer_extension() {
    case "$1" in ./Microsoft.Extensions.*.dll) ;; *) return 1 ;; esac
    local ours=$build/publish/Admin/$1 kept=$lib/$1
    [ "$(version_field "$ours" 'Assembly Version')" = "$(version_field "$kept" 'Assembly Version')" ] || return 1
    [ "$(printf '%s\n' "$(version_field "$ours" FileVersion)" "$(version_field "$kept" FileVersion)" | sort -V | tail -1)" = \
      "$(version_field "$kept" FileVersion)" ] || return 1
    echo "   $1: the CLI uses the daemon's $(version_field "$kept" FileVersion) (its own: $(version_field "$ours" FileVersion))"
}

publish() {
    rm -rf "$build/publish" "$lib"
    local project name
    for project in Daemon Admin KeyServer; do
        echo "== [${SECONDS}s] dotnet publish MilterSecureList.$project (self-contained, linux-x64)"
        dotnet publish "$repo/src/MilterSecureList.$project" -c Release -r linux-x64 --self-contained true \
            -p:DebugType=None -p:DebugSymbols=false -p:GenerateDocumentationFile=false -p:SatelliteResourceLanguages=en \
            -o "$build/publish/$project" --nologo -v q -clp:ErrorsOnly
    done
    # The three programs share one runtime directory. Files they have in common come from the same
    # build and runtime pack; anything that differs would mean one program runs with another's copy.
    mkdir -p "$lib"
    cp -a "$build/publish/Daemon/." "$lib/"
    for project in Admin KeyServer; do
        (cd "$build/publish/$project" && find . -type f) | while read -r f; do
            if [ -e "$lib/$f" ]; then
                cmp -s "$build/publish/$project/$f" "$lib/$f" || newer_extension "$f" || die "Daemon and $project publish different versions of $f"
            else
                mkdir -p "$(dirname "$lib/$f")"
                cp -a "$build/publish/$project/$f" "$lib/$f"
            fi
        done
    done
    # LTTng tracing provider: optional for the runtime, and it would drag in liblttng-ust.
    rm -f "$lib/libcoreclrtraceptprovider.so"
    # The SQLite library from NuGet ships with its symbol table (lintian: unstripped-binary-or-object).
    local so
    for so in "$lib"/libe_sqlite3.so; do
        [ -f "$so" ] && strip --strip-unneeded --remove-section=.comment "$so"
    done
    find "$lib" -type d -exec chmod 0755 {} +
    find "$lib" -type f -exec chmod 0644 {} +
    chmod 0755 "$lib/securelist-milter" "$lib/securelist" "$lib/securelist-keyd" "$lib/createdump"
}

# troff-safe copy of a text file for a .nf block: backslashes escaped, control characters at line start neutralised.
# Non-ASCII characters (UTF-8 in the example) become \[uXXXX] escapes: groff reads Latin-1 otherwise.
troff_literal() {
    sed -e 's/\\/\\e/g' -e 's/^\([.'"'"']\)/\\\&\1/' "$1" \
        | perl -CSD -pe 's/([^\x00-\x7f])/sprintf("\\[u%04X]", ord($1))/ge'
}

# stage ROOT UNITDIR: the file tree shared by both packages.
stage() {
    local root=$1 unitdir=$2
    rm -rf "$root"
    install -d -m 0755 "$root/usr/lib/securelist" "$root/usr/sbin" "$root/usr/bin" "$root/etc/securelist" \
        "$root$unitdir" "$root/usr/lib/sysusers.d" "$root/usr/lib/tmpfiles.d" \
        "$root/usr/share/man/man1" "$root/usr/share/man/man5" "$root/usr/share/man/man8" "$root/usr/share/doc/securelist"
    cp -a "$lib/." "$root/usr/lib/securelist/"
    ln -s ../lib/securelist/securelist-milter "$root/usr/sbin/securelist-milter"
    ln -s ../lib/securelist/securelist-keyd "$root/usr/sbin/securelist-keyd"
    ln -s ../lib/securelist/securelist "$root/usr/bin/securelist"

    awk -f "$here/common/make-production-ini.awk" "$here/common/production.ini" "$example" >"$root/etc/securelist/milter.ini"
    check_ini "$root/etc/securelist/milter.ini"
    chmod 0640 "$root/etc/securelist/milter.ini"

    install -m 0644 "$here/common/securelist-milter.service" "$root$unitdir/securelist-milter.service"
    # The key server is optional: installed, never enabled by the package (it needs keyd.ini and its key pairs).
    install -m 0644 "$here/common/securelist-keyd.service" "$root$unitdir/securelist-keyd.service"
    install -m 0644 "$here/common/securelist.sysusers" "$root/usr/lib/sysusers.d/securelist.conf"
    install -m 0644 "$here/common/securelist.tmpfiles" "$root/usr/lib/tmpfiles.d/securelist.conf"

    local page
    for page in securelist.1:man1 securelist-milter.8:man8 securelist-keyd.8:man8; do
        sed -e "s/@VERSION@/$version/g" -e "s/@DATE@/$man_date/g" "$here/common/man/${page%%:*}" \
            | gzip -9n >"$root/usr/share/man/${page##*:}/${page%%:*}.gz"
    done
    troff_literal "$root/etc/securelist/milter.ini" >"$build/ini.troff"
    sed -e "s/@VERSION@/$version/g" -e "s/@DATE@/$man_date/g" -e "/^@INI@\$/{r $build/ini.troff" -e 'd}' \
        "$here/common/man/milter.ini.5.in" | gzip -9n >"$root/usr/share/man/man5/milter.ini.5.gz"

    install -m 0644 "$here/common/copyright" "$root/usr/share/doc/securelist/copyright"
    install -m 0644 "$example" "$root/usr/share/doc/securelist/milter.ini.example"
    local snippet
    for snippet in "$repo"/contrib/postfix/*.snippet; do
        [ -f "$snippet" ] && install -m 0644 "$snippet" "$root/usr/share/doc/securelist/postfix-$(basename "$snippet")"
    done
    sed -e "s/@VERSION@/$version/g" -e "s/@CHANGELOG_DATE@/$(date -u -R -d "@$SOURCE_DATE_EPOCH")/" \
        "$here/common/changelog" | gzip -9n >"$root/usr/share/doc/securelist/changelog.gz"
    # Reproducible mtimes.
    find "$root" -newermt "@$SOURCE_DATE_EPOCH" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
}

# Every production default must end up set exactly once, uncommented, in its section.
check_ini() {
    local file=$1 section key value
    while IFS=$'\t' read -r section key value; do
        case "$section" in ''|'#'*) continue ;; esac
        local got
        got=$(awk -v s="$section" -v k="$key" '
            /^[[:space:]]*\[/ { cur = $0; gsub(/^[[:space:]]*\[|\][[:space:]]*$/, "", cur); next }
            tolower(cur) == tolower(s) && $0 !~ /^[[:space:]]*[#;]/ {
                line = $0; name = line; sub(/[[:space:]]*=.*/, "", name); gsub(/^[[:space:]]+/, "", name)
                if (tolower(name) == tolower(k)) { sub(/^[^=]*=[[:space:]]*/, "", line); print line }
            }' "$file")
        [ "$got" = "$value" ] || die "milter.ini: [$section] $key is '${got//$'\n'/|}', expected '$value'"
    done <"$here/common/production.ini"
}

build_deb() {
    local root=$build/deb
    stage "$root" /lib/systemd/system
    install -d -m 0755 "$root/DEBIAN" "$root/usr/share/lintian/overrides"
    install -m 0644 "$here/deb/lintian-overrides" "$root/usr/share/lintian/overrides/securelist"
    local size
    size=$(du -sk --apparent-size --exclude=DEBIAN "$root" | cut -f1)
    sed -e "s/@VERSION@/$version/" -e "s/@INSTALLED_SIZE@/$size/" "$here/deb/control.in" >"$root/DEBIAN/control"
    install -m 0644 "$here/deb/conffiles" "$root/DEBIAN/conffiles"
    install -m 0755 "$here/deb/postinst" "$here/deb/prerm" "$here/deb/postrm" "$root/DEBIAN/"
    (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
    chmod 0644 "$root/DEBIAN/md5sums"
    local deb=$out/securelist_${version}_amd64.deb
    echo "== [${SECONDS}s] dpkg-deb $deb"
    dpkg-deb --root-owner-group -Z"${DEB_COMPRESSION:-xz}" -z"${DEB_COMPRESSION_LEVEL:-6}" --build "$root" "$deb" >/dev/null
    echo "built $deb [${SECONDS}s]"
}

build_rpm() {
    local root=$build/rpmroot top=$build/rpmbuild
    stage "$root" /usr/lib/systemd/system
    install -d -m 0750 "$root/var/lib/securelist"
    install -d -m 0700 "$root/var/lib/securelist/keys"
    install -d -m 0755 "$root/run/securelist"
    rm -rf "$top"
    mkdir -p "$top/SPECS" "$top/RPMS" "$top/BUILD" "$top/BUILDROOT"
    sed -e "s/@RPM_VERSION@/$rpm_version/g" -e "s/@RPM_DATE@/$(date -u -d "@$SOURCE_DATE_EPOCH" '+%a %b %d %Y')/" \
        "$here/rpm/securelist.spec.in" >"$top/SPECS/securelist.spec"
    echo "== [${SECONDS}s] rpmbuild"
    rpmbuild -bb --quiet --target x86_64 --define "_topdir $top" --define "stagedir $root" \
        --define "_binary_payload ${RPM_PAYLOAD:-w6.xzdio}" --define "use_source_date_epoch_as_buildtime 1" \
        "$top/SPECS/securelist.spec" >/dev/null
    local rpm=$out/securelist-$rpm_version-1.x86_64.rpm
    mv "$top/RPMS/x86_64/securelist-$rpm_version-1.x86_64.rpm" "$rpm"
    echo "built $rpm [${SECONDS}s]"
}

if [ "${SKIP_PUBLISH:-0}" = 1 ] && [ -x "$lib/securelist-milter" ]; then
    echo "== reusing $lib"
else
    publish
fi
case "$target" in
    deb) build_deb ;;
    rpm) build_rpm ;;
    all) build_deb; build_rpm ;;
esac
