"""xpnet.trainer.train on a GPU (the stand-in): the CPU's numbers, a step that asks nothing
of the host, the data uploaded once, and the step captured as one CUDA graph."""

from __future__ import annotations

import dataclasses

import cupy
import cupy_standin
import numpy as np
import pytest

from xpnet import trainer
from xpnet.trainer import History, train
from xpnet.two_layer_net import PARAM_NAMES, TwoLayerNet

D, H, C = 12, 4, 3


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    x = rng.random((400, D))
    x[x < 0.3] = 0.0
    t = rng.integers(0, C, 400)
    return x, t, x[:50], t[:50]


def fit(data, device="cpu", dtype="float64", grad="backprop", iters=6, graph=None,
        batch=5, **options):
    net = TwoLayerNet(D, H, C, seed=2, dtype=dtype, device=device)
    x, t, xt, tt = data
    x, xt = x.astype(dtype), xt.astype(dtype)
    with cupy_standin.counting() as counts:
        history = train(net, x, t, xt, tt, iters_num=iters, batch_size=batch, grad=grad,
                        seed=9, cuda_graph=graph, **options)
    params = {k: cupy.asnumpy(v) if isinstance(v, cupy.ndarray) else v
              for k, v in net.params.items()}
    return params, history, counts


def same(a, b, atol=0.0):
    for k in PARAM_NAMES:
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=atol, err_msg=k)


