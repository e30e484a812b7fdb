"""A short, bounded run of the atheris harness fuzz/fuzz_codec.py on the seed corpus.

Longer campaigns are run by hand (fuzz/README.md); this proves the harness works
and that the captured seeds plus 20,000 mutations break no rule.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "fuzz" / "fuzz_codec.py"
SEEDS = ROOT / "fuzz" / "corpus" / "codec"


def test_seed_corpus_holds_the_captures() -> None:
    seeds = {p.name for p in SEEDS.iterdir()}
    assert "dnsmasq-04-ack.msg" in seeds
    assert "kea-06-nak.frame" in seeds
    assert len(seeds) >= 80


def test_fuzz_harness_runs_20000_inputs_clean(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    new_units = tmp_path / "corpus"  # libFuzzer writes into the first dir only
    new_units.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            "-runs=20000",
            "-seed=1",
            f"-artifact_prefix={tmp_path}/",
            str(new_units),
            str(SEEDS),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done 20000 runs" in result.stderr
    assert not list(tmp_path.glob("crash-*"))
