# nwlab shared code for up.sh, down.sh and check.sh: loads topology.env, derives each router's
# interfaces and peers from it, and holds the PID helpers. Sourced, never executed.
# shellcheck shell=bash

NWLAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NWLAB_DIR=${NWLAB_DIR:-/tmp/nwlab}
NWLAB_TOPOLOGY=${NWLAB_TOPOLOGY:-$NWLAB_SRC/topology.env}
# Marker file that says "this directory belongs to nwlab": down.sh deletes NWLAB_DIR only if
# it holds this file, and up.sh refuses to adopt a non-empty directory without it.
NWLAB_MARKER=.nwlab-state-dir
# GECOS of the SSH account up.sh creates; down.sh deletes only an account carrying it.
NWLAB_USER_GECOS="nwlab test lab (tests/lab), delete with tests/lab/down.sh"

die() { echo "nwlab: error: $*" >&2; exit 1; }
log() { echo "nwlab: $*"; }
warn() { echo "nwlab: warning: $*" >&2; }
# Seconds since $1 (an $EPOCHREALTIME value), one decimal.
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

[[ $NWLAB_DIR =~ ^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$ ]] ||
  die "NWLAB_DIR must be an absolute path of [A-Za-z0-9._/-] (got '$NWLAB_DIR')"
case $NWLAB_DIR/ in
  /|/run/*|/var/run/*|/var/tmp/*|/var/log/*|/proc/*|/sys/*|/dev/*)
    die "NWLAB_DIR must not be / or under /run, /var/tmp, /var/log (daemons get private mounts there)" ;;
esac
[ -r "$NWLAB_TOPOLOGY" ] || die "topology file $NWLAB_TOPOLOGY not readable"
# shellcheck source=topology.env
. "$NWLAB_TOPOLOGY"

# The daemons every router runs, in start order, and the binary each PID must belong to.
NWLAB_DAEMONS=(snmpd zebra ospfd bgpd lldpd sshd)
declare -A DAEMON_EXE=(
  [snmpd]=/usr/sbin/snmpd [zebra]=/usr/lib/frr/zebra [ospfd]=/usr/lib/frr/ospfd
  [bgpd]=/usr/lib/frr/bgpd [lldpd]=/usr/sbin/lldpd [sshd]=/usr/sbin/sshd
)

ip2int() { local IFS=.; set -- $1; echo $(( ($1 << 24) | ($2 << 16) | ($3 << 8) | $4 )); }
int2ip() { echo "$(( ($1 >> 24) & 255 )).$(( ($1 >> 16) & 255 )).$(( ($1 >> 8) & 255 )).$(( $1 & 255 ))"; }

# ---- routers ------------------------------------------------------------------------------
NODES=()
declare -A ROLE ASN LOOPBACK MGMT_IP
while read -r n role asn lo mg _; do
  [ -z "$n" ] && continue
  [ "${n:0:1}" = "#" ] && continue
  [[ $n =~ ^[a-z][a-z0-9]{0,6}$ ]] || die "node name '$n': use 1-7 of [a-z0-9] (interface names max 15 chars)"
  [ -n "$mg" ] || die "node '$n': need: name role asn loopback mgmt_ip"
  NODES+=("$n"); ROLE[$n]=$role; ASN[$n]=$asn; LOOPBACK[$n]=$lo; MGMT_IP[$n]=$mg
done <<<"$NWLAB_NODES"
[ ${#NODES[@]} -gt 0 ] && [ ${#NODES[@]} -lt 255 ] || die "need 1-254 nodes in $NWLAB_TOPOLOGY"

ns_of() { echo "nwlab-$1"; }
node_dir() { echo "$NWLAB_DIR/nodes/$1"; }
frr_dir() { echo "$NWLAB_DIR/nodes/$1/frr"; }
pidfile_of() { # node daemon
  case $2 in zebra|ospfd|bgpd) echo "$NWLAB_DIR/nodes/$1/frr/$2.pid" ;; *) echo "$NWLAB_DIR/nodes/$1/$2.pid" ;; esac
}

# ---- fabric cables --------------------------------------------------------------------------
# LINKS[i] = "a_node a_if a_ip b_node b_if b_ip subnet plen"; per node IFACES[node] lists its
# fabric interfaces; IF_*["node/if"] describe one interface and its peer.
LINKS=()
declare -A IFACES IF_IP IF_PLEN IF_NET IF_PEER IF_PEER_IF IF_PEER_IP
while read -r a aif b bif net _; do
  [ -z "$a" ] && continue
  [ "${a:0:1}" = "#" ] && continue
  [ -n "$net" ] || die "link '$a $aif $b $bif': need: a_node a_if b_node b_if subnet"
  [ -n "${ROLE[$a]:-}" ] && [ -n "${ROLE[$b]:-}" ] || die "link $a-$b: unknown node"
  for i in "$aif" "$bif"; do
    [[ $i =~ ^nwlab-[A-Za-z0-9-]{1,9}$ ]] || die "interface '$i': must be nwlab-* and at most 15 chars"
  done
  base=${net%/*}; plen=${net#*/}
  [[ $plen =~ ^(30|31)$ ]] || die "link subnet $net: use a /31 or /30"
  bi=$(ip2int "$base")
  if [ "$plen" = 31 ]; then aip=$(int2ip "$bi"); bip=$(int2ip $((bi + 1)));
  else aip=$(int2ip $((bi + 1))); bip=$(int2ip $((bi + 2))); fi
  LINKS+=("$a $aif $aip $b $bif $bip $net $plen")
  IFACES[$a]="${IFACES[$a]:-} $aif"; IFACES[$b]="${IFACES[$b]:-} $bif"
  IF_IP[$a/$aif]=$aip; IF_PLEN[$a/$aif]=$plen; IF_NET[$a/$aif]=$net
  IF_PEER[$a/$aif]=$b; IF_PEER_IF[$a/$aif]=$bif; IF_PEER_IP[$a/$aif]=$bip
  IF_IP[$b/$bif]=$bip; IF_PLEN[$b/$bif]=$plen; IF_NET[$b/$bif]=$net
  IF_PEER[$b/$bif]=$a; IF_PEER_IF[$b/$bif]=$aif; IF_PEER_IP[$b/$bif]=$aip
