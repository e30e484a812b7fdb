"""`privsep dhcp`: the DHCPv4 client and its tools.

`privsep dhcp decode [--hex]` decodes one message from stdin. Any other first
argument is the interface of the client (`privsep dhcp IFACE [options]`), which
another issue provides; until then that path fails with one line.
"""

from __future__ import annotations

import argparse
import sys

from privsep._cli import CliError

_USAGE = "privsep dhcp decode [--hex]\n       privsep dhcp IFACE [options]"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "dhcp",
        help="the DHCPv4 client; `dhcp decode` decodes a message",
        description="DHCPv4 client (udhcpc-compatible) and tools.",
        usage=_USAGE,
    )
    parser.add_argument("target", metavar="decode|IFACE", help="`decode`, or the interface")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.set_defaults(func=_dispatch)


def _dispatch(args: argparse.Namespace) -> int:
    if args.target == "decode":
        return _decode(args.rest)
    raise CliError("the DHCP client is not available yet", code=2)


def _decode(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="privsep dhcp decode",
        description=(
            "Decode one BOOTP/DHCP message (a UDP payload) from stdin and print it as JSON."
        ),
    )
    parser.add_argument(
        "--hex", action="store_true", help="stdin is hex text (whitespace allowed), not binary"
    )
    opts = parser.parse_args(argv)

    import json  # noqa: PLC0415  # keep `privsep --help` fast

    from privsep._errors import MalformedPacket  # noqa: PLC0415
    from privsep.services.dhcp._decode_json import message_to_json  # noqa: PLC0415
    from privsep.services.dhcp._message import decode_message  # noqa: PLC0415

    data = sys.stdin.buffer.read()
    if opts.hex:
        try:
            data = bytes.fromhex("".join(data.decode("ascii").split()))
        except ValueError:  # UnicodeDecodeError is a ValueError too
            raise CliError("stdin is not hex text", code=2) from None
    try:
        message = decode_message(data)
    except MalformedPacket as exc:
        raise CliError(f"malformed DHCP message: {exc}", code=2) from None
    json.dump(message_to_json(message), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
