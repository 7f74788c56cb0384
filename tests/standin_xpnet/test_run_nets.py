"""Runs of the book's chapter 6-8 nets on a GPU (the stand-in): the CPU's numbers, the step
captured as one CUDA graph (LayeredStep), a stop and resume continuing the same run."""

from __future__ import annotations

import dataclasses

import cupy_standin
import numpy as np
import pytest
from run_toys import toy_data

from xpnet.run import run
from xpnet.run_config import RunConfig
from xpnet.run_folder import claim_dir

MULTI = RunConfig(dataset="fashion-mnist", net="multi-layer", hidden=(12, 8), optimizer="adam",
                  weight_decay=0.01, iters=12, batch_size=10, seed=3)
CONV = RunConfig(dataset="fashion-mnist", net="simple-conv", hidden=8, optimizer="momentum",
                 lr=0.05, iters=8, batch_size=5, seed=4)
DEEP = RunConfig(dataset="fashion-mnist", net="deep-conv", iters=4, batch_size=4, seed=6)


@pytest.fixture(scope="module")
def data():
    return toy_data(train=40, test=10, seed=8)


def same(a, b, atol: float) -> None:
    assert list(a.params) == list(b.params)
    for key in a.params:
        np.testing.assert_allclose(a.params[key], b.params[key], rtol=0, atol=atol,
                                   err_msg=key)
    np.testing.assert_allclose(a.history.train_loss_list, b.history.train_loss_list, rtol=0,
                               atol=atol)
    assert a.history.test_acc_list == b.history.test_acc_list
    assert a.final_test_acc == b.final_test_acc


@pytest.mark.parametrize("config", [MULTI, CONV, DEEP],
                         ids=["multi-layer", "simple-conv", "deep-conv"])
def test_a_book_net_run_on_cuda_gives_the_cpus_numbers_in_one_graph_launch_a_step(
        data, config) -> None:
    cpu = run(config, data=data)
    eager = run(dataclasses.replace(config, device="cuda", cuda_graph=False), data=data)
    with cupy_standin.counting() as counts:
        graph = run(dataclasses.replace(config, device="cuda"), data=data)
    same(graph, eager, atol=0.0)  # a replay is the eager step, bit for bit
    same(eager, cpu, atol=1e-12)
    assert counts.graph_launches == config.iters - 1  # the first step runs eagerly


@pytest.mark.parametrize("config", [MULTI, DEEP], ids=["multi-layer", "deep-conv"])
def test_a_book_net_run_stopped_on_cuda_resumes_to_the_run_never_stopped(data, tmp_path,
                                                                         config) -> None:
    # Adam's moments and count, and DeepConvNet's dropout masks, continue where they were.
    config = dataclasses.replace(config, device="cuda")
    whole = run(config, data=data)
    out = claim_dir(tmp_path / "parts")
    calls = iter(range(10**6))
    assert run(config, data=data, out=out,
               stop=lambda: next(calls) == 2).status == "interrupted"
    resumed = run(config, data=data, out=out, resume=True)
    same(resumed, whole, atol=0.0)


def test_an_optimizer_the_layered_step_does_not_know_trains_eagerly_on_cuda(data) -> None:
    # a subclass of SGD or a reader's own update: the eager step on a stream of its own,
    # the CPU's numbers, no graph
    from xpnet import nets
    from xpnet.common.optimizer import SGD
    from xpnet.run import float_arrays
    from xpnet.trainer import train

    class SubSGD(SGD):
        pass

    x, t, xt, tt = float_arrays(data, "float64")
    results = []
    for device, opt in (("cpu", SGD(lr=0.1)), ("cuda", SubSGD(lr=0.1))):
        net = nets.build("multi-layer", features=784, classes=10, hidden=(12, 8),
                         activation="relu", weight_init_std="he", weight_decay=0.01,
                         dtype="float64", device=device, seed=3)
        with cupy_standin.counting() as counts:
            h = train(net, x, t, xt, tt, iters_num=6, batch_size=10, seed=9, optimizer=opt)
        results.append((h, net.host_params(), counts))
    (cpu, cpu_params, _), (gpu, gpu_params, counts) = results
    assert counts.graph_launches == 0
    np.testing.assert_allclose(gpu.train_loss_list, cpu.train_loss_list, rtol=0, atol=1e-12)
    for key, want in cpu_params.items():
        np.testing.assert_allclose(gpu_params[key], want, rtol=0, atol=1e-12, err_msg=key)


def test_a_run_on_a_second_gpu_scores_its_first_eval_samples_as_the_cpu(data) -> None:
    config = dataclasses.replace(MULTI, eval_samples=7, iters=5)
    cpu = run(config, data=data)
    gpu = run(dataclasses.replace(config, device="cuda:1"), data=data)
    assert gpu.history.train_acc_list == cpu.history.train_acc_list
    assert (gpu.final_train_acc, gpu.final_test_acc) == (cpu.final_train_acc,
                                                         cpu.final_test_acc)
