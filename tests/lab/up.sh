#!/bin/bash
# nwlab up.sh: build, or repair, the spine-leaf FRR test network described in topology.env:
# one network namespace per router (FRR zebra/bgpd/ospfd, lldpd, snmpd with AgentX, sshd that
# runs vtysh) joined by veth cables, plus a management namespace with a bridge to every router.
#
# Idempotent: a healthy lab is left alone; a router whose namespace, cables or daemons are
# missing or broken has its daemons restarted; a changed topology.env (or changed scripts)
# is torn down with down.sh and rebuilt. It does not wait for BGP/OSPF to converge; run
# check.sh for that. All state lives under $NWLAB_DIR (default /tmp/nwlab).
set -uo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
[ "$(id -u)" = 0 ] || die "must run as root (network namespaces, daemons on port 161/22)"
take_lock
T0=$EPOCHREALTIME
CLEAN_PATH=/usr/sbin:/usr/bin:/sbin:/bin

# ---- preflight ----------------------------------------------------------------------------
missing=()
for f in /usr/lib/frr/zebra /usr/lib/frr/bgpd /usr/lib/frr/ospfd /usr/bin/vtysh /usr/sbin/snmpd \
         /usr/bin/snmpget /usr/sbin/lldpd /usr/sbin/lldpcli /usr/sbin/sshd /usr/bin/ssh-keygen; do
  [ -x "$f" ] || missing+=("$f")
done
compgen -G '/usr/lib/*/frr/modules/bgpd_snmp.so' >/dev/null || missing+=("frr-snmp (bgpd_snmp.so)")
[ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}; install with:
  apt-get install -y --no-install-recommends frr frr-snmp snmp snmpd lldpd openssh-server sshpass iputils-ping"
getent passwd frr >/dev/null && getent group frrvty >/dev/null && getent passwd _lldpd >/dev/null ||
  die "users frr/_lldpd or group frrvty missing (they come with the frr and lldpd packages)"

# ---- state directory, and a rebuild when the topology or the scripts changed ----------------
fingerprint=$(cat "$NWLAB_TOPOLOGY" "$NWLAB_SRC/lib.sh" "$NWLAB_SRC/up.sh" | sha256sum | cut -c1-16)
if [ -e "$NWLAB_DIR" ] || [ -L "$NWLAB_DIR" ]; then
  [ -d "$NWLAB_DIR" ] && [ ! -L "$NWLAB_DIR" ] || die "$NWLAB_DIR exists and is not a directory"
  [ "$(stat -c %u "$NWLAB_DIR")" = 0 ] || die "$NWLAB_DIR is not owned by root; refusing to use it"
  if [ ! -e "$NWLAB_DIR/$NWLAB_MARKER" ] && [ -n "$(ls -A "$NWLAB_DIR")" ]; then
    die "$NWLAB_DIR is not empty and was not made by nwlab; set NWLAB_DIR to another path"
  fi
fi
lab_ns_present() { ip netns list 2>/dev/null | awk '{print $1}' | grep -q '^nwlab-'; }
if [ -e "$NWLAB_DIR/$NWLAB_MARKER" ] && [ "$(cat "$NWLAB_DIR/fingerprint" 2>/dev/null)" != "$fingerprint" ]; then
  log "topology or scripts changed since the lab was built: rebuilding"
  "$NWLAB_SRC/down.sh" || die "down.sh failed"
elif [ ! -e "$NWLAB_DIR/$NWLAB_MARKER" ] && lab_ns_present; then
  log "nwlab namespaces exist but $NWLAB_DIR has no lab state: cleaning up first"
  "$NWLAB_SRC/down.sh" || die "down.sh failed"
  # NWLAB_DIR was absent or empty (checked above); the daemons just stopped may have
  # recreated bits of it (net-snmp saves its persistent state on exit): start clean
  rm -rf --one-file-system "$NWLAB_DIR"
