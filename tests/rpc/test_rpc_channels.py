"""privsep.rpc over a plain socketpair (no sandbox): typed clients, narrowed servers, loops."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import capnp
import pytest

from privsep import rpc

SCHEMA = Path(__file__).with_name("counter.capnp")


class AdminImpl:
    """Implements the wider CounterAdmin; channels must expose only what the layout names."""

    def __init__(self) -> None:
        self.value = 0
        self.resets = 0

    async def increment(self, by: int, **kwargs: object) -> int:
        self.value += by
        return self.value

    async def get(self, **kwargs: object) -> int:
        return self.value

    async def reset(self, **kwargs: object) -> None:
        self.resets += 1
        self.value = 0


def run_pair(
    client_side: Callable[[int], Awaitable[Any]],
    impl: Any,
    *,
    served: str = "Counter",
) -> Any:
    """Serve `impl` on one end of a socketpair and run `client_side(fd)` on the other."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    async def main(_: None) -> Any:
        server = asyncio.ensure_future(rpc.serve(a.detach(), SCHEMA, served, impl))
        try:
            return await client_side(b.detach())
        finally:
            server.cancel()

    return rpc.run_async(main, None)


def test_client_calls_server_over_socketpair() -> None:
    impl = AdminImpl()

    async def client(fd: int) -> list[int]:
        counter = await rpc.connect(fd, SCHEMA, "Counter")
        values = [(await counter.increment(by=n)).value for n in (1, 2, 3)]
        values.append((await counter.get()).value)
        return values

    assert run_pair(client, impl) == [1, 3, 6, 6]


def test_client_is_narrowed_to_the_named_interface() -> None:
    async def client(fd: int) -> bool:
        counter = await rpc.connect(fd, SCHEMA, "Counter")
        await counter.get()
        return hasattr(counter, "reset")

    assert run_pair(client, AdminImpl(), served="CounterAdmin") is False


def test_calling_a_method_outside_the_served_interface_fails() -> None:
    impl = AdminImpl()

    async def client(fd: int) -> None:
        # A hostile peer casts the bootstrap to the wider interface itself.
        admin = await rpc.connect(fd, SCHEMA, "CounterAdmin")
        with pytest.raises(capnp.KjException, match="not implemented"):
            await admin.reset()

    run_pair(client, impl)
    assert impl.resets == 0


def test_serve_returns_when_the_peer_disconnects() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    async def main(_: None) -> str:
        server = asyncio.ensure_future(rpc.serve(a.detach(), SCHEMA, "Counter", AdminImpl()))
        counter = await rpc.connect(os.dup(b.fileno()), SCHEMA, "Counter")
        await counter.increment(by=1)
        b.shutdown(socket.SHUT_RDWR)
        await asyncio.wait_for(server, timeout=5)
        return "returned"

    assert rpc.run_async(main, None) == "returned"
    b.close()


def test_client_call_after_server_exit_raises_disconnected() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    async def main(_: None) -> str:
        counter = await rpc.connect(b.detach(), SCHEMA, "Counter")
        a.close()
        with pytest.raises(capnp.KjException) as info:
            await counter.get()
        return str(info.value.type)

    assert rpc.run_async(main, None) == "DISCONNECTED"


def test_run_async_calls_before_inside_the_loops_then_main() -> None:
    seen: list[str] = []

    def before() -> None:
        asyncio.get_running_loop()  # raises if the asyncio loop is not made yet
        seen.append("before")

    async def main(ctx: str) -> str:
        seen.append(ctx)
        return "done"

    assert rpc.run_async(main, "main", before=before, schemas=[SCHEMA]) == "done"
    assert seen == ["before", "main"]


def test_serving_an_object_missing_a_method_is_refused() -> None:
    class Partial:
        async def get(self, **kwargs: object) -> int:
            return 0

    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:

        async def main(_: None) -> None:
            await rpc.serve(a.fileno(), SCHEMA, "Counter", Partial())

        with pytest.raises(rpc.RpcError, match="does not implement increment"):
            rpc.run_async(main, None)


@pytest.mark.parametrize(
    ("schema", "name", "message"),
    [
        (SCHEMA, "Nope", "has no interface Nope"),
        (Path("/nonexistent/x.capnp"), "Counter", "cannot load schema"),
    ],
)
def test_unknown_schema_or_interface_is_an_rpc_error(schema: Path, name: str, message: str) -> None:
    with pytest.raises(rpc.RpcError, match=message):
        rpc.interface(schema, name)


def test_schema_is_loaded_once_per_process() -> None:
    assert rpc.load_schema(SCHEMA) is rpc.load_schema(str(SCHEMA))


def test_a_non_socket_fd_is_an_rpc_error(tmp_path: Path) -> None:
    with open(tmp_path / "f", "w") as f:

        async def main(_: None) -> None:
            await rpc.connect(f.fileno(), SCHEMA, "Counter")

        with pytest.raises(rpc.RpcError, match="not a socket"):
            rpc.run_async(main, None)


def test_public_api_of_rpc() -> None:
    assert sorted(rpc.__all__) == [
        "RpcError",
        "connect",
        "interface",
        "load_schema",
        "run_async",
        "serve",
    ]


_BUSY_COMPONENT = """
import asyncio, socket, sys
from privsep import rpc

class Impl:
    value = 0
    async def increment(self, by, **kwargs):
        self.value += by
        return self.value
    async def get(self, **kwargs):
        return self.value

async def main(_):
    a, b = socket.socketpair()
    asyncio.ensure_future(rpc.serve(a.detach(), sys.argv[1], "Counter", Impl()))
    counter = await rpc.connect(b.detach(), sys.argv[1], "Counter")
    await counter.increment(by=1)
    print("ready", flush=True)
    try:
        while True:  # RPC traffic in flight when the signal lands
            await counter.increment(by=1)
    finally:
        print("cleanup", flush=True)

rpc.run_async(main, None)
"""


@pytest.mark.parametrize(
    ("signum", "delay"),
    [(signal.SIGTERM, 0.0), (signal.SIGTERM, 0.01), (signal.SIGTERM, 0.03), (signal.SIGINT, 0.02)],
)
def test_stop_signal_cancels_main_and_exits_zero_without_hanging(signum: int, delay: float) -> None:
    # Raising from a plain signal handler inside the KJ loop hangs it now and
    # then at shutdown; run_async must turn the signal into a clean cancel.
    with subprocess.Popen(
        [sys.executable, "-c", _BUSY_COMPONENT, str(SCHEMA)],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        time.sleep(delay)  # land the signal at different points of the traffic
        proc.send_signal(signum)
        try:
            assert proc.wait(10) == 0
        finally:
            proc.kill()
        assert proc.stdout.read() == "cleanup\n"
