"""The benchmark suite runs end to end on its tiny setting (timings are not asserted: they live in BENCHMARKS.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_suite_quick(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    report = (tmp_path / "BENCHMARKS.md").read_text()
    for heading in ("## a.", "## b.", "## c.", "## d.", "## e."):
        assert heading in report
    data = json.loads((tmp_path / "benchmarks.json").read_text())
    # the suite's own correctness checks: lorsa is at least as accurate as the reference after the same iterations
    ref = data["reference"]
    for run in ref["lorsa"].values():  # every engine and thread count: no worse than the reference
        if run["solver"] == "sp":
            assert run["error"] <= ref["reference_error"]
    assert data["million"]["error"] <= 1e-4
    assert (tmp_path / "docs" / "benchmark_scaling.png").stat().st_size > 1000


def test_benchmark_sections_rerun_one_and_keep_the_others(tmp_path):
    """``--sections a`` measures a/b again and keeps c and d/e from the benchmarks.json already there; with no
    earlier results, or with full results in a --quick rerun, it refuses with a message naming what is missing."""
    run = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--out", str(tmp_path)]
    refused = subprocess.run([*run, "--quick", "--sections", "a"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "c, d/e" in refused.stderr and "does not exist" in refused.stderr
    first = subprocess.run([*run, "--quick"], capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    before = json.loads((tmp_path / "benchmarks.json").read_text())
    again = subprocess.run([*run, "--quick", "--sections", "a"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    after = json.loads((tmp_path / "benchmarks.json").read_text())
    assert after["scaling"] == before["scaling"] and after["million"] == before["million"]
    assert after["reference"]["reference_times"] != before["reference"]["reference_times"]  # measured again
    assert "--sections a" in (tmp_path / "BENCHMARKS.md").read_text()
    mixed = subprocess.run([*run, "--sections", "a"], capture_output=True, text=True, timeout=120)
    assert mixed.returncode == 2 and "cannot be mixed" in mixed.stderr
