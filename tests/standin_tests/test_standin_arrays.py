"""The stand-in's arrays: not NumPy arrays, explicit reads counted, only CuPy 14's names."""

from __future__ import annotations

import functools
import inspect
import json
from pathlib import Path

import cupy
import cupy_standin
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

NAMES = json.loads((Path(cupy.__file__).parent / "_names.json").read_text())["scopes"]
IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. "
            "Please use `.get()` to construct a NumPy array explicitly.")


@pytest.fixture
def a() -> cupy.ndarray:
    rng = np.random.default_rng(7)
    return cupy.asarray(rng.standard_normal((3, 4)))


def test_import_cupy_is_the_standin() -> None:
    assert cupy.__version__.endswith("+standin")
    assert "tests/standin" in cupy.__file__.replace("\\", "/")


@pytest.mark.parametrize("path", sorted(NAMES))
def test_every_public_name_is_one_real_cupy_has(path: str) -> None:
    try:
        obj = functools.reduce(getattr, path.split(".")[1:], cupy)
    except AttributeError:
        pytest.skip(f"the stand-in has no {path}")
    own = {n for n in dir(obj) if not n.startswith("_")}
    # a scope that real CuPy resolves lazily (cupy.random.Generator) is a name it has
    lazy = {s.rpartition(".")[2] for s in NAMES if s.rpartition(".")[0] == path}
    assert own - set(NAMES[path]) - lazy == set(), f"{path}: names real CuPy 14 lacks"


def test_ndarray_special_methods_are_cupys() -> None:
    python_class = {"__dict__", "__weakref__", "__module__", "__doc__", "__qualname__",
                    "__firstlineno__", "__static_attributes__", "__annotations__"}
    own = set(vars(cupy.ndarray)) - python_class
    dunders = {n for n in own if n.startswith("__")}
    assert dunders - set(NAMES["cupy.ndarray"]) == set()


def test_a_name_only_real_cupy_has_says_so() -> None:
    assert "fft" in NAMES["cupy"]
    with pytest.raises(AttributeError, match="real CuPy has it"):
        cupy.fft  # noqa: B018
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'$"):
        cupy.no_such_name  # noqa: B018


@pytest.mark.parametrize("convert", [np.asarray, np.array, np.ascontiguousarray,
                                     lambda x: np.float64(1.0) * np.ones(1) + np.asarray(x)])
def test_implicit_conversion_to_numpy_raises_cupys_type_error(a, convert) -> None:
    with pytest.raises(TypeError) as err:
        convert(a)
    assert str(err.value) == IMPLICIT


def test_plotting_a_device_array_or_a_list_of_device_losses_raises(a) -> None:
    with pytest.raises(TypeError, match="Implicit conversion"):
        plt.plot(a[0])
    losses = [a.sum(), a.max()]  # the book's train_loss_list with 0-d device losses
    with pytest.raises(TypeError, match="Implicit conversion"):
        plt.plot(losses)
    plt.close("all")


def test_numpy_arrays_in_kernels_raise_unsupported_type(a) -> None:
    host = np.ones(4)
    for op in (lambda: a + host, lambda: host + a, lambda: cupy.add(a, host),
               lambda: np.add(host, a), lambda: cupy.maximum(host, a),
               lambda: cupy.matmul(a, np.ones((4, 2)))):
        with pytest.raises(TypeError, match=r"Unsupported type <class 'numpy.ndarray'>"):
            op()


def test_numpy_functions_dispatch_to_cupy_as_in_cupy(a, tmp_path) -> None:
    host = a.get()
    total = np.sum(a, axis=0)
    assert isinstance(total, cupy.ndarray)
    np.testing.assert_array_equal(total.get(), host.sum(axis=0))
    assert isinstance(np.exp(a), cupy.ndarray)
    assert np.ndim(a) == 2 and np.shape(a) == (3, 4)
    # np.savez is dispatched to cupy.savez, which copies each array to the host
    with cupy_standin.counting() as c:
        np.savez(tmp_path / "p.npz", W=a, tag=np.array("x"))
    assert c.host_waits == 1 and c.d2h_bytes == a.nbytes
    with np.load(tmp_path / "p.npz", allow_pickle=False) as f:
        np.testing.assert_array_equal(f["W"], host)
    # CuPy's sum is a.sum(...): a NumPy array gets NumPy's answer
    assert cupy.sum(host) == host.sum()


