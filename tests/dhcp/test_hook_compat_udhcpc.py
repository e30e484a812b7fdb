"""Our hook environment equals real busybox udhcpc's, for the same DHCPACK.

A `privsep.testing.Lab` on 192.168.77.0/24; dnsmasq, started by hand in the server
namespace with options the lab does not model, sends many (domain, MTU, classless
routes, search list, NTP, time offset, a hostile hostname and strings); busybox
udhcpc in the client namespace runs a dump script that records argv[1] and its
environment (NUL-separated, so any byte survives). tcpdump captures the DHCPACK; we
decode it with our codec, build the facts, build the environment with `_hookenv`, and
compare: same names, same values. udhcpc never gets its default script (-s is
always given) and nothing writes /etc/resolv.conf.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from privsep.services.dhcp._egress import EgressPolicy
from privsep.services.dhcp._frames import decode_udp_frame
from privsep.services.dhcp._hookenv import HookEvent, facts_from_message, hook_env
from privsep.services.dhcp._message import Message, decode_message
from privsep.services.dhcp._options import MessageType
from privsep.testing import Capture, Lab, Node, read_pcap

pytestmark = pytest.mark.lab

CLIENT_MAC = "02:77:00:00:00:10"
CLIENT_MAC_BYTES = bytes.fromhex(CLIENT_MAC.replace(":", ""))
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
SHELL_ADDED = {"PATH", "PWD"}  # ours (PATH) and dash's own export (PWD)

DNSMASQ_CONF = """\
port=0
interface=lab0
bind-interfaces
except-interface=lo
no-resolv
no-hosts
no-ping
dhcp-authoritative
dhcp-range=192.168.77.100,192.168.77.200,255.255.255.0,2m
dhcp-leasefile={dir}/dnsmasq.leases
pid-file={dir}/dnsmasq.pid
log-facility={dir}/dnsmasq.log
log-dhcp
dhcp-option-force=option:router,192.168.77.1,192.168.77.2
dhcp-option-force=option:dns-server,192.168.77.1,192.168.77.3
dhcp-option-force=option:domain-name,lab.example
dhcp-option-force=option:mtu,1400
dhcp-option-force=option:classless-static-route,10.9.0.0/16,192.168.77.1,0.0.0.0/0,192.168.77.1
dhcp-option-force=option:domain-search,lab.example,corp.example
dhcp-option-force=option:ntp-server,192.168.77.4
dhcp-option-force=2,-3600
dhcp-option-force=12,"evil;$(touch pwned-host)"
dhcp-option-force=17,"/r `touch pwned-root` ; 'q' \\"dq\\""
dhcp-option-force=56,"m $(touch pwned-msg)"
dhcp-option-force=249,10.8.0.0/16,192.168.77.1
dhcp-option-force=224,"hi"
dhcp-boot=pxe.0,bootsrv
"""

DUMP_SCRIPT = """\
#!/bin/sh
# Records the event and the exact environment; evaluates nothing.
cat /proc/$$/environ > '{dir}/env.'"$1"
exit 0
"""


def _missing_tools() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "dnsmasq", "busybox", "tcpdump"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


class HookLab:
    """The lab, its one client node, and a directory dnsmasq and the hook write into."""

    def __init__(self, lab: Lab, dir: Path) -> None:
        self.lab = lab
        self.dir = dir
        self.client: Node = lab.add_client("cli", mac=CLIENT_MAC)


@pytest.fixture
def hook_lab(tmp_path: Path) -> Iterator[HookLab]:
    reason = _missing_tools()
    if reason:
        pytest.skip(reason)
    tmp_path.chmod(0o755)  # dnsmasq may write as its own user
    with Lab("192.168.77.1/24") as lab:  # its teardown kills what ran in its namespaces
        yield HookLab(lab, tmp_path)


def _wait_for(predicate: Callable[[], object], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _frames(pcap: Path) -> list[bytes]:
    return [packet.frame for packet in read_pcap(pcap)]


def _replies(pcap: Path, kind: MessageType) -> list[Message]:
    """The server's replies of type `kind`, in capture order."""
    out = []
    for frame in _frames(pcap):
        if frame[6:12] == CLIENT_MAC_BYTES:
            continue
        # veth leaves the server's UDP checksum partial (offload); udhcpc skips it
        # (TP_STATUS_CSUMNOTREADY), we clear it so the codec skips it too.
        unchecked = frame[:40] + b"\x00\x00" + frame[42:]
        message = decode_message(decode_udp_frame(unchecked).payload)
        if message.op == 2 and message.message_type == kind:
            out.append(message)
    return out


