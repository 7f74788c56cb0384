"""xpnet.run: a config in, a result out, and a run folder that is never mixed or half-written."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from run_toys import stopped_and_resumed

from xpnet import run_plots
from xpnet.errors import DivergenceError, InputError, RunFolderError
from xpnet.run import run
from xpnet.run_config import RunConfig
from xpnet.run_folder import claim_dir, new_run_dir, read_checkpoint, read_metrics, write_run
from xpnet.two_layer_net import TwoLayerNet


@dataclass(eq=False)  # compared by identity, like xpnet.dataset.Dataset
class Data:
    """Stands in for xpnet.dataset.Dataset: separable uint8 'images' of 10 classes."""

    x_train: np.ndarray
    t_train: np.ndarray
    x_test: np.ndarray
    t_test: np.ndarray
    name: str = "fashion-mnist"


@pytest.fixture(scope="module")
def data() -> Data:
    rng = np.random.default_rng(5)
    centers = rng.integers(0, 256, size=(10, 784))

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        t = rng.integers(0, 10, size=n).astype(np.uint8)
        x = np.clip(centers[t] + rng.normal(scale=40, size=(n, 784)), 0, 255).astype(np.uint8)
        return x, t

    return Data(*split(400), *split(100))


CONFIG = RunConfig(dataset="fashion-mnist", iters=45, batch_size=20, seed=3, hidden=8,
                   weight_init_std=0.1, lr=0.5)


def test_a_run_folder_holds_one_finished_run(data, tmp_path) -> None:
    out = claim_dir(tmp_path / "a")
    result = run(CONFIG, data=data, out=out, command=["xpnet", "train"])
    assert result.status == "finished" and result.final_test_acc > 0.5
    assert sorted(p.name for p in out.iterdir()) == [
        "accuracy.png", "checkpoint.npz", "loss.png", "metrics.json", "params.npz"]
    m = read_metrics(out)
    assert m["schema_version"] == 1 and m["status"] == "finished"
    assert m["config"] == CONFIG.to_dict() and "device" not in m  # named once, in config
    assert m["config"]["weight_init_std"] == 0.1
    assert m["iter_per_epoch"] == 20 and isinstance(m["iter_per_epoch"], int)
    assert m["iterations_done"] == 45 and len(m["train_loss_list"]) == 45
    assert "forward pass that gave its gradient" in m["train_loss_note"]
    assert m["data"]["name"] == "fashion-mnist" and m["data"]["train_size"] == 400
    env = m["environment"]
    assert env["libraries"]["numpy"] == np.__version__ and env["cpu_count"] >= 1
    assert {"host", "blas_threads", "numba_threads", "python"} <= set(env)
    assert m["final_test_acc"] == result.final_test_acc
    assert m["best_test_acc"] == max(m["final_test_acc"], *(e["test_acc"] for e in m["epochs"]))
    net = TwoLayerNet.load(out / "params.npz")
    for key, value in result.params.items():
        np.testing.assert_array_equal(net.params[key], value)


def test_the_same_config_and_seed_give_the_same_numbers_with_or_without_a_folder(data,
                                                                                 tmp_path):
    a = run(CONFIG, data=data)
    b = run(CONFIG, data=data, out=claim_dir(tmp_path / "b"))
    assert a.history.train_loss_list == b.history.train_loss_list
    assert a.final_test_acc == b.final_test_acc


@pytest.mark.parametrize("stops", [[1], [17], [20, 7], [44]])
def test_a_stopped_run_resumes_to_the_uninterrupted_files(data, tmp_path, stops) -> None:
    whole = claim_dir(tmp_path / "whole")
    run(CONFIG, data=data, out=whole)
    out = claim_dir(tmp_path / "parts")
    stopped_and_resumed(CONFIG, data, out, stops)
    with np.load(whole / "params.npz") as a, np.load(out / "params.npz") as b:
        for key in ("W1", "b1", "W2", "b2"):
            np.testing.assert_array_equal(a[key], b[key])
    ma, mb = read_metrics(whole), read_metrics(out)
    for key in ("epochs", "final_train_acc", "final_test_acc", "train_loss_list", "config"):
        assert ma[key] == mb[key], key


def test_a_checkpoint_exists_before_the_first_step_ends(data, tmp_path) -> None:
    # So a run killed at any moment can be resumed.
    out = claim_dir(tmp_path / "a")
    seen = []

    def stop() -> bool:
        seen.append(read_checkpoint(out)["history"].iterations)
        return True

    run(CONFIG, data=data, out=out, stop=stop)
    assert seen == [0]
    assert read_metrics(out)["status"] == "interrupted"
    state = read_checkpoint(out)
    assert state["config"] == CONFIG and state["history"].iterations == 1


def test_a_diverging_run_is_recorded_as_failed(data, tmp_path) -> None:
    out = claim_dir(tmp_path / "a")
    with np.errstate(all="ignore"), pytest.raises(DivergenceError):
        run(RunConfig(iters=30, batch_size=20, seed=1, lr=1e300, dtype="float32"), data=data,
            out=out)
    m = read_metrics(out)
    assert m["status"] == "failed" and "diverged" in m["error"]


def test_folders_that_are_not_new_and_empty_are_refused(tmp_path) -> None:
    (tmp_path / "full" / "metrics.json").mkdir(parents=True)
    (tmp_path / "file").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for bad, match in ((tmp_path / "full", "already holds files"),
                       (tmp_path / "file", "not a folder"),
                       (tmp_path / "file" / "run", "cannot write"),
                       (tmp_path / "dangling", "dangling symbolic link"),
                       ("", "empty name"),
                       (Path("/proc/xpnet-run"), "cannot write")):
        with pytest.raises(RunFolderError, match=match):
            claim_dir(bad)
    assert claim_dir(tmp_path / "new" / "run").is_dir()


def test_new_run_folders_never_collide(tmp_path) -> None:
    made = {new_run_dir(tmp_path) for _ in range(200)}  # all within a second or two
    assert len(made) == 200 and all(p.is_dir() for p in made)


def test_resume_needs_a_checkpoint(tmp_path) -> None:
    with pytest.raises(RunFolderError, match="is empty: its run stopped before training began"):
        run(CONFIG, out=tmp_path, resume=True)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match="holds no checkpoint.npz"):
        run(CONFIG, out=tmp_path, resume=True)
    (tmp_path / "checkpoint.npz").write_bytes(b"junk")
    with pytest.raises(RunFolderError, match="checkpoint.npz is damaged"):
        read_checkpoint(tmp_path)


@pytest.mark.parametrize(("field", "value", "match"), [
    ("iters", 0, "iters must be a positive integer"),
    ("lr", float("inf"), "lr must be a positive finite number"),
    ("dataset", "cifar", "dataset must be one of mnist, fashion-mnist"),
    ("seed", -1, "seed must be an integer"),
    ("grad", "adam", "grad must be one of backprop, numerical"),
])
def test_a_bad_config_is_refused(field, value, match) -> None:
    with pytest.raises(InputError, match=match):
        RunConfig(**{field: value})
    with pytest.raises(InputError, match="unknown run settings: colour"):
        RunConfig.from_dict({"colour": "red"})


def test_accuracy_plot_always_has_a_line(data, tmp_path) -> None:
    # 10 iterations are less than an epoch: one evaluation, then the end of the run.
    result = run(RunConfig(iters=10, batch_size=20, seed=1, hidden=8), data=data)
    doc = write_run(tmp_path, result)
    epochs, train, test = run_plots.accuracy_points(doc)
    assert list(epochs) == [0.0, 0.5]
    assert test[-1] == result.final_test_acc and train[-1] == result.final_train_acc
    assert (tmp_path / "accuracy.png").stat().st_size > 10_000


def test_loss_plot_smooths_with_a_centred_window() -> None:
    values = np.arange(10, dtype=float)
    np.testing.assert_allclose(run_plots.centred_mean(values, 3)[1:-1], values[1:-1])
    # At the ends the window shrinks on both sides: the mean starts where the values do,
    # not pulled towards the later ones (1.85 where the first batch losses were 2.30).
    losses = np.array([2.3, 2.3, 2.2, 1.0, 0.5, 0.4, 0.4, 0.3, 0.3, 0.2])
    smooth = run_plots.centred_mean(losses, 6)
    assert smooth[0] == 2.3 and smooth[-1] == pytest.approx(0.2, abs=1e-12)
    np.testing.assert_allclose(smooth[1], np.mean(losses[:3]))
    np.testing.assert_allclose(smooth[4], np.mean(losses[1:8]))


def test_the_loss_legend_never_covers_the_curve(data, tmp_path) -> None:
    # A flat loss fills the axes from side to side: the legend must sit outside them.
    result = run(RunConfig(iters=40, batch_size=20, seed=1, hidden=8, lr=1e-6), data=data)
    doc = write_run(tmp_path, result)
    fig = run_plots.loss_figure(doc)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    assert not legend.overlaps(ax.get_window_extent(renderer))


def test_metrics_are_json_with_a_schema_version(data, tmp_path) -> None:
    out = claim_dir(tmp_path / "a")
    run(CONFIG, data=data, out=out)
    assert json.loads((out / "metrics.json").read_text())["schema_version"] == 1


def test_runs_on_one_data_set_share_its_float_arrays(data) -> None:
    # A sweep worker runs many trials on one data set: convert it once per dtype.
    from xpnet.run import float_arrays

    a, b = float_arrays(data, "float64"), float_arrays(data, "float64")
    assert all(x is y for x, y in zip(a, b, strict=True))
    assert not a[0].flags.writeable  # shared, so nobody may change them
    assert float_arrays(data, "float32")[0].dtype == np.float32
    np.testing.assert_array_equal(a[0], data.x_train.astype(np.float32) / 255)
