"""A GPU cost model of xpnet's training: a MODEL, never a measurement.

    python bench/gpu_model.py [--out DIR]      (default: bench/results; under a minute)

No GPU has been lent to this project. This script counts what one training step and one
evaluation ask of the device (kernel launches, host waits, copies, allocations) on the
strict CuPy stand-in (tests/standin, in a subprocess with NUMBA_ENABLE_CUDASIM=1), counts
FLOPs and device-memory bytes analytically from the shapes, and turns both into times
with an H200's published figures and published launch overheads:

    kernel time   = max(flops / peak, bytes / HBM bandwidth)         (roofline, per kernel)
    eager step    = sum(kernel times) + CuPy calls * CUPY_CALL + Numba launches * NUMBA_LAUNCH
                    + host waits * HOST_WAIT + copies * COPY + copied bytes / PCIe
    captured step = sum(kernel times) + graph launches * (CUPY_CALL + GRAPH_LAUNCH)
                    + graph nodes * GRAPH_NODE + (waits, copies, eager launches left over)
    full run      = setup (data sets uploaded once) + iterations * step + evaluations * eval

Host and device time are added, not overlapped: for these tiny kernels one of the two is
negligible, and the sum is the simpler, slightly pessimistic choice. Counts per step do
not depend on the sizes, so they are counted on tiny shapes (fast in the simulator); FLOPs
and bytes are computed for the real shapes. Every constant below names its source.
``model_rows()`` gives rows in bench/run.py's format, labelled "(model)".
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STANDIN = ROOT / "tests" / "standin"

# ------------------------------------------------------------------ published figures

H200_PAGE = "https://www.nvidia.com/en-us/data-center/h200/"  # NVIDIA's H200 product page


@dataclass(frozen=True)
class Gpu:
    """A GPU's published peaks: bytes/s and FLOP/s."""

    name: str
    hbm_bytes_s: float
    fp64_flops_s: float  # vector (CUDA cores)
    fp64_tensor_flops_s: float  # DGEMM on tensor cores (cuBLAS uses them for float64)
    fp32_flops_s: float  # vector; CuPy's SGEMM does not use TF32 by default
    pcie_bytes_s: float  # host <-> device, one direction
    source: str


H200 = Gpu(
    name="H200 SXM",
    hbm_bytes_s=4.8e12,  # HBM3e 4.8 TB/s (H200_PAGE, specifications table)
    fp64_flops_s=34e12,  # FP64 34 TFLOPS (H200_PAGE)
    fp64_tensor_flops_s=67e12,  # FP64 Tensor Core 67 TFLOPS (H200_PAGE)
    fp32_flops_s=67e12,  # FP32 67 TFLOPS (H200_PAGE)
    pcie_bytes_s=64e9,  # PCIe Gen5 128 GB/s both ways (H200_PAGE): 64 GB/s each way
    source=H200_PAGE,
)


@dataclass(frozen=True)
class Overheads:
    """Fixed costs in seconds, each with its source in SOURCES."""

    cupy_call_s: float = 20e-6
    numba_launch_s: float = 30e-6
    graph_launch_s: float = 2.5e-6
    graph_node_s: float = 3.4e-6
    host_wait_s: float = 5.8e-6
    copy_s: float = 10e-6


SOURCES = {
    "hbm_bytes_s, fp64/fp32 peaks, pcie": H200_PAGE,
    "cupy_call_s = 20 us: CuPy's Python-side cost of one op on small arrays, 'usually "
    "around 20 microseconds' (a comment in CuPy's issue tracker); 25 us in Numba's "
    "comparison of launch overheads":
        "https://github.com/cupy/cupy/issues/1294 ; https://github.com/numba/numba/issues/3003",
    "numba_launch_s = 30 us: numba-cuda launch from Python, 6.6 us with no argument plus "
    "~3.7 us per array argument (our kernels take 4-10 arrays, CuPy's through "
    "__cuda_array_interface__)": "https://github.com/NVIDIA/numba-cuda/pull/288",
    "graph_node_s = 3.4 us: time per short kernel inside a CUDA graph (2.9 us of it the "
    "kernel itself); host_wait_s = 5.8 us: 9.6 us per kernel with a stream synchronize "
    "after each, against 3.8 us without (Getting Started with CUDA Graphs; these figures "
    "are as recalled from the post, which could not be re-read where the model was made: "
    "check them first when a GPU is lent)":
        "https://developer.nvidia.com/blog/cuda-graphs/",
    "graph_launch_s = 2.5 us: cudaGraphLaunch of a straight-line graph, constant in its "
    "length since CUDA 12.6 (plus CuPy's Python call, cupy_call_s; as recalled from the "
    "post, not re-read: check it first when a GPU is lent)":
        "https://developer.nvidia.com/blog/constant-time-launch-for-straight-line-graphs-and-"
        "other-performance-enhancements/",
    "copy_s = 10 us: fixed cost of a small cudaMemcpy (5-7 us per cudaMemcpyAsync in "
    "arXiv 2602.21548)":
        "https://www.cs.virginia.edu/~mwb7w/cuda_support/memory_transfer_overhead.html",
}

