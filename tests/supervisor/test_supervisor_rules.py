"""The supervisor's pure parts: output lines, restart decisions, restart groups."""

from __future__ import annotations

import errno
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from privsep import supervisor
from privsep._cli import main as cli_main
from privsep.layout._model import Channel, Layout, Process, Restart
from privsep.supervisor import Handle, Supervisor
from privsep.supervisor._lines import LineSplitter, json_object, render
from privsep.supervisor._policy import backoff, decide, restart_groups


def test_splitter_yields_lines_across_chunks_and_the_tail_at_close() -> None:
    splitter = LineSplitter(max_line=10)
    assert splitter.feed(b"ab") == []
    assert splitter.feed(b"c\nde\n\nf") == [(b"abc", False), (b"de", False), (b"", False)]
    assert splitter.close() == [(b"f", False)]
    assert splitter.close() == []


def test_splitter_caps_a_long_line_and_drops_its_tail() -> None:
    splitter = LineSplitter(max_line=4)
    assert splitter.feed(b"123") == []
    assert splitter.feed(b"456789") == [(b"1234", True)]
    assert splitter.feed(b"abc\nok\n") == [(b"ok", False)]


@given(st.lists(st.binary(max_size=40), max_size=20), st.integers(1, 16))
def test_splitter_never_emits_more_than_the_cap_and_loses_no_short_line(
    chunks: list[bytes], cap: int
) -> None:
    splitter = LineSplitter(max_line=cap)
    out = [line for chunk in chunks for line in splitter.feed(chunk)] + splitter.close()
    assert all(len(line) <= cap for line, _ in out)
    whole = b"".join(chunks).split(b"\n")
    if whole[-1] == b"":
        whole.pop()
    assert [line for line, cut in out if not cut] == [line for line in whole if len(line) <= cap]


_DEEP = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def _now() -> float:
    return 12.5


@pytest.mark.parametrize(
    ("line", "truncated", "expected"),
    [
        (b'{"event":"x","process":"other"}', False, {"event": "x", "process": "p"}),
        (b"hello", False, {"event": "stderr", "line": "hello"}),
        (b"[1]", False, {"event": "stderr", "line": "[1]"}),
        (b'{"event":', False, {"event": "stderr", "line": '{"event":'}),
        (b'{"event":"x"}', True, {"event": "stderr", "line": '{"event":"x"}', "truncated": True}),
        (_DEEP, False, {"event": "stderr", "line": _DEEP.decode()}),  # RecursionError, caught
        (b"\xff", False, {"event": "stderr", "line": "\ufffd"}),
    ],
)
def test_render_passes_json_objects_through_and_wraps_the_rest(
    line: bytes, truncated: bool, expected: dict[str, object]
) -> None:
    entry = json.loads(render("p", line, truncated, now=_now))
    assert entry["process"] == "p"
    assert {k: v for k, v in entry.items() if k not in ("ts", "level", "process")} == {
        k: v for k, v in expected.items() if k != "process"
    }


@pytest.mark.parametrize(
    ("line", "truncated"),
    [
        (b"hello", False),
        (b"[1]", False),
        (b'{"event":', False),
        (b'{"a":1}', True),
        (_DEEP, False),
        # Python's json takes these; jq and other readers of the log would not.
        (b'{"x":NaN}', False),
        (b'{"x":-Infinity}', False),
        (b'{"x":1e999}', False),
        (b'{"x":"\\ud800"}', False),
    ],
)
def test_json_object_is_none_for_anything_but_a_whole_json_object(
    line: bytes, truncated: bool
) -> None:
    # What on_event callbacks see: a child's JSON object, never a wrapped stderr line.
    assert json_object(line, truncated) is None


def test_a_line_that_is_not_strict_json_is_wrapped_as_text() -> None:
    entry = json.loads(render("p", b'{"x":"\\ud800","y":NaN}', False, now=_now))
    assert entry["event"] == "stderr"
    assert entry["line"] == '{"x":"\\ud800","y":NaN}'