@pytest.mark.parametrize("read", [
    lambda x: x.get(), lambda x: cupy.asnumpy(x), lambda x: float(x[0, 0]),
    lambda x: int(x[0, 0]), lambda x: bool(x[0, 0]), lambda x: x[0, 0].item(),
    lambda x: x.tolist(), lambda x: repr(x), lambda x: f"{x[0, 0]:.3f}",
])
def test_every_explicit_read_is_one_counted_host_wait(a, read) -> None:
    with cupy_standin.counting() as c:
        read(a)
    assert c.host_waits == 1 and c.d2h_copies == 1
    assert c.kernel_launches == 0 and c.allocations == 0


def test_iteration_gives_device_rows_without_a_wait_as_in_cupy(a) -> None:
    with cupy_standin.counting() as c:
        rows = list(a)
    assert c.host_waits == 0 and all(isinstance(r, cupy.ndarray) for r in rows)
    with cupy_standin.counting() as c:
        values = [float(v) for v in a[0]]
    assert c.host_waits == 4 and values == a.get()[0].tolist()


def test_truth_value_of_many_elements_is_ambiguous(a) -> None:
    with pytest.raises(ValueError, match="more than one element is ambiguous"):
        bool(a)


def test_uploads_are_counted_with_their_bytes() -> None:
    host = np.arange(12.0)
    with cupy_standin.counting() as c:
        d = cupy.asarray(host)
        d.set(host * 2)
    assert (c.h2d_copies, c.h2d_bytes) == (2, 2 * host.nbytes)
    assert c.allocations == 1 and c.allocated_bytes == host.nbytes


def test_results_equal_numpys_and_keep_dtypes(a) -> None:
    host = a.get()
    x32 = cupy.asarray(host.astype(np.float32))
    assert (x32 * 2.0).dtype == np.float32
    np.testing.assert_array_equal((a @ a.T).get(), host @ host.T)
    np.testing.assert_array_equal(cupy.exp(a - a.max(axis=1, keepdims=True)).get(),
                                  np.exp(host - host.max(axis=1, keepdims=True)))
    idx = cupy.asarray(np.array([2, 0, 1]))
    np.testing.assert_array_equal(a[cupy.arange(3), idx].get(), host[np.arange(3), [2, 0, 1]])
    np.testing.assert_array_equal(a.argmax(axis=1).get(), host.argmax(axis=1))
    b = a.copy()
    b[b >= 0] = 1
    expected = host.copy()
    expected[expected >= 0] = 1
    np.testing.assert_array_equal(b.get(), expected)


def test_boolean_mask_reads_its_count_from_the_device(a) -> None:
    with cupy_standin.counting() as c:
        a[a > 0]
    assert c.host_waits == 1


def test_views_share_the_buffer_and_launch_nothing(a) -> None:
    with cupy_standin.counting() as c:
        v = a.T.reshape(-1)[::2] if a.T.flags.c_contiguous else a.reshape(-1)[::2]
        w = a[1]
    assert c.kernel_launches == 0 and c.allocations == 0
    w[...] = 5.0
    assert float(a[1, 0]) == 5.0 and v.shape == (6,)


def test_signatures_of_real_names_only() -> None:
    # every routine the stand-in exports is callable and named as in CuPy
    for name in dir(cupy):
        obj = getattr(cupy, name)
        if not name.startswith("_") and inspect.isfunction(obj):
            assert obj.__name__ in NAMES["cupy"], name
