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
