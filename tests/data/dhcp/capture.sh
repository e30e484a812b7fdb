#!/bin/bash
# Capture real DHCP exchanges from dnsmasq, Kea, ISC dhcpd and busybox udhcpd.
#
# Re-run by hand (as root) only when the captures should change; the results are
# committed and the tests only read them:
#     tests/data/dhcp/capture.sh            # from the repository root
#
# For each server it creates two network namespaces joined by a veth pair
# (privsep-cap-<rand>-srv with srv0 192.168.77.1/24, privsep-cap-<rand>-cli
# with eth0), starts the server with a config written to a temp dir (never
# /etc), records the wire with tcpdump on srv0 and runs, in the client namespace:
#   1. busybox udhcpc (DISCOVER/OFFER/REQUEST/ACK), asking for more options;
#   2. ISC dhclient with a lease file holding 10.9.9.9: its INIT-REBOOT REQUEST
#      for a foreign address draws a NAK from the authoritative server.
# Nothing runs on the host's interfaces; the namespaces (and with them the
# veth pair) and every process started here are removed on exit, also on failure.
# Then extract.py writes each UDP payload (<server>-<NN>-<type>.hex), each frame
# (frames/<same>.hex) and the expected `privsep dhcp decode` JSON (.json).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
PY=${PY:-$ROOT/.venv/bin/python}
RAND=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')
SRV=privsep-cap-$RAND-srv
CLI=privsep-cap-$RAND-cli
T=$(mktemp -d /tmp/privsep-cap-XXXXXX)
chmod 755 "$T"
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    sleep 0.3
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$CLI" 2>/dev/null || true
    ip netns del "$SRV" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT

ip netns add "$SRV"
ip netns add "$CLI"
# Created directly inside the namespaces: the pair never exists on the host.
ip -n "$SRV" link add srv0 type veth peer name eth0 netns "$CLI"
ip -n "$SRV" link set lo up
ip -n "$CLI" link set lo up
ip -n "$SRV" addr add 192.168.77.1/24 dev srv0
ip -n "$SRV" link set srv0 up
ip -n "$CLI" link set eth0 address 02:77:00:00:00:10
ip -n "$CLI" link set eth0 up

# -- server configs (adapted from the peer bench; extra options exercise more kinds)
cat >"$T/dnsmasq.conf" <<CONF
port=0
interface=srv0
bind-interfaces
except-interface=lo
no-resolv
no-hosts
no-ping
dhcp-authoritative
dhcp-range=192.168.77.100,192.168.77.200,255.255.255.0,2m
dhcp-option=option:router,192.168.77.1
dhcp-option=option:dns-server,192.168.77.1,192.168.77.2
dhcp-option=option:domain-name,example.test
dhcp-option=option:domain-search,example.test,lab.example.test,example.org
dhcp-option=option:mtu,1400
dhcp-option=option:ntp-server,192.168.77.1
dhcp-option=option:classless-static-route,10.10.0.0/16,192.168.77.1,0.0.0.0/0,192.168.77.1
dhcp-leasefile=$T/dnsmasq.leases
pid-file=$T/dnsmasq.pid
user=root
CONF

cat >"$T/kea-dhcp4.json" <<CONF
{ "Dhcp4": {
    "interfaces-config": { "interfaces": [ "srv0" ], "dhcp-socket-type": "raw" },
    "lease-database": { "type": "memfile", "persist": true,
                        "name": "$T/kea-leases4.csv", "lfc-interval": 0 },
    "authoritative": true,
    "valid-lifetime": 120, "renew-timer": 40, "rebind-timer": 90,
    "subnet4": [ { "id": 1, "subnet": "192.168.77.0/24",
        "pools": [ { "pool": "192.168.77.100 - 192.168.77.200" } ],
        "option-data": [
            { "name": "routers", "data": "192.168.77.1" },
            { "name": "domain-name-servers", "data": "192.168.77.1" },
            { "name": "domain-name", "data": "example.test" },
            { "name": "domain-search", "data": "example.test, lab.example.test" },
            { "name": "interface-mtu", "data": "1400" },
            { "name": "ntp-servers", "data": "192.168.77.1" },
            { "code": 121, "csv-format": false, "data": "100A0AC0A84D01" } ] } ],
    "loggers": [ { "name": "kea-dhcp4", "output_options": [ { "output": "stdout" } ],
                   "severity": "WARN" } ] } }
CONF

