"""Pins the public API of the facade: changing it must be a deliberate act."""

import privsep


def test_top_level_exports() -> None:
    assert sorted(privsep.__all__) == [
        "LayoutError",
        "MalformedPacket",
        "PrivsepError",
        "__version__",
    ]


def test_errors_share_one_root() -> None:
    assert issubclass(privsep.LayoutError, privsep.PrivsepError)
    assert issubclass(privsep.MalformedPacket, privsep.PrivsepError)
    assert issubclass(privsep.MalformedPacket, ValueError)


def test_dhcp_facade_exports_resolve() -> None:
    from privsep.services import dhcp

    for name in dhcp.__all__:
        assert getattr(dhcp, name) is not None, name
    assert {"Client", "ClientConfig", "Lease", "Message", "decode_message", "Actuator"} <= set(
        dhcp.__all__
    )


def test_dhcp_engine_import_does_not_pull_in_the_actuator() -> None:
    import subprocess
    import sys

    code = (
        "import sys, privsep.services.dhcp._engine; "
        "print('asyncio' in sys.modules, 'privsep.services.dhcp._actuator' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_sdk_facades() -> None:
    import privsep.component
    import privsep.sandbox

    assert sorted(privsep.sandbox.__all__) == ["SandboxError", "Sandboxed", "spawn"]
    assert privsep.component.__all__ == ["Context"]
