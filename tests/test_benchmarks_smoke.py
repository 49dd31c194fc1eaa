"""The benchmark suite runs end to end on its tiny setting (timings are not asserted: they live in BENCHMARKS.md)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quick_suite(tmp_path_factory) -> Path:
    """One full ``--quick`` run, shared by the tests below (it takes most of a minute)."""
    folder = tmp_path_factory.mktemp("bench")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--out", str(folder)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return folder


def test_benchmark_suite_quick(quick_suite):
    report = (quick_suite / "BENCHMARKS.md").read_text()
    for heading in ("## a.", "## b.", "## c.", "## d.", "## e."):
        assert heading in report
    data = json.loads((quick_suite / "benchmarks.json").read_text())
    # the suite's own correctness checks: lorsa is at least as accurate as the reference after the same iterations
    ref = data["reference"]
    for run in ref["lorsa"].values():  # every engine and thread count: no worse than the reference
        if run["solver"] == "sp":
            assert run["error"] <= ref["reference_error"]
    assert data["million"]["error"] <= 1e-4
    assert (quick_suite / "docs" / "benchmark_scaling.png").stat().st_size > 1000


def test_benchmark_sections_rerun_one_and_keep_the_others(quick_suite, tmp_path):
    """``--sections a`` measures a/b again and keeps c and d/e from the benchmarks.json already there; with no
    earlier results, or with full results in a --quick rerun, it refuses with a message naming what is missing."""
    run = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--out", str(tmp_path)]
    refused = subprocess.run([*run, "--quick", "--sections", "a"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "c, d/e" in refused.stderr and "does not exist" in refused.stderr
    shutil.copytree(quick_suite, tmp_path, dirs_exist_ok=True)  # the full --quick run's files
    before = json.loads((tmp_path / "benchmarks.json").read_text())
    again = subprocess.run([*run, "--quick", "--sections", "a"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    after = json.loads((tmp_path / "benchmarks.json").read_text())
    assert after["scaling"] == before["scaling"] and after["million"] == before["million"]
    assert after["reference"]["reference_times"] != before["reference"]["reference_times"]  # measured again
    assert "--sections a" in (tmp_path / "BENCHMARKS.md").read_text()
    mixed = subprocess.run([*run, "--sections", "a"], capture_output=True, text=True, timeout=120)
    assert mixed.returncode == 2 and "cannot be mixed" in mixed.stderr
