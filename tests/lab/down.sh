#!/bin/bash
# nwlab down.sh: tear down what up.sh built, and only that. Stops the lab's daemons by the
# PIDs in its pid files (each PID checked to still be that binary in that namespace), then
# any process still left inside a lab router namespace (SSH sessions, vtysh), deletes the
# nwlab-* namespaces (their veth cables and bridge go with them), the SSH account up.sh
# created, and $NWLAB_DIR. Idempotent. (The daemons' /run, /var/tmp and /var/log were private
# tmpfs/bind mounts in their own mount namespaces, so nothing else on the host needs cleaning.)
# NWLAB_KEEP_STATE=1 keeps $NWLAB_DIR (configs and logs) for post-mortems.
set -uo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
[ "$(id -u)" = 0 ] || die "must run as root"
take_lock
T0=$EPOCHREALTIME

ours_dir=0
[ -e "$NWLAB_DIR/$NWLAB_MARKER" ] && ours_dir=1

# Routers: the topology's, plus any that have state under $NWLAB_DIR (an older topology).
declare -A SEEN=()
routers=()
for n in "${NODES[@]}"; do SEEN[$n]=1; routers+=("$n"); done
if [ $ours_dir = 1 ]; then
  for d in "$NWLAB_DIR"/nodes/*/; do
    [ -d "$d" ] || continue
    n=$(basename "$d"); [ -n "${SEEN[$n]:-}" ] || { SEEN[$n]=1; routers+=("$n"); }
  done
fi

# 1. daemons, by the PIDs in our pid files (TERM all at once, then wait)
pids=()
for n in "${routers[@]}"; do
  for dm in "${NWLAB_DAEMONS[@]}"; do
    if pid=$(daemon_pid "$n" "$dm"); then pids+=("$pid"); fi
  done
done
stop_pids "${pids[@]}"
stopped=${#pids[@]}
for n in "${routers[@]}"; do
  for dm in "${NWLAB_DAEMONS[@]}"; do rm -f "$(pidfile_of "$n" "$dm")"; done
done

# 2. lab binaries still inside a lab router namespace were spawned by our daemons (sshd
#    sessions running vtysh, lldpd's privilege-separated child, lldpcli) or lost their pid
#    file. Anything else there, and everything in the mgmt namespace (netwarden under test,
#    ...), was not started by up.sh: only reported, never signalled.
cmd_of() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | cut -c1-80; }
lab_namespaces=$(ip netns list 2>/dev/null | awk '{print $1}' | grep '^nwlab-' || true)
leftover=()
sweep() { # name pid...
  local ns=$1 pid; shift
  for pid in "$@"; do
    leftover+=("$pid")
    echo "nwlab: stopping leftover pid $pid in $ns: $(cmd_of "$pid")"
  done
}
for n in "${routers[@]}"; do sweep "$(ns_of "$n")" $(node_lab_pids "$n"); done
for ns in $lab_namespaces; do   # nwlab-* namespaces of routers no longer in the topology
  [ "$ns" = "$NWLAB_MGMT_NS" ] || [ -n "${SEEN[${ns#nwlab-}]:-}" ] || sweep "$ns" $(lab_pids_in_netns "$(ns_inode "$ns")")
done
stop_pids "${leftover[@]}"
for ns in $lab_namespaces; do
  for pid in $(ip netns pids "$ns" 2>/dev/null); do
    grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null && continue
    warn "pid $pid in $ns was not started by up.sh; left running: $(cmd_of "$pid")"
  done
done

# 3. namespaces (veth pairs, the bridge and all lab addresses vanish with them)
for ns in $lab_namespaces; do
  ip netns del "$ns" 2>/dev/null || warn "could not delete namespace $ns"
done

# 4. the SSH account up.sh created (recognised by its GECOS marker), then the state dir
# live (non-zombie) processes of a user: sessions we just stopped may linger as zombies
# until PID 1 reaps them, and those must not keep the account alive
user_busy() { ps -e -o uid=,stat= | awk -v u="$(id -u "$1")" '$1 == u && $2 !~ /^Z/ { f = 1 } END { exit !f }'; }
for u in $(getent passwd | awk -F: -v g="$NWLAB_USER_GECOS" '$5 == g { print $1 }'); do
  if user_busy "$u"; then
    warn "user $u still has processes; not deleting it"
  else
    userdel "$u" 2>/dev/null || warn "userdel $u failed"
    getent group "$u" >/dev/null && [ -z "$(getent group "$u" | cut -d: -f4)" ] && groupdel "$u" 2>/dev/null
  fi
done
if [ $ours_dir = 1 ]; then
  if [ "${NWLAB_KEEP_STATE:-0}" = 1 ]; then
    rm -f "$NWLAB_DIR/fingerprint"
    log "kept $NWLAB_DIR (NWLAB_KEEP_STATE=1)"
  else
    rm -rf --one-file-system "$NWLAB_DIR"
  fi
elif [ -e "$NWLAB_DIR" ]; then
  warn "$NWLAB_DIR has no nwlab marker; not deleting it"
fi

log "lab down in $(elapsed "$T0")s (stopped $stopped daemons, ${#leftover[@]} leftover processes; deleted namespaces: $(echo $lab_namespaces))"
