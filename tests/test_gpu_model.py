"""The GPU cost model (bench/gpu_model.py): its arithmetic on hand-made counts, and the
counting subprocess on the CuPy stand-in. A model, never a measurement."""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import gpu_model as gm  # noqa: E402

GPU = gm.Gpu("test GPU", hbm_bytes_s=1e12, fp64_flops_s=1e12, fp64_tensor_flops_s=2e12,
             fp32_flops_s=4e12, pcie_bytes_s=1e10, source="hand-made")
OH = gm.Overheads(cupy_call_s=10e-6, numba_launch_s=30e-6, graph_launch_s=3e-6,
                  graph_node_s=2e-6, host_wait_s=7e-6, copy_s=11e-6)


def test_roofline_takes_the_slower_of_compute_and_memory_per_kernel() -> None:
    compute_bound = gm.Kernel("a", flops=4e6, bytes=1e6)  # 4 us of FP64, 1 us of memory
    memory_bound = gm.Kernel("b", flops=1e6, bytes=5e6)  # 1 us of FP64, 5 us of memory
    matmul = gm.Kernel("c", flops=4e6, bytes=0, matmul=True)  # FP64 tensor: 2 us
    assert gm.compute_time([compute_bound, memory_bound, matmul], "float64", GPU) == (
        pytest.approx(4e-6 + 5e-6 + 2e-6))
    assert gm.compute_time([compute_bound], "float32", GPU) == pytest.approx(1e-6)


def test_an_eager_step_is_launches_times_overhead_plus_compute() -> None:
    counts = gm.Counts(kernel_launches=30, numba_launches=2)
    c = 5e-6
    assert gm.eager_time(counts, c, GPU, OH) == pytest.approx(28 * 10e-6 + 2 * 30e-6 + c)
    waits = gm.Counts(kernel_launches=1, host_waits=2, d2h_copies=3, d2h_bytes=1e4)
    assert gm.eager_time(waits, 0.0, GPU, OH) == pytest.approx(
        10e-6 + 2 * 7e-6 + 3 * 11e-6 + 1e4 / 1e10)


def test_a_captured_step_is_one_graph_launch_plus_a_cost_per_node() -> None:
    eager = gm.Counts(kernel_launches=30, numba_launches=2, allocations=5)
    captured = gm.as_captured(eager)
    assert (captured.kernel_launches, captured.graph_launches, captured.graph_kernels) == (
        0, 1, 30)
    c = 5e-6
    assert gm.captured_time(captured, c, GPU, OH) == pytest.approx(
        (10e-6 + 3e-6) + 30 * 2e-6 + c)


def test_flops_of_a_backprop_step_follow_the_shapes() -> None:
    b, d, h, c = 100, 784, 50, 10
    kernels = gm.backprop_step_kernels(b, d, h, c, 4)
    matmul = sum(k.flops for k in kernels if k.matmul)
    # forward x@W1 and z1@W2, backward dy@W2.T, x.T@da1, z1.T@dy
    assert matmul == 2 * b * d * h * 2 + 2 * b * h * c * 3
    wide = gm.numerical_step_kernels(b, d, h, c, 8, density=1.0)
    sparse = gm.numerical_step_kernels(b, d, h, c, 8, density=0.5)
    hidden = {k.name: k.flops for k in wide}["hidden grad"]
    assert hidden == (b * d + b) * h * gm.HIDDEN_PAIR_FLOPS
    assert {k.name: k.flops for k in sparse}["hidden grad"] == (b * d / 2 + b) * h * (
        gm.HIDDEN_PAIR_FLOPS)


def test_the_counting_subprocess_gives_positive_counts_and_a_finite_full_run() -> None:
    counted = gm.count(timeout=120)
    eager = counted["configs"]["backprop/float64/eager"]
    assert eager["step"]["kernel_launches"] > 0
    assert eager["eval"]["kernel_launches"] > 0
    assert eager["eval"]["host_waits"] > 0  # the accuracies are read on the host
    rows = gm.predict(counted, gm.DEFAULT, density=0.5)
    assert len(rows) == 8
    for row in rows:
        assert math.isfinite(row["run_s"]) and row["run_s"] > 0
        assert row["step_s"] > row["step_compute_s"] > 0
    text = gm.report(counted, rows, (0.5, "test"))
    assert "MODEL" in text and "not a measurement" in text


def test_compare_sets_a_measured_cuda_row_beside_the_model() -> None:
    row = {"grad": "backprop", "dtype": "float32", "mode": "eager", "run_s": 2.0,
           "step_s": 2e-4}
    rows = [row, {**row, "mode": "captured", "run_s": 0.5, "step_s": 5e-5}]
    record = {"benchmarks": [
        {"name": "x", "group": "full default run (Fashion-MNIST, 10000 iterations)",
         "extra_info": {"backend": "xpnet-cuda", "dtype": "float32"}, "stats": {"median": 1.0}},
        {"name": "y", "group": "full default run (Fashion-MNIST, 10000 iterations)",
         "extra_info": {"backend": "xpnet-cpu", "dtype": "float32"}, "stats": {"median": 5.0}},
    ]}
    text = gm.compare(record, rows)
    assert "| xpnet-cuda | float32 | 1 s | 2 s | 500 ms | 2x |" in text
    assert "xpnet-cpu" not in text  # CPU rows are not set against a GPU model


def test_deep_conv_bytes_follow_the_buffers_dtypes() -> None:
    """A float32 net's columns, windows and activations are float32 (xpnet.layered_step,
    xpnet.common.layers); only col2im sums in float64 and casts back."""
    b = 100
    f4, f8 = ({k.name: k.bytes for k in gm.deep_conv_step_kernels(b, s)} for s in (4, 8))
    columns = [n for n in f8 if any(part in n for part in ("im2col", "@"))]
    assert len(columns) == 6 * 3 + 5 + 2 * 3  # conv1 computes no input gradient
    for name in columns:
        assert f4[name] * 2 == f8[name], name
    m, k, image = b * 28 * 28, 9, b * 28 * 28  # conv1: 1 channel, 28x28, pad 1
    assert f4["conv1 im2col"] == 2 * image * 4 + 2 * m * k * 4
    assert "conv1 col2im" not in f4
    for name in (n for n in f8 if "col2im" in n):  # float64 image, float32 columns
        assert f8[name] / 2 < f4[name] < f8[name], name
    assert sum(f4.values()) < 0.65 * sum(f8.values())
    book4 = {k.name: k.bytes for k in gm.deep_conv_step_kernels(b, 4, book=True)}
    # the book's im2col fills float64 columns (read 4, write 8), then casts (read 8, write 4)
    assert book4["conv1 im2col"] == 2 * image * 4 + m * k * (4 + 8) * 2
    assert "conv1 col2im" in book4


def test_a_float32_deep_conv_step_is_modelled_faster_than_a_float64_one() -> None:
    counts = dataclasses.asdict(gm.Counts(graph_launches=1, graph_kernels=484))
    rows = gm.predict_deep_conv({"deep_conv": {"captured": counts}}, GPU, OH)
    step = {r["dtype"]: r for r in rows}
    assert step["float32"]["step_bytes"] < 0.65 * step["float64"]["step_bytes"]
    assert step["float32"]["step_compute_s"] < 0.65 * step["float64"]["step_compute_s"]
    assert step["float32"]["step_s"] < step["float64"]["step_s"]
