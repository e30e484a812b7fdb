"""The name tables the layout validator relies on, checked against the running system."""

from __future__ import annotations

from pathlib import Path

import pytest

from privsep.layout import Seccomp
from privsep.sandbox import _landlock
from privsep.sandbox._caps import CAPABILITIES, last_cap, mask
from privsep.sandbox._profiles import (
    DEGRADATIONS,
    DENIED,
    PROFILES,
    resolve_allowlist,
    resolve_denylist,
)
from privsep.sandbox._seccomp import syscall_number


def test_capability_table_covers_the_running_kernel() -> None:
    assert sorted(CAPABILITIES.values()) == list(range(41))
    assert last_cap() <= max(CAPABILITIES.values())
    assert CAPABILITIES["CAP_NET_ADMIN"] == 12
    assert mask(["CAP_NET_ADMIN", "CAP_NET_RAW"]) == 0x3000


def test_every_profile_and_denied_syscall_is_known_here() -> None:
    names = set(DENIED).union(*PROFILES.values())
    assert [name for name in sorted(names) if syscall_number(name) is None] == []


def test_syscall_number_rejects_unknown_and_odd_names() -> None:
    assert syscall_number("read") is not None
    assert syscall_number("no_such_syscall") is None
    assert syscall_number("") is None
    assert syscall_number("../read") is None


def test_default_profile_holds_nothing_denied() -> None:
    assert PROFILES["default"] & DENIED == frozenset()
    assert PROFILES["none"] == frozenset()
    for dangerous in ("socket", "execve", "ptrace", "mount", "setns", "unshare", "bpf"):
        assert dangerous not in PROFILES["default"]


def test_clone3_is_left_to_enosys_so_glibc_falls_back() -> None:
    assert "clone3" not in PROFILES["default"]
    assert "clone3" not in DENIED


def test_allow_and_deny_adjust_the_base_profile() -> None:
    policy = Seccomp(profile="default", allow=("socket",), deny=("getpid",))
    allowed = resolve_allowlist(policy)
    assert "socket" in allowed and "getpid" not in allowed
    denied = resolve_denylist(policy)
    assert "getpid" in denied and "socket" not in denied


def test_named_degradations() -> None:
    assert {"no-landlock", "no-cgroup-limits", "no-user-namespace", "landlock-abi-below-4"} <= (
        DEGRADATIONS
    )


def test_landlock_rights_map_to_access_bits() -> None:
    assert _landlock.access_mask(["read"]) == _landlock.READ_FILE | _landlock.READ_DIR
    assert _landlock.access_mask(["execute"]) == _landlock.EXECUTE
    with pytest.raises(KeyError):
        _landlock.access_mask(["fly"])
    assert _landlock.handled_fs(0) == 0
    assert _landlock.handled_fs(1) == 0x1FFF
    assert _landlock.handled_fs(5) & _landlock.IOCTL_DEV
    assert _landlock.handled_net(3, frozenset()) == 0
    assert _landlock.handled_net(4, frozenset({"connect"})) == _landlock.NET_BIND_TCP


def test_docs_list_every_degradation() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "sandbox.md").read_text()
    for name in DEGRADATIONS:
        assert f"`{name}`" in docs