# Operation counts of the fused numerical gradient's CUDA kernels (kernels/cuda.py, whose
# per-pair math is kernels/numerical_gradient.py, explained in kernels/DERIVATION.md).
# Assumption: a float64 expm1 or log1p costs about 20 FLOPs (range reduction + polynomial).
EXPM1_FLOPS = 20
# hidden_pair, one (W1[i, j], sample b) with x[b, i] != 0: 2 expm1, 2 sigmoid_delta
# (6 each), the row tests (4), hidden_u (49), the log1p series (10), e and the sum (3).
HIDDEN_PAIR_FLOPS = 2 * EXPM1_FLOPS + 12 + 4 + 49 + 10 + 3
# output_pair, one (W2[j, k], sample b): 2 expm1, numerator and denominator (15), log1p.
OUTPUT_PAIR_FLOPS = 2 * EXPM1_FLOPS + 15 + 10

# The default run: the book's train_neuralnet.py on an MNIST-sized set.
DEFAULT = {"train_size": 60000, "test_size": 10000, "input": 784, "hidden": 50,
           "classes": 10, "batch": 100, "iterations": 10000, "evaluations": 17}


# ------------------------------------------------------------------------ the model

@dataclass(frozen=True)
class Kernel:
    """One kernel's work: FLOPs, device-memory bytes, and whether it is a matrix product."""

    name: str
    flops: float
    bytes: float
    matmul: bool = False


@dataclass
class Counts:
    """What the host asked of the device (the stand-in's counters, per step or per eval)."""

    kernel_launches: float = 0
    numba_launches: float = 0  # of kernel_launches, those of Numba kernels
    graph_launches: float = 0
    graph_kernels: float = 0
    host_waits: float = 0
    h2d_copies: float = 0
    h2d_bytes: float = 0
    d2h_copies: float = 0
    d2h_bytes: float = 0
    allocations: float = 0
    foreign_allocations: float = 0


def peak(kernel: Kernel, dtype: str, gpu: Gpu = H200) -> float:
    if dtype == "float64":
        return gpu.fp64_tensor_flops_s if kernel.matmul else gpu.fp64_flops_s
    return gpu.fp32_flops_s


def compute_time(kernels: list[Kernel], dtype: str, gpu: Gpu = H200) -> float:
    """Roofline: sum over kernels of max(flops / peak, bytes / bandwidth), seconds."""
    return sum(max(k.flops / peak(k, dtype, gpu), k.bytes / gpu.hbm_bytes_s) for k in kernels)


def transfer_time(c: Counts, gpu: Gpu = H200, oh: Overheads = Overheads()) -> float:
    """Host waits and host-device copies: fixed costs plus bytes over PCIe."""
    return (c.host_waits * oh.host_wait_s + (c.h2d_copies + c.d2h_copies) * oh.copy_s
            + (c.h2d_bytes + c.d2h_bytes) / gpu.pcie_bytes_s)


def eager_time(c: Counts, compute_s: float, gpu: Gpu = H200,
               oh: Overheads = Overheads()) -> float:
    """Every kernel launched from Python: CuPy calls and Numba launches, then the device."""
    cupy_calls = c.kernel_launches - c.numba_launches
    return (compute_s + cupy_calls * oh.cupy_call_s + c.numba_launches * oh.numba_launch_s
            + transfer_time(c, gpu, oh))


def captured_time(c: Counts, compute_s: float, gpu: Gpu = H200,
                  oh: Overheads = Overheads()) -> float:
    """Graph replays: one Python call and one cudaGraphLaunch per graph, a device-side
    cost per node; whatever still runs eagerly is charged as in ``eager_time``."""
    return (c.graph_launches * (oh.cupy_call_s + oh.graph_launch_s)
            + c.graph_kernels * oh.graph_node_s + eager_time(c, compute_s, gpu, oh))


def as_captured(eager: Counts) -> Counts:
    """The eager counts of a step replayed as one graph: its kernels become the nodes."""
    return dataclasses.replace(eager, kernel_launches=0, numba_launches=0, graph_launches=1,
                               graph_kernels=eager.kernel_launches)


# ------------------------------------------------------------ FLOPs and bytes, by shape

def _forward(n: int, d: int, h: int, c: int, s: int) -> list[Kernel]:
    """sigmoid(x @ W1 + b1) @ W2 + b2 for n samples of itemsize s."""
    return [
        Kernel("x @ W1", 2 * n * d * h, (n * d + d * h + n * h) * s, matmul=True),
        Kernel("+ b1", n * h, (2 * n * h + h) * s),
        Kernel("sigmoid", 4 * n * h, 2 * n * h * s),
        Kernel("z1 @ W2", 2 * n * h * c, (n * h + h * c + n * c) * s, matmul=True),
        Kernel("+ b2", n * c, (2 * n * c + c) * s),
    ]


def _gather(b: int, d: int, s: int) -> list[Kernel]:
    return [Kernel("x[batch]", 0, 2 * b * d * s + 8 * b), Kernel("t[batch]", 0, 24 * b)]


def _cross_entropy(b: int, c: int, s: int, grad: bool) -> list[Kernel]:
    return [Kernel("softmax cross-entropy", 6 * b * c, (b * c * (2 if grad else 1)) * s + 16 * b),
            Kernel("loss sum", b, 8 * b)]


def _update(d: int, h: int, c: int, s: int, gs: int) -> list[Kernel]:
    """p -= lr * g for the four parameters (lr * g is a temporary of g's itemsize gs)."""
    n = d * h + h + h * c + c
    return [Kernel("lr * g", n, 2 * n * gs), Kernel("p -= .", n, (2 * s + gs) * n)]


