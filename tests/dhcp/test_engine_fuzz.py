"""The atheris harness runs (bounded) over its seed corpus and finds nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "fuzz" / "fuzz_engine.py"
CORPUS = ROOT / "fuzz" / "corpus" / "engine"


def test_seed_corpus_is_what_the_harness_generates(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(HARNESS), "--make-corpus", str(tmp_path)], check=True, timeout=60
    )
    fresh = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    committed = {p.name: p.read_bytes() for p in CORPUS.iterdir()}
    assert fresh == committed


def test_fuzz_engine_runs_clean(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)  # libFuzzer adds to its corpus: keep the seeds pristine
    result = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            "-runs=3000",
            "-max_total_time=20",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done 3000 runs" in result.stderr or "Done" in result.stderr
