"""Turn the pcaps written by capture.sh into the committed test data.

    python extract.py OUTDIR NAME.pcap...

For every DHCP packet of NAME.pcap it writes OUTDIR/NAME-NN-TYPE.hex (the UDP
payload), OUTDIR/frames/NAME-NN-TYPE.hex (the Ethernet frame) and
OUTDIR/NAME-NN-TYPE.json (the expected `privsep dhcp decode` output).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from privsep.services.dhcp._decode_json import message_to_json
from privsep.services.dhcp._message import decode_message
from privsep.testing import read_pcap


def hex_lines(data: bytes) -> str:
    text = data.hex()
    return "\n".join(text[i : i + 64] for i in range(0, len(text), 64)) + "\n"


def main(outdir: Path, pcaps: list[Path]) -> None:
    (outdir / "frames").mkdir(exist_ok=True)
    for pcap in pcaps:
        for n, packet in enumerate(read_pcap(pcap), 1):
            frame, udp = packet.frame, packet.udp()
            if udp is None:
                raise ValueError(f"{pcap}: packet {n} is not an unfragmented IPv4/UDP frame")
            payload = udp[2]
            message = decode_message(payload)
            kind = message.message_type
            stem = f"{pcap.stem}-{n:02d}-{kind.name.lower() if kind else 'bootp'}"
            (outdir / f"{stem}.hex").write_text(hex_lines(payload))
            (outdir / "frames" / f"{stem}.hex").write_text(hex_lines(frame))
            expected = json.dumps(message_to_json(message), indent=2) + "\n"
            (outdir / f"{stem}.json").write_text(expected)
            print(stem, len(payload), file=sys.stderr)


if __name__ == "__main__":
    main(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