fi
mkdir -p "$NWLAB_DIR" "$NWLAB_DIR/bin" "$NWLAB_DIR/nodes" "$NWLAB_DIR/ssh/home"
chmod 755 "$NWLAB_DIR" "$NWLAB_DIR/bin" "$NWLAB_DIR/nodes" "$NWLAB_DIR/ssh" "$NWLAB_DIR/ssh/home"
touch "$NWLAB_DIR/$NWLAB_MARKER"
echo "$fingerprint" >"$NWLAB_DIR/fingerprint"

# write_file PATH: stdin -> PATH, only if the content differs. Returns 0 when it changed.
write_file() {
  local tmp="$1.tmp.$$"
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; return 1; fi
  mv -f "$tmp" "$1"
  return 0
}

# wait_for SECONDS DESCRIPTION CMD...: poll CMD every 50 ms until it succeeds.
wait_for() {
  local t=$1 what=$2 i; shift 2
  for ((i = 0; i < t * 20; i++)); do "$@" && return 0; sleep 0.05; done
  warn "timed out after ${t}s waiting for $what"
  return 1
}
tcp_listening() { ip netns exec "$1" ss -Hltn "sport = :${2##*:}" 2>/dev/null | grep -qF " $2 "; }

declare -A DIRTY=()     # nodes whose daemons must be (re)started
CHANGED=0

# ---- namespaces ---------------------------------------------------------------------------
# ensure_ns NS: make sure the named namespace exists and is usable; returns 0 if it was
# (re)created. A router's daemons are stopped first so none is left in an orphaned namespace.
ensure_ns() {
  local ns=$1
  if [ -e "/run/netns/$ns" ] && ip netns exec "$ns" true 2>/dev/null; then
    ip -n "$ns" link set lo up
    return 1
  fi
  [ -e "/run/netns/$ns" ] && ip netns del "$ns" 2>/dev/null
  ip netns add "$ns" || die "ip netns add $ns failed"
  ip -n "$ns" link set lo up
  return 0
}

# ensure_veth NS1 IF1 MAC1 NS2 IF2 MAC2: a veth pair with one end in each namespace, created
# directly inside the namespaces (never in the root namespace). MACs are fixed (derived from
# the topology) so a rebuilt cable keeps its MAC: ARP caches (e.g. in the mgmt namespace,
# where netwarden runs) stay valid and LLDP chassis IDs are stable. Returns 0 if (re)created.
ensure_veth() {
  local n1=$1 i1=$2 m1=$3 n2=$4 i2=$5 m2=$6 e1=0 e2=0
  ip -n "$n1" link show "$i1" >/dev/null 2>&1 && e1=1
  ip -n "$n2" link show "$i2" >/dev/null 2>&1 && e2=1
  [ $e1 = 1 ] && [ $e2 = 1 ] && return 1
  [ $e1 = 1 ] && ip -n "$n1" link del "$i1"
  [ $e2 = 1 ] && ip -n "$n2" link del "$i2"
  ip link add "$i1" netns "$n1" address "$m1" type veth peer name "$i2" netns "$n2" address "$m2" ||
    die "could not create veth $n1:$i1 <-> $n2:$i2"
  return 0
}

MGMT_NS=$NWLAB_MGMT_NS
# lab MAC addresses: locally administered 02:6e:77 ("nw"), then kind, index, side
mac() { printf '02:6e:77:%02x:%02x:%02x' "$1" "$2" "$3"; }
if ensure_ns "$MGMT_NS"; then CHANGED=1; fi
if ! ip -n "$MGMT_NS" link show "$NWLAB_MGMT_BRIDGE" >/dev/null 2>&1; then
  ip -n "$MGMT_NS" link add "$NWLAB_MGMT_BRIDGE" address "$(mac 0 255 255)" type bridge || die "cannot create bridge"
  CHANGED=1
