#!/usr/bin/env bash
# Integration test of contrib/exim/exim4.conf.snippet with a REAL Exim 4.96 (Debian exim4-daemon-light).
#
# exim4-daemon-light conflicts with the installed postfix package, so it is not installed: its .deb (and
# libidn12, which it links against and Postfix does not pull in) is fetched with `apt-get download` and
# unpacked with `dpkg-deb -x` into a temp dir. Exim runs as a daemon on a free 127.0.0.1 port with spool,
# logs and configuration in that temp dir and delivers to smtp-sink (postfix package) on another port.
# Debian's binary resolves its compiled-in exim user "Debian-exim" at startup, so that user must exist;
# if it does not, a throwaway system user is created and removed again at exit.
#
# Environment:
#   SECURELIST, SECURELIST_CONFIG  built securelist CLI and its configuration. When SECURELIST is set, the
#                        defaults of FILTER_CMD and FILTER_MEMBERS_CMD are the snippet's real command lines.
#   FILTER_CMD           transport filter for the main phase (Exim syntax; $local_part etc. are Exim's)
#   FILTER_MEMBERS_CMD   member lister for the main phase (prints one address a line)
#   FILTER_EXPECT        extended regex each member's delivered copy must match; %r = the member address
#   LIST_MEMBERS         members the main phase expects (space-separated)
#   POST_FILE            message sent in the main phase (default: a synthetic application/pkcs7-mime post
#                        of random bytes; required with SECURELIST: the real filter needs a real post)
#   POST_SENDER          envelope sender of that post
#   MEMBER_CHECK_CMD     optional bash snippet run for each member's delivered copy as
#                        `bash -c "$MEMBER_CHECK_CMD" _ MEMBER FILE`; must exit 0 (e.g. decrypt with the
#                        member's key). FILE is smtp-sink's dump: its X-Client-*/X-*-Args lines come first.
#   DATA_CHECK=1         with SECURELIST: enable SECURELIST_DATA_CHECK (`securelist check` at DATA) in
#                        the main phase too (the stand-in configuration always has it)
#   EXIM_DEB_DIR         directory with already downloaded .debs (default: download into the temp dir)
#   KEEP_TMP=1           keep the temp dir for inspection
# Without SECURELIST, SECURELIST_BIN is a stand-in CLI written to the temp dir (its filter adds X-Filtered-*
# headers and logs each run). The defer and refusal phases always use stand-ins: they test what Exim
# does with the snippet, not what the CLI does.
#
# Last line: "exim: N passed, N failed". Exit status non-zero on any failure.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../scripts/lib.sh"
snippet=$(cd "$here/../../contrib/exim" && pwd)/exim4.conf.snippet
list_domain=lists.exim.test
list=list@$list_domain
sender=poster@example.net