@pytest.mark.parametrize("grad", ["backprop", "numerical"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_gpu_training_gives_the_cpus_numbers_and_replay_equals_eager(data, grad, dtype,
                                                                    device) -> None:
    cpu, cpu_h, _ = fit(data, "cpu", dtype, grad)
    eager, eager_h, eager_c = fit(data, device, dtype, grad, graph=False)
    graph, graph_h, graph_c = fit(data, device, dtype, grad, graph=None)  # None: on
    same(graph, eager)  # bit for bit
    assert graph_h.train_loss_list == eager_h.train_loss_list
    same(eager, cpu, atol=1e-12 if dtype == "float64" else 1e-6)
    np.testing.assert_allclose(eager_h.train_loss_list, cpu_h.train_loss_list, rtol=0,
                               atol=1e-12 if dtype == "float64" else 1e-6)
    assert eager_h.test_acc_list == cpu_h.test_acc_list
    assert (eager_c.graph_launches, graph_c.graph_launches) == (0, 5)  # step 0 eager


@pytest.mark.parametrize("grad", ["backprop", "numerical"])
@pytest.mark.parametrize("graph", [False, True])
def test_a_step_between_evaluations_waits_for_nothing_copies_nothing_allocates_nothing(
        data, grad, graph) -> None:
    """Counts of run(n + 1) - run(n): one step, far from any evaluation or chunk end."""
    runs = {n: fit(data, "cuda", grad=grad, iters=n, graph=graph)[2] for n in (4, 5)}
    step = runs[5] - runs[4]
    assert step.host_waits == 0 and step.h2d_copies == 0 and step.d2h_copies == 0, step
    assert step.allocations == 0 and step.foreign_allocations == 0, step
    if graph:
        assert (step.graph_launches, step.kernel_launches) == (1, 0), step
        assert step.graph_kernels > 10
    else:
        assert step.graph_launches == 0 and step.kernel_launches > 10


def test_the_data_goes_to_the_device_once_per_run(data) -> None:
    x, t, xt, tt = data
    _, _, counts = fit(data, "cuda", iters=30)
    uploads = x.nbytes + t.astype(np.intp).nbytes + xt.nbytes + tt.astype(np.intp).nbytes
    indices = trainer.chunk_length(5) * 5 * 8  # one chunk of batch indices
    assert counts.h2d_bytes <= uploads + indices + 1024, counts
    assert counts.h2d_copies <= 6, counts  # x and t of both sets, the chunk, the params?
    assert counts.d2h_bytes < 4096, counts  # accuracies and losses only, never the data


@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_data_already_on_a_gpu_is_not_copied_to_the_host_and_back(data, device) -> None:
    """trainer._prepare copied CuPy inputs to the host and back (issue 16); data on
    another GPU than the net's is copied across, not refused."""
    x, t, xt, tt = (cupy.asarray(a) for a in data)  # on device 0
    net = TwoLayerNet(D, H, C, seed=2, device=device)
    with cupy_standin.counting() as counts:
        train(net, x, t, xt, tt, iters_num=3, batch_size=5, seed=9)
    assert counts.h2d_bytes <= trainer.chunk_length(5) * 5 * 8 + 64, counts
    assert counts.d2h_bytes < 1024, counts
    expected, _, _ = fit(data, "cpu", iters=3)
    same({k: cupy.asnumpy(v) for k, v in net.params.items()}, expected, atol=1e-12)


@pytest.mark.parametrize("graph", [False, True])
def test_a_stopped_run_resumes_to_the_uninterrupted_numbers(data, graph) -> None:
    whole, whole_h, _ = fit(data, "cuda", iters=9, graph=graph)
    net = TwoLayerNet(D, H, C, seed=2, device="cuda")
    x, t, xt, tt = data
    steps = iter(range(100))
    history = train(net, x, t, xt, tt, iters_num=9, batch_size=5, seed=9, cuda_graph=graph,
                    stop=lambda: next(steps) == 3)
    assert history.iterations == 4
    history = train(net, x, t, xt, tt, iters_num=9, batch_size=5, seed=9, cuda_graph=graph,
                    history=history)
    same({k: cupy.asnumpy(v) for k, v in net.params.items()}, whole)
    assert history.train_loss_list == whole_h.train_loss_list


def test_chunks_change_under_a_captured_graph(data, monkeypatch) -> None:
    """A chunk of 3 iterations: the graph keeps its buffers, the indices are new ones."""
    monkeypatch.setattr(trainer, "INDEX_BUDGET", 15)  # 3 batches of 5
    cpu, cpu_h, _ = fit(data, "cpu", iters=8)
    graph, graph_h, counts = fit(data, "cuda", iters=8, graph=True)
    same(graph, cpu, atol=1e-12)
    assert counts.graph_launches == 7


def test_a_capture_that_breaks_a_rule_fails_loudly(data, monkeypatch) -> None:
    """An allocation inside the captured step is refused, never silently run eagerly."""
    real = trainer._DeviceStep.step

    def allocating(self) -> None:
        real(self)
        self.xp.zeros(3)  # a new array: the pool would reuse it under the graph

    monkeypatch.setattr(trainer._DeviceStep, "step", allocating)
    with pytest.raises(cupy_standin.StandinRuleError, match="allocation of 24 bytes while"):
        fit(data, "cuda", iters=4, graph=True)
    fit(data, "cuda", iters=4, graph=False)  # eager: allowed


def test_a_read_inside_the_captured_step_fails_loudly(data, monkeypatch) -> None:
    real = trainer._DeviceStep.step

    def reading(self) -> None:
        real(self)
        float(self.loss)

    monkeypatch.setattr(trainer._DeviceStep, "step", reading)
    with pytest.raises(RuntimeError, match="capturing, so D2H transfers are disallowed"):
        fit(data, "cuda", iters=4, graph=True)


def test_the_progress_bar_and_history_are_the_cpus(data) -> None:
    _, cpu_h, _ = fit(data, "cpu", iters=12, batch=50)
    _, gpu_h, _ = fit(data, "cuda", iters=12, batch=50)
    cpu_d, gpu_d = dataclasses.asdict(cpu_h), dataclasses.asdict(gpu_h)
    for key in ("eval_iterations", "iterations", "train_acc_list", "test_acc_list", "seed"):
        assert gpu_d[key] == cpu_d[key], key
    assert isinstance(gpu_h, History)
