#!/bin/bash
# nwlab check.sh: wait (bounded) until the lab built by up.sh has converged, checking it the way
# netwarden will see it, from the management namespace:
#   - every router answers SNMP v2c (sysName) and SNMPv3 authPriv (sysName)
#   - every BGP session is Established      (BGP4-MIB bgpPeerState 1.3.6.1.2.1.15.3.1.2 = 6)
#   - every OSPF neighbour is Full          (OSPF-MIB ospfNbrState 1.3.6.1.2.1.14.10.1.6 = 8)
#   - LLDP sees the cabled neighbour on every fabric port, with the right remote port
#     (LLDP-MIB lldpRemSysName/lldpRemPortId 1.0.8802.1.1.2.1.4.1.1.9/.7, lldpLocPortId)
#   - every router reaches every other router's loopback (ping inside the lab, loopback-sourced)
#   - SSH with the key and with the password runs vtysh `show version` on every router
# Prints the time until converged; exits 1 with the list of what is still wrong after
# NWLAB_CHECK_TIMEOUT seconds (default 60).
set -uo pipefail
SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
. "$(dirname "$SELF")/lib.sh"
TIMEOUT=${NWLAB_CHECK_TIMEOUT:-60}

if [ "${1:-}" != --in-mgmt ]; then
  [ "$(id -u)" = 0 ] || die "must run as root (ip netns exec)"
  [ -e "/run/netns/$NWLAB_MGMT_NS" ] || die "lab is not up: no namespace $NWLAB_MGMT_NS (run tests/lab/up.sh)"
  [ -e "$NWLAB_DIR/$NWLAB_MARKER" ] || die "lab is not up: no lab state in $NWLAB_DIR (run tests/lab/up.sh)"
  for b in snmpget snmpbulkwalk ssh sshpass ping; do
    command -v $b >/dev/null || die "$b not found; apt-get install -y --no-install-recommends snmp openssh-client sshpass iputils-ping"
  done
  export NWLAB_DIR NWLAB_TOPOLOGY NWLAB_CHECK_T0=$EPOCHREALTIME
  exec ip netns exec "$NWLAB_MGMT_NS" /bin/bash "$SELF" --in-mgmt
fi

# ---- from here on we run inside the management namespace --------------------------------------
T0=${NWLAB_CHECK_T0:-$EPOCHREALTIME}
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "NWLAB_CHECK_TIMEOUT must be whole seconds"
usec() { echo "${1/./}"; }                       # $EPOCHREALTIME -> microseconds
DEADLINE=$(( $(usec "$T0") + TIMEOUT * 1000000 ))
now() { usec "$EPOCHREALTIME"; }
V2=(-v2c -c "$NWLAB_SNMP_COMMUNITY" -On -Oq -t 1 -r 1)
V3=(-v3 -l authPriv -u "$NWLAB_SNMP_V3_USER" -a "$NWLAB_SNMP_V3_AUTH_PROTO" -A "$NWLAB_SNMP_V3_AUTH_PASS"
    -x "$NWLAB_SNMP_V3_PRIV_PROTO" -X "$NWLAB_SNMP_V3_PRIV_PASS" -On -Oq -t 1 -r 1)
SSH_OPTS=(-o StrictHostKeyChecking=yes -o UserKnownHostsFile="$NWLAB_DIR/ssh/known_hosts" -o LogLevel=ERROR
          -o ConnectTimeout=3 -p "$NWLAB_SSH_PORT")
