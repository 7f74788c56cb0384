"""The mini-batch loop: the book's rules, determinism, divergence, real-data accuracy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xpnet.trainer import DivergenceError, History, iter_per_epoch, train
from xpnet.two_layer_net import TwoLayerNet

SCRIPTS = Path(__file__).parent / "scripts"


def blobs(rng, n, d=8, c=3, centers=None):
    """Separable clusters: a tiny problem the net must learn."""
    if centers is None:
        centers = np.random.default_rng(0).normal(scale=3.0, size=(c, d))
    t = rng.integers(0, c, size=n)
    return (centers[t] + rng.normal(size=(n, d))).astype(np.float64), t


def test_book_epoch_rule_gives_17_evaluations_for_mnist_sizes() -> None:
    assert iter_per_epoch(60000, 100) == 600
    assert iter_per_epoch(50, 100) == 1
    assert len([i for i in range(10000) if i % iter_per_epoch(60000, 100) == 0]) == 17


def test_learns_a_small_problem_and_evaluates_on_the_books_schedule(rng) -> None:
    x, t = blobs(rng, 500)
    xt, tt = blobs(np.random.default_rng(1), 200)
    seen = []
    net = TwoLayerNet(8, 16, 3, weight_init_std=0.1, seed=0)
    h = train(net, x, t, xt, tt, iters_num=120, batch_size=50, learning_rate=0.5, seed=0,
              on_epoch=lambda i, a, b: seen.append(i))
    assert isinstance(h, History)
    assert seen == h.eval_iterations == list(range(0, 120, 10))
    assert len(h.train_loss_list) == 120
    assert all(isinstance(v, float) for v in h.train_loss_list)
    assert np.mean(h.train_loss_list[-10:]) < 0.5 * np.mean(h.train_loss_list[:10])
    assert h.test_acc_list[-1] > 0.9


def test_same_seed_same_history_and_one_hot_labels_change_nothing(rng) -> None:
    x, t = blobs(rng, 300)
    runs = []
    for labels in (t, np.eye(3)[t], t):
        net = TwoLayerNet(8, 10, 3, seed=5)
        runs.append(train(net, x, labels, x, labels, iters_num=40, batch_size=30, seed=11))
    assert runs[0].train_loss_list == runs[2].train_loss_list
    assert runs[0].train_acc_list == runs[2].train_acc_list
    assert runs[0].train_loss_list == runs[1].train_loss_list
    assert runs[0].test_acc_list == runs[1].test_acc_list
    other = train(TwoLayerNet(8, 10, 3, seed=5), x, t, x, t, iters_num=40, batch_size=30,
                  seed=12)
    assert other.train_loss_list != runs[0].train_loss_list


def test_numerical_gradient_training_matches_backprop(rng) -> None:
    x, t = blobs(rng, 200, d=6)
    results = {}
    for grad in ("backprop", "numerical"):
        net = TwoLayerNet(6, 5, 3, weight_init_std=0.3, seed=2)
        h = train(net, x, t, x, t, iters_num=30, batch_size=20, learning_rate=0.3,
                  grad=grad, seed=3)
        results[grad] = (h, net)
    (hb, nb), (hn, nn) = results["backprop"], results["numerical"]
    np.testing.assert_allclose(hn.train_loss_list, hb.train_loss_list, rtol=1e-6)
    np.testing.assert_allclose(nn.params["W1"], nb.params["W1"], atol=1e-7)


def test_divergence_names_the_iteration_and_suggests_a_smaller_rate() -> None:
    # The book's loss is bounded by -log(1e-7) until the logits overflow to inf - inf = nan.
    x, t = blobs(np.random.default_rng(0), 100)
    net = TwoLayerNet(8, 10, 3, seed=1, dtype="float32")
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(
        DivergenceError, match=r"the loss became nan at iteration 12: .*smaller learning rate"
    ):
        train(net, x, t, x, t, iters_num=50, batch_size=10, learning_rate=1e38, seed=0)


def test_bad_arguments_are_rejected_before_training(rng) -> None:
    x, t = blobs(rng, 50)
    net = TwoLayerNet(8, 4, 3)
    with pytest.raises(ValueError, match="grad must be one of backprop, numerical"):
        train(net, x, t, x, t, grad="adam")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        train(net, x, t, x, t, batch_size=0)
    with pytest.raises(ValueError, match="learning_rate must be a positive number"):
        train(net, x, t, x, t, learning_rate=float("nan"))
    with pytest.raises(ValueError, match=r"x_train has shape \(50, 7\)"):
        train(net, x[:, :7], t, x, t)
    with pytest.raises(ValueError, match=r"t_test has labels 0\.\.5, expected 0\.\.2"):
        train(net, x, t, x, np.arange(50) % 6)
    x_nan = x.copy()
    x_nan[3, 2] = np.nan
    with pytest.raises(ValueError, match="x_train contains NaN or infinite values"):
        train(net, x_nan, t, x, t)


@pytest.mark.slow
def test_the_books_script_with_only_its_imports_changed_learns_fashion_mnist(fashion) -> None:
    out = subprocess.run([sys.executable, str(SCRIPTS / "train_neuralnet.py"), "2000"],
                         capture_output=True, text=True, timeout=600, check=True)
    lines = out.stdout.splitlines()
    assert sum(line.startswith("train acc, test acc | ") for line in lines) == 4
    assert float(lines[-1].split("|")[1]) >= 0.78


@pytest.mark.slow
def test_full_default_run_on_fashion_mnist_float64_and_float32_agree(fashion) -> None:
    (x_train, t_train), (x_test, t_test) = fashion
    final = {}
    for dtype in ("float64", "float32"):
        net = TwoLayerNet(784, 50, 10, seed=0, dtype=dtype)
        h = train(net, x_train, t_train, x_test, t_test, seed=0)
        assert len(h.test_acc_list) == 17
        final[dtype] = h.test_acc_list[-1]
    assert final["float64"] >= 0.84
    assert abs(final["float64"] - final["float32"]) <= 0.01


@pytest.mark.cuda
@pytest.mark.parametrize("grad", ["backprop", "numerical"])
def test_gpu_training_follows_the_cpu(rng, grad) -> None:
    x, t = blobs(rng, 300)
    runs = {}
    for device in ("cpu", "cuda"):
        net = TwoLayerNet(8, 10, 3, weight_init_std=0.3, seed=5, device=device)
        runs[device] = train(net, x, t, x, t, iters_num=60, batch_size=30, seed=1, grad=grad)
    np.testing.assert_allclose(runs["cuda"].train_loss_list, runs["cpu"].train_loss_list,
                               rtol=1e-7)
    assert runs["cuda"].test_acc_list == runs["cpu"].test_acc_list
