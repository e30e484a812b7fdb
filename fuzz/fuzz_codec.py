"""atheris harness for the DHCP codec: messages, UDP frames and ARP frames.

Rule (h11's): every input parses or raises `MalformedPacket`, nothing else; a
decoded message re-encodes, and decoding that gives an equal message; the same
for frames. Run it (see fuzz/README.md):

    .venv/bin/python fuzz/fuzz_codec.py -runs=100000 fuzz/corpus/codec
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from privsep._errors import MalformedPacket
    from privsep.services.dhcp._frames import (
        decode_arp_frame,
        decode_udp_frame,
        encode_arp_frame,
        encode_udp_frame,
    )
    from privsep.services.dhcp._message import decode_message, encode_message


def check_message(data: bytes) -> None:
    try:
        message = decode_message(data)
    except MalformedPacket:
        return
    again = decode_message(encode_message(message, max_size=65535))
    if again != message:
        raise AssertionError(f"re-encoding changed the message: {message!r} -> {again!r}")
    for code, _ in message.options:
        message.get(code)  # validated on the way in: must decode without raising


def test_one_input(data: bytes) -> None:
    check_message(data)
    try:
        frame = decode_udp_frame(data, check_udp_checksum=False)
    except MalformedPacket:
        pass
    else:
        if decode_udp_frame(encode_udp_frame(frame)) != frame:
            raise AssertionError(f"UDP frame changed on re-encoding: {frame!r}")
        check_message(frame.payload)
    try:
        dst, src, arp = decode_arp_frame(data)
    except MalformedPacket:
        return
    if decode_arp_frame(encode_arp_frame(dst, src, arp)) != (dst, src, arp):
        raise AssertionError(f"ARP frame changed on re-encoding: {arp!r}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
