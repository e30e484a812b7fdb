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