fi
ip -n "$MGMT_NS" addr replace "$NWLAB_MGMT_GW/$NWLAB_MGMT_PREFIXLEN" dev "$NWLAB_MGMT_BRIDGE"
ip -n "$MGMT_NS" link set "$NWLAB_MGMT_BRIDGE" up

idx=0
for n in "${NODES[@]}"; do
  idx=$((idx + 1))
  ns=$(ns_of "$n")
  if ! { [ -e "/run/netns/$ns" ] && ip netns exec "$ns" true 2>/dev/null; }; then
    stop_node_daemons "$n"      # namespace gone: its old daemons must not linger
  fi
  if ensure_ns "$ns"; then DIRTY[$n]=1; fi
  mkdir -p "$(node_dir "$n")" && ns_inode "$ns" >"$(ns_inode_file "$n")"
  # routing on, reverse-path filter off (ECMP through both spines is asymmetric)
  ip netns exec "$ns" sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward
    for f in /proc/sys/net/ipv4/conf/all/rp_filter /proc/sys/net/ipv4/conf/default/rp_filter; do echo 0 >$f; done'
  ip -n "$ns" addr replace "${LOOPBACK[$n]}/32" dev lo
  mport="nwlab-m-$n"
  if ensure_veth "$ns" "$NWLAB_MGMT_IF" "$(mac 0 "$idx" 1)" "$MGMT_NS" "$mport" "$(mac 0 "$idx" 2)"; then
    DIRTY[$n]=1
    ip -n "$MGMT_NS" neigh del "${MGMT_IP[$n]}" dev "$NWLAB_MGMT_BRIDGE" 2>/dev/null
  fi
  ip -n "$ns" addr replace "${MGMT_IP[$n]}/$NWLAB_MGMT_PREFIXLEN" dev "$NWLAB_MGMT_IF"
  ip -n "$ns" link set "$NWLAB_MGMT_IF" up
  ip -n "$MGMT_NS" link set "$mport" master "$NWLAB_MGMT_BRIDGE" up
done

idx=0
for l in "${LINKS[@]}"; do
  idx=$((idx + 1))
  read -r a aif aip b bif bip net plen <<<"$l"
  if ensure_veth "$(ns_of "$a")" "$aif" "$(mac 1 "$idx" 1)" "$(ns_of "$b")" "$bif" "$(mac 1 "$idx" 2)"; then
    DIRTY[$a]=1; DIRTY[$b]=1
  fi
  ip -n "$(ns_of "$a")" addr replace "$aip/$plen" dev "$aif"
  ip -n "$(ns_of "$b")" addr replace "$bip/$plen" dev "$bif"
  # kernel ifalias: lldpd advertises it as the LLDP port description (snmpd's ifAlias ignores it)
  ip -n "$(ns_of "$a")" link set "$aif" alias "to $b $bif" up
  ip -n "$(ns_of "$b")" link set "$bif" alias "to $a $aif" up
done
log "network ready ($(elapsed "$T0")s)"

# ---- SSH account, keys and the vtysh wrapper ------------------------------------------------
U=$NWLAB_SSH_USER
if ent=$(getent passwd "$U"); then
  [ "$(cut -d: -f5 <<<"$ent")" = "$NWLAB_USER_GECOS" ] ||
    die "local user '$U' exists and was not created by nwlab; set NWLAB_SSH_USER in $NWLAB_TOPOLOGY to a free name"
  [ "$(cut -d: -f6 <<<"$ent")" = "$NWLAB_DIR/ssh/home" ] || usermod -d "$NWLAB_DIR/ssh/home" "$U"
  id -nG "$U" | tr ' ' '\n' | grep -qx frrvty || usermod -aG frrvty "$U"
else
  useradd -M -d "$NWLAB_DIR/ssh/home" -s /bin/sh -c "$NWLAB_USER_GECOS" -G frrvty -U "$U" ||
    die "useradd $U failed"
  echo "$U:$NWLAB_SSH_PASSWORD" | chpasswd || die "chpasswd failed"
