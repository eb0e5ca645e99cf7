# Helpers shared by the project's shell scripts (demo.sh, tests/exim/, bench/). Source it, e.g.
#   . "$(dirname "$0")/scripts/lib.sh"
# Every helper reports failure through its exit status and never exits the caller, so each script keeps its
# own way of failing (die, a FAIL line, ...). Safe under `set -euo pipefail`.

# free_port [N]: prints N (default 1) distinct TCP ports on 127.0.0.1 that nothing listens on, separated by
# spaces. All N are bound at the same time, so two ports asked for together never coincide:
#   read -r smtp_port sink_port <<<"$(free_port 2)"
free_port() {
    python3 - "${1:-1}" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
}

# wait_tcp PORT [SECONDS]: returns 0 as soon as 127.0.0.1:PORT accepts a connection, 1 once SECONDS
# (default 10) have passed without that.
wait_tcp() {
    local port=$1 deadline=$((SECONDS + ${2:-10}))
    while :; do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# wait_socket PATH [SECONDS]: returns 0 as soon as PATH is a unix socket, 1 once SECONDS (default 10) have
# passed without that. (A socket file can exist a moment before listen(); callers that connect at once
# retry, as Postfix does.)
wait_socket() {
    local path=$1 deadline=$((SECONDS + ${2:-10}))
    while :; do
        [ -S "$path" ] && return 0
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# wait_listen ADDRESS [SECONDS]: ADDRESS is unix:/path or inet:HOST:PORT (the port is probed on 127.0.0.1).
wait_listen() {
    case $1 in
    unix:*) wait_socket "${1#unix:}" "${2:-10}" ;;
    inet:*) wait_tcp "${1##*:}" "${2:-10}" ;;
    *) return 2 ;;
    esac
}

# missing_tools TOOL...: prints the first TOOL that is not on the PATH and returns 1; returns 0 when all are there.
#   t=$(missing_tools postfix openssl) || die "$t is missing (see scripts/install-deps.sh)"
missing_tools() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null || { echo "$t"; return 1; }
    done
}

# build_programs: builds the daemon and the CLI (Release) from the checkout in $root and sets $milter and
# $securelist to the two binaries.
build_programs() {
    echo "== building (Release)"
    dotnet build "$root/src/MilterSecureList.Daemon" -c Release --nologo -v q -clp:ErrorsOnly >/dev/null || return 1
    dotnet build "$root/src/MilterSecureList.Admin" -c Release --nologo -v q -clp:ErrorsOnly >/dev/null || return 1
    milter=$root/src/MilterSecureList.Daemon/bin/Release/net10.0/securelist-milter
    securelist=$root/src/MilterSecureList.Admin/bin/Release/net10.0/securelist
}

# use_workdir DIR: makes DIR the run's work directory ($work; world-readable, for Postfix's users) and installs an
# EXIT trap that stops the daemon in $milter_pid, any process in $extra_pids, and every Postfix sandbox under DIR
# (pf-* and postfix), then removes DIR unless KEEP=1.
use_workdir() {
    work=$1
    chmod 755 "$work"
    milter_pid=""
    extra_pids=""
    trap cleanup_workdir EXIT
}

cleanup_workdir() {
    local pid pf
    [ -n "${milter_pid:-}" ] && kill "$milter_pid" 2>/dev/null && wait "$milter_pid" 2>/dev/null || true
    for pid in ${extra_pids:-}; do kill "$pid" 2>/dev/null || true; done
    for pf in "$work"/pf-* "$work/postfix"; do
        [ -d "$pf" ] && "$root/scripts/postfix-sandbox.sh" stop "$pf" >/dev/null 2>&1 || true
    done
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
