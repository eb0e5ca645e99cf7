#!/usr/bin/env bash
# A throwaway Postfix 3.7 on loopback for the demo and the benchmarks: its own config, queue and log under
# DIR, smtpd on 127.0.0.1:SMTP_PORT, everything relayed to smtp-sink on 127.0.0.1:SINK_PORT, which dumps each
# message it receives into DIR/sink/. The list domain is wired with contrib/postfix/main.cf.snippet.
#
#   postfix-sandbox.sh start DIR SMTP_PORT SINK_PORT MILTER LISTDOMAIN   (MILTER: unix:/path | inet:H:P | none)
#   postfix-sandbox.sh wait DIR COUNT [SECONDS]   wait until COUNT messages sit in DIR/sink and the queue is empty
#   postfix-sandbox.sh stop DIR                   stop Postfix and smtp-sink (DIR is left for the caller)
set -euo pipefail
export PATH="/usr/sbin:$PATH"
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "postfix-sandbox: $*" >&2; exit 1; }

start() {
    local dir=$1 smtp=$2 sink=$3 milter=$4 domain=$5
    [ "$(id -u)" = 0 ] || die "must run as root (the Postfix master drops privileges itself)"
    mkdir -p "$dir/etc" "$dir/queue" "$dir/data" "$dir/sink"
    chmod 755 "$dir"
    chown postfix "$dir/data" "$dir/sink"
    : >"$dir/etc/main.cf"
    local pc=(postconf -c "$dir/etc" -e)
    "${pc[@]}" "compatibility_level = 3.6" "queue_directory = $dir/queue" "data_directory = $dir/data" \
        "command_directory = /usr/sbin" "daemon_directory = /usr/lib/postfix/sbin" "meta_directory = /etc/postfix" \
        "shlib_directory = /usr/lib/postfix" "mail_owner = postfix" "setgid_group = postdrop" \
        "syslog_name = securelist-sandbox" "maillog_file = $dir/maillog" "maillog_file_prefixes = $dir" \
        "myhostname = mx.sandbox.test" "mydomain = sandbox.test" "mydestination =" "local_recipient_maps =" \
        "alias_maps =" "alias_database =" "relayhost = [127.0.0.1]:$sink" "inet_interfaces = 127.0.0.1" \
        "inet_protocols = ipv4" "mynetworks = 127.0.0.0/8" "smtpd_relay_restrictions = permit_mynetworks, reject" \
        "smtpd_peername_lookup = no" "smtp_dns_support_level = disabled" "smtputf8_enable = no" "biff = no" \
        "notify_classes =" "in_flow_delay = 0" "queue_minfree = 0" "message_size_limit = 0" \
        "default_destination_recipient_limit = 1000"
    # The production snippet, verbatim but for its two placeholders.
    local socket=$milter
    [ "$milter" = none ] && socket=""
    while IFS= read -r line; do
        case $line in "" | \#*) continue ;; esac
        line=${line//@SOCKET@/$socket}
        line=${line//@LISTDOMAIN@/$domain}
        line=${line//relay_domains = \$relay_domains, /relay_domains = }
        "${pc[@]}" "$line"
    done <"$here/../contrib/postfix/main.cf.snippet"
    cat >"$dir/etc/master.cf" <<EOT
127.0.0.1:$smtp inet n - n - - smtpd
pickup     unix  n - n 60   1 pickup
cleanup    unix  n - n -    0 cleanup
qmgr       unix  n - n 1    1 qmgr
rewrite    unix  - - n -    - trivial-rewrite
bounce     unix  - - n -    0 bounce
defer      unix  - - n -    0 bounce
trace      unix  - - n -    0 bounce
verify     unix  - - n -    1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -    - proxymap
smtp       unix  - - n -    - smtp
relay      unix  - - n -    - smtp
showq      unix  n - n -    - showq
error      unix  - - n -    - error
retry      unix  - - n -    - error
discard    unix  - - n -    - discard
anvil      unix  - - n -    1 anvil
scache     unix  - - n -    1 scache
postlog    unix-dgram n - n - 1 postlogd
EOT
    grep -v '^#' "$here/../contrib/postfix/master.cf.snippet" >>"$dir/etc/master.cf"
    (cd "$dir/sink" && exec smtp-sink -u postfix -d "msg-%M%S." "127.0.0.1:$sink" 256 >"$dir/sink.log" 2>&1) &
    echo $! >"$dir/sink.pid"
    postfix -c "$dir/etc" check >"$dir/check.log" 2>&1 || { cat "$dir/check.log" >&2; die "postfix check failed"; }
    postfix -c "$dir/etc" start >"$dir/start.log" 2>&1 || { cat "$dir/start.log" >&2; die "postfix start failed"; }
    for _ in $(seq 100); do
        ss -Hltn "sport = :$smtp" | grep -q . && ss -Hltn "sport = :$sink" | grep -q . && return 0
        sleep 0.1
    done
    die "Postfix or smtp-sink did not start listening (see $dir/maillog)"
}

wait_for() {
    local dir=$1 count=$2 secs=${3:-60}
    for _ in $(seq $((secs * 10))); do
        local got queued
        got=$(find "$dir/sink" -type f | wc -l)
        queued=$(find "$dir/queue/incoming" "$dir/queue/active" "$dir/queue/maildrop" -type f 2>/dev/null | wc -l)
        [ "$got" -ge "$count" ] && [ "$queued" -eq 0 ] && return 0
        sleep 0.1
    done
    die "timed out waiting for $count message(s) in $dir/sink (log: $dir/maillog)"
}

stop() {
    local dir=$1
    timeout 20 postfix -c "$dir/etc" stop >/dev/null 2>&1 || true
    local mp
    mp=$(tr -d ' ' <"$dir/queue/pid/master.pid" 2>/dev/null || true)
    if [ -n "$mp" ]; then
        for _ in $(seq 50); do kill -0 "$mp" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$mp" 2>/dev/null || true
    fi
    [ -f "$dir/sink.pid" ] && kill "$(cat "$dir/sink.pid")" 2>/dev/null || true
}

cmd=${1:-}; shift || true
case $cmd in
start) start "$@" ;;
wait) wait_for "$@" ;;
stop) stop "$@" ;;
*) sed -n '2,9p' "$0"; exit 2 ;;
esac
