"""A refusal that crosses capnp RPC is logged with its reason, not a traceback header.

QA: `apply-failed` said `error: 'remote exception: message = Traceback (most recent
call last):'`. pycapnp hands us the peer's whole traceback as the description; the
reason is its exception line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterator
from ipaddress import IPv4Address as A
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import make_lease
from netns_helpers import netlink_socket_in, veth_netns

from privsep import rpc
from privsep.services.dhcp._actuator import SCHEMA_PATH, Actuator, ActuatorRejected, ActuatorRpc
from privsep.services.dhcp._events import LeaseAcquired
from privsep.services.dhcp._netconfig import NetConfig
from privsep.services.dhcp._proc_engine import Driver, _reason
from privsep.services.dhcp._statedir import StateDir

QA_CONFIG: dict[str, Any] = {
    "address": int(A("10.1.0.5")),
    "prefixLen": 24,
    "leaseTime": 600,
    "dns": [int(A("10.99.0.1")), int(A("127.0.0.1"))],
    "stateBlob": b"blob",
}
QA_REASON = "ActuatorRejected: DNS server 127.0.0.1 is loopback"


def remote_failure(impl: object, call: Callable[[Any], Awaitable[Any]]) -> Exception:
    """The exception the engine gets when `call(client)` fails at `impl` across capnp."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    async def main(_: None) -> Exception:
        server = asyncio.ensure_future(rpc.serve(a.detach(), SCHEMA_PATH, "Actuator", impl))
        try:
            client = await rpc.connect(b.detach(), SCHEMA_PATH, "Actuator")
            try:
                await call(client)
            except Exception as exc:
                return exc
            raise AssertionError("the call did not fail")
        finally:
            server.cancel()

    return rpc.run_async(main, None)


class _Refusing:
    """An Actuator whose every call fails as the real one can."""

    async def applyLease(self, config: Any, **kwargs: object) -> None:
        raise ActuatorRejected("DNS server 127.0.0.1 is loopback")

    async def deconfigure(self, reason: str, **kwargs: object) -> None:
        try:
            raise OSError(19, "No such device")
        except OSError as exc:  # a chained traceback: the last exception is the reason
            raise RuntimeError("delete address 10.1.0.5/24: no such device\nsecond line") from exc

    async def loadState(self, **kwargs: object) -> bytes:
        raise KeyError


def test_a_remote_refusal_gives_its_exception_line() -> None:
    exc = remote_failure(_Refusing(), lambda c: c.applyLease(config=QA_CONFIG))
    assert "Traceback" in str(getattr(exc, "description", ""))  # what QA saw the head of
    assert _reason(exc) == QA_REASON


def test_a_chained_remote_exception_gives_the_last_one_first_line() -> None:
    exc = remote_failure(_Refusing(), lambda c: c.deconfigure(reason="x"))
    assert _reason(exc) == "RuntimeError: delete address 10.1.0.5/24: no such device"
    exc = remote_failure(_Refusing(), lambda c: c.loadState())
    assert _reason(exc) == "KeyError"
    # Local errors (no traceback in them) keep their first line, as before.
    assert _reason(ConnectionError("the link to dhcp-network is gone\nmore")) == (
        "the link to dhcp-network is gone"
    )
    assert _reason(ValueError()) == "ValueError"


@pytest.fixture
def actuator_in_netns(tmp_path: Path) -> Iterator[tuple[str, int, Path]]:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    with veth_netns() as (ns, ifindex):
        yield ns, ifindex, tmp_path / "state"


@pytest.mark.lab
def test_the_real_actuator_refusal_reaches_apply_failed_with_its_reason(
    actuator_in_netns: tuple[str, int, Path],
) -> None:
    ns, ifindex, state = actuator_in_netns
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    async def main(_: None) -> Exception:
        net = await NetConfig.open(netlink_socket_in(ns).detach())  # under the KJ loop
        actuator = await Actuator.start(net, StateDir(state), ifindex=ifindex)
        server = asyncio.ensure_future(
            rpc.serve(a.detach(), SCHEMA_PATH, "Actuator", ActuatorRpc(actuator))
        )
        try:
            client = await rpc.connect(b.detach(), SCHEMA_PATH, "Actuator")
            try:
                await client.applyLease(config=QA_CONFIG)
            except Exception as exc:
                return exc
            raise AssertionError("the actuator took a loopback DNS server")
        finally:
            server.cancel()
            net.close()

    refused = rpc.run_async(main, None)
    assert _reason(refused) == QA_REASON

    # The engine's log line, with that exception coming back from applyLease.
    class _Failing:
        async def applyLease(self, config: Any) -> None:
            raise refused

    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("privsep.services.dhcp._proc_engine")
    logger.addHandler(handler)
    try:
        driver = Driver(None, None, _Failing(), {"interface": "eth0"}, fresh=False)  # type: ignore[arg-type]
        asyncio.run(driver._act(LeaseAcquired(make_lease())))
    finally:
        logger.removeHandler(handler)
    [failed] = [r for r in records if r.getMessage() == "apply-failed"]
    assert failed.fields == {"error": QA_REASON}  # type: ignore[attr-defined]
