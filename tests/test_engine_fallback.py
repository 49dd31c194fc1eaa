"""engine="auto" survives a numba that cannot cache or a compiled kernel that cannot load (issue 16, item 4)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import pytest

pytest.importorskip("numba")


def test_numba_without_a_cache_location_compiles_uncached_with_a_warning():
    """A read-only installation without a writable cache folder: numba has no cache locator and refuses
    cache=True ("cannot cache function ... no locator available"); lorsa compiles without the cache instead."""
    code = textwrap.dedent("""
        import warnings
        import numba.core.caching as caching
        caching.CacheImpl._locator_classes = []   # what numba finds in a read-only install without a writable HOME
        import numpy as np
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            from lorsa.model import _resolve_engine
            engine = _resolve_engine("auto")
            from lorsa.solvers.compiled_pursuit import dot
        print(engine, float(dot(np.arange(3.0), np.arange(3.0))))
        print(" | ".join(str(w.message) for w in caught))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()[:2]
    assert first == "numba 5.0"  # still the compiled engine, and it computes
    assert "numba cannot cache lorsa's compiled kernels here" in second and "NUMBA_CACHE_DIR" in second
    assert second.count("numba cannot cache") == 1  # one warning, not one per kernel


def test_auto_falls_back_to_numpy_when_the_kernels_cannot_load(monkeypatch):
    from lorsa.model import _resolve_engine

    monkeypatch.setitem(sys.modules, "lorsa.solvers.gram_pass_compiled", None)  # any import failure
    with pytest.warns(RuntimeWarning, match="engine='auto' uses the numpy engine"):
        assert _resolve_engine("auto") == "numpy"
    with pytest.raises(ImportError, match="compiled kernels cannot be loaded"):
        _resolve_engine("numba")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _resolve_engine("numpy") == "numpy"