# walk HOST OID: "oid value" rows under OID only (an empty subtree yields a "No Such Object" line)
walk() { snmpbulkwalk "${V2[@]}" "$1" "$2" 2>/dev/null | awk -v p=".$2." 'index($1, p) == 1'; }
value() { local v=${1#* }; v=${v#\"}; echo "${v%\"}"; }   # ".oid value" -> value, unquoted

# check_snmp: one pass over every router; fills FAIL and the counters.
check_snmp() {
  FAIL=(); C_SYS=0; C_V3=0; C_BGP=0; C_OSPF=0; C_LLDP=0
  local n ip out v i pip k lport seen want
  for n in "${NODES[@]}"; do
    ip=${MGMT_IP[$n]}
    if ! out=$(snmpget "${V2[@]}" "$ip" 1.3.6.1.2.1.1.5.0 2>&1); then
      FAIL+=("$n: no SNMP v2c answer from $ip ($(tail -n1 <<<"$out"))"); continue
    fi
    v=$(value "$out")
    if [ "$v" = "$n" ]; then ((C_SYS++)); else FAIL+=("$n: sysName is '$v', want '$n'"); fi
    if out=$(snmpget "${V3[@]}" "$ip" 1.3.6.1.2.1.1.5.0 2>&1) && [ "$(value "$out")" = "$n" ]; then ((C_V3++))
    else FAIL+=("$n: SNMPv3 authPriv user $NWLAB_SNMP_V3_USER failed: $(tail -n1 <<<"$out")"); fi

    local -A bgp=() ospf=() locport=() rname=() rport=()
    while read -r k v; do bgp[${k#.1.3.6.1.2.1.15.3.1.2.}]=$v; done < <(walk "$ip" 1.3.6.1.2.1.15.3.1.2)
    while read -r k v; do k=${k#.1.3.6.1.2.1.14.10.1.6.}; ospf[${k%.*}]=$v; done < <(walk "$ip" 1.3.6.1.2.1.14.10.1.6)
    while read -r k v; do locport[${k##*.}]=$(value "x $v"); done < <(walk "$ip" 1.0.8802.1.1.2.1.3.7.1.3)
    while read -r k v; do rname[${k#.1.0.8802.1.1.2.1.4.1.1.9.}]=$(value "x $v"); done < <(walk "$ip" 1.0.8802.1.1.2.1.4.1.1.9)
    while read -r k v; do rport[${k#.1.0.8802.1.1.2.1.4.1.1.7.}]=$(value "x $v"); done < <(walk "$ip" 1.0.8802.1.1.2.1.4.1.1.7)
    # LLDP rows are indexed timeMark.localPortNum.remIndex; timeMark varies, so match by content
    seen=" "
    for k in "${!rname[@]}"; do
      lport=${k#*.}; lport=${lport%.*}
      seen+="${locport[$lport]:-port$lport}>${rname[$k]}:${rport[$k]:-?} "
    done
    for i in ${IFACES[$n]:-}; do
      pip=${IF_PEER_IP[$n/$i]}
      if [ "${bgp[$pip]:-}" = 6 ]; then ((C_BGP++))
      else FAIL+=("$n: BGP peer $pip (${IF_PEER[$n/$i]}) bgpPeerState=${bgp[$pip]:-absent}, want 6 (established)"); fi
      if [ "${ospf[$pip]:-}" = 8 ]; then ((C_OSPF++))
      else FAIL+=("$n: OSPF neighbour $pip (${IF_PEER[$n/$i]}) ospfNbrState=${ospf[$pip]:-absent}, want 8 (full)"); fi
      want="$i>${IF_PEER[$n/$i]}:${IF_PEER_IF[$n/$i]}"
      if [[ $seen == *" $want "* ]]; then ((C_LLDP++))
      else FAIL+=("$n: LLDP on $i: want neighbour ${IF_PEER[$n/$i]} port ${IF_PEER_IF[$n/$i]}; LLDP-MIB shows [${seen# }]"); fi
    done
    unset bgp ospf locport rname rport
  done
}

# check_ping: every router pings every other router's loopback from its own loopback.
check_ping() {
  local a b dir
  dir=$(mktemp -d)
  for a in "${NODES[@]}"; do for b in "${NODES[@]}"; do
    [ "$a" = "$b" ] && continue
    ( ip netns exec "$(ns_of "$a")" ping -n -q -c 1 -W 1 -I "${LOOPBACK[$a]}" "${LOOPBACK[$b]}" >/dev/null 2>&1 ||
      echo "$a cannot reach $b's loopback ${LOOPBACK[$b]} (ping from ${LOOPBACK[$a]})" >"$dir/$a-$b" ) &
  done; done
  wait
  PING_FAIL=(); C_PING=0
  local f total=$(( ${#NODES[@]} * (${#NODES[@]} - 1) ))
  for f in "$dir"/*; do [ -f "$f" ] && PING_FAIL+=("$(cat "$f")"); done
  C_PING=$(( total - ${#PING_FAIL[@]} ))
  rm -rf "$dir"
}

# check_ssh: key and password login on every router, running vtysh `show version`.
check_ssh() {
  local n dir
  dir=$(mktemp -d)
  for n in "${NODES[@]}"; do
    ( out=$(ssh "${SSH_OPTS[@]}" -i "$NWLAB_DIR/ssh/id_ed25519" -o BatchMode=yes \
              "$NWLAB_SSH_USER@${MGMT_IP[$n]}" 'show version' 2>&1)
      grep -q '^FRRouting' <<<"$out" || echo "$n: ssh with key ($NWLAB_SSH_USER@${MGMT_IP[$n]}) 'show version' failed: $(head -n1 <<<"$out")" >"$dir/$n-key"
      out=$(sshpass -p "$NWLAB_SSH_PASSWORD" ssh "${SSH_OPTS[@]}" -o PubkeyAuthentication=no \
              -o PreferredAuthentications=password "$NWLAB_SSH_USER@${MGMT_IP[$n]}" 'show version' 2>&1)
      grep -q '^FRRouting' <<<"$out" || echo "$n: ssh with password ($NWLAB_SSH_USER@${MGMT_IP[$n]}) 'show version' failed: $(head -n1 <<<"$out")" >"$dir/$n-pw"
    ) &
  done
  wait
  SSH_FAIL=()
  local f
  for f in "$dir"/*; do [ -f "$f" ] && SSH_FAIL+=("$(cat "$f")"); done
  rm -rf "$dir"
}

NN=${#NODES[@]}; NL=$(( ${#LINKS[@]} * 2 ))
status() { echo "sysName $C_SYS/$NN, snmpv3 $C_V3/$NN, bgp established $C_BGP/$NL, ospf full $C_OSPF/$NL, lldp $C_LLDP/$NL"; }
fail_out() {
  echo "nwlab check: FAILED after $(elapsed "$T0")s: $1" >&2
  shift
  printf '  - %s\n' "$@" >&2
  exit 1
}

echo "nwlab check: waiting up to ${TIMEOUT}s for $NN routers / ${#LINKS[@]} links to converge (from $NWLAB_MGMT_NS)"
last_report=$(now)
while :; do
  check_snmp
  [ ${#FAIL[@]} -eq 0 ] && break
  if [ "$(now)" -ge "$DEADLINE" ]; then fail_out "$(status)" "${FAIL[@]}"; fi
  if [ $(( $(now) - last_report )) -ge 5000000 ]; then echo "  ... $(elapsed "$T0")s: $(status)"; last_report=$(now); fi
  sleep 0.3
done
T_SNMP=$(elapsed "$T0")
echo "  SNMP converged after ${T_SNMP}s: $(status)"

while :; do
  check_ping
  [ ${#PING_FAIL[@]} -eq 0 ] && break
  [ "$(now)" -ge "$DEADLINE" ] && fail_out "routing: $C_PING/$((NN * (NN - 1))) loopback pairs reachable" "${PING_FAIL[@]}"
  sleep 0.3
done
echo "  routing: all $((NN * (NN - 1))) loopback-to-loopback pings answered ($(elapsed "$T0")s)"

while :; do
  check_ssh
  [ ${#SSH_FAIL[@]} -eq 0 ] && break
  [ "$(now)" -ge "$DEADLINE" ] && fail_out "ssh" "${SSH_FAIL[@]}"
  sleep 0.5
done
echo "  ssh: key and password logins run vtysh 'show version' on all $NN routers ($(elapsed "$T0")s)"

since_up=""
if [ -r "$NWLAB_DIR/changed_at" ]; then
  since_up="; $(elapsed "$(cat "$NWLAB_DIR/changed_at")")s since the start of the up.sh run that last (re)started daemons"
fi
echo "nwlab check: OK, converged after $(elapsed "$T0")s$since_up"