pass=0 fail=0
ok()   { pass=$((pass + 1)); echo "ok   - $*"; }
bad()  { fail=$((fail + 1)); echo "FAIL - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
finish() { echo "exim: $pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }
die()  { bad "$*"; finish; }

T= sink_pid= exim_pid= exim2_pid= made_user= made_group= kept_gid=
cleanup() {
    [ -n "$exim_pid" ] && kill "$exim_pid" 2>/dev/null && wait "$exim_pid" 2>/dev/null
    [ -n "$exim2_pid" ] && kill "$exim2_pid" 2>/dev/null && wait "$exim2_pid" 2>/dev/null
    [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null && wait "$sink_pid" 2>/dev/null
    # Exim's delivery and filter children belong to the daemon or to our -M runs, which have ended;
    # anything left that runs the binary from our temp dir is ours.
    if [ -n "$T" ]; then
        local p
        for p in $(pgrep -f "^$T/root/usr/sbin/exim4 " 2>/dev/null); do kill "$p" 2>/dev/null; done
    fi
    [ -n "$made_user" ] && userdel Debian-exim 2>/dev/null
    [ -n "$made_group" ] && getent group Debian-exim >/dev/null && groupdel Debian-exim 2>/dev/null
    # userdel also deletes a same-named primary group that existed before us: put it back.
    [ -n "$kept_gid" ] && ! getent group Debian-exim >/dev/null && groupadd --system --gid "$kept_gid" Debian-exim
    if [ -n "$T" ] && [ "${KEEP_TMP:-0}" != 1 ]; then rm -rf "$T"; elif [ -n "$T" ]; then echo "kept $T" >&2; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---------------------------------------------------------------------------------------- prerequisites
[ "$(id -u)" = 0 ] || die "must run as root (Exim trusts a -C configuration only from root)"
for tool in swaks smtp-sink apt-get dpkg-deb python3 useradd; do
    command -v "$tool" >/dev/null || die "missing tool: $tool (apt-get install swaks postfix)"
done
getent passwd postfix >/dev/null || die "user postfix missing (smtp-sink -u postfix): install postfix"

T=$(mktemp -d /tmp/securelist-exim.XXXXXX)
# Exim's receiving and transport processes run as Debian-exim and must reach the stand-in scripts.
chmod 755 "$T"

# ---------------------------------------------------------------------------------------- Exim binary
fetch_debs() {
    local d=$1
    ( cd "$d" && apt-get download exim4-daemon-light libidn12 >"$T/apt.log" 2>&1 ) && return 0
    # A fresh machine may have no package lists yet.
    apt-get update >>"$T/apt.log" 2>&1
    ( cd "$d" && apt-get download exim4-daemon-light libidn12 >>"$T/apt.log" 2>&1 )
}
debs=${EXIM_DEB_DIR:-$T/debs}
mkdir -p "$debs" "$T/root"
if ! ls "$debs"/exim4-daemon-light_*.deb >/dev/null 2>&1; then
    fetch_debs "$debs" || die "apt-get download exim4-daemon-light libidn12 failed: $(tail -n 3 "$T/apt.log")"
fi
for deb in "$debs"/exim4-daemon-light_*.deb "$debs"/libidn12_*.deb; do
    dpkg-deb -x "$deb" "$T/root" || die "dpkg-deb -x $deb failed"
done
export LD_LIBRARY_PATH=$T/root/usr/lib/x86_64-linux-gnu
EXIM=$T/root/usr/sbin/exim4
# The package's binary is setuid root. Without the bit, a re-exec by the Exim user still honours
# LD_LIBRARY_PATH (the loader ignores it for setuid programs); root, which runs everything here, needs no bit.
chmod u-s "$EXIM"
missing=$(ldd "$EXIM" | grep 'not found')
[ -z "$missing" ] || die "exim4 needs libraries that are not installed: $missing"

if ! getent passwd Debian-exim >/dev/null; then
    group_opt=--user-group
    if getent group Debian-exim >/dev/null; then
        group_opt=--gid=Debian-exim kept_gid=$(getent group Debian-exim | cut -d: -f3)
    else
        made_group=1
    fi
    useradd --system "$group_opt" --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
        Debian-exim || die "cannot create the throwaway user Debian-exim"
    made_user=1
fi
"$EXIM" -bV >"$T/bV.txt" 2>&1
version=$(sed -n 's/^Exim version \([^ ]*\).*/\1/p' "$T/bV.txt")
[ "$version" = 4.96 ] && ok "Exim $version from $(basename "$debs"/exim4-daemon-light_*.deb) runs" \
    || die "exim -bV: $(head -n 3 "$T/bV.txt")"

# ---------------------------------------------------------------------------------------- stand-ins
mkdir -p "$T/spool" "$T/log" "$T/sink" "$T/state"
chown Debian-exim:Debian-exim "$T/spool" "$T/log" "$T/state"
chown postfix "$T/sink"

# Member lister: the contract of `securelist member ls LIST --plain` (exit 67 = no such list).
cat >"$T/members.sh" <<'EOF'
#!/bin/sh
case "$1" in
  list@lists.exim.test)   printf 'alice@members.exim.test\nbob@members.exim.test\ncarol@members.exim.test\n' ;;
  closed@lists.exim.test) printf 'alice@members.exim.test\n' ;;
  empty@lists.exim.test)  ;;
  broken@lists.exim.test) echo "directory unavailable" >&2; exit 1 ;;
  slow@lists.exim.test)   exec sleep 30 ;;
  *) exit 67 ;;
esac
EOF
# Transport filter stand-in, with the interface of `securelist filter --envelope-headers`: reads the
# envelope from the Return-path:, X-SecureList-Envelope-To: and X-SecureList-List: header lines the
# transport adds (exactly one each, else exit 65), removes them, logs what it saw, then either fails with
# EX_TEMPFAIL (member listed in state/defer-for, or "*") or prepends X-Filtered-* headers. Writes nothing
# to stderr: Exim merges a filter's stderr into the message.
cat >"$T/filter.sh" <<EOF
#!/bin/bash
state=$T/state
EOF
cat >>"$T/filter.sh" <<'EOF'
msg=$(mktemp "$state/in.XXXXXX") || exit 75
trap 'rm -f "$msg"' EXIT
cat >"$msg"
# Header section: up to the first empty line. Unfolded names only (the transport's lines are not folded).
hdr() { awk -v n="$1" '/^$/{exit} tolower($0) ~ "^" tolower(n) ":" {sub(/^[^:]*:[ \t]*/, ""); print}' "$msg"; }
count() { hdr "$1" | wc -l; }
[ "$(count Return-path)" = 1 ] && [ "$(count X-SecureList-Envelope-To)" = 1 ] && [ "$(count X-SecureList-List)" = 1 ] || {
  echo "bad envelope headers: rp=$(count Return-path) to=$(count X-SecureList-Envelope-To) list=$(count X-SecureList-List)" >>"$state/filter.log"
  exit 65; }