cat >"$T/dhcpd.conf" <<CONF
authoritative;
ping-check false;
default-lease-time 120;
max-lease-time 120;
min-lease-time 120;
ddns-update-style none;
option rfc3442-classless-static-routes code 121 = array of integer 8;
subnet 192.168.77.0 netmask 255.255.255.0 {
  range 192.168.77.100 192.168.77.200;
  option subnet-mask 255.255.255.0;
  option routers 192.168.77.1;
  option domain-name-servers 192.168.77.1;
  option domain-name "example.test";
  option domain-search "example.test", "lab.example.test";
  option interface-mtu 1400;
  option ntp-servers 192.168.77.1;
  option rfc3442-classless-static-routes 16, 10, 10, 192, 168, 77, 1;
}
CONF

cat >"$T/udhcpd.conf" <<CONF
interface srv0
start 192.168.77.100
end 192.168.77.200
max_leases 101
lease_file $T/udhcpd.leases
pidfile $T/udhcpd.pid
min_lease 60
opt subnet 255.255.255.0
opt router 192.168.77.1
opt dns 192.168.77.1
opt lease 120
opt domain example.test
opt search example.test lab.example.test
opt mtu 1400
opt ntpsrv 192.168.77.1
opt staticroutes 10.10.0.0/16 192.168.77.1
CONF

# dhclient's lease for a foreign address: its INIT-REBOOT REQUEST gets a NAK.
cat >"$T/dhclient.leases.in" <<CONF
lease {
  interface "eth0";
  fixed-address 10.9.9.9;
  option subnet-mask 255.255.255.0;
  renew 4 2037/1/1 00:00:00;
  rebind 4 2037/1/1 00:00:00;
  expire 4 2037/1/1 00:00:00;
}
CONF

start_server() {
    local name=$1
    touch "$T/dhcpd.leases" "$T/udhcpd.leases"
    rm -f "$T/dhcpd.pid" "$T/kea-leases4.csv" "$T/dnsmasq.leases"
    case $name in
        dnsmasq) ip netns exec "$SRV" dnsmasq --keep-in-foreground --conf-file="$T/dnsmasq.conf" \
                     >"$T/$name.log" 2>&1 & ;;
        kea) KEA_PIDFILE_DIR=$T KEA_LOCKFILE_DIR=$T \
                 ip netns exec "$SRV" kea-dhcp4 -c "$T/kea-dhcp4.json" >"$T/$name.log" 2>&1 & ;;
        dhcpd) ip netns exec "$SRV" dhcpd -4 -f -d -cf "$T/dhcpd.conf" -lf "$T/dhcpd.leases" \
                   -pf "$T/dhcpd.pid" srv0 >"$T/$name.log" 2>&1 & ;;
        udhcpd) ip netns exec "$SRV" busybox udhcpd -f "$T/udhcpd.conf" >"$T/$name.log" 2>&1 & ;;
    esac
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    for _ in $(seq 50); do
        if ip netns exec "$SRV" ss -Huln 'sport = :67' | grep -q .; then sleep 0.3; return; fi
        sleep 0.1
    done
    cat "$T/$name.log" >&2
    echo "capture: $name did not start" >&2
    exit 1
}

for server in dnsmasq kea dhcpd udhcpd; do
    echo "capture: $server" >&2
    ip netns exec "$SRV" tcpdump -i srv0 -U --immediate-mode -w "$T/$server.pcap" \
        'udp port 67 or udp port 68' 2>"$T/tcpdump.log" &
    DUMP_PID=$!
    PIDS+=("$DUMP_PID")
    for _ in $(seq 50); do grep -q listening "$T/tcpdump.log" && break; sleep 0.1; done
    start_server "$server"

    ip netns exec "$CLI" udhcpc -f -q -n -t 5 -T 1 -i eth0 -s /bin/true \
        -x hostname:cap-client -V privsep-capture \
        -O domain -O search -O staticroutes -O mtu -O ntpsrv >"$T/udhcpc.log" 2>&1 \
        || { cat "$T/udhcpc.log" >&2; echo "capture: no lease from $server" >&2; }

    cp "$T/dhclient.leases.in" "$T/dhclient.leases"
    ip netns exec "$CLI" timeout 5 dhclient -d -1 -sf /bin/true -lf "$T/dhclient.leases" \
        -pf "$T/dhclient.pid" eth0 >"$T/dhclient.log" 2>&1 || true

    sleep 0.3
    kill "$SERVER_PID" "$DUMP_PID" 2>/dev/null || true
    wait "$SERVER_PID" "$DUMP_PID" 2>/dev/null || true
done

"$PY" "$HERE/extract.py" "$HERE" "$T"/dnsmasq.pcap "$T"/kea.pcap "$T"/dhcpd.pcap "$T"/udhcpd.pcap
