"""The README's Python examples run as written (no undefined names)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(section: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {section}\n")
    end = text.index("\n## ", start + 1)
    return re.search(r"```python\n(.*?)```", text[start:end], re.S).group(1)


def test_quickstart_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # it saves model.npz in the working directory
    namespace: dict = {}
    exec(compile(_block("Quickstart"), "README Quickstart", "exec"), namespace)
    assert (tmp_path / "model.npz").exists()
    assert namespace["est"].score(namespace["P"].X, namespace["P"].y, tasks=namespace["P"].tasks) > 0.999