def backprop_step_kernels(b: int, d: int, h: int, c: int, s: int) -> list[Kernel]:
    back = [
        Kernel("dy @ W2.T", 2 * b * c * h, (b * c + h * c + b * h) * s, matmul=True),
        Kernel("(1 - z1) * z1 * .", 3 * b * h, 3 * b * h * s),
        Kernel("x.T @ da1", 2 * b * d * h, (b * d + b * h + d * h) * s, matmul=True),
        Kernel("sum da1", b * h, (b * h + h) * s),
        Kernel("z1.T @ dy", 2 * b * h * c, (b * h + b * c + h * c) * s, matmul=True),
        Kernel("sum dy", b * c, (b * c + c) * s),
    ]
    return (_gather(b, d, s) + _forward(b, d, h, c, s) + _cross_entropy(b, c, s, True) + back
            + _update(d, h, c, s, s))


def numerical_step_kernels(b: int, d: int, h: int, c: int, s: int,
                           density: float) -> list[Kernel]:
    """The fused numerical gradient (float64 inside) plus the step's loss and update.

    ``density``: the fraction of non-zero inputs (the kernel skips x[b, i] == 0)."""
    f8 = 8
    widen = [] if s == 8 else [Kernel("to float64", 0, (s + f8) * (d * h + h + h * c + c + b * d))]
    grad = [
        Kernel("hidden stats", 2 * b * d * h + 4 * b * h, (b * d + d * h + 8 * b * h) * f8),
        Kernel("output stats", 2 * b * h * c + 6 * b * c, (8 * b * h + 2 * b * c + h * c) * f8),
        Kernel("moments", 12 * b * h * c, (8 * b * h + b * c + h * c) * f8),
        Kernel("hidden grad", (b * d * density + b) * h * HIDDEN_PAIR_FLOPS,
               (b * d + 8 * b * h + (d + 1) * h) * f8),
        Kernel("output grad", (h + 1) * c * b * OUTPUT_PAIR_FLOPS,
               (8 * b * h + 2 * b * c + (h + 1) * c) * f8),
    ]
    return (_gather(b, d, s) + _forward(b, d, h, c, s) + _cross_entropy(b, c, s, False) + widen
            + grad + _update(d, h, c, s, f8))


def evaluation_kernels(train: int, test: int, d: int, h: int, c: int, s: int) -> list[Kernel]:
    """Accuracy on both full sets: forward, argmax, compare, count."""
    out = []
    for n in (train, test):
        out += _forward(n, d, h, c, s) + [
            Kernel("argmax", n * c, n * c * s + 8 * n),
            Kernel("== labels", n, 24 * n),
            Kernel("sum hits", n, 9 * n),
        ]
    return out


def setup_time(shape: dict, s: int, gpu: Gpu = H200, oh: Overheads = Overheads()) -> float:
    """The data sets uploaded once per run (images of itemsize s, int64 labels)."""
    n = shape["train_size"] + shape["test_size"]
    return 4 * oh.copy_s + n * (shape["input"] * s + 8) / gpu.pcie_bytes_s


# The book's chapter-8 DeepConvNet (train_deepnet.py: 28x28 images, hidden 50, batch 100,
# Adam, 20 epochs of 600 iterations) as LayeredStep runs it: (in channels, side, filters, pad)
# of each 3x3 convolution, a 2x2 pool after every second one.
DEEP = {"batch": 100, "hidden": 50, "classes": 10, "iterations": 12000}
DEEP_CONVS = ((1, 28, 16, 1), (16, 28, 16, 1), (16, 14, 32, 1), (32, 14, 32, 2),
              (32, 8, 64, 1), (64, 8, 64, 1))


def _col2im_bytes(cols: int, image: int, padded: int, s: int) -> int:
    """col2im of ``cols`` column values into an image of ``image`` values (``padded`` with
    its border): a float64 image zeroed, each column added into it (read both, write the
    sum), then cast to itemsize ``s`` unless ``s`` is 8 (xpnet.common.util, _Col2im)."""
    f8 = 8
    cast = 0 if s == f8 else image * (f8 + s)
    return padded * f8 + cols * (2 * f8 + s) + cast


def _im2col_bytes(cols: int, image: int, pad: bool, s: int, book: bool) -> int:
    """im2col of an image of ``image`` values into ``cols`` columns of itemsize ``s``.

    LayeredStep (and the layers' result) keep the input's dtype; the book's eager layers
    (xpnet.common.util.im2col) fill float64 columns, then cast them back to ``s``."""
    f8 = 8
    border = 2 * image * s if pad else 0  # the image copied inside its zero border
    if not book:
        return border + 2 * cols * s
    return border + cols * (s + f8) + (0 if s == f8 else cols * (f8 + s))


