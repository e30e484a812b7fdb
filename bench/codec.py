"""Decode + encode throughput of the DHCP codec beside dpkt's, on real captured ACKs.

    .venv/bin/python bench/codec.py [SECONDS_PER_CASE]

One round = decode the UDP payload, then encode the result back to bytes. Ours
also validates every known option on the way in and out (dpkt checks nothing),
so the comparison is ours-with-validation against dpkt-without. Rates are per CPU
second (process time), so other load on the machine skews them less. Target: at least
30,000 rounds/s per core for ours on a typical ACK. Single process, one core.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import dpkt

from privsep.services.dhcp._message import decode_message, encode_message

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "dhcp"
CASES = ["dnsmasq-04-ack", "kea-04-ack", "dhcpd-04-ack", "udhcpd-06-ack", "dnsmasq-01-discover"]
TARGET = 30_000


def ours(payload: bytes) -> bytes:
    return encode_message(decode_message(payload), max_size=1500)


def theirs(payload: bytes) -> bytes:
    return bytes(dpkt.dhcp.DHCP(payload))


def rate(func: Callable[[bytes], bytes], payload: bytes, seconds: float) -> float:
    func(payload)  # warm up
    rounds = 0
    batch = 500
    start = time.process_time()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            func(payload)
        rounds += batch
        now = time.process_time()
        if now >= deadline:
            return rounds / (now - start)


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    print(f"{'packet':24} {'bytes':>5} {'ours/s':>10} {'dpkt/s':>10} {'ours/dpkt':>9}")
    worst = float("inf")
    for name in CASES:
        payload = bytes.fromhex((DATA / f"{name}.hex").read_text())
        mine = rate(ours, payload, seconds)
        other = rate(theirs, payload, seconds)
        worst = min(worst, mine)
        print(f"{name:24} {len(payload):5d} {mine:10,.0f} {other:10,.0f} {mine / other:9.2f}")
    verdict = "meets" if worst >= TARGET else "MISSES"
    print(f"slowest ours: {worst:,.0f} rounds/s; {verdict} the {TARGET:,}/s target")


if __name__ == "__main__":
    main()
