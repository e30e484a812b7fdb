"""`privsep dhcp decode [--hex]`: the contract of DESIGN.md 3, end to end.

A few runs go through a real subprocess (`python -m privsep dhcp decode`); the
per-capture checks call the same entry point in-process to keep the suite fast.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from typing import Any

import pytest

from privsep._cli import main

ERROR_CASES = {
    "too-short": b"\x02\x01\x06\x00",
    "bad-cookie": bytes([2, 1, 6, 0]) + bytes(232) + b"\x00\x00\x00\x00\xff",
    "bad-option": bytes([2, 1, 6, 0]) + bytes(232) + b"\x63\x82\x53\x63" + b"\x01\x03abc\xff",
}


def run_decode(stdin: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "privsep", "dhcp", "decode", *args],
        input=stdin,
        capture_output=True,
        check=False,
        timeout=30,
    )


def run_dhcp(*args: str) -> subprocess.CompletedProcess[str]:
    """`privsep dhcp ARGS` without stdin, output as text."""
    return subprocess.run(
        [sys.executable, "-m", "privsep", "dhcp", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_binary_stdin_prints_the_expected_json(capture_named: Any) -> None:
    capture = capture_named("dnsmasq-04-ack")
    result = run_decode(capture.payload)
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    output = json.loads(result.stdout)
    assert output == capture.expected
    assert list(output) == [
        "op",
        "xid",
        "secs",
        "flags",
        "ciaddr",
        "yiaddr",
        "siaddr",
        "giaddr",
        "chaddr",
        "sname",
        "file",
        "message_type",
        "options",
    ]
    assert output["options"]["121"] == [
        {"destination": "10.10.0.0/16", "router": "192.168.77.1"},
        {"destination": "0.0.0.0/0", "router": "192.168.77.1"},
    ]
    assert output["options"]["119"] == ["example.test", "lab.example.test", "example.org"]
    assert output["options"]["51"] == 120
    assert output["options"]["6"] == ["192.168.77.1", "192.168.77.2"]


def test_hex_stdin_with_whitespace_and_newlines(capture_named: Any) -> None:
    capture = capture_named("kea-06-nak")
    text = capture.payload.hex().upper()
    spaced = "\n".join(
        " ".join(text[i : i + 8] for i in range(j, j + 32, 8)) for j in range(0, len(text), 32)
    )
    result = run_decode(("  " + spaced + "\n\n").encode(), "--hex")
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output == capture.expected
    assert output["message_type"] == "NAK"


@pytest.mark.parametrize("name", sorted(ERROR_CASES))
def test_malformed_message_exits_2_with_one_error_line(name: str) -> None:
    result = run_decode(ERROR_CASES[name])
    assert result.returncode == 2
    assert result.stdout == b""
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: malformed DHCP message: ")


def test_text_that_is_not_hex_exits_2() -> None:
    result = run_decode(b"63 82 zz", "--hex")
    assert result.returncode == 2
    assert result.stderr.decode().splitlines() == ["error: stdin is not hex text"]


def test_an_interface_argument_is_the_client() -> None:
    # Never on the host's interfaces: a namespace that does not exist fails up front.
    result = run_dhcp("eth0", "-q", "--netns", "privsep-absent-ns")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: no network namespace 'privsep-absent-ns' (ip netns list)"
    ]


def test_decode_help_names_the_hex_flag() -> None:
    result = run_dhcp("decode", "--help")
    assert result.returncode == 0
    assert "--hex" in result.stdout


def _main_with_stdin(
    data: bytes,
    args: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code = main(["dhcp", "decode", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_every_capture_decodes_to_its_expected_json(
    captures: list[Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for capture in captures:
        code, out, err = _main_with_stdin(capture.payload, [], monkeypatch, capsys)
        assert (code, err) == (0, ""), capture.name
        assert json.loads(out) == capture.expected, capture.name


def test_forcerenew_and_unknown_options_in_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    body = (
        bytes([2, 1, 6, 0, 0, 0, 0, 7])
        + bytes(20)
        + bytes.fromhex("027700000010").ljust(16, b"\x00")
        + b"srv\xff".ljust(64, b"\x00")
        + bytes(128)
        + b"\x63\x82\x53\x63"
        + b"\x35\x01\x09"  # FORCERENEW
        + b"\xe0\x03\xab\xcd\xef"  # unknown 224
        + b"\x3d\x07\x01\x02\x77\x00\x00\x00\x10"  # client id: opaque -> hex
        + b"\x50\x00"  # rapid commit
        + b"\x02\x04\xff\xff\xf1\xf0"  # time offset -3600
        + b"\xff"
    )
    code, out, _ = _main_with_stdin(body.hex().encode(), ["--hex"], monkeypatch, capsys)
    assert code == 0
    output = json.loads(out)
    assert output["message_type"] == "FORCERENEW"
    assert output["xid"] == 7
    assert output["sname"] == "srv\\xff"
    assert output["options"] == {
        "53": 9,
        "224": "abcdef",
        "61": "01027700000010",
        "80": True,
        "2": -3600,
    }


def test_message_without_type_has_null_message_type(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bootp = bytes([1, 1, 6, 0]) + bytes(232) + b"\x63\x82\x53\x63\xff"
    code, out, _ = _main_with_stdin(bootp, [], monkeypatch, capsys)
    assert code == 0
    assert json.loads(out)["message_type"] is None


@pytest.mark.parametrize("name", sorted(ERROR_CASES))
def test_malformed_message_in_process_is_a_cli_error(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _main_with_stdin(ERROR_CASES[name], [], monkeypatch, capsys)
    assert (code, out) == (2, "")
    assert err.startswith("error: malformed DHCP message: ")
    assert err.count("\n") == 1


def test_non_hex_and_future_client_in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _main_with_stdin("\u00e9".encode(), ["--hex"], monkeypatch, capsys)
    assert (code, err) == (2, "error: stdin is not hex text\n")
    assert main(["dhcp", "eth0", "--netns", "privsep-absent-ns"]) == 2
    assert capsys.readouterr().err == (
        "error: no network namespace 'privsep-absent-ns' (ip netns list)\n"
    )


def test_client_refuses_the_host_network_under_the_test_guard() -> None:
    # The pytest plugin sets PRIVSEP_REQUIRE_NETNS for the whole session: a client started
    # without --netns must stop before touching anything, whatever interface it names.
    result = run_dhcp("lo", "-q")
    assert result.returncode == 2
    assert result.stderr == (
        "error: refusing to run on the host's network: PRIVSEP_REQUIRE_NETNS is set\n"
    )