done <<<"$NWLAB_LINKS"
unset a aif b bif net base plen bi aip bip i n role asn lo mg

# ---- processes ------------------------------------------------------------------------------
ns_inode() { stat -Lc %i "/run/netns/$1" 2>/dev/null; }
# up.sh records each router namespace's inode, so the lab's processes can still be found after
# someone deletes the namespace's name (`ip netns del`) while they run in it.
ns_inode_file() { echo "$NWLAB_DIR/nodes/$1/netns.inode"; }

# mentions_labdir PID: its command line or one of its open files is under $NWLAB_DIR (every lab
# daemon has its config on the command line or its stdout/stderr in a log there).
mentions_labdir() {
  local f
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$NWLAB_DIR/" && return 0
  for f in /proc/"$1"/fd/*; do [[ $(readlink "$f" 2>/dev/null) == "$NWLAB_DIR/"* ]] && return 0; done
  return 1
}

# pid_is_ours PID EXE NODE: PID runs binary EXE inside router NODE's network namespace. A
# recycled PID that belongs to anything else never matches, so it is never signalled. If the
# namespace has lost its name (deleted under a running lab), the inode recorded by up.sh must
# match and, because the kernel recycles namespace inode numbers, the process must also
# reference $NWLAB_DIR.
pid_is_ours() {
  local pid=$1 exe=$2 n=$3 real pin nin
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  real=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [ "${real% (deleted)}" = "$exe" ] || return 1
  pin=$(stat -Lc %i "/proc/$pid/ns/net" 2>/dev/null) || return 1
  if nin=$(ns_inode "$(ns_of "$n")"); then [ "$pin" = "$nin" ]; return; fi
  nin=$(cat "$(ns_inode_file "$n")" 2>/dev/null) || nin=""
  if [ -n "$nin" ]; then [ "$pin" = "$nin" ] || return 1
  else [ "$pin" != "$(stat -Lc %i /proc/$$/ns/net)" ] || return 1; fi
  mentions_labdir "$pid"
}

# daemon_pid NODE DAEMON: print the PID if that daemon of ours is running, else fail.
daemon_pid() {
  local pf pid
  pf=$(pidfile_of "$1" "$2")
  pid=$(cat "$pf" 2>/dev/null) || return 1
  pid_is_ours "$pid" "${DAEMON_EXE[$2]}" "$1" || return 1
  echo "$pid"
}

# stop_pids PID...: SIGTERM, wait up to 5 s, then SIGKILL what is left. Callers pass only PIDs
# that pid_is_ours() accepted or that live inside a lab router namespace.
stop_pids() {
  local pid left i
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null
  for i in $(seq 50); do
    left=()
    for pid in "$@"; do
      # a zombie (state Z) has exited; its parent reaps it
      if [ -d "/proc/$pid" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null; then left+=("$pid"); fi
    done
    [ ${#left[@]} -eq 0 ] && return 0
    sleep 0.1
  done
  warn "PIDs ${left[*]} ignored SIGTERM for 5 s; sending SIGKILL"
  kill -KILL "${left[@]}" 2>/dev/null
  return 0
}

# Binaries the lab runs inside router namespaces: its daemons plus what they spawn (lldpd's
# lldpcli, sshd's sessions running vtysh through the ForceCommand).
NWLAB_EXES=" ${DAEMON_EXE[*]} /usr/sbin/lldpcli /usr/bin/vtysh "

# lab_pids_in_netns INODE [orphan]: PIDs in the network namespace with that inode that run one
# of the lab's binaries (this also finds a daemon whose pid file was never written, e.g. after
# an interrupted start, and lldpd, which rewrites its command line). With "orphan" (the
# namespace has no name any more, its inode may be recycled) each process must also
# reference $NWLAB_DIR.
lab_pids_in_netns() {
  local link pid exe
  [ -n "$1" ] || return 0
  for link in $(find /proc/[0-9]*/ns/net -maxdepth 0 -lname "net:\\[$1\\]" 2>/dev/null); do
    pid=${link#/proc/}; pid=${pid%%/*}
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
    [[ $NWLAB_EXES == *" ${exe% (deleted)} "* ]] || continue
    [ "${2:-}" = orphan ] && ! mentions_labdir "$pid" && continue
    echo "$pid"
  done
}

