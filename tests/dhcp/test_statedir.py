"""The state directory: atomic records, strict permissions, corrupt files set aside."""

from __future__ import annotations

from pathlib import Path

import pytest

from privsep.services.dhcp._statedir import (
    MAX_RECORD,
    StateDir,
    StateDirError,
    decode_record,
    encode_record,
)


def test_round_trip_and_permissions(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    state.save("lease", b"\x00binary\xff")
    assert state.load("lease") == b"\x00binary\xff"
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "state" / "lease").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["lease"]


def test_missing_record_is_none_and_remove_is_idempotent(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    assert state.load("lease") is None
    state.save("lease", b"x")
    state.remove("lease")
    state.remove("lease")
    assert state.load("lease") is None


def test_existing_loose_directory_is_tightened(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    directory.mkdir(mode=0o755)
    StateDir(directory)
    assert directory.stat().st_mode & 0o777 == 0o700


def test_data_survives_a_new_instance(tmp_path: Path) -> None:
    StateDir(tmp_path).save("applied", b"{}")
    assert StateDir(tmp_path).load("applied") == b"{}"


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:-1],  # truncated payload
        lambda b: b[:10],  # truncated header
        lambda b: b + b"x",  # trailing junk
        lambda b: b[:-1] + bytes([b[-1] ^ 1]),  # flipped bit
        lambda b: b"",  # empty
        lambda b: b"not a record at all",
    ],
    ids=["truncated", "short-header", "trailing", "bit-flip", "empty", "garbage"],
)
def test_corrupt_record_reads_as_absent_and_is_set_aside(tmp_path: Path, damage: object) -> None:
    state = StateDir(tmp_path)
    state.save("lease", b"payload")
    path = tmp_path / "lease"
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    assert state.load("lease") is None
    assert not path.exists()
    assert (tmp_path / "lease.corrupt").exists()
    state.save("lease", b"again")
    assert state.load("lease") == b"again"


def test_symlink_record_is_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(encode_record(b"not yours"))
    state = StateDir(tmp_path / "state")
    (tmp_path / "state" / "lease").symlink_to(secret)
    assert state.load("lease") is None
    assert secret.exists()


def test_oversized_record_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StateDirError, match="over"):
        StateDir(tmp_path).save("lease", b"x" * (MAX_RECORD + 1))


@pytest.mark.parametrize("name", ["../escape", "a/b", "", "UPPER", ".hidden", "x" * 40])
def test_record_names_are_restricted(tmp_path: Path, name: str) -> None:
    with pytest.raises(StateDirError, match="bad record name"):
        StateDir(tmp_path).save(name, b"x")


def test_not_a_directory_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StateDirError):
        StateDir(tmp_path / "file")


def test_leftover_temp_files_are_cleaned(tmp_path: Path) -> None:
    (tmp_path / ".lease.abc123.tmp").write_bytes(b"half")
    StateDir(tmp_path)
    assert not (tmp_path / ".lease.abc123.tmp").exists()


def test_write_replaces_never_truncates_in_place(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    state.save("lease", b"old")
    inode = (tmp_path / "lease").stat().st_ino
    state.save("lease", b"new")
    assert (tmp_path / "lease").stat().st_ino != inode
    assert decode_record((tmp_path / "lease").read_bytes()) == b"new"