def _start_dnsmasq(lab: HookLab, conf: Path, log: Path) -> subprocess.Popen[bytes]:
    """dnsmasq with `conf` in the server namespace, once its sockets are bound."""
    argv = ["dnsmasq", "--keep-in-foreground", f"--conf-file={conf}"]
    dnsmasq = lab.lab.server_node.popen(argv)
    _wait_for(lambda: log.exists() and "sockets bound" in log.read_text(), "dnsmasq")
    return dnsmasq


def _start_dnsmasq_and_capture(lab: HookLab, conf: Path) -> tuple[subprocess.Popen[bytes], Capture]:
    """dnsmasq with `conf`, and tcpdump on the lab's bridge, both ready."""
    capture = lab.lab.capture()  # returns once tcpdump listens
    return _start_dnsmasq(lab, conf, lab.dir / "dnsmasq.log"), capture


def _dumped_env(path: Path) -> dict[str, str]:
    entries = [e for e in path.read_bytes().split(b"\x00") if e]
    env = dict(os.fsdecode(e).split("=", 1) for e in entries)
    return {k: v for k, v in env.items() if k not in SHELL_ADDED}


def test_bound_and_deconfig_environment_match_busybox_udhcpc(hook_lab: HookLab) -> None:
    lab = hook_lab
    conf = lab.dir / "dnsmasq.conf"
    conf.write_text(DNSMASQ_CONF.format(dir=lab.dir))
    script = lab.dir / "dump.sh"
    script.write_text(DUMP_SCRIPT.format(dir=lab.dir))
    script.chmod(0o755)
    _, capture = _start_dnsmasq_and_capture(lab, conf)

    udhcpc = subprocess.run(
        lab.client.command(
            [
                *("env", "-i", f"PATH={PATH}"),
                *("busybox", "udhcpc", "-f", "-q", "-n", "-t", "3", "-T", "1"),
                *("-i", "eth0", "-s", str(script)),
            ]
        ),
        cwd=lab.dir,  # where an evaluated `touch pwned-*` would land
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert udhcpc.returncode == 0, udhcpc.stderr.decode()
    _wait_for(
        lambda: capture.path.exists() and capture.path.stat().st_size > 1000,
        "the captured DHCPACK",
    )
    pcap = capture.stop()

    acks = _replies(pcap, MessageType.ACK)
    assert acks, "no DHCPACK captured"
    ack = acks[0]
    ours = hook_env(HookEvent.BOUND, "eth0", facts_from_message(ack))
    theirs = _dumped_env(lab.dir / "env.bound")
    assert sorted(ours) == sorted(theirs)
    assert ours == theirs
    # The comparison covered the interesting formats, not just a bare lease.
    for name in (
        *("router", "dns", "domain", "staticroutes", "msstaticroutes", "search", "mtu"),
        *("ntpsrv", "timezone", "rootpath", "message", "opt53", "opt224", "boot_file"),
    ):
        assert name in theirs
    assert theirs["hostname"] == "bad"  # udhcpc sanitizes it; so do we

    assert _dumped_env(lab.dir / "env.deconfig") == hook_env(HookEvent.DECONFIG, "eth0")

    # udhcpc's own DISCOVER and REQUEST (raw frames, checksums in software) pass
    # the network process's egress check: the policy is not stricter than a real client.
    policy = EgressPolicy(CLIENT_MAC_BYTES, clock=lambda: 0.0)
    sent = [f for f in _frames(pcap) if f[6:12] == CLIENT_MAC_BYTES]
    assert len(sent) >= 2
    for frame in sent:
        policy.check(frame, candidate=None, leased=None)
    assert sorted(p.name for p in lab.dir.iterdir() if p.name.startswith("pwned")) == []


RENEW_SCRIPT = """\
#!/bin/sh
# Numbered dumps (events repeat); configures the address so udhcpc can unicast a renewal.
n=$(ls '{dir}' | grep -c '^env\\.')
cat /proc/$$/environ > '{dir}/env.'"$n.$1"
case "$1" in
bound|renew) ip addr replace "$ip/$mask" dev "$interface" ;;
deconfig) ip -4 addr flush dev "$interface" ;;
esac
exit 0
"""

NAK_CONF = """\
port=0
interface=lab0
bind-interfaces
except-interface=lo
no-resolv
no-hosts
no-ping
dhcp-authoritative
dhcp-range=192.168.77.50,192.168.77.60,255.255.255.0,2m
dhcp-leasefile={dir}/dnsmasq-nak.leases
log-facility={dir}/dnsmasq-nak.log
log-dhcp
"""


def _dumps(directory: Path) -> list[tuple[str, Path]]:
    found = [p for p in directory.iterdir() if p.name.startswith("env.")]
    found.sort(key=lambda p: int(p.name.split(".")[1]))
    return [(p.name.split(".")[2], p) for p in found]


def test_renew_and_nak_environment_match_busybox_udhcpc(hook_lab: HookLab) -> None:
    lab = hook_lab
    conf = lab.dir / "dnsmasq.conf"
    conf.write_text(DNSMASQ_CONF.format(dir=lab.dir))
    (lab.dir / "nak.conf").write_text(NAK_CONF.format(dir=lab.dir))
    script = lab.dir / "dump.sh"
    script.write_text(RENEW_SCRIPT.format(dir=lab.dir))
    script.chmod(0o755)
    dnsmasq, capture = _start_dnsmasq_and_capture(lab, conf)

    udhcpc = lab.client.popen(
        [
            *("env", "-i", f"PATH={PATH}", "busybox", "udhcpc", "-f", "-t", "3", "-T", "1"),
            *("-i", "eth0", "-s", str(script)),
        ]
    )

    def events() -> list[str]:
        return [event for event, _ in _dumps(lab.dir)]

    _wait_for(lambda: events()[-1:] == ["bound"], "bound")
    udhcpc.send_signal(signal.SIGUSR1)  # renew now (unicast REQUEST, ACK -> "renew")
    _wait_for(lambda: events()[-1:] == ["renew"], "renew")

    dnsmasq.send_signal(signal.SIGTERM)  # a server that no longer knows the address
    dnsmasq.wait(timeout=5)
    _start_dnsmasq(lab, lab.dir / "nak.conf", lab.dir / "dnsmasq-nak.log")
    udhcpc.send_signal(signal.SIGUSR1)
    _wait_for(lambda: events()[-2:] == ["nak", "deconfig"], "nak then deconfig")
    udhcpc.send_signal(signal.SIGKILL)  # before its 3 s back-off ends
    udhcpc.wait(timeout=5)
    pcap = capture.stop()

    dumps = dict(_dumps(lab.dir)[-3:-1])  # the renew and the nak
    acks = _replies(pcap, MessageType.ACK)
    [nak] = _replies(pcap, MessageType.NAK)
    assert len(acks) >= 2  # select, renewal (a unicast reply may be seen twice)
    assert _dumped_env(dumps["renew"]) == hook_env(
        HookEvent.RENEW, "eth0", facts_from_message(acks[-1])
    )
    theirs = _dumped_env(dumps["nak"])
    assert theirs == hook_env(HookEvent.NAK, "eth0", facts_from_message(nak))
    assert theirs["ip"] == "0.0.0.0" and "message" in theirs
