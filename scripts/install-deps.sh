#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo use: the real peers (Postfix with smtp-source and
# smtp-sink, miltertest, swaks, openssl, gpgsm, NSS cmsutil, PostgreSQL) and the build tools for the
# libmilter reference milter and the packages. Runs only as root; otherwise it lists what is missing.
set -euo pipefail

packages=(postfix miltertest swaks openssl gpgsm libnss3-tools libmilter-dev postgresql
          lintian rpm build-essential dpkg-dev fakeroot python3 gpg-agent gpgconf
          python3-cryptography bc iproute2 passwd systemd opendkim opendkim-tools)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
fi
echo "install-deps: installing ${missing[*]}"
# Postfix must not configure or start a system instance: tests run their own throwaway instances.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
