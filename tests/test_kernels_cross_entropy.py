"""kernels.softmax_cross_entropy against the book's softmax + cross_entropy_error."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import book
import numpy as np
import pytest
import xpnet.kernels.cross_entropy as ce_module
from xpnet.kernels import DELTA, softmax_cross_entropy


def book_rows(logits, t):
    """The book's loss of each row alone (a batch of one), in float64."""
    y = book.softmax(logits.astype(np.float64))
    return np.array([book.cross_entropy_error(y[b : b + 1], t[b : b + 1]) for b in range(len(t))])


def book_backward(logits, t):
    """The book's backward of softmax + cross-entropy (TwoLayerNet.gradient's dy)."""
    y = book.softmax(logits.astype(np.float64))
    return (y - np.eye(logits.shape[1])[t]) / len(t)


def run(logits, t, want_grad=True):
    rows = np.empty(len(t))
    dlogits = np.empty_like(logits) if want_grad else None
    softmax_cross_entropy(logits, t, rows, dlogits)
    return rows, dlogits


def make(seed, batch, classes, dtype, scale=3.0):
    rng = np.random.default_rng(seed)
    logits = (scale * rng.standard_normal((batch, classes))).astype(dtype)
    return logits, rng.integers(0, classes, batch)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 100])
@pytest.mark.parametrize("scale", [3.0, 1000.0])
def test_matches_book(dtype, batch, scale):
    logits, t = make(batch + int(scale), batch, 10, dtype, scale)
    rows, dlogits = run(logits, t)
    assert dlogits.dtype == dtype
    # float32 logits are read exactly and the math is float64: only the output rounds
    np.testing.assert_allclose(rows, book_rows(logits, t), rtol=1e-13, atol=1e-13)
    expected = book.cross_entropy_error(book.softmax(logits.astype(np.float64)), t)
    assert rows.sum() / batch == pytest.approx(expected, rel=1e-13, abs=1e-13)
    atol = 1e-15 if dtype == np.float64 else 1e-7 / batch
    np.testing.assert_allclose(dlogits, book_backward(logits, t), rtol=0, atol=atol)
    rows_only, _ = run(logits, t, want_grad=False)
    np.testing.assert_array_equal(rows_only, rows)


def test_huge_logits_overflow_naive_softmax_but_not_this():
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0]])
    t = np.array([0, 1])
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert not np.isfinite(naive).all()
    rows, dlogits = run(logits, t)
    # sample 0 is right (log(1 + DELTA)), sample 1 is as wrong as DELTA allows
    assert DELTA == 1e-7
    np.testing.assert_allclose(rows, [-np.log(1 + 1e-7), -np.log(1e-7)], rtol=1e-14)
    np.testing.assert_allclose(dlogits, [[0, 0, 0], [0, -0.5, 0.5]], atol=1e-300)


def test_non_contiguous_logits():
    logits, t = make(9, 30, 20, np.float64)
    view = logits[:, ::2]
    np.testing.assert_allclose(run(view, t % 10)[0], book_rows(view, t % 10), rtol=1e-14)


def test_big_batches_run_in_parallel_with_the_same_bits(monkeypatch):
    logits, t = make(11, 4000, 10, np.float32)
    assert logits.size >= ce_module.PARALLEL_MIN_SIZE
    out = {}
    for name in ("_ce_parallel", "_ce_serial"):
        rows, dlogits = np.empty(len(t)), np.empty_like(logits)
        getattr(ce_module, name)(logits, t, rows, dlogits, True)
        out[name] = rows, dlogits
    np.testing.assert_array_equal(out["_ce_parallel"][0], out["_ce_serial"][0])
    np.testing.assert_array_equal(out["_ce_parallel"][1], out["_ce_serial"][1])
    np.testing.assert_allclose(out["_ce_parallel"][0], book_rows(logits, t), rtol=1e-13, atol=1e-15)

    # and the public function takes the parallel path for this size, the serial below it
    called = []
    for name in ("_ce_parallel", "_ce_serial"):
        kernel = getattr(ce_module, name)
        monkeypatch.setattr(ce_module, name,
                            lambda *a, name=name, kernel=kernel: called.append(name) or kernel(*a))
    rows, dlogits = run(logits, t)
    run(logits[:100], t[:100])
    assert called == ["_ce_parallel", "_ce_serial"]
    np.testing.assert_array_equal(rows, out["_ce_parallel"][0])
    np.testing.assert_array_equal(dlogits, out["_ce_parallel"][1])



def test_numba_caches_in_a_private_folder_when_it_can_write_nowhere(tmp_path) -> None:
    # A read-only install run with an unwritable home: /proc stands for both, since the
    # tests run as root, who can write anywhere else.
    from xpnet.kernels import fallback_cache_dir

    folder = fallback_cache_dir([Path("/proc/xpnet-install/__pycache__"),
                                 Path("/proc/nonexistent-home/.cache/numba")])
    assert folder is not None and str(folder).startswith(tempfile.gettempdir())
    assert fallback_cache_dir([Path("/proc/x"), tmp_path / "cache"]) is None
    assert (tmp_path / "cache").is_dir()


def test_kernels_import_and_run_with_numba_cache_dir_unset_and_home_unwritable() -> None:
    code = ("import numpy as np; from xpnet.kernels import softmax_cross_entropy as f;"
            "rows = np.empty(2); f(np.zeros((2, 3)), np.array([0, 2]), rows); print(rows)")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**env, "HOME": "/proc/nonexistent", "XDG_CACHE_HOME": "/proc/x"},
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "1.0986" in r.stdout  # log(3)
