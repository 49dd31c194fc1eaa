"""Peak memory of ``lorsa fit`` on a 3-million-row CSV, as a multiple of the size of X (issue 16).

    python benchmarks/cli_memory.py                 # N = 3,000,000 rows, d = 20; writes benchmarks/cli_memory.json
    python benchmarks/cli_memory.py --rows 200000   # smaller

Protocol. Two CSV files of N rows (a task column, d features, a target) are written: rows grouped by task with
equal task sizes (100 rows), and the same sizes of task shuffled across the file with ragged sizes (20 to 180
rows). Each command runs in its own process, BLAS pinned to one thread, and its peak resident memory is the
``VmHWM`` of ``/proc/self/status`` read by the process itself at exit (``ru_maxrss`` from ``wait4`` would not do:
it keeps the high-water mark of the parent's pages at ``fork``, before ``exec``, and this script's parent holds
the generated data). The memory *of the fit* is that peak minus the peak of the same command on a 1,000-row
file with the same columns (interpreter, numpy/pandas/pyarrow, compiled kernels), and is reported as a multiple of
``X.nbytes = N d 8`` bytes. The reference is the Python API in the same run: ``np.load`` of X, y and the tasks,
then ``LRSRegressor.fit`` (its peak, minus the peak of the same script on 1,000 rows, includes X itself as the
CLI's does).
"""

from __future__ import annotations

import argparse
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
FIT = ["--task-column", "task", "--target-column", "y", "--rank", "2", "--sparsity", "2", "--max-iter", "3",
       "--quiet"]
API = """
import sys, numpy as np
from lorsa import LRSRegressor
X, y, tasks = (np.load(sys.argv[2] + name, allow_pickle=False) for name in ("_X.npy", "_y.npy", "_t.npy"))
LRSRegressor(rank=2, sparsity=2, max_iter=3).fit(X, y, tasks=tasks)
"""


_WRAP = """
import sys
def _hwm():
    with open("/proc/self/status") as fh:
        kib = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM"))
    with open(report, "w") as out:
        out.write(str(kib))
report, kind, args = sys.argv[1], sys.argv[2], sys.argv[3:]
if kind == "cli":
    from lorsa.cli import main
    code = main(args)
else:
    sys.argv = ["api", *args]
    exec(compile(args[0], "api", "exec"), {"__name__": "__main__"})
    code = 0
_hwm()
sys.exit(code)
"""


def _peak_mib(kind: str, args: list[str], folder: Path) -> tuple[float, float]:
    """Peak resident memory (MiB, VmHWM of the process after exec) and wall time (s) of a CLI or API run."""
    report = folder / "hwm.txt"
    report.unlink(missing_ok=True)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _WRAP, str(report), kind, *args],
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if done.returncode != 0:
        raise SystemExit(f"{kind} {args[:3]} failed with status {done.returncode}")
    return int(report.read_text()) / 1024, time.perf_counter() - start


def _data(n_rows: int, d: int, layout: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if layout == "grouped":
        sizes = np.full(n_rows // 100, 100)
    else:
        sizes = rng.integers(20, 181, size=n_rows // 100 + 1000)
        sizes = sizes[: np.searchsorted(np.cumsum(sizes), n_rows) + 1]
        sizes[-1] -= sizes.sum() - n_rows
    tasks = np.repeat(np.arange(sizes.size), sizes)
    if layout != "grouped":
        tasks = tasks[rng.permutation(tasks.size)]
    X = rng.standard_normal((tasks.size, d))
    U = np.linalg.qr(rng.standard_normal((d, 2)))[0]
    W = rng.standard_normal((sizes.size, 2))
    y = np.einsum("nd,nd->n", X, (W @ U.T)[tasks]) + 0.1 * rng.standard_normal(tasks.size)
    return X, y, tasks


def _write(folder: Path, name: str, X: np.ndarray, y: np.ndarray, tasks: np.ndarray) -> Path:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    columns = {"task": pa.array(np.char.add("user", tasks.astype(str)))}
    columns.update({f"x_{j}": pa.array(X[:, j]) for j in range(X.shape[1])})
    columns["y"] = pa.array(y)
    path = folder / f"{name}.csv"
    pcsv.write_csv(pa.table(columns), path)
    base = str(folder / name)
    np.save(base + "_X.npy", X)
    np.save(base + "_y.npy", y)
    np.save(base + "_t.npy", np.char.add("user", tasks.astype(str)))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--out", type=Path, default=HERE / "cli_memory.json")
    args = parser.parse_args()
    results: dict[str, object] = {"rows": args.rows, "features": args.features}
    with tempfile.TemporaryDirectory(prefix="lorsa-cli-memory-") as tmp:
        folder = Path(tmp)
        small = _write(folder, "small", *_data(1000, args.features, "grouped"))
        cli_base, _ = _peak_mib("cli", ["fit", str(small), "-o", str(folder / "small.npz"), *FIT], folder)
        api_base, _ = _peak_mib("api", [API, str(folder / "small")], folder)
        results["baseline_mib"] = {"cli": round(cli_base, 1), "api": round(api_base, 1)}
        for layout in ("grouped", "shuffled-ragged"):
            X, y, tasks = _data(args.rows, args.features, layout)
            x_mib = X.nbytes / 2**20
            path = _write(folder, layout, X, y, tasks)
            del X, y, tasks
            cli, cli_s = _peak_mib("cli", ["fit", str(path), "-o", str(folder / f"{layout}.npz"), *FIT], folder)
            api, api_s = _peak_mib("api", [API, str(folder / layout)], folder)
            results[layout] = {
                "X_mib": round(x_mib, 1), "csv_mib": round(path.stat().st_size / 2**20, 1),
                "cli_peak_mib": round(cli, 1), "cli_seconds": round(cli_s, 1),
                "cli_ratio_to_X": round((cli - cli_base) / x_mib, 3),
                "api_peak_mib": round(api, 1), "api_seconds": round(api_s, 1),
                "api_ratio_to_X": round((api - api_base) / x_mib, 3),
            }
            print(layout, json.dumps(results[layout]), flush=True)
            for leftover in folder.glob(f"{layout}*"):
                leftover.unlink()
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