def deep_conv_step_kernels(b: int, s: int, hidden: int = 50, classes: int = 10,
                           book: bool = False) -> list[Kernel]:
    """One DeepConvNet training step with Adam, batch ``b``, net of itemsize ``s``.

    Buffers follow xpnet.layered_step and xpnet.common.layers (5063aa8, 140279b): im2col's
    columns, pooling's windows, activations, gradients and Adam's temporaries in the net's
    dtype; col2im sums in float64 and casts back; masks are bool (1 byte), argmax intp.
    ``book``: the book's eager step, whose im2col fills float64 columns and casts them, and
    whose first convolution also computes the input's gradient (LayeredStep skips it).
    Elementwise work is grouped per layer (it is memory-bound either way).
    """
    out, params = [], 0
    for idx, (c, side, filters, pad) in enumerate(DEEP_CONVS, start=1):
        o = side + 2 * pad - 2
        m, k, image = b * o * o, c * 9, b * c * side * side
        params += filters * k + filters
        out += [
            Kernel(f"conv{idx} im2col", 0, _im2col_bytes(m * k, image, pad > 0, s, book)),
            Kernel(f"conv{idx} col @ W", 2 * m * k * filters,
                   (m * k + k * filters + m * filters) * s, matmul=True),
            # + b (2 accesses), relu: x <= 0 into a mask, copy, zero where the mask says
            Kernel(f"conv{idx} + b, relu", 3 * m * filters, m * filters * (6 * s + 2)),
            Kernel(f"conv{idx} col.T @ dout", 2 * m * k * filters,
                   (m * k + m * filters + k * filters) * s, matmul=True),
            # relu' (mask and dout), dout copied to rows, db summed over them
            Kernel(f"conv{idx} db, relu'", 2 * m * filters, m * filters * (4 * s + 1)),
        ]
        if idx > 1 or book:
            padded = b * c * (side + 2 * pad) ** 2
            out += [Kernel(f"conv{idx} dout @ W.T", 2 * m * k * filters,
                           (m * filters + k * filters + m * k) * s, matmul=True),
                    Kernel(f"conv{idx} col2im", m * k, _col2im_bytes(m * k, image, padded, s))]
        if idx % 2 == 0:  # the pool after it: 2x2 windows of the o x o output, stride 2
            n = b * filters * (o // 2) ** 2
            windows = 4 * n
            out += [
                # windows by im2col; argmax (intp) and max of each
                Kernel(f"pool{idx // 2} forward", 8 * n,
                       _im2col_bytes(windows, windows, False, s, book)
                       + 2 * windows * s + n * (8 + s)),
                # dout copied; winners as a bool mask; dmax zeroed and filled; col2im
                Kernel(f"pool{idx // 2} backward", windows,
                       2 * n * s + n * 8 + windows + windows * s + windows * (1 + s) + n * s
                       + _col2im_bytes(windows, windows, b * filters * (o + 1) ** 2, s)),
            ]
    for name, d, h in (("affine1", 64 * 4 * 4, hidden), ("affine2", hidden, classes)):
        params += d * h + h
        out += [Kernel(f"{name} x @ W", 2 * b * d * h, (b * d + d * h + b * h) * s,
                       matmul=True),
                Kernel(f"{name} dout @ W.T", 2 * b * d * h, (b * d + d * h + b * h) * s,
                       matmul=True),
                Kernel(f"{name} x.T @ dout", 2 * b * d * h, (b * d + d * h + b * h) * s,
                       matmul=True),
                Kernel(f"{name} bias, relu, dropout", 8 * b * h, 12 * b * h * s)]
    out += [Kernel("gather batch", 0, 2 * b * 784 * s + 16 * b),
            Kernel("softmax with loss", 10 * b * classes, 8 * b * classes * s),
            # Adam: m, v, sqrt, divide, update: ~12 FLOPs and ~14 accesses an element, all
            # in the parameters' dtype (its temporaries are too)
            Kernel("adam", 12 * params, 14 * params * s)]
    return out


# ------------------------------------------------------------- counting, in a subprocess

COUNT_SHAPE = {"input": 16, "hidden": 4, "classes": 10, "batch": 4, "per_epoch": 4}


def _count_in_this_process() -> dict:
    """Counts per step and per evaluation, eager (and captured if the trainer can).

    Runs only under the stand-in. A step is run(3) - run(2) (both evaluate once, at
    iteration 0; the step measured is the third, after any capture); an evaluation is
    run(P + 1) - run(P) - step, P the iterations of an epoch.
    """
    import cupy  # noqa: F401 - the stand-in; installs the simulator's hooks
    import cupy_standin
    import numpy as np
    from numba.cuda.simulator import kernel as simkernel

    from xpnet.trainer import train
    from xpnet.two_layer_net import TwoLayerNet

    numba = {"launches": 0}
    call = simkernel.FakeCUDAKernel.__call__

    def counted_call(self, *args):
        if not self._device:
            numba["launches"] += 1
        return call(self, *args)

    simkernel.FakeCUDAKernel.__call__ = counted_call
    shape = COUNT_SHAPE
    d, h, c, b, per_epoch = (shape[k] for k in ("input", "hidden", "classes", "batch",
                                                   "per_epoch"))
    rng = np.random.default_rng(0)
    x = rng.random((b * per_epoch, d))
    x[x < 0.3] = 0.0
    t = rng.integers(0, c, b * per_epoch)
    graph_option = "cuda_graph" in inspect.signature(train).parameters

    def run(iters: int, grad: str, dtype: str, graph: bool | None) -> Counts:
        net = TwoLayerNet(d, h, c, seed=0, dtype=dtype, device="cuda")
        options = {} if graph is None else {"cuda_graph": graph}
        before = numba["launches"]
        with cupy_standin.counting() as got:
            train(net, x, t, x[:b], t[:b], iters_num=iters, batch_size=b, grad=grad, seed=1,
                  **options)
        fields = {f.name: getattr(got, f.name) for f in dataclasses.fields(Counts)
                  if hasattr(got, f.name)}
        return Counts(**fields, numba_launches=numba["launches"] - before)

    def minus(a: Counts, z: Counts) -> Counts:
        return Counts(**{f.name: getattr(a, f.name) - getattr(z, f.name)
                         for f in dataclasses.fields(Counts)})

    result: dict = {"graph_option": graph_option, "shape": shape, "configs": {},
                    "deep_conv": _count_deep_conv()}
    for grad in ("backprop", "numerical"):
        for dtype in ("float32", "float64"):
            modes = {"eager": False, "captured": True} if graph_option else {"eager": None}
            for mode, graph in modes.items():
                runs = {n: run(n, grad, dtype, graph) for n in (2, 3, per_epoch, per_epoch + 1)}
                step = minus(runs[3], runs[2])
                evaluation = minus(minus(runs[per_epoch + 1], runs[per_epoch]), step)
                result["configs"][f"{grad}/{dtype}/{mode}"] = {
                    "step": dataclasses.asdict(step), "eval": dataclasses.asdict(evaluation)}
    return result


def _count_deep_conv() -> dict:
    """A DeepConvNet step with Adam (the third: after any capture) on the stand-in, three
    ways: the book's eager step (BookNet._loss_and_gradient + Adam.update), LayeredStep
    eager, and LayeredStep replayed as a graph. Counts do not depend on the batch size."""
    import cupy
    import cupy_standin
    import numpy as np

    from xpnet import nets
    from xpnet.common import optimizer
    from xpnet.layered_step import LayeredStep

    b, steps = 2, 3
    rng = np.random.default_rng(0)
    x, t = cupy.asarray(rng.random((8, 784))), cupy.asarray(rng.integers(0, 10, 8))
    order = rng.integers(0, 8, size=(steps, b))

    def fresh():
        net = nets.build("deep-conv", features=784, classes=10, hidden=6, activation="relu",
                         weight_init_std="he", weight_decay=0.0, dtype="float64",
                         device="cuda", seed=0)
        return net, optimizer.make("adam", 0.001)

    def as_counts(got) -> dict:
        return dataclasses.asdict(Counts(**{f.name: getattr(got, f.name)
                                            for f in dataclasses.fields(Counts)
                                            if hasattr(got, f.name)}))

    result = {}
    net, opt = fresh()
    for i in range(steps):
        batch = cupy.asarray(order[i])
        with cupy_standin.counting() as got:
            _, grads = net._loss_and_gradient(x[batch], t[batch])
            opt.update(net.params, grads)
    result["book eager"] = as_counts(got)
    for mode, graph in (("eager", False), ("captured", True)):
        net, opt = fresh()
        step = LayeredStep(net, opt, x, t, batch_size=b, chunk_length=steps,
                           losses=cupy.zeros(steps), graph=graph)
        with step.stream:
            step.start_chunk(order, 0, 0)
            for _ in range(steps):
                with cupy_standin.counting() as got:
                    step()
        result[mode] = as_counts(got)
    return result


def count(timeout: float = 300) -> dict:
    """Run the counting on the stand-in in a fresh interpreter; its counts as a dict."""
    path = os.pathsep.join(p for p in (str(STANDIN), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "NUMBA_ENABLE_CUDASIM": "1"}
    code = (f"import json, sys; sys.path.insert(0, {str(HERE)!r}); import gpu_model; "
            "print(json.dumps(gpu_model._count_in_this_process()))")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"counting on the stand-in failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["count_seconds"] = round(time.perf_counter() - start, 1)
    return result


def input_density(default: float = 1.0) -> tuple[float, str]:
    """Fraction of non-zero pixels in Fashion-MNIST's training images, if installed here.

    The numerical gradient skips x == 0; without the data the dense upper bound is used."""
    from xpnet.dataset import load_dataset
    from xpnet.dataset.errors import UserError

    try:
        x = load_dataset("fashion-mnist", download=False).x_train
    except UserError:
        return default, "dense upper bound (Fashion-MNIST not found here)"
    return float((x != 0).mean()), "Fashion-MNIST training images"


# ------------------------------------------------------------------------ predictions

def predict(counted: dict, shape: dict = DEFAULT, density: float = 1.0,
            gpu: Gpu = H200, oh: Overheads = Overheads()) -> list[dict]:
    """Predicted step, evaluation and full-run times (seconds) for every configuration."""
    b, d, h, c = shape["batch"], shape["input"], shape["hidden"], shape["classes"]
    rows = []
    for grad in ("backprop", "numerical"):
        for dtype in ("float32", "float64"):
            s = 4 if dtype == "float32" else 8
            step_k = (backprop_step_kernels(b, d, h, c, s) if grad == "backprop"
                      else numerical_step_kernels(b, d, h, c, s, density))
            eval_k = evaluation_kernels(shape["train_size"], shape["test_size"], d, h, c, s)
            step_c, eval_c = compute_time(step_k, dtype, gpu), compute_time(eval_k, dtype, gpu)
            configs = counted["configs"]
            eager = configs[f"{grad}/{dtype}/eager"]
            eager_step, evaluation = Counts(**eager["step"]), Counts(**eager["eval"])
            if f"{grad}/{dtype}/captured" in configs:
                captured_step = Counts(**configs[f"{grad}/{dtype}/captured"]["step"])
                how = "captured counts"
            else:
                captured_step = as_captured(eager_step)
                how = "from eager counts (no graph option in the trainer yet)"
            eval_s = eager_time(evaluation, eval_c, gpu, oh)
            for mode, step_counts in (("eager", eager_step), ("captured", captured_step)):
                timer = eager_time if mode == "eager" else captured_time
                step_s = timer(step_counts, step_c, gpu, oh)
                run_s = (setup_time(shape, s, gpu, oh) + shape["iterations"] * step_s
                         + shape["evaluations"] * eval_s)
                rows.append({
                    "grad": grad, "dtype": dtype, "mode": mode,
                    "captured_from": how if mode == "captured" else "",
                    "step_counts": dataclasses.asdict(step_counts),
                    "eval_counts": dataclasses.asdict(evaluation),
                    "step_flops": sum(k.flops for k in step_k),
                    "step_bytes": sum(k.bytes for k in step_k),
                    "eval_flops": sum(k.flops for k in eval_k),
                    "eval_bytes": sum(k.bytes for k in eval_k),
                    "step_compute_s": step_c, "step_s": step_s, "eval_s": eval_s,
                    "run_s": run_s,
                })
    return rows


DEEP_MODES = {"book eager": "the book's step, eager (BookNet + Adam.update)",
              "eager": "LayeredStep, eager", "captured": "LayeredStep, one graph launch"}
# bench/test_bench_layered_step.py's CUDA group, and the model's mode for each measured way
DEEP_STEP_GROUP = "ch08 DeepConvNet training step (hidden 50, Adam, batch 100), GPU vs CPU"
DEEP_MEASURED_MODES = {"xpnet-eager-cuda": "book eager", "layered-step-cuda": "eager",
                       "layered-step-cuda-graph": "captured"}


def predict_deep_conv(counted: dict, gpu: Gpu = H200, oh: Overheads = Overheads()) -> list[dict]:
    """Predicted DeepConvNet step (batch 100, Adam) and 20 epochs of steps, each mode."""
    rows = []
    for dtype in ("float32", "float64"):
        for mode, counts in counted["deep_conv"].items():
            kernels = deep_conv_step_kernels(DEEP["batch"], 4 if dtype == "float32" else 8,
                                             DEEP["hidden"], DEEP["classes"],
                                             book=mode == "book eager")
            compute_s = compute_time(kernels, dtype, gpu)
            c = Counts(**counts)
            timer = captured_time if c.graph_launches else eager_time
            step_s = timer(c, compute_s, gpu, oh)
            rows.append({"dtype": dtype, "mode": mode, "step_counts": counts,
                         "step_flops": sum(k.flops for k in kernels),
                         "step_bytes": sum(k.bytes for k in kernels),
                         "step_compute_s": compute_s, "step_s": step_s,
                         "steps_s": DEEP["iterations"] * step_s})
    return rows


BACKPROP_GROUPS = {"backprop": "full default run (Fashion-MNIST, 10000 iterations)",
                   "numerical": "full --grad numerical run (10000 iterations)"}
STEP_GROUPS = {"backprop": "one SGD step (784-50-10, batch 100)",
               "numerical": "numerical gradient step (784-50-10, batch 100)"}


def model_rows(counted: dict | None = None, density: float | None = None) -> list[dict]:
    """Rows for bench/run.py's table (its entry format), every backend named "(model)"."""
    counted = count() if counted is None else counted
    density = input_density()[0] if density is None else density
    rows = []
    for p in predict(counted, DEFAULT, density):
        backend = f"{H200.name} {p['mode']} (model)"
        grad = p["grad"]
        for group, median, params in ((BACKPROP_GROUPS[grad], p["run_s"], {}),
                                      (STEP_GROUPS[grad], p["step_s"], {})):
            rows.append({"group": group, "backend": backend, "dtype": p["dtype"],
                         "params": params, "baseline": False, "median": median,
                         "measured": {}, "speedup": None, "vs": "model, not measured"})
    return rows


# ------------------------------------------------------------------------------ report

def _fmt(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def cpu_rows(path: Path = HERE / "results" / "cpu-2core-table.md") -> list[str]:
    """The measured CPU rows the model stands beside (full run, SGD step, numerical)."""
    if not path.exists():
        return []
    keep = ("full default run", "one SGD step", "numerical gradient (784-50-10")
    return [line for line in path.read_text().splitlines()
            if line.startswith("| ") and any(k in line for k in keep)]


def report(counted: dict, rows: list[dict], density: tuple[float, str]) -> str:
    oh = Overheads()
    graph = ("yes, captured steps counted on the stand-in" if counted["graph_option"] else
             "not yet, so captured steps are modelled from the eager counts (one graph "
             "launch per step, nodes = kernels per step)")
    lines = [
        "# GPU cost model (a MODEL of an H200, not a measurement)",
        "",
        "No figure here comes from a GPU. Counts are measured on the CuPy stand-in "
        "(tests/standin, Numba's CUDA simulator) by `python bench/gpu_model.py`; FLOPs and "
        "bytes are counted analytically for 784-50-10, batch 100, 60000 + 10000 samples; "
        "times are a model built on published figures (sources below).",
        "",
        "Formula (model): kernel = max(flops / peak, bytes / HBM); eager step = sum(kernels) "
        "+ CuPy calls x CUPY_CALL + Numba launches x NUMBA_LAUNCH + waits x HOST_WAIT + "
        "copies x COPY + bytes / PCIe; captured step = sum(kernels) + graph launches x "
        "(CUPY_CALL + GRAPH_LAUNCH) + nodes x GRAPH_NODE + what still runs eagerly; run = "
        "upload + 10000 steps + 17 evaluations (evaluations eager).",
        "",
        f"Counted on shapes {counted['shape']} in {counted.get('count_seconds', '?')} s; "
        f"trainer graph option: {graph}. "
        f"Input density for the numerical gradient: {density[0]:.3f} ({density[1]}).",
        "",
        "## Counts per step and per evaluation (measured on the stand-in)",
        "",
        "| grad | dtype | mode | launches (Numba) | graph launches / nodes | waits | copies "
        "h2d/d2h | d2h bytes | allocations (outside pool) | eval launches | eval waits |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        s, e = r["step_counts"], r["eval_counts"]
        lines.append(
            f"| {r['grad']} | {r['dtype']} | {r['mode']} | {s['kernel_launches']:g} "
            f"({s['numba_launches']:g}) | {s['graph_launches']:g} / {s['graph_kernels']:g} | "
            f"{s['host_waits']:g} | {s['h2d_copies']:g}/{s['d2h_copies']:g} | "
            f"{s['d2h_bytes']:g} | {s['allocations']:g} ({s['foreign_allocations']:g}) | "
            f"{e['kernel_launches']:g} | {e['host_waits']:g} |")
    lines += [
        "",
        "## Predicted times on an H200 (model)",
        "",
        "| grad | dtype | mode | step FLOPs | step bytes | step compute (model) | step (model) "
        "| evaluation (model) | full run (model) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['grad']} | {r['dtype']} | {r['mode']} | {r['step_flops']:.3g} | "
            f"{r['step_bytes']:.3g} | {_fmt(r['step_compute_s'])} | {_fmt(r['step_s'])} | "
            f"{_fmt(r['eval_s'])} | {_fmt(r['run_s'])} |")
    if "deep_conv" in counted:
        lines += _deep_conv_report(counted)
    lines += ["", "## Beside the measured CPU rows (bench/results/cpu-2core-table.md, "
              "2-core VM)", "", "| group | backend | dtype | params | median | speed-up | vs |",
              "|---|---|---|---|---:|---:|---|", *cpu_rows()]
    for r in model_rows(counted, density[0]):
        lines.append(f"| {r['group']} | {r['backend']} | {r['dtype']} |  | "
                     f"{_fmt(r['median'])} |  | model, not measured |")
    lines += ["", "## Constants (model inputs) and their sources", "",
              f"- GPU: {H200.name}: HBM {H200.hbm_bytes_s / 1e12:g} TB/s, FP64 "
              f"{H200.fp64_flops_s / 1e12:g} TFLOPS (tensor {H200.fp64_tensor_flops_s / 1e12:g},"
              f" used for matrix products), FP32 {H200.fp32_flops_s / 1e12:g} TFLOPS, PCIe "
              f"{H200.pcie_bytes_s / 1e9:g} GB/s each way: {H200.source}",
              "- Overheads: " + ", ".join(f"{k} {v * 1e6:g} us" for k, v in
                                          dataclasses.asdict(oh).items()),
              f"- Numerical gradient op counts (kernels/cuda.py, kernels/DERIVATION.md): "
              f"{HIDDEN_PAIR_FLOPS} FLOPs per (W1 entry, sample) with x != 0, "
              f"{OUTPUT_PAIR_FLOPS} per (W2 entry, sample); assumption: expm1/log1p = "
              f"{EXPM1_FLOPS} FLOPs",
              *[f"- {what}: {url}" for what, url in SOURCES.items()], ""]
    return "\n".join(lines)


def _deep_conv_report(counted: dict) -> list[str]:
    lines = [
        "",
        f"## Chapter 8's DeepConvNet step (batch {DEEP['batch']}, hidden {DEEP['hidden']}, "
        "Adam) (model)",
        "",
        "Counts per step measured on the stand-in (xpnet.layered_step; the third step, after "
        "the capture); FLOPs and bytes from deep_conv_step_kernels, each buffer in its "
        "real dtype (a float32 net's columns, windows and activations are float32, col2im "
        "sums in float64; the book's eager im2col fills float64 columns and casts them); "
        f"{DEEP['iterations']} steps = the book's train_deepnet.py (20 epochs of 600), "
        "evaluations not included.",
        "",
        "| mode | dtype | launches | graph launches / nodes | waits | copies h2d/d2h | "
        "allocations | step FLOPs | step bytes | step compute (model) | step (model) | "
        f"{DEEP['iterations']} steps (model) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in predict_deep_conv(counted):
        c = r["step_counts"]
        lines.append(
            f"| {DEEP_MODES.get(r['mode'], r['mode'])} | {r['dtype']} | "
            f"{c['kernel_launches']:g} | {c['graph_launches']:g} / {c['graph_kernels']:g} | "
            f"{c['host_waits']:g} | {c['h2d_copies']:g}/{c['d2h_copies']:g} | "
            f"{c['allocations']:g} | {r['step_flops']:.3g} | {r['step_bytes']:.3g} | "
            f"{_fmt(r['step_compute_s'])} | "
            f"{_fmt(r['step_s'])} | {_fmt(r['steps_s'])} |")
    return lines


def write(out: Path, counted: dict, rows: list[dict], density: tuple[float, str]) -> str:
    from xpnet.dataset.atomic import atomic_write_bytes

    text = report(counted, rows, density)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "gpu-model.md", text.encode())
    data = {"label": "MODEL of an H200, not a measurement", "counted": counted,
            "density": {"value": density[0], "from": density[1]},
            "gpu": dataclasses.asdict(H200), "overheads_s": dataclasses.asdict(Overheads()),
            "sources": SOURCES, "predictions": rows,
            "deep_conv_predictions": predict_deep_conv(counted) if "deep_conv" in counted
            else []}
    atomic_write_bytes(out / "gpu-model.json", (json.dumps(data, indent=1) + "\n").encode())
    return text


def compare(record: dict, rows: list[dict], deep: list[dict] | None = None) -> str:
    """Measured CUDA rows of a bench.json beside the model's prediction for the same work;
    ``deep``: predict_deep_conv's rows, for the measured DeepConvNet steps."""
    model: dict = {}
    for r in rows:
        for group, key in ((BACKPROP_GROUPS, "run_s"), (STEP_GROUPS, "step_s")):
            model[(group[r["grad"]], r["dtype"], r["mode"])] = r[key]
    lines = ["| group | measured backend | dtype | measured | model eager | model captured "
             "| measured / model (captured) |", "|---|---|---|---:|---:|---:|---:|"]
    for b in record.get("benchmarks", []):
        info = b.get("extra_info", {})
        backend, dtype = info.get("backend", b["name"]), info.get("dtype", "")
        eager = model.get((b.get("group"), dtype, "eager"))
        if eager is None or not any(k in backend for k in ("cuda", "cupy")):
            continue
        captured = model[(b["group"], dtype, "captured")]
        median = b["stats"]["median"]
        lines.append(f"| {b['group']} | {backend} | {dtype} | {_fmt(median)} | {_fmt(eager)} "
                     f"| {_fmt(captured)} | {median / captured:.2g}x |")
    if len(lines) == 2:
        lines.append("| (no measured CUDA row matches a modelled group) | | | | | | |")
    text = ("Measured on this GPU, beside the MODEL's prediction (a ratio far from 1 "
            "means the model is wrong there: correct it, issue 20)\n\n" + "\n".join(lines) + "\n")
    return text + _compare_deep_conv(record, deep) if deep else text


def _compare_deep_conv(record: dict, deep: list[dict]) -> str:
    """The measured DeepConvNet steps, each beside the model's step of the same mode."""
    model = {(r["dtype"], r["mode"]): r["step_s"] for r in deep}
    lines = ["", f"{DEEP_STEP_GROUP}: measured step beside the model's", "",
             "| measured backend | model mode | dtype | measured | model | measured / model |",
             "|---|---|---|---:|---:|---:|"]
    for b in record.get("benchmarks", []):
        info = b.get("extra_info", {})
        mode = DEEP_MEASURED_MODES.get(info.get("backend", ""))
        predicted = model.get((info.get("dtype", ""), mode))
        if b.get("group") != DEEP_STEP_GROUP or predicted is None:
            continue
        median = b["stats"]["median"]
        lines.append(f"| {info['backend']} | {DEEP_MODES[mode]} | {info['dtype']} | "
                     f"{_fmt(median)} | {_fmt(predicted)} | {median / predicted:.2g}x |")
    if len(lines) == 5:
        lines.append("| (no measured DeepConvNet CUDA step) | | | | | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results",
                        help="folder for gpu-model.md and gpu-model.json (default bench/results)")
    parser.add_argument("--compare", type=Path, default=None, metavar="BENCH_JSON",
                        help="also print the measured CUDA rows of this bench.json (from "
                             "bench/run.py on a GPU) beside the model; written to "
                             "OUT/gpu-model-vs-measured.md")
    parser.add_argument("--counted", type=Path, default=None, metavar="MODEL_JSON",
                        help="take the counts from this gpu-model.json instead of counting")
    args = parser.parse_args(argv)
    if args.counted is not None:
        earlier = json.loads(args.counted.read_text())
        counted, density = earlier["counted"], (earlier["density"]["value"],
                                                earlier["density"]["from"])
    else:
        counted, density = count(), input_density()
    rows = predict(counted, DEFAULT, density[0])
    text = write(args.out, counted, rows, density)
    if args.compare is None:
        print(text)
    if args.compare is not None:
        from xpnet.dataset.atomic import atomic_write_bytes

        try:
            record = json.loads(args.compare.read_text())
        except (OSError, ValueError) as err:
            print(f"gpu_model: cannot read {args.compare}: {err}", file=sys.stderr)
            return 2
        deep = predict_deep_conv(counted) if "deep_conv" in counted else None
        text = compare(record, rows, deep)
        atomic_write_bytes(args.out / "gpu-model-vs-measured.md", text.encode())
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
