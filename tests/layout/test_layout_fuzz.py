"""Whatever the file holds, the parser returns a Layout or raises LayoutError, nothing else.

And every problem is one `file:line: message` line with a line inside the file.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privsep.layout import LayoutError, load_layout

KEYS = [
    "service", "parameters", "processes", "entry", "prepare", "command", "code", "user",
    "capabilities", "namespaces", "binds", "landlock", "seccomp", "rlimits", "memory", "pids",
    "fds", "channels", "restart", "required", "environment", "degrade", "net", "uid", "gid",
    "path", "mode", "access", "profile", "allow", "deny", "packet", "netlink", "listen",
    "connect", "file", "interface", "filter", "netns", "proto", "address", "port", "peer",
    "serves", "uses", "policy", "max_restarts", "backoff", "backoff_max", "default", "a", "b",
]  # fmt: skip
WORDS = [
    "m:main", "dynamic", "none", "host", "netns:x", "CAP_NET_RAW", "read", "rw", "tcp",
    "127.0.0.1", "dhcp-client", "route", "/etc/hosts", "${x}", "${a}", "c.capnp:C", "a", "b",
    "64M", "-1", "", "on-failure", "no-landlock", "$${", "netns:",
]  # fmt: skip

scalars = st.one_of(
    st.sampled_from(WORDS),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True),
    st.text(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    ),
    max_leaves=30,
)
documents = st.dictionaries(st.sampled_from(KEYS), values, max_size=4)

LINE = re.compile(r"(?P<path>.+?):(?P<line>\d+): (?P<message>\S.*)\Z")


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="privsep-fuzz-") as directory:
        yield Path(directory)


def check(path: Path, text: str) -> None:
    path.write_text(text)
    try:
        load_layout(path, {"x": "1"} if "parameters" in text else {})
    except LayoutError as exc:
        assert exc.problems
        lines = max(1, text.count("\n") + (not text.endswith("\n")))
        for problem in exc.problems:
            match = LINE.match(problem)
            assert match is not None, problem
            assert "\n" not in problem
            assert 1 <= int(match["line"]) <= lines, problem


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=documents)
def test_structured_documents_parse_or_raise_layout_error(workdir: Path, document: object) -> None:
    check(workdir / "layout.yaml", yaml.safe_dump(document))


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list(":-{}[],&*!|>'\"#%@` \n\tab0${}<")), max_size=60))
def test_arbitrary_text_parses_or_raises_layout_error(workdir: Path, text: str) -> None:
    check(workdir / "layout.yaml", text)


@settings(max_examples=100, deadline=None)
@given(
    process=st.dictionaries(st.sampled_from(KEYS), values, max_size=6),
)
def test_arbitrary_processes_parse_or_raise_layout_error(workdir: Path, process: object) -> None:
    document = {"service": "s", "parameters": {"x": "1"}, "processes": {"a": process}}
    check(workdir / "layout.yaml", yaml.safe_dump(document))
