"""Start by fork: code preloading in the supervisor, and the layout parsed in a forked child.

Each check runs in a fresh interpreter (`_python`), so that what the pytest process
already imported cannot make a module look preloaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

COUNTER = Path(__file__).parents[2] / "examples" / "counter" / "layout.yaml"

TWO_MAINS = """\
service: twins
processes:
  first:
    entry: twin.main:main
    code: a
  second:
    entry: twin.main:main
    code: b
"""


def _python(code: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    answer: dict[str, object] = json.loads(result.stdout.splitlines()[-1])
    return answer


def test_preload_imports_each_process_code_and_schemas(tmp_path: Path) -> None:
    answer = _python(
        f"""
        import json, sys
        from privsep.layout import load_layout
        from privsep.component._runner import preload
        from privsep.rpc import _schema
        layout = load_layout({str(COUNTER)!r})
        before = "counter.server" in sys.modules
        base = list(sys.path)
        problems = preload(layout)
        print(json.dumps({{"before": before, "problems": problems,
            "server": "counter.server" in sys.modules, "client": "counter.client" in sys.modules,
            "schemas": len(_schema._cache), "path_restored": sys.path == base}}))
        """
    )
    assert answer == {
        "before": False,
        "problems": [],
        "server": True,
        "client": True,
        "schemas": 1,
        "path_restored": True,
    }


def test_preload_leaves_a_same_named_module_of_another_process_alone(tmp_path: Path) -> None:
    for sub, value in (("a", "first"), ("b", "second")):
        package = tmp_path / sub / "twin"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "main.py").write_text(f"WHO = {value!r}\ndef main(ctx):\n    pass\n")
    (tmp_path / "layout.yaml").write_text(TWO_MAINS)
    answer = _python(
        f"""
        import json, sys
        from privsep.layout import load_layout
        from privsep.component._runner import preload
        base = list(sys.path)
        problems = preload(load_layout({str(tmp_path / "layout.yaml")!r}))
        print(json.dumps({{"problems": problems, "who": sys.modules["twin.main"].WHO,
            "path_restored": sys.path == base}}))
        """
    )
    # The second process imports its own twin.main after the fork, never the first's.
    assert answer == {
        "problems": [["second", "twin.main: another process's module"]],
        "who": "first",
        "path_restored": True,
    }


def test_preload_reports_an_import_failure_instead_of_raising(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "broken.py").write_text("raise RuntimeError('boom at import')\n")
    (tmp_path / "layout.yaml").write_text(
        "service: broken\nprocesses:\n  only:\n    entry: broken:main\n    code: code\n"
    )
    answer = _python(
        f"""
        import json
        from privsep.layout import load_layout
        from privsep.component._runner import preload
        print(json.dumps({{"problems": preload(load_layout({str(tmp_path / "layout.yaml")!r}))}}))
        """
    )
    assert answer == {"problems": [["only", "RuntimeError: boom at import"]]}


def test_background_parse_returns_the_same_layout_without_yaml_in_the_parent() -> None:
    answer = _python(
        f"""
        import json, sys
        from privsep.layout import _background
        pending = _background.start({str(COUNTER)!r}, {{"increments": "7"}})
        layout = pending.result()
        yaml_here = "yaml" in sys.modules
        from privsep.layout import load_layout
        same = layout == load_layout({str(COUNTER)!r}, {{"increments": "7"}})
        print(json.dumps({{"yaml_in_parent": yaml_here, "same": same,
            "increments": dict(layout.values)["increments"]}}))
        """
    )
    assert answer == {"yaml_in_parent": False, "same": True, "increments": "7"}


def test_background_parse_raises_the_parser_problems(tmp_path: Path) -> None:
    from privsep._errors import LayoutError
    from privsep.layout import _background, load_layout

    bad = tmp_path / "bad.yaml"
    bad.write_text("service: x\nprocesses:\n  p:\n    entry: nope\n")
    with pytest.raises(LayoutError) as direct:
        load_layout(bad)
    with pytest.raises(LayoutError) as background:
        _background.start(bad).result()
    assert background.value.problems == direct.value.problems
    assert background.value.problems  # at least one file:line problem


def test_spawn_falls_back_to_exec_while_another_thread_runs(tmp_path: Path) -> None:
    # A fork would copy the other thread's locks mid-use; `spawn(fork=True)` must exec.
    # The probe tells the two apart by a module only the spawning process imported.
    probes = Path(__file__).parents[1] / "sandbox" / "layouts" / "probes.yaml"
    script = tmp_path / "probe.py"
    script.write_text("import sys\nprint('tomllib' in sys.modules)\n")
    answer = _python(
        f"""
        import json, os, sys, threading, tomllib
        from privsep._cli import main

        def forked():
            # The sandboxed process writes to fd 1: read it back through a pipe.
            r, w = os.pipe()
            saved = os.dup(1)
            os.dup2(w, 1)
            try:
                code = main(["probe", {str(probes)!r}, "plain", {str(script)!r}, "--fork"])
            finally:
                sys.stdout.flush()
                os.dup2(saved, 1)
                os.close(w)
            return code, os.read(r, 100).decode().strip()

        alone = forked()
        stop = threading.Event()
        worker = threading.Thread(target=stop.wait)
        worker.start()
        try:
            with_thread = forked()
        finally:
            stop.set()
            worker.join()
        print(json.dumps({{"alone": alone, "with_thread": with_thread}}))
        """
    )
    assert answer == {"alone": [0, "True"], "with_thread": [0, "False"]}


def test_a_just_joined_thread_does_not_force_exec() -> None:
    # The netns helper thread of open_resources is joined right before each spawn; the
    # kernel may list it for a moment longer. Seen here: ~0.5% of joins without the retry.
    answer = _python(
        """
        import json, threading
        from privsep.sandbox._spawn import _single_threaded
        misses = 0
        for _ in range(500):
            worker = threading.Thread(target=lambda: None)
            worker.start()
            worker.join()
            misses += not _single_threaded()
        print(json.dumps({"misses": misses}))
        """
    )
    assert answer == {"misses": 0}


# Scans the probe's own readable anonymous memory, heap and stack for the secret,
# without copying any of it (a copy would be a hit of its own). The needle is built at
# run time from its reverse, so the script's text does not contain it.
MEMORY_SCAN = """\
import ctypes, re
needle = bytes(reversed(b"%s"))
pattern = re.compile(needle)
own = id(needle) + bytes.__basicsize__ - 1
hits = set()
for line in open("/proc/self/maps").read().splitlines():
    fields = line.split()
    name = fields[5] if len(fields) > 5 else ""
    if not fields[1].startswith("r") or name not in ("", "[heap]", "[stack]"):
        continue
    lo, hi = (int(x, 16) for x in fields[0].split("-"))
    view = memoryview((ctypes.c_char * (hi - lo)).from_address(lo))
    for match in pattern.finditer(view):
        if lo + match.start() != own:
            hits.add(name or "anonymous")
print(sorted(hits))
"""


@pytest.mark.parametrize("mode", ["exec", "fork"])
def test_the_callers_environment_is_not_in_the_components_memory(tmp_path: Path, mode: str) -> None:
    # A fork copies the supervisor's memory: its environment, on the initial stack and
    # in os.environ, must be overwritten before the component runs (an exec drops it).
    token = "S3cretT0kenForPrivsepTest"
    script = tmp_path / "scan.py"
    script.write_text(MEMORY_SCAN % token[::-1])
    probes = Path(__file__).parents[1] / "sandbox" / "layouts" / "probes.yaml"
    privsep = Path(sys.executable).with_name("privsep")
    argv = [str(privsep), "probe", str(probes), "plain", str(script)]
    env = {**os.environ, "PRIVSEP_TEST_API_KEY": token}
    result = subprocess.run(
        [*argv, *(["--fork"] if mode == "fork" else [])],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]"