fi
chown "$U:$U" "$NWLAB_DIR/ssh/home"
[ -f "$NWLAB_DIR/ssh/id_ed25519" ] ||
  ssh-keygen -q -t ed25519 -N '' -C "nwlab-client" -f "$NWLAB_DIR/ssh/id_ed25519" || die "ssh-keygen failed"
cp "$NWLAB_DIR/ssh/id_ed25519.pub" "$NWLAB_DIR/ssh/authorized_keys"
chmod 644 "$NWLAB_DIR/ssh/authorized_keys"

write_file "$NWLAB_DIR/bin/nwlab-vtysh" <<EOF && CHANGED=1
#!/bin/sh
# nwlab: sshd ForceCommand for lab router \$1: every SSH session runs FRR's vtysh, either the
# command the client sent (several lines allowed) or an interactive vtysh.
d=$NWLAB_DIR/nodes/\$1
set -- /usr/bin/vtysh --vty_socket "\$d/frr" --config_dir "\$d/vtysh"
if [ -n "\${SSH_ORIGINAL_COMMAND:-}" ]; then exec "\$@" -c "\$SSH_ORIGINAL_COMMAND"; fi
exec "\$@"
EOF
chmod 755 "$NWLAB_DIR/bin/nwlab-vtysh"

# ---- per-router configuration ----------------------------------------------------------------
gen_configs() { # node; marks the node dirty when any file changed
  local n=$1 d fd i peer changed=0 ifs
  d=$(node_dir "$n"); fd=$(frr_dir "$n")
  mkdir -p "$d" "$fd/snmp" "$fd/snmp-persist" "$fd/tmp" "$d/vtysh"
  ifs=${IFACES[$n]:-}
  chown frr:frr "$fd" "$fd/snmp" "$fd/snmp-persist" "$fd/tmp"
  chmod 755 "$d" "$fd" "$d/vtysh"

  write_file "$fd/zebra.conf" <<EOF && changed=1
hostname $n
log file $fd/zebra.log informational
!
$(for i in $ifs; do printf 'interface %s\n description to %s %s\n!\n' "$i" "${IF_PEER[$n/$i]}" "${IF_PEER_IF[$n/$i]}"; done)
EOF
  write_file "$fd/bgpd.conf" <<EOF && changed=1
hostname $n
log file $fd/bgpd.log informational
agentx
!
router bgp ${ASN[$n]}
 bgp router-id ${LOOPBACK[$n]}
 no bgp ebgp-requires-policy
 bgp log-neighbor-changes
 bgp bestpath as-path multipath-relax
 timers bgp $NWLAB_BGP_KEEPALIVE $NWLAB_BGP_HOLD
$(for i in $ifs; do peer=${IF_PEER[$n/$i]}
  printf ' neighbor %s remote-as %s\n neighbor %s description %s %s\n neighbor %s timers connect %s\n' \
    "${IF_PEER_IP[$n/$i]}" "${ASN[$peer]}" "${IF_PEER_IP[$n/$i]}" "$peer" "${IF_PEER_IF[$n/$i]}" \
    "${IF_PEER_IP[$n/$i]}" "$NWLAB_BGP_CONNECT_RETRY"; done)
 !
 address-family ipv4 unicast
  network ${LOOPBACK[$n]}/32
  maximum-paths 8
 exit-address-family
!
EOF
  write_file "$fd/ospfd.conf" <<EOF && changed=1
hostname $n
log file $fd/ospfd.log informational
agentx
!
$(for i in $ifs; do printf 'interface %s\n ip ospf network point-to-point\n ip ospf hello-interval %s\n ip ospf dead-interval %s\n ip ospf retransmit-interval %s\n!\n' \
    "$i" "$NWLAB_OSPF_HELLO" "$NWLAB_OSPF_DEAD" "$NWLAB_OSPF_RETRANSMIT"; done)
router ospf
 ospf router-id ${LOOPBACK[$n]}
 log-adjacency-changes detail
 passive-interface lo
 network ${LOOPBACK[$n]}/32 area 0
$(for i in $ifs; do printf ' network %s area 0\n' "${IF_NET[$n/$i]}"; done)
!
EOF
  chown frr:frr "$fd"/*.conf
  # net-snmp reads these as FRR's AgentX subagent config (SNMPCONFPATH=$fd/snmp)
  printf 'agentXSocket tcp:127.0.0.1:705\n' | write_file "$fd/snmp/frr.conf" && changed=1
  printf 'mibs :\n' | write_file "$fd/snmp/snmp.conf" && changed=1
  printf 'hostname %s\nno service integrated-vtysh-config\n' "$n" | write_file "$d/vtysh/vtysh.conf" && changed=1
  chmod 644 "$d/vtysh/vtysh.conf" "$fd/snmp/"*.conf

  write_file "$d/snmpd.conf" <<EOF && changed=1
# nwlab snmpd for $n: AgentX master for FRR (BGP4-MIB, OSPF-MIB) and lldpd (LLDP-MIB)
agentAddress udp:127.0.0.1:161,udp:${MGMT_IP[$n]}:161
master agentx
agentXSocket tcp:127.0.0.1:705
rocommunity $NWLAB_SNMP_COMMUNITY default
createUser $NWLAB_SNMP_V3_USER $NWLAB_SNMP_V3_AUTH_PROTO "$NWLAB_SNMP_V3_AUTH_PASS" $NWLAB_SNMP_V3_PRIV_PROTO "$NWLAB_SNMP_V3_PRIV_PASS"
rouser $NWLAB_SNMP_V3_USER priv
engineID nwlab-$n
sysName $n
sysLocation nwlab $NWLAB_SITE ${ROLE[$n]}
sysContact nwlab@localhost
sysServices 78
dontLogTCPWrappersConnects yes
EOF
  chmod 600 "$d/snmpd.conf"

  write_file "$d/lldpd.conf" <<EOF && changed=1
configure system hostname $n
configure system description "FRRouting nwlab ${ROLE[$n]} $n"
configure system ip management pattern ${MGMT_IP[$n]}
configure lldp tx-interval $NWLAB_LLDP_TX_INTERVAL
configure lldp tx-hold 4
configure lldp portidsubtype ifname
EOF

  [ -f "$d/ssh_host_ed25519_key" ] ||
    ssh-keygen -q -t ed25519 -N '' -C "nwlab-$n" -f "$d/ssh_host_ed25519_key" || die "ssh-keygen failed"
  write_file "$d/sshd_config" <<EOF && changed=1
# nwlab sshd for $n: mgmt address only; every login runs vtysh (ForceCommand)
Port $NWLAB_SSH_PORT
ListenAddress ${MGMT_IP[$n]}
HostKey $d/ssh_host_ed25519_key
PidFile none
AuthorizedKeysFile $NWLAB_DIR/ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin no
AllowUsers $NWLAB_SSH_USER
StrictModes no
PermitTTY yes
AllowTcpForwarding no
AllowAgentForwarding no
AllowStreamLocalForwarding no
X11Forwarding no
PermitTunnel no
PrintMotd no
PrintLastLog no
ForceCommand $NWLAB_DIR/bin/nwlab-vtysh $n
EOF
  [ $changed = 1 ] && DIRTY[$n]=1
  return 0
}

# ---- daemons -------------------------------------------------------------------------------
# spawn NS SETUP VAR=VALUE... -- CMD...: replace the calling (sub)shell with CMD running inside
# router namespace NS, with a clean environment (nothing inherited such as NOTIFY_SOCKET or
# SSH_*). Call it with & (then $! is the daemon's PID) or inside ( ). `ip netns exec` gives every
# process a private mount namespace with / made rslave, so mounts done by SETUP there never
# reach the host. SETUP gives each daemon an empty private /run (and FRR a private /var/tmp,
# sshd a private /var/log): paths these daemons hard-code (/run/sshd, /run/lldpd,
# /run/frr/ospfd-gr.json, /var/tmp/frr, utmp/wtmp) are then never shared with the host or
# with a system instance of the same daemon, and nothing is left behind after a crash.
# (mount -n: without it libmount creates /run/mount on the host before /run is covered.)
PRIV_RUN='mount -n -t tmpfs -o mode=755,size=4m nwlab-run /run'
spawn() {
  local ns=$1 setup=$2 envs=()
  shift 2
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  exec env -i PATH=$CLEAN_PATH "${envs[@]}" ip netns exec "$ns" /bin/sh -c "$setup && exec \"\$@\"" nwlab-spawn "$@" 9<&-
}

# start_node NODE: start snmpd, zebra, ospfd, bgpd, lldpd, sshd in the router's namespace.
# Everything they write goes under $NWLAB_DIR: private pid/vty/zserv/control sockets, logs,
# net-snmp config and persistent dirs; AgentX runs over TCP on the namespace's own 127.0.0.1.
start_node() {
  local n=$1 ns d fd dm mod ifs
  ns=$(ns_of "$n"); d=$(node_dir "$n"); fd=$(frr_dir "$n")
  rm -rf "$d/snmp-persist" "$fd/snmp-persist"/* && mkdir -p "$d/snmp-persist"
  spawn "$ns" "$PRIV_RUN" MIBS= SNMP_PERSISTENT_DIR="$d/snmp-persist" -- \
    /usr/sbin/snmpd -f -C -c "$d/snmpd.conf" -Lf "$d/snmpd.log" </dev/null >>"$d/snmpd.out" 2>&1 &
  echo $! >"$d/snmpd.pid"
  wait_for 10 "$n snmpd (AgentX master)" tcp_listening "$ns" 127.0.0.1:705 || return 1

  for dm in zebra ospfd bgpd; do
    mod=(-M snmp); [ $dm = zebra ] && mod=()
    # -d returns once the daemon has read its config (FRR's daemonize handshake)
    ( spawn "$ns" "$PRIV_RUN && mkdir -m 755 /run/frr && chown frr:frr /run/frr && mount -n --bind $fd/tmp /var/tmp" \
      MIBS= SNMPCONFPATH="$fd/snmp" SNMP_PERSISTENT_DIR="$fd/snmp-persist" -- \
      /usr/lib/frr/$dm -d "${mod[@]}" -u frr -g frr -P 0 \
      -f "$fd/$dm.conf" -i "$fd/$dm.pid" -z "$fd/zserv.api" --vty_socket "$fd" \
      </dev/null >>"$fd/$dm.out" 2>&1 ) || { warn "$n: $dm failed to start, see $fd/$dm.out and $fd/$dm.log"; return 1; }
    if [ $dm = zebra ]; then wait_for 10 "$n zebra socket" test -S "$fd/zserv.api" || return 1; fi
  done

  ifs=$(echo ${IFACES[$n]:-} | tr ' ' ',')
  spawn "$ns" "$PRIV_RUN" MIBS= SNMP_PERSISTENT_DIR="$d/snmp-persist" -- \
    /usr/sbin/lldpd -d -x -X tcp:127.0.0.1:705 -u "$d/lldpd.socket" -I "$ifs" -O "$d/lldpd.conf" \
    </dev/null >>"$d/lldpd.log" 2>&1 &
  echo $! >"$d/lldpd.pid"
  wait_for 10 "$n lldpd" test -S "$d/lldpd.socket" || return 1

  spawn "$ns" "$PRIV_RUN && mkdir -m 755 /run/sshd && mount -n -t tmpfs -o mode=755,size=1m nwlab-log /var/log" -- \
    /usr/sbin/sshd -D -e -f "$d/sshd_config" </dev/null >>"$d/sshd.log" 2>&1 &
  echo $! >"$d/sshd.pid"
  wait_for 10 "$n sshd" tcp_listening "$ns" "${MGMT_IP[$n]}:$NWLAB_SSH_PORT" || return 1

  for dm in "${NWLAB_DAEMONS[@]}"; do
    daemon_pid "$n" "$dm" >/dev/null || { warn "$n: $dm is not running after start; see its log in $d"; return 1; }
  done
}

for n in "${NODES[@]}"; do
  gen_configs "$n"
  if [ -z "${DIRTY[$n]:-}" ]; then
    for dm in "${NWLAB_DAEMONS[@]}"; do
      daemon_pid "$n" "$dm" >/dev/null || { DIRTY[$n]=1; log "$n: $dm not running"; break; }
    done
  fi
done

declare -A JOBS=()
# interrupted: stop our start-up subshells; the daemons they already started are found again
# (pid files, namespace sweep) by the next up.sh or by down.sh
trap 'for p in "${JOBS[@]}"; do kill -TERM "$p" 2>/dev/null; done
      die "interrupted; run up.sh again to finish the lab, or down.sh to remove it"' INT TERM
for n in "${NODES[@]}"; do
  [ -n "${DIRTY[$n]:-}" ] || continue
  CHANGED=1
  stop_node_daemons "$n"
  rm -f "$(frr_dir "$n")"/*.vty "$(frr_dir "$n")/zserv.api" "$(node_dir "$n")/lldpd.socket"
  start_node "$n" >"$(node_dir "$n")/start.log" 2>&1 &
  JOBS[$n]=$!
done
failed=()
for n in "${!JOBS[@]}"; do
  wait "${JOBS[$n]}" || failed+=("$n")
done
if [ ${#failed[@]} -gt 0 ]; then
  for n in "${failed[@]}"; do sed "s/^/  $n: /" "$(node_dir "$n")/start.log" >&2; done
  die "could not start ${failed[*]}; state and logs are in $NWLAB_DIR/nodes/<node>/ (down.sh cleans up)"
fi
[ ${#JOBS[@]} -gt 0 ] && log "daemons started on: ${!JOBS[*]} ($(elapsed "$T0")s)"

# ---- machine-readable descriptions for tests ------------------------------------------------
known_host_name() { if [ "$NWLAB_SSH_PORT" = 22 ]; then echo "$1"; else echo "[$1]:$NWLAB_SSH_PORT"; fi; }
for n in "${NODES[@]}"; do
  echo "$(known_host_name "${MGMT_IP[$n]}") $(cut -d' ' -f1,2 "$(node_dir "$n")/ssh_host_ed25519_key.pub")"
done | write_file "$NWLAB_DIR/ssh/known_hosts"

{
  echo "# nwlab inventory: the lab's routers, as netwarden reads them (generated by tests/lab/up.sh)"
  echo "devices:"
  for n in "${NODES[@]}"; do
    cat <<EOF
  - name: $n
    address: ${MGMT_IP[$n]}
    site: $NWLAB_SITE
    role: ${ROLE[$n]}
    vendor: $NWLAB_VENDOR
    platform: $NWLAB_PLATFORM
    tags: [lab]
    snmp: { version: v2c, community: $NWLAB_SNMP_COMMUNITY }
    ssh: { user: $NWLAB_SSH_USER, password: $NWLAB_SSH_PASSWORD, port: $NWLAB_SSH_PORT }
EOF
  done
} | write_file "$NWLAB_DIR/inventory.yaml"

{
  sep=""
  printf '{\n  "lab": "nwlab",\n  "state_dir": "%s",\n' "$NWLAB_DIR"
  printf '  "mgmt": { "namespace": "%s", "bridge": "%s", "gateway": "%s", "prefix_len": %s },\n' \
    "$MGMT_NS" "$NWLAB_MGMT_BRIDGE" "$NWLAB_MGMT_GW" "$NWLAB_MGMT_PREFIXLEN"
  printf '  "credentials": {\n'
  printf '    "snmp_v2c": { "community": "%s" },\n' "$NWLAB_SNMP_COMMUNITY"
  printf '    "snmp_v3": { "user": "%s", "auth_protocol": "%s", "auth_password": "%s", "priv_protocol": "%s", "priv_password": "%s" },\n' \
    "$NWLAB_SNMP_V3_USER" "$NWLAB_SNMP_V3_AUTH_PROTO" "$NWLAB_SNMP_V3_AUTH_PASS" "$NWLAB_SNMP_V3_PRIV_PROTO" "$NWLAB_SNMP_V3_PRIV_PASS"
  printf '    "ssh": { "user": "%s", "password": "%s", "port": %s, "private_key_file": "%s", "known_hosts_file": "%s" }\n  },\n' \
    "$NWLAB_SSH_USER" "$NWLAB_SSH_PASSWORD" "$NWLAB_SSH_PORT" "$NWLAB_DIR/ssh/id_ed25519" "$NWLAB_DIR/ssh/known_hosts"
  printf '  "nodes": [\n'
  for n in "${NODES[@]}"; do
    printf '%s    { "name": "%s", "role": "%s", "asn": %s, "router_id": "%s", "loopback": "%s", "mgmt_ip": "%s",\n' \
      "$sep" "$n" "${ROLE[$n]}" "${ASN[$n]}" "${LOOPBACK[$n]}" "${LOOPBACK[$n]}" "${MGMT_IP[$n]}"
    printf '      "namespace": "%s", "mgmt_if": "%s", "snmp_port": 161, "ssh_port": %s,\n      "interfaces": [' \
      "$(ns_of "$n")" "$NWLAB_MGMT_IF" "$NWLAB_SSH_PORT"
    isep=""
    for i in ${IFACES[$n]:-}; do
      printf '%s\n        { "name": "%s", "ip": "%s", "prefix_len": %s, "peer": "%s", "peer_if": "%s", "peer_ip": "%s" }' \
        "$isep" "$i" "${IF_IP[$n/$i]}" "${IF_PLEN[$n/$i]}" "${IF_PEER[$n/$i]}" "${IF_PEER_IF[$n/$i]}" "${IF_PEER_IP[$n/$i]}"
      isep=","
    done
    printf '\n      ] }'
    sep=$',\n'
  done
  printf '\n  ],\n  "links": [\n'
  sep=""
  for l in "${LINKS[@]}"; do
    read -r a aif aip b bif bip net plen <<<"$l"
    printf '%s    { "a_node": "%s", "a_if": "%s", "a_ip": "%s", "b_node": "%s", "b_if": "%s", "b_ip": "%s", "subnet": "%s", "protocols": ["ebgp", "ospf", "lldp"] }' \
      "$sep" "$a" "$aif" "$aip" "$b" "$bif" "$bip" "$net"
    sep=$',\n'
  done
  printf '\n  ]\n}\n'
} | write_file "$NWLAB_DIR/wiring.json"

[ $CHANGED = 1 ] && echo "$T0" >"$NWLAB_DIR/changed_at"
if [ $CHANGED = 1 ]; then
  log "lab up in $(elapsed "$T0")s: ${#NODES[@]} routers, ${#LINKS[@]} fabric links; run tests/lab/check.sh to wait for convergence"
else
  log "lab already up and healthy, nothing to do ($(elapsed "$T0")s)"
fi
log "state: $NWLAB_DIR (wiring.json, inventory.yaml, ssh/id_ed25519, ssh/known_hosts); mgmt namespace: $MGMT_NS"