def test_json_object_returns_the_object_as_the_child_wrote_it() -> None:
    assert json_object(b'{"event":"lease-applied","process":"x"}', False) == {
        "event": "lease-applied",
        "process": "x",
    }


@pytest.mark.parametrize(
    ("policy", "code", "spent", "decision"),
    [
        ("on-failure", 0, 0, "done"),
        ("on-failure", 1, 0, "restart"),
        ("on-failure", -9, 4, "restart"),
        ("on-failure", -9, 5, "give-up"),
        ("always", 0, 0, "restart"),
        ("always", 0, 5, "give-up"),
        ("never", 0, 0, "done"),
        ("never", 1, 0, "give-up"),
    ],
)
def test_decide_follows_the_policy_and_the_budget(
    policy: str, code: int, spent: int, decision: str
) -> None:
    restart = Restart(policy=policy, max_restarts=5)  # type: ignore[arg-type]
    assert decide(restart, code, spent) == decision


def test_backoff_doubles_from_the_initial_delay_up_to_the_cap() -> None:
    restart = Restart(backoff_initial=0.1, backoff_max=1.0)
    assert [backoff(restart, n) for n in range(1, 7)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    )


def _process(name: str, *peers: str) -> Process:
    channels = tuple(
        Channel(
            name=f"{min(name, p)}-{max(name, p)}", peer=p, role="uses", schema="s", interface="I"
        )
        for p in peers
    )
    return Process(name=name, entry="m:f", channels=channels)


def test_restart_groups_are_the_processes_linked_by_channels_in_layout_order() -> None:
    processes = [
        _process("a", "c"),
        _process("b"),
        _process("c", "a", "d"),
        _process("d", "c"),
        _process("e", "f"),
        _process("f", "e"),
    ]
    assert restart_groups(processes) == [("a", "c", "d"), ("b",), ("e", "f")]


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, dict[str, object]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.events.append((record.getMessage(), getattr(record, "fields", {})))


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    """The supervisor's events, whatever other tests did to privsep's log configuration."""
    root = logging.getLogger("privsep")
    handler, level = _Recorder(), root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def _unstartable(process: Process, fds: object, **kwargs: object) -> Handle:
    raise OSError(errno.EAGAIN, "no more processes")


def _layout(*processes: Process) -> Layout:
    return Layout(service="t", path="/t.yaml", parameters=(), values=(), processes=processes)


def test_a_process_that_cannot_start_is_retried_then_given_up(recorder: _Recorder) -> None:
    restart = Restart(max_restarts=2, backoff_initial=0.001, backoff_max=0.002)
    layout = _layout(Process(name="p", entry="m:f", restart=restart))
    assert Supervisor(layout, spawn=_unstartable).run() == 1
    events = recorder.events
    names = [name for name, _ in events]
    assert names.count("start-failed") == 3
    assert [f["attempt"] for n, f in events if n == "restart"] == [1, 2]
    assert ("give-up", "p") in [(n, f.get("child")) for n, f in events]
    assert "no more processes" in str(next(f for n, f in events if n == "start-failed"))


def test_a_process_not_required_may_give_up_without_failing_the_supervisor(
    recorder: _Recorder,
) -> None:
    restart = Restart(policy="never")
    layout = _layout(Process(name="p", entry="m:f", restart=restart, required=False))
    assert Supervisor(layout, spawn=_unstartable).run() == 0
    give_up = next(f for n, f in recorder.events if n == "give-up")
    assert give_up["required"] is False


def test_public_api_of_the_supervisor() -> None:
    assert sorted(supervisor.__all__) == ["Handle", "Spawner", "Supervisor"]


@pytest.mark.parametrize(
    ("text", "extra", "message"),
    [
        ("service: x\nprocesses:\n  a:\n    entry: m:f\n    bogus: 1\n", [], ":5: "),
        ("service: x\nprocesses:\n  a:\n    entry: m:f\n", ["--set", "nope=1"], "nope"),
    ],
)
def test_run_rejects_a_bad_layout_or_override_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, extra: list[str], message: str
) -> None:
    layout = tmp_path / "layout.yaml"
    layout.write_text(text)
    assert cli_main(["run", str(layout), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