strip() { local a; a=$(hdr "$1"); a=${a#<}; echo "${a%>}"; }
sender=$(strip Return-path) rcpt=$(strip X-SecureList-Envelope-To) list=$(strip X-SecureList-List)
crlf=$(grep -c $'\r' "$msg")
echo "sender=$sender recipient=$rcpt list=$list crlf=$crlf argv=$* bytes=$(wc -c <"$msg")" >>"$state/filter.log"
if grep -qxF -e "$rcpt" -e '*' "$state/defer-for" 2>/dev/null; then
  case "$(cat "$state/mode" 2>/dev/null)" in
    # Fail half-way, after writing part of the message: Exim must not complete that SMTP transaction.
    partial) head -c "$(( $(wc -c <"$msg") / 2 ))" "$msg"; exit 75 ;;
    # Hang: bounded by transport_filter_timeout (and by this sleep, should Exim not kill us).
    hang) exec sleep 30 ;;
    *) exit 75 ;;
  esac
fi
printf 'X-Filtered-For: %s\nX-Filtered-List: %s\n' "$rcpt" "$list"
awk 'BEGIN{h=1} h && /^$/{h=0} h && tolower($0) ~ /^(return-path|x-securelist-envelope-to|x-securelist-list):/{next} {print}' "$msg"
EOF
# Stand-in for the securelist CLI itself, so that the snippet's default command lines
# (SECURELIST_MEMBERS_CMD, SECURELIST_FILTER_CMD) are what Exim runs. Any other argument vector: exit 64.
cat >"$T/securelist" <<EOF
#!/bin/bash
[ "\$1" = --config ] && [ "\$2" = "$T/standin.ini" ] || exit 64
shift 2
if [ \$# = 4 ] && [ "\$1 \$2 \$4" = "member ls --plain" ]; then exec "$T/members.sh" "\$3"; fi
if [ "\$*" = "filter --envelope-headers" ]; then exec "$T/filter.sh" "\$@"; fi
if [ \$# = 9 ] && [ "\$1" = check ]; then shift; exec "$T/check.sh" "\$@"; fi
exit 64
EOF
# Stand-in for `securelist check --exim-data-file F --content-type CT --from S --rcpt R` in the DATA ACL:
# proves what Exim hands over (the spool data file exists, is readable, starts with "<id>-D"; the
# content type; sender; recipients) and answers 65 or 1 for marked bodies.
cat >"$T/check.sh" <<EOF
#!/bin/bash
state=$T/state
EOF
cat >>"$T/check.sh" <<'EOF'
[ $# = 8 ] && [ "$1 $3 $5 $7" = "--exim-data-file --content-type --from --rcpt" ] || { echo "bad invocation: $*"; exit 64; }
file=$2 ct=$4 from=$6 rcpt=$8
first=$(head -n 1 "$file" 2>/dev/null)
[ -n "$first" ] && [ "$first" = "$(basename "$file")" ] || { echo "bad data file $file"; exit 64; }
echo "check from=$from rcpt=$rcpt ct=${ct%%;*} file=ok" >>"$state/check.log"
if grep -qx 'UkVKRUNULU1F' "$file"; then echo "Not encrypted to the list key (stand-in)"; echo "second line"; exit 65; fi
if grep -qx 'VEVNUEZBSUwt' "$file"; then echo "directory down"; exit 1; fi
exit 0
EOF
chmod 755 "$T/members.sh" "$T/filter.sh" "$T/check.sh" "$T/securelist"
: >"$T/state/defer-for"
: >"$T/state/mode"

if [ -n "${SECURELIST:-}" ]; then
    main_bin=$SECURELIST main_ini=${SECURELIST_CONFIG:-}
    main_data_check=$([ "${DATA_CHECK:-0}" = 1 ] && echo yes || echo no)
    expect=${FILTER_EXPECT:-'^List-Id:'}
    [ -x "$SECURELIST" ] || die "SECURELIST=$SECURELIST is not an executable"
    [ -n "${POST_FILE:-}" ] || die "with SECURELIST set, POST_FILE must name a real S/MIME post to $list"
    # The ACL's ${run} and the transport filter run as the Exim user.
    runuser -u Debian-exim -- test -x "$SECURELIST" \
        || die "Debian-exim cannot execute $SECURELIST (every directory above it must be world-searchable)"
    [ -z "${SECURELIST_CONFIG:-}" ] || runuser -u Debian-exim -- test -r "$SECURELIST_CONFIG" \
        || die "Debian-exim cannot read $SECURELIST_CONFIG"
    echo "# main phase uses the real CLI $SECURELIST"
else
    main_bin=$T/securelist main_ini=$T/standin.ini main_data_check=yes
    expect=${FILTER_EXPECT:-'^X-Filtered-For: %r$'}
    echo "# SECURELIST not set: the main phase uses the stand-in securelist CLI in $T"
fi
members=${LIST_MEMBERS:-alice@members.exim.test bob@members.exim.test carol@members.exim.test}

# ---------------------------------------------------------------------------------------- configuration
read -r port sink_port <<<"$(free_port 2)"

# make_conf FILE BIN INI DATA_CHECK(yes|no) [MEMBERS_CMD FILTER_CMD]: the test's own main/ACL/router
# lines around the snippet's parts, which are copied verbatim. Empty commands: the snippet's defaults.
part() { awk -v p="$1" '/^#### part: /{on = ($3 == p); next} on' "$snippet"; }
make_conf() {
    local f=$1 bin=$2 ini=$3 dcheck=$4 mcmd=${5:-} fcmd=${6:-}
    {
        echo "# generated by tests/exim/test-exim.sh from contrib/exim/exim4.conf.snippet"
        echo "SECURELIST_DOMAINS = $list_domain"
        echo "SECURELIST_BIN = $bin"
        [ -n "$ini" ] && echo "SECURELIST_CONFIG = $ini"
        [ -n "$mcmd" ] && echo "SECURELIST_MEMBERS_CMD = $mcmd"
        [ -n "$fcmd" ] && echo "SECURELIST_FILTER_CMD = $fcmd"
        echo "SECURELIST_MEMBERS_ONLY = closed@$list_domain"
        [ "$dcheck" = yes ] && echo "SECURELIST_DATA_CHECK = yes"
        # Members' domains do not exist: all member copies go to smtp-sink.
        echo "SECURELIST_SMARTHOST = 127.0.0.1"
        echo "SECURELIST_REMOTE_PORT = $sink_port"
        # A hung filter must cost seconds here, not the production default of 5 minutes.
        echo "SECURELIST_FILTER_TIMEOUT = 3s"
        echo "SECURELIST_LOOKUP_TIMEOUT = 2s"
        part main
        cat <<EOF
primary_hostname = exim.test
qualify_domain = exim.test
spool_directory = $T/spool
log_file_path = $T/log/%slog
pid_file_path = $T/exim.pid
daemon_smtp_ports = $port
local_interfaces = 127.0.0.1
# Received mail only waits in the queue; the test delivers it with "exim -M" so that every delivery
# attempt is one synchronous command (no polling, no timing).
queue_only = true
host_lookup =
rfc1413_hosts =
acl_smtp_rcpt = acl_check_rcpt
acl_smtp_data = acl_check_data
acl_not_smtp  = acl_check_not_smtp
log_selector = +all -arguments
# Exim re-execs itself (e.g. -t for an error message from a non-SMTP ACL): the copy in the temp dir,
# which finds libidn12 through LD_LIBRARY_PATH only if the environment keeps it.
exim_path = $EXIM
keep_environment = LD_LIBRARY_PATH
begin acl
EOF
        part acl
        cat <<'EOF'
acl_check_rcpt:
  deny    domains = +securelist_domains
          !acl    = securelist_rcpt
  accept  domains = +securelist_domains
  accept  recipients = announce@exim.test
  deny    message = 550 5.7.1 relay not permitted
acl_check_data:
  deny    !acl    = securelist_data
  accept
acl_check_not_smtp:
  deny    !acl    = securelist_data
  accept
begin routers
EOF
        part routers
        cat <<'EOF'
# An operator's alias that points at a list: its members' copies must name the list, not the alias.
aliases:
  driver = redirect
  domains = exim.test
  local_parts = announce
  data = list@lists.exim.test
# The test's last router: anything that is neither a list nor a member fails (no open relay).
unroutable:
  driver = redirect
  data   = :fail: not routed in this test
  allow_fail
begin retry
# Matters only to queue runners, which this test never starts: -M always tries.
*  *  F,1h,10m
begin transports
EOF
        part transports
    } >"$f"
    chmod 644 "$f"
}
make_conf "$T/exim.conf" "$main_bin" "$main_ini" "$main_data_check" "${FILTER_MEMBERS_CMD:-}" "${FILTER_CMD:-}"
make_conf "$T/exim-standin.conf" "$T/securelist" "$T/standin.ini" yes
for c in exim.conf exim-standin.conf; do
    "$EXIM" -C "$T/$c" -bV >"$T/$c.check" 2>&1 || die "$c does not parse: $(grep -v '^Exim\|^Copyright\|^(c)' "$T/$c.check" | head -n 5)"
done
ok "configurations built from the snippet parse (exim -bV -C)"
"$EXIM" -C "$T/exim-standin.conf" -d -bV 2>&1 | grep -E '^(TRUSTED_CONFIG_LIST|ALT_CONFIG_PREFIX|Fixed never_users|Configure owner)' \
    | sed 's/^/# debian build: /'
"$EXIM" -C "$T/exim-standin.conf" -bt "$list" >"$T/bt.log" 2>&1
check "exim -bt $list: 3 members, each routed by securelist_member to securelist_smtp" \
    test "$(grep -c 'router = securelist_member, transport = securelist_smtp' "$T/bt.log")" = 3

# ---------------------------------------------------------------------------------------- start peers
smtp-sink -u postfix -d "$T/sink/msg-" "127.0.0.1:$sink_port" 64 >"$T/sink.log" 2>&1 &
sink_pid=$!
"$EXIM" -C "$T/exim.conf" -bdf -oX "$port" >"$T/daemon.log" 2>&1 &
exim_pid=$!
wait_tcp "$sink_port" || die "smtp-sink did not listen on $sink_port: $(cat "$T/sink.log")"
wait_tcp "$port" || die "exim daemon did not listen on $port: $(cat "$T/daemon.log" "$T/log/paniclog" 2>/dev/null)"
ok "exim daemon on 127.0.0.1:$port, smtp-sink on 127.0.0.1:$sink_port"

# ---------------------------------------------------------------------------------------- helpers
synthetic_post() { # $1 subject: a top-level S/MIME enveloped-data entity (base64 of random bytes)
    printf 'From: Poster <%s>\nTo: <%s>\nSubject: %s\nMIME-Version: 1.0\n' "$sender" "$list" "$1"
    # Forged envelope lines: Exim must drop them before the filter sees the message (the stand-in
    # filter exits 65 unless it sees exactly one of each).
    printf 'Return-path: <forged@evil.example>\nX-SecureList-Envelope-To: <mallory@evil.example>\n'
    printf 'X-SecureList-List: <other@lists.exim.test>\n'
    printf 'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"\n'
    printf 'Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename="smime.p7m"\n\n'
    head -c 3000 /dev/urandom | base64 -w 64
}
sent_id=
send() { # send LOG FROM TO DATAFILE [extra swaks args]: sets sent_id; returns swaks' status
    local log=$1 from=$2 to=$3 data=$4; shift 4
    swaks --server 127.0.0.1 --port "$port" --from "$from" --to "$to" --data "@$data" \
          --helo client.exim.test --timeout 30 "$@" >"$log" 2>&1
    local rc=$?
    sent_id=$(sed -n 's/^<.* 250 OK id=\([-0-9A-Za-z]*\).*/\1/p' "$log" | tail -n 1)
    return $rc
}
deliver() { "$EXIM" -C "$1" -M "$2" >>"$T/deliver.log" 2>&1; }  # one synchronous delivery attempt
queued() { "$EXIM" -C "$T/exim.conf" -bp 2>/dev/null | grep -c "$1"; }
sink_snapshot() { find "$T/sink" -type f | sort >"$T/sink.$1"; }
new_sink_files() { find "$T/sink" -type f | sort | comm -13 "$T/sink.$1" -; }

# ---------------------------------------------------------------------------------------- phase A: delivery
post=${POST_FILE:-}
if [ -z "$post" ]; then synthetic_post "phase A" >"$T/postA.eml"; post=$T/postA.eml; fi
send "$T/swaksA.log" "${POST_SENDER:-$sender}" "$list" "$post"
check "A: post to $list accepted over SMTP (250 + queue id)" test -n "$sent_id"
idA=$sent_id
[ -n "$idA" ] || { sed 's/^/    /' "$T/swaksA.log" | tail -n 20; die "no queue id, cannot continue"; }
sink_snapshot A
deliver "$T/exim.conf" "$idA"
check "A: message left the queue after one delivery run" test "$(queued "$idA")" = 0
n_members=$(echo $members | wc -w)
check "A: $n_members deliveries reached smtp-sink" test "$(new_sink_files A | wc -l)" = "$n_members"
for m in $members; do
    f=$(new_sink_files A | xargs -r grep -lx "X-Rcpt-Args: <$m>.*" 2>/dev/null)
    if [ "$(echo "$f" | grep -c .)" != 1 ]; then bad "A: exactly one copy for $m"; continue; fi
    check "A: $m's copy has exactly one envelope recipient (max_rcpt = 1)" \
        test "$(grep -c '^X-Rcpt-Args:' "$f")" = 1
    re=${expect//%r/$m}
    check "A: $m's copy went through the transport filter ($re)" grep -Eq "$re" "$f"
    check "A: $m's copy carries no envelope header lines (the filter removed them)" \
        test -z "$(sed '/^$/q' "$f" | grep -iE '^(Return-path|X-SecureList-Envelope-To|X-SecureList-List):')"
    if [ -n "${MEMBER_CHECK_CMD:-}" ]; then
        check "A: MEMBER_CHECK_CMD accepts $m's copy" bash -c "$MEMBER_CHECK_CMD" _ "$m" "$f"
    fi
done
check "A: the list address itself was never delivered" \
    test -z "$(grep -rl "^X-Rcpt-Args: <$list>" "$T/sink")"
if [ -z "${SECURELIST:-}" ] && [ -z "${FILTER_CMD:-}" ]; then
    check "A: filter ran once per member and got sender, member and list from the transport's header lines" \
        test "$(grep -c "^sender=$sender recipient=[a-z]*@members.exim.test list=$list crlf=0 argv=filter --envelope-headers bytes=" "$T/state/filter.log")" = "$n_members"
    check "A: the filter got LF line ends (no CR) and the whole message including headers" \
        grep -q '^Subject: phase A' "$T/sink/"* 
fi
check "A: exim logged each delivery through securelist_member/securelist_smtp" \
    test "$(grep -c "$idA => .* <$list> .*R=securelist_member T=securelist_smtp" "$T/log/mainlog")" = "$n_members"

# ---------------------------------------------------------------------------------------- phase B: defer
# The deferral mechanics need the stand-in filter (it is told to fail per member); with the real CLI they
# were proven by the stand-in run, so phase B runs only there.
if [ -z "${SECURELIST:-}" ]; then
synthetic_post "phase B" >"$T/postB.eml"
send "$T/swaksB.log" "$sender" "$list" "$T/postB.eml"
idB=$sent_id
check "B: second post accepted" test -n "$idB"
sink_snapshot B
echo '*' >"$T/state/defer-for"
deliver "$T/exim-standin.conf" "$idB"
check "B: filter exit 75 for every member: nothing reached smtp-sink" test -z "$(new_sink_files B)"
check "B: ... and the message is still in Exim's queue" test "$(queued "$idB")" = 1
check "B: ... and Exim logged a deferral caused by the transport filter" \
    grep -q "$idB == .*R=securelist_member T=securelist_smtp defer .*transport filter" "$T/log/mainlog"
echo 'carol@members.exim.test' >"$T/state/defer-for"
deliver "$T/exim-standin.conf" "$idB"
check "B: retry with exit 75 for carol only: alice and bob delivered" \
    test "$(new_sink_files B | xargs -r grep -lE '^X-Rcpt-Args: <(alice|bob)@' | wc -l)" = 2
check "B: ... carol not delivered, message still queued for her" \
    test -z "$(new_sink_files B | xargs -r grep -l '^X-Rcpt-Args: <carol@')" -a "$(queued "$idB")" = 1
echo partial >"$T/state/mode"
deliver "$T/exim-standin.conf" "$idB"
check "B: filter that writes half the message then exits 75: carol still not delivered" \
    test -z "$(new_sink_files B | xargs -r grep -l '^X-Rcpt-Args: <carol@')" -a "$(queued "$idB")" = 1
echo hang >"$T/state/mode"
deliver "$T/exim-standin.conf" "$idB"
check "B: hung filter: killed at transport_filter_timeout, carol deferred, still queued" \
    test -z "$(new_sink_files B | xargs -r grep -l '^X-Rcpt-Args: <carol@')" -a "$(queued "$idB")" = 1 \
         -a -n "$(grep "$idB == carol@.* defer .*timed out" "$T/log/mainlog")"
: >"$T/state/defer-for"
: >"$T/state/mode"
deliver "$T/exim-standin.conf" "$idB"
check "B: next retry delivers carol once, alice and bob are not sent twice" \
    test "$(new_sink_files B | wc -l)" = 3 -a "$(queued "$idB")" = 0

fi
# ---------------------------------------------------------------------------------------- phase C: alias
# announce@exim.test -> list@lists.exim.test: the filter must be told the list (the member's parent).
synthetic_post "phase C" >"$T/postAlias.eml"
send "$T/swaksAlias.log" "$sender" "announce@exim.test" "$T/postAlias.eml"
idAlias=$sent_id
check "C: post to an alias of the list accepted" test -n "$idAlias"
sink_snapshot alias
deliver "$T/exim-standin.conf" "$idAlias"
check "C: every member got a copy through the filter, for the list (not the alias)" \
    test "$(new_sink_files alias | xargs -r grep -lx 'X-Filtered-List: list@lists.exim.test' | wc -l)" = 3 \
         -a "$(new_sink_files alias | wc -l)" = 3 -a "$(queued "$idAlias")" = 0

# ---------------------------------------------------------------------------------------- phase D: refusals
# SMTP over `exim -bs` (stdin/stdout) with the stand-in configuration: the snippet's ACLs with the
# stand-in lister, whatever the main phase uses.
swaks_rc() { # swaks_rc TO FROM DATAFILE: prints the first 4xx/5xx reply, nothing if all was accepted
    local to=$1 from=$2 data=$3 log
    log=$(mktemp "$T/swaks.XXXXXX")
    swaks --pipe "$EXIM -C $T/exim-standin.conf -bs" --from "$from" --to "$to" --data "@$data" \
          --helo client.exim.test --timeout 30 >"$log" 2>&1
    # swaks marks error replies with "<**"; a multi-line reply is reduced to its first line.
    grep -E '^<\*\* *[45][0-9][0-9]' "$log" | head -n 1 | sed -E 's/^<\*\* *//; s/^([0-9]{3})-/\1 /'
}
synthetic_post "phase D" >"$T/postD.eml"
printf 'From: <%s>\nTo: <%s>\nSubject: plain\n\nhello in the clear\n' "$sender" "$list" >"$T/plain.eml"
printf 'From: <%s>\nTo: <%s>\nSubject: signed\nContent-Type: application/pkcs7-mime; smime-type=signed-data\n\nAAAA\n' \
    "$sender" "$list" >"$T/signed.eml"
sink_snapshot D
r=$(swaks_rc "nosuch@$list_domain" "$sender" "$T/postD.eml")
check "D: unknown list refused at RCPT with 550 5.1.1 ($r)" test "${r:0:9}" = "550 5.1.1"
r=$(swaks_rc "broken@$list_domain" "$sender" "$T/postD.eml")
check "D: member lookup failure deferred at RCPT with 451 4.3.0 ($r)" test "${r:0:9}" = "451 4.3.0"
r=$(swaks_rc "slow@$list_domain" "$sender" "$T/postD.eml")
check "D: hung member lookup cut off by SECURELIST_LOOKUP_TIMEOUT, 451 4.3.0 at RCPT ($r)" test "${r:0:9}" = "451 4.3.0"
r=$(swaks_rc "empty@$list_domain" "$sender" "$T/postD.eml")
check "D: list without members deferred at RCPT with 451 4.7.0 ($r)" test "${r:0:9}" = "451 4.7.0"
r=$(swaks_rc "closed@$list_domain" "stranger@example.net" "$T/postD.eml")
check "D: non-member sender refused at RCPT with 550 5.7.1 ($r)" test "${r:0:9}" = "550 5.7.1"
r=$(swaks_rc "closed@$list_domain" "Alice+lists@Members.Exim.Test" "$T/postD.eml")
check "D: member sender in another case with +detail is accepted ($r)" test -z "$r"
r=$(swaks_rc "$list" "$sender" "$T/plain.eml")
check "D: plaintext post refused at DATA with 550 5.7.1 ($r)" test "${r:0:9}" = "550 5.7.1"
r=$(swaks_rc "$list" "$sender" "$T/signed.eml")
check "D: signed-only (not encrypted) post refused at DATA with 550 5.7.1 ($r)" test "${r:0:9}" = "550 5.7.1"
synthetic_post "phase D reject" | sed '$a UkVKRUNULU1F' >"$T/postD-reject.eml"
synthetic_post "phase D tempfail" | sed '$a VEVNUEZBSUwt' >"$T/postD-tempfail.eml"
r=$(swaks_rc "$list" "$sender" "$T/postD-reject.eml")
check "D: securelist check exit 65 at DATA: 550 5.7.1 with its first output line ($r)" \
    test "$r" = "550 5.7.1 Not encrypted to the list key (stand-in)"
r=$(swaks_rc "$list" "$sender" "$T/postD-tempfail.eml")
check "D: securelist check failure at DATA: 451 4.3.0 ($r)" test "${r:0:9}" = "451 4.3.0"
r=$(swaks_rc "$list" "<>" "$T/postD.eml")
check "D: null-sender post to an open list accepted ($r)" test -z "$r"
check "D: securelist check got the spool data file, content type, sender and all recipients" \
    grep -qx "check from=Alice+lists@Members.Exim.Test rcpt=closed@lists.exim.test ct=application/pkcs7-mime file=ok" "$T/state/check.log"
r=$(swaks_rc "$list,closed@$list_domain" "alice@members.exim.test" "$T/postD.eml")
check "D: post to two lists at once accepted ($r)" test -z "$r"
check "D: ... securelist check got both recipients in one --rcpt" \
    grep -qx "check from=alice@members.exim.test rcpt=$list, closed@$list_domain ct=application/pkcs7-mime file=ok" "$T/state/check.log"
check "D: ... and an empty --from for the null sender" \
    grep -qx "check from= rcpt=$list ct=application/pkcs7-mime file=ok" "$T/state/check.log"
r=$(swaks_rc "someone@elsewhere.example" "$sender" "$T/postD.eml")
check "D: no open relay through the test config ($r)" test "${r:0:3}" = 550

# ---------------------------------------------------------------------------------------- phase E: unexpanded
# A list address that reaches routing without members (RCPT checks bypassed: local submission, or the
# list emptied after acceptance) must stay queued, never be delivered as itself.
synthetic_post "phase E" >"$T/postE.eml"
"$EXIM" -C "$T/exim-standin.conf" -odq -oi -f "$sender" "empty@$list_domain" <"$T/postE.eml" >"$T/submitE.log" 2>&1
idE=$(grep -o '[-0-9A-Za-z]\{16,23\} <= ' "$T/log/mainlog" | tail -n 1 | cut -d' ' -f1)
check "E: local submission to an empty list queued" test -n "$idE"
deliver "$T/exim-standin.conf" "$idE"
check "E: unexpanded list address deferred by securelist_unexpanded, still queued" \
    test "$(queued "$idE")" = 1 -a -n "$(grep "$idE == empty@$list_domain R=securelist_unexpanded defer" "$T/log/mainlog")"
"$EXIM" -C "$T/exim-standin.conf" -odq -oi -f "$sender" "slow@$list_domain" <"$T/postE.eml" >"$T/submitE3.log" 2>&1
idSlow=$(grep -o '[-0-9A-Za-z]\{16,23\} <= ' "$T/log/mainlog" | tail -n 1 | cut -d' ' -f1)
deliver "$T/exim-standin.conf" "$idSlow"
check "E: hung member lookup in the router cut off (exit 124): deferred, still queued" \
    test "$(queued "$idSlow")" = 1 -a -n "$(grep "$idSlow == slow@$list_domain R=securelist_list defer .*exit 124" "$T/log/mainlog")"
"$EXIM" -C "$T/exim-standin.conf" -odq -oi -oep -f "$sender" "$list" <"$T/plain.eml" >"$T/submitE2.log" 2>&1
check "E: plaintext local submission refused by acl_not_smtp" \
    grep -q "rejected by non-SMTP ACL: 550 5.7.1 This list accepts only S/MIME-encrypted" "$T/log/mainlog"
check "D/E: nothing of phases D and E reached smtp-sink" test -z "$(new_sink_files D)"

# ---------------------------------------------------------------------------------------- phase F: daemon
# As in production: a daemon without queue_only delivers by itself right after accepting. Its delivery
# process is a re-exec by the Exim user, which drops root for an untrusted -C file ("exim user lost
# privilege for using -C option" in the paniclog) and still delivers: the smtp transport runs as the
# Exim user anyway. Waiting for that asynchronous delivery is bounded (30 s), not a timed assertion.
sed 's/^queue_only = true$/queue_only = false/' "$T/exim-standin.conf" >"$T/exim-auto.conf"
chmod 644 "$T/exim-auto.conf"
port2=$(free_port)
"$EXIM" -C "$T/exim-auto.conf" -bdf -oX "$port2" >"$T/daemon2.log" 2>&1 &
exim2_pid=$!
wait_tcp "$port2" || die "second exim daemon did not listen on $port2: $(cat "$T/daemon2.log")"
synthetic_post "phase F" >"$T/postF.eml"
sink_snapshot F
port=$port2 send "$T/swaksF.log" "$sender" "$list" "$T/postF.eml"   # bash: port is set for this call only
idF=$sent_id
check "F: post accepted by a daemon that delivers by itself" test -n "$idF"
for _ in $(seq 1 300); do
    [ "$(new_sink_files F | wc -l)" -ge 3 ] && [ "$(queued "$idF")" = 0 ] && break
    sleep 0.1
done
check "F: the daemon delivered one filtered copy per member and the queue is empty" \
    test "$(new_sink_files F | xargs -r grep -lE '^X-Filtered-For: (alice|bob|carol)@members.exim.test$' | wc -l)" = 3 \
         -a "$(new_sink_files F | wc -l)" = 3 -a "$(queued "$idF")" = 0

check "no delivery anywhere was addressed to a list address" \
    test -z "$(grep -rlE "^X-Rcpt-Args: <[^>]*@$list_domain>" "$T/sink")"
check "exim paniclog has nothing but phase F's expected privilege note" \
    test -z "$(grep -v 'exim user lost privilege for using -C option' "$T/log/paniclog" 2>/dev/null)"

finish
