"""Runs of the book's chapter 6-8 nets (``RunConfig(net=...)``): stop and resume bit for bit
with the optimizer's state in the checkpoint, params.npz, metrics.json, load_net."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from run_toys import stopped_and_resumed, toy_data

from xpnet import run_plots
from xpnet.errors import RunFolderError
from xpnet.run import float_arrays, run
from xpnet.run_config import RunConfig
from xpnet.run_folder import (
    CHECKPOINT,
    METRICS,
    PARAMS,
    claim_dir,
    load_net,
    read_checkpoint,
    read_metrics,
    write_run,
)
from xpnet.two_layer_net import TwoLayerNet

MULTI = RunConfig(dataset="fashion-mnist", net="multi-layer", hidden=(20, 10), optimizer="adam",
                  weight_decay=0.01, iters=45, batch_size=20, seed=3)
CONV = RunConfig(dataset="fashion-mnist", net="simple-conv", hidden=10, optimizer="momentum",
                 lr=0.05, iters=14, batch_size=10, seed=4)
DEEP = RunConfig(dataset="fashion-mnist", net="deep-conv", iters=6, batch_size=4, seed=6)


@pytest.fixture(autouse=True)
def _cpu(monkeypatch) -> None:
    monkeypatch.setenv("XPNET_DEVICE", "cpu")


@pytest.fixture(scope="module")
def data():
    return toy_data(train=400, test=100)


@pytest.fixture(scope="module")
def tiny():
    return toy_data(train=60, test=20, seed=8)


@pytest.fixture(scope="module")
def finished(data, tiny, tmp_path_factory) -> dict[str, Path]:
    """A folder of one uninterrupted run of each config, keyed by net."""
    folders = {}
    for config, d in ((MULTI, data), (CONV, tiny)):
        out = claim_dir(tmp_path_factory.mktemp(config.net) / "run")
        assert run(config, data=d, out=out).status == "finished"
        folders[config.net] = out
    return folders


def npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def assert_same_run(a: Path, b: Path) -> None:
    """Two run folders with the same numbers, bit for bit."""
    pa, pb = npz(a / PARAMS), npz(b / PARAMS)
    assert list(pa) == list(pb)
    for key in pa:
        np.testing.assert_array_equal(pa[key], pb[key], err_msg=key)
    ca, cb = read_checkpoint(a), read_checkpoint(b)
    (oa, sa), (ob, sb) = ca["optimizer"], cb["optimizer"]
    assert sorted(oa) == sorted(ob) and sa == sb
    for key in oa:
        np.testing.assert_array_equal(oa[key], ob[key], err_msg=key)
    ma, mb = read_metrics(a), read_metrics(b)
    for key in ("epochs", "final_train_acc", "final_test_acc", "train_loss_list", "config",
                "net", "iterations_done"):
        assert ma[key] == mb[key], key


def test_a_multi_layer_run_by_adam_stopped_and_resumed_is_the_run_never_stopped(
        data, finished, tmp_path) -> None:
    out = claim_dir(tmp_path / "parts")
    stopped_and_resumed(MULTI, data, out, [7, 20])
    assert_same_run(finished["multi-layer"], out)
    arrays, scalars = read_checkpoint(out)["optimizer"]
    assert scalars == {"iter": 45}  # Adam's step count came back with its moments
    assert sorted(arrays) == sorted(f"{m}.{p}" for m in "mv" for p in
                                    ("W1", "b1", "W2", "b2", "W3", "b3"))


def test_a_simple_conv_run_by_momentum_stopped_and_resumed_is_the_run_never_stopped(
        tiny, finished, tmp_path) -> None:
    out = claim_dir(tmp_path / "parts")
    stopped_and_resumed(CONV, tiny, out, [4, 5])
    assert_same_run(finished["simple-conv"], out)
    arrays, _ = read_checkpoint(out)["optimizer"]
    assert "v.W1" in arrays and arrays["v.W1"].shape == (30, 1, 5, 5)
    assert np.abs(arrays["v.W1"]).max() > 0


def test_a_deep_conv_run_with_dropout_stopped_and_resumed_is_the_run_never_stopped(
        tmp_path) -> None:
    d = toy_data(train=20, test=8, seed=9)
    whole = claim_dir(tmp_path / "whole")
    run(DEEP, data=d, out=whole)
    out = claim_dir(tmp_path / "parts")
    stopped_and_resumed(DEEP, d, out, [3])
    assert_same_run(whole, out)


def test_load_net_gives_the_runs_net_and_its_final_accuracy(data, tiny, finished) -> None:
    for config, d in ((MULTI, data), (CONV, tiny)):
        out = finished[config.net]
        net, metrics = load_net(out)
        assert not isinstance(net, TwoLayerNet) and net.describe() == metrics["net"]
        _, _, x_test, t_test = float_arrays(d, config.dtype)
        assert net.accuracy(x_test, t_test) == metrics["final_test_acc"]
        # the book's own load_params reads a run's params.npz (its arrays, by name)
        assert list(npz(out / PARAMS)) == list(net.param_names)


def test_metrics_record_the_net_its_optimizer_and_weight_decay(finished) -> None:
    m = read_metrics(finished["multi-layer"])
    c = m["config"]
    assert (c["net"], c["optimizer"], c["weight_decay"], c["lr"]) == (
        "multi-layer", "adam", 0.01, 0.001)
    assert c["hidden"] == [20, 10] and c["activation"] == "relu"
    assert m["net"].startswith("MultiLayerNet(784, [20, 10], 10")
    assert "multi-layer by adam" in run_plots.title(m) and "weight decay 0.01" in \
        run_plots.title(m)
    assert read_metrics(finished["simple-conv"])["config"]["optimizer"] == "momentum"


def test_a_checkpoint_missing_an_optimizer_member_is_one_line(data, finished, tmp_path) -> None:
    out = tmp_path / "cut"
    out.mkdir()
    src = finished["multi-layer"] / CHECKPOINT
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out / CHECKPOINT, "w") as zout:
        for item in zin.infolist():
            if item.filename != "v.W2.npy":
                zout.writestr(item, zin.read(item.filename))
    with pytest.raises(RunFolderError) as err:
        run(MULTI, data=data, out=out, resume=True)
    assert "checkpoint.npz is damaged (no v.W2)" in str(err.value)
    assert "\n" not in str(err.value)
    # a member of the wrong shape: the state does not fit the run's net
    arrays = npz(src)
    arrays["v.W2"] = arrays["v.W2"][:3]
    np.savez(out / CHECKPOINT, **arrays)
    with pytest.raises(RunFolderError, match=r"does not fit its run's MultiLayerNet.*v\.W2.*"
                                             "it is damaged") as err:
        run(MULTI, data=data, out=out, resume=True)
    assert "\n" not in str(err.value)


def test_a_two_layer_folder_of_an_older_xpnet_loads_and_resumes(data, tmp_path) -> None:
    # Its config lacks net, activation, weight_decay and optimizer; its checkpoint's state
    # names no members and holds no optimizer state.
    config = RunConfig(dataset="fashion-mnist", iters=45, batch_size=20, seed=3, hidden=8,
                       weight_init_std=0.1, lr=0.5)
    whole = claim_dir(tmp_path / "whole")
    run(config, data=data, out=whole)
    out = claim_dir(tmp_path / "old")
    calls = iter(range(10**6))
    run(config, data=data, out=out, stop=lambda: next(calls) == 16)
    new_keys = ("net", "activation", "weight_decay", "optimizer")
    state, arrays = _checkpoint_members(out / CHECKPOINT)
    state = {k: v for k, v in state.items() if k not in ("param_names", "optimizer")}
    state["config"] = {k: v for k, v in state["config"].items() if k not in new_keys}
    arrays["state"] = np.array(json.dumps(state))
    np.savez(out / CHECKPOINT, **arrays)
    metrics = json.loads((out / METRICS).read_text())
    metrics["config"] = {k: v for k, v in metrics["config"].items() if k not in new_keys}
    (out / METRICS).write_text(json.dumps(metrics))
    assert read_checkpoint(out)["optimizer"] == ({}, {})
    assert run(config, data=data, out=out, resume=True).status == "finished"
    for key, value in npz(whole / PARAMS).items():
        np.testing.assert_array_equal(npz(out / PARAMS)[key], value, err_msg=key)
    assert read_metrics(out)["train_loss_list"] == read_metrics(whole)["train_loss_list"]
    net, _ = load_net(whole)
    assert isinstance(net, TwoLayerNet)


def _checkpoint_members(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    arrays = npz(path)
    return json.loads(str(arrays["state"])), arrays


def test_a_result_written_by_another_process_holds_the_runs_checkpoint(data, finished,
                                                                       tmp_path) -> None:
    # A sweep's client writes each trial's folder from the result its worker sent back.
    result = run(MULTI, data=data)
    write_run(tmp_path, result)
    assert_same_run(finished["multi-layer"], tmp_path)
    arrays, scalars = read_checkpoint(tmp_path)["optimizer"]
    assert scalars == {"iter": 45} and len(arrays) == 12


def test_an_adam_count_other_than_the_runs_iterations_is_a_damaged_checkpoint(
        data, tmp_path) -> None:
    # Adam's bias correction comes from its count: one update per iteration, or the
    # resumed run's numbers are not the run's.
    out = claim_dir(tmp_path / "run")
    calls = iter(range(10**6))
    run(MULTI, data=data, out=out, stop=lambda: next(calls) == 6)
    state, arrays = _checkpoint_members(out / CHECKPOINT)
    assert state["optimizer"]["scalars"] == {"iter": 7}
    state["optimizer"]["scalars"]["iter"] = 1000000
    arrays["state"] = np.array(json.dumps(state))
    np.savez(out / CHECKPOINT, **arrays)
    with pytest.raises(RunFolderError, match=r"checkpoint.npz says Adam made 1000000 updates "
                                             r"in 7 iterations.*it is damaged") as err:
        run(MULTI, data=data, out=out, resume=True)
    assert "\n" not in str(err.value)


def test_a_conv_run_evaluates_on_its_first_eval_samples_and_its_final_test_on_all(
        tiny, tmp_path) -> None:
    import dataclasses

    config = dataclasses.replace(CONV, eval_samples=8, iters=7)
    out = claim_dir(tmp_path / "run")
    seen = []
    result = run(config, data=tiny, out=out, on_epoch=lambda *a: seen.append(a))
    net, m = load_net(out)
    x, t, xt, tt = float_arrays(tiny, config.dtype)  # 60 train, 20 test images
    assert (m["eval_samples"], m["final_train_acc_samples"], m["final_test_acc_samples"]) == (
        8, 8, 20)
    assert result.final_train_acc == net.accuracy(x[:8], t[:8]) == m["final_train_acc"]
    assert result.final_test_acc == net.accuracy(xt, tt) == m["final_test_acc"]
    # the evaluation after the last step (iteration 6: an epoch is 6) scored the same 8
    assert seen[-1] == (6, result.final_train_acc, net.accuracy(xt[:8], tt[:8]))
    assert CONV.eval_samples == 1000  # the conv nets' default: the book Trainer's


def test_a_set_smaller_than_eval_samples_is_scored_whole(finished) -> None:
    m = read_metrics(finished["simple-conv"])  # 1000 of 60 train and 20 test images
    assert (m["eval_samples"], m["final_train_acc_samples"], m["final_test_acc_samples"]) == (
        1000, 60, 20)


def test_a_checkpoint_of_an_older_xpnet_evaluates_every_image_as_it_did(tiny,
                                                                         tmp_path) -> None:
    out = claim_dir(tmp_path / "old")
    calls = iter(range(10**6))
    run(CONV, data=tiny, out=out, stop=lambda: next(calls) == 3)
    state, arrays = _checkpoint_members(out / CHECKPOINT)
    del state["config"]["eval_samples"]
    arrays["state"] = np.array(json.dumps(state))
    np.savez(out / CHECKPOINT, **arrays)
    assert read_checkpoint(out)["config"].eval_samples == 0
    assert run(CONV, data=tiny, out=out, resume=True).status == "finished"
    m = read_metrics(out)
    assert (m["config"]["eval_samples"], m["final_train_acc_samples"]) == (0, 60)