# node_lab_pids NODE: lab binaries running in the router's namespace, named or orphaned.
node_lab_pids() {
  local i
  if i=$(ns_inode "$(ns_of "$1")"); then lab_pids_in_netns "$i"
  elif i=$(cat "$(ns_inode_file "$1")" 2>/dev/null); then lab_pids_in_netns "$i" orphan; fi
}

# stop_node_daemons NODE: stop every daemon of NODE that its pid files name, and any other
# lab binary still running inside its namespace.
stop_node_daemons() {
  local n=$1 d pid pids=()
  for d in "${NWLAB_DAEMONS[@]}"; do
    if pid=$(daemon_pid "$n" "$d"); then pids+=("$pid"); fi
    rm -f "$(pidfile_of "$n" "$d")"
  done
  pids+=($(node_lab_pids "$n"))
  stop_pids "${pids[@]}"
}

# take_lock: serialise up.sh/down.sh runs (a flock on the tests/lab directory itself, so no
# lock file is left anywhere). down.sh run by up.sh inherits the lock. Daemons must not
# inherit fd 9 (spawn closes it), or they would hold the lock forever.
take_lock() {
  [ -n "${NWLAB_LOCKED:-}" ] && return 0
  exec 9<"$NWLAB_SRC"
  flock -w 120 9 || die "another tests/lab/up.sh or down.sh is still running"
  export NWLAB_LOCKED=1
}
