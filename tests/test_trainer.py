"""The mini-batch loop: the book's rules, determinism, divergence, real-data accuracy."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from xpnet import trainer
from xpnet.inputs import InputError
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


def test_divergence_names_the_first_bad_iteration_and_suggests_a_smaller_rate() -> None:
    # The book's loss is bounded by -log(1e-7) until the logits overflow to inf - inf = nan.
    x, t = blobs(np.random.default_rng(0), 100)

    def attempt(iters: int) -> None:
        net = TwoLayerNet(8, 10, 3, seed=1, dtype="float32")
        train(net, x, t, x, t, iters_num=iters, batch_size=10, learning_rate=1e38, seed=0)

    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(DivergenceError,
                           match=r"the loss became nan at iteration \d+: .*smaller learning"):
            attempt(50)
        with pytest.raises(DivergenceError) as info:
            attempt(50)
        first = int(str(info.value).split("iteration ")[1].split(":")[0])
        assert first > 0
        attempt(first)  # iterations 0..first-1 are finite: no error
        with pytest.raises(DivergenceError, match=f"iteration {first}:"):
            attempt(first + 1)


def test_bad_arguments_are_rejected_before_training(rng) -> None:
    x, t = blobs(rng, 50)
    net = TwoLayerNet(8, 4, 3)
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(InputError, match="grad must be one of backprop, numerical"):
        train(net, x, t, x, t, grad="adam")
    with pytest.raises(InputError, match="batch_size must be a positive integer"):
        train(net, x, t, x, t, batch_size=0)
    with pytest.raises(InputError, match="learning_rate must be a positive finite number"):
        train(net, x, t, x, t, learning_rate=float("nan"))
    with pytest.raises(InputError, match=r"cuda_graph must be True, False or None"):
        train(net, x, t, x, t, cuda_graph="yes")
    with pytest.raises(InputError, match=r"x_train has shape \(50, 7\)"):
        train(net, x[:, :7], t, x, t)
    with pytest.raises(InputError, match=r"t_test holds label 5, outside 0\.\.2"):
        train(net, x, t, x, np.arange(50) % 6)
    # the same rule as TwoLayerNet's: no truncation of 2.99, no one-hot of the wrong width
    with pytest.raises(InputError, match=r"t_train holds 2\.99, not a class index"):
        train(net, x, np.where(t == 2, 2.99, t), x, t)
    with pytest.raises(InputError, match=r"t_train has shape \(50, 4\)"):
        train(net, x, np.eye(4)[t], x, t)
    with pytest.raises(InputError, match="x_test has no samples"):
        train(net, x, t, x[:0], t[:0])
    x_nan = x.copy()
    x_nan[3, 2] = np.nan
    with pytest.raises(InputError, match="x_train contains NaN or infinite values"):
        train(net, x_nan, t, x, t)
    for key in before:
        np.testing.assert_array_equal(net.params[key], before[key])


def test_a_step_that_cannot_fit_in_memory_is_refused_at_once(rng) -> None:
    x, t = blobs(rng, 50)
    net = TwoLayerNet(8, 4, 3)
    with pytest.raises(InputError, match=r"batch_size 300000000000 needs about .* GiB"):
        train(net, x, t, x, t, batch_size=300_000_000_000)


def test_batch_indices_are_drawn_in_chunks_of_bounded_size() -> None:
    # Memory for indices does not grow with the number of iterations.
    assert trainer.chunk_length(100) * 100 <= trainer.INDEX_BUDGET
    assert trainer.chunk_length(10**9) == 1
    first = trainer.batch_indices(7, 0, 100, 60000)
    assert first.shape == (trainer.chunk_length(100), 100) and first.max() < 60000
    np.testing.assert_array_equal(first, trainer.batch_indices(7, 0, 100, 60000))
    assert not np.array_equal(trainer.batch_indices(7, 1, 100, 60000)[:5], first[:5])


def test_runs_longer_than_a_chunk_match_the_chunk_rule(rng, monkeypatch) -> None:
    # With 7 iterations a chunk, 30 iterations cross four chunk boundaries; the batches
    # used must be the ones batch_indices gives (checked through the loss of each step).
    monkeypatch.setattr(trainer, "INDEX_BUDGET", 7 * 20)
    x, t = blobs(rng, 120)
    net = TwoLayerNet(8, 6, 3, weight_init_std=0.3, seed=4)
    h = train(net, x, t, x, t, iters_num=30, batch_size=20, seed=9)
    ref = TwoLayerNet(8, 6, 3, weight_init_std=0.3, seed=4)
    losses = []
    for i in range(30):
        idx = trainer.batch_indices(9, i // 7, 20, 120)[i % 7]
        loss, grads = ref.loss_and_gradient(x[idx], t[idx])
        for key in ref.params:
            ref.params[key] -= 0.1 * grads[key]
        losses.append(float(loss))
    assert h.train_loss_list == losses


def test_the_loss_log_is_bounded_and_keeps_the_mean(monkeypatch) -> None:
    monkeypatch.setattr(trainer, "MAX_LOSSES", 8)
    h = History()
    values = np.arange(37, dtype=np.float64)
    h._add_losses(values[:20])
    h._add_losses(values[20:])
    # Full at 8, 16 and 32 values: stride 8 after three halvings, 4 blocks kept, 5 pending
    assert h.loss_stride == 8
    assert h.train_loss_list == [values[i:i + 8].mean() for i in range(0, 32, 8)]
    assert h.loss_pending == (values[32:].sum(), 5)


@pytest.mark.parametrize("grad", ["backprop", "numerical"])
def test_stopped_and_continued_is_bit_for_bit_the_uninterrupted_run(rng, grad) -> None:
    def stop_after(steps: int) -> Callable[[], bool]:
        calls = iter(range(1000))
        return lambda: next(calls) == steps - 1

    x, t = blobs(rng, 200)
    xt, tt = blobs(np.random.default_rng(1), 50)
    whole_net = TwoLayerNet(8, 6, 3, weight_init_std=0.3, seed=4)
    whole = train(whole_net, x, t, xt, tt, iters_num=45, batch_size=20, seed=9, grad=grad)
    net = TwoLayerNet(8, 6, 3, weight_init_std=0.3, seed=4)
    part = train(net, x, t, xt, tt, iters_num=45, batch_size=20, seed=9, grad=grad,
                 stop=stop_after(17))
    assert part.iterations == 17
    for steps in (4, 12):  # stop twice more, continuing each time
        part = train(net, x, t, xt, tt, iters_num=45, batch_size=20, seed=9, grad=grad,
                     history=part, stop=stop_after(steps))
    assert part.iterations == 33
    part = train(net, x, t, xt, tt, iters_num=45, batch_size=20, seed=9, grad=grad,
                 history=part)
    assert part.iterations == whole.iterations == 45
    assert part.train_loss_list == whole.train_loss_list
    assert part.test_acc_list == whole.test_acc_list
    assert part.eval_iterations == whole.eval_iterations
    for key in net.params:
        np.testing.assert_array_equal(net.params[key], whole_net.params[key])


@pytest.mark.slow
def test_a_readers_chapter_4_script_learns_fashion_mnist(fashion) -> None:
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


@pytest.mark.parametrize("train_size", [1, 2, 7, 60])
def test_batch_indices_reach_every_sample_and_nothing_else(train_size) -> None:
    """Every index 0..N-1 can be drawn (an off-by-one never reaches N - 1), none past it."""
    drawn = np.concatenate([trainer.batch_indices(s, c, 50, train_size).ravel()
                            for s in (0, 1) for c in (0, 1)])
    assert drawn.min() == 0 and drawn.max() == train_size - 1
    assert np.unique(drawn).size == train_size


def test_batch_indices_of_different_seeds_and_chunks_are_independent() -> None:
    """Chunk c + 1 of seed s is not chunk c of seed s + 1 (nor any other pair)."""
    chunks = {(s, c): trainer.batch_indices(s, c, 100, 60000)[:50].tobytes()
              for s in range(4) for c in range(4)}
    assert len(set(chunks.values())) == len(chunks)
    first = trainer.batch_indices(3, 0, 100, 60000)
    again = trainer.batch_indices(3, 0, 100, 60000)
    np.testing.assert_array_equal(first, again)  # and each one redrawn the same


def test_progress_into_a_file_is_a_log_and_epoch_prints_get_their_own_line(
        rng, tmp_path, monkeypatch) -> None:
    """train(progress=True) into a file wrote an update every 0.1 s, and a print from
    on_epoch landed on the bar's line (issue 19)."""
    import time

    x, t = blobs(rng, 1000)
    log = (tmp_path / "log.txt").open("w")
    monkeypatch.setattr(sys, "stderr", log)
    monkeypatch.setattr(sys, "stdout", log)
    train(TwoLayerNet(8, 4, 3, seed=0), x, t, x[:10], t[:10], iters_num=150, batch_size=5,
          seed=1, progress=True, stop=lambda: time.sleep(0.01) or False,
          on_epoch=lambda i, a, b: print(f"epoch {i} | {a}, {b}"))
    log.close()
    text = (tmp_path / "log.txt").read_text()
    assert text.count("/150 [") <= 3, text  # the first draw, the redraw after a print, the end
    epoch_lines = [line for line in text.split("\n") if "epoch 0 |" in line]
    assert len(epoch_lines) == 1 and epoch_lines[0].split("\r")[-1].startswith("epoch 0 |")


@pytest.mark.parametrize("x", [np.array([[1, "a", 3]], dtype=object), [[1.0, 2.0, 3.0], [4.0]]])
def test_x_that_is_not_an_array_of_numbers_is_one_input_error(x) -> None:
    with pytest.raises(InputError, match=r"^x_train (has dtype object: pass numbers|is not an "
                       r"array of numbers)"):
        train(TwoLayerNet(3, 2, 2, seed=0), x, [0] * len(x), np.zeros((1, 3)), [0],
              iters_num=1, batch_size=1, seed=0)


def test_an_optimizer_steps_a_book_net_as_the_books_own_loop_does(rng) -> None:
    from xpnet.common.optimizer import Adam

    x, t = blobs(rng, 100)
    xt, tt = blobs(np.random.default_rng(1), 30)
    trained, adam = small_multi_layer(), Adam(lr=0.01)
    h = train(trained, x, t, xt, tt, iters_num=12, batch_size=10, seed=9, optimizer=adam)
    # the book's loop on the book's MultiLayerNet, on the same batches
    book, ref = small_multi_layer().net, Adam(lr=0.01)
    batches = trainer.batch_indices(9, 0, 10, 100)
    losses = []
    for i in range(12):
        xb, tb = x[batches[i]], t[batches[i]]
        losses.append(book.loss(xb, tb))
        ref.update(book.params, book.gradient(xb, tb))
    np.testing.assert_allclose(h.train_loss_list, losses, rtol=0, atol=1e-15)
    assert adam.iter == 12
    for key in book.params:
        np.testing.assert_allclose(trained.params[key], book.params[key], rtol=0, atol=1e-15)
        np.testing.assert_allclose(adam.m[key], ref.m[key], rtol=0, atol=1e-15)
    with pytest.raises(InputError, match="optimizer must be an xpnet.common.optimizer object"):
        train(small_multi_layer(), x, t, xt, tt, iters_num=2, batch_size=10, seed=9,
              optimizer="adam")


class _MySGD:
    """A reader's own optimizer: an ``update`` and nothing else (no ``lr``)."""

    def __init__(self, lr: float) -> None:
        self.rate = lr

    def update(self, params, grads) -> None:
        for key in params:
            params[key] -= self.rate * grads[key]


def test_an_optimizer_the_layered_step_does_not_know_trains_by_the_eager_step(rng) -> None:
    from xpnet.common.optimizer import SGD

    class SubSGD(SGD):
        pass

    x, t = blobs(rng, 100)
    xt, tt = blobs(np.random.default_rng(1), 30)
    runs = {}
    for opt in (SGD(lr=0.05), SubSGD(lr=0.05), _MySGD(0.05)):
        trained = small_multi_layer()
        h = train(trained, x, t, xt, tt, iters_num=12, batch_size=10, seed=9, optimizer=opt)
        runs[type(opt).__name__] = (h.train_loss_list, trained.host_params())
    want_losses, want = runs.pop("SGD")
    for name, (losses, params) in runs.items():
        np.testing.assert_array_equal(losses, want_losses, err_msg=name)
        for key in want:
            np.testing.assert_array_equal(params[key], want[key], err_msg=f"{name} {key}")


def test_divergence_with_an_optimizer_without_lr_names_no_rate() -> None:
    x, t = blobs(np.random.default_rng(0), 100)
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(DivergenceError) as err:
        train(TwoLayerNet(8, 10, 3, seed=1, dtype="float32"), x, t, x, t, iters_num=50,
              batch_size=10, seed=0, optimizer=_MySGD(1e38))
    message = str(err.value)
    assert message.endswith("training diverged; try a smaller learning rate")
    assert "\n" not in message


def test_evaluations_score_the_first_eval_samples_images_of_each_set(rng) -> None:
    x, t = blobs(rng, 200)
    xt, tt = blobs(np.random.default_rng(1), 50)
    seen = []

    class Spy(TwoLayerNet):
        def _accuracy(self, x, labels):
            seen.append(x.shape[0])
            return super()._accuracy(x, labels)

    def fit(**options):
        net = Spy(8, 6, 3, seed=2)
        h = train(net, x, t, xt, tt, iters_num=21, batch_size=20, seed=3, **options)
        return net, h

    _, whole = fit()  # evaluated after steps 0, 10 and 20, the last
    assert seen == [200, 50] * 3
    seen.clear()
    net, part = fit(eval_samples=30)
    assert seen == [30, 30] * 3  # the first 30 of the train and of the test set
    assert part.train_loss_list == whole.train_loss_list  # training itself is the same
    want = [TwoLayerNet._accuracy(net, net_x, net_t) for net_x, net_t in
            ((x[:30], t[:30]), (xt[:30], tt[:30]))]
    assert [part.train_acc_list[-1], part.test_acc_list[-1]] == want
    seen.clear()
    fit(eval_samples=0)  # 0: every image
    assert seen == [200, 50] * 3
    seen.clear()
    fit(eval_samples=80)  # more than the test set holds: all of it
    assert seen == [80, 50] * 3
    for bad in (-1, 1.5, "10", True):
        with pytest.raises(InputError, match="eval_samples"):
            train(Spy(8, 6, 3, seed=2), x, t, xt, tt, iters_num=1, eval_samples=bad)


def test_the_optimizers_state_counts_in_whether_a_step_fits(monkeypatch) -> None:
    # Adam keeps two copies of every parameter: a memory that holds an SGD step (with
    # room) but not Adam's state is refused before training, in one line.
    from xpnet import nets
    from xpnet.common import optimizer as optimizers

    net = nets.build("multi-layer", features=16, classes=4, hidden=(30, 30), activation="relu",
                     weight_init_std="he", weight_decay=0.0, dtype="float64", device="cpu",
                     seed=0)
    sgd, adam = optimizers.SGD(0.1), optimizers.Adam(0.01)
    between = (net.step_bytes(8, sgd) + net.step_bytes(8, adam)) // 2
    monkeypatch.setattr(trainer, "device_memory_bytes", lambda device: 2 * between)
    x = np.random.default_rng(0).random((20, 16))
    t = np.arange(20) % 4
    train(net, x, t, x, t, iters_num=2, batch_size=8, optimizer=sgd, seed=1)
    with pytest.raises(InputError, match="batch_size 8 needs about"):
        train(net, x, t, x, t, iters_num=2, batch_size=8, optimizer=adam, seed=1)


def small_multi_layer():
    """A seeded 8-6-5-3 MultiLayerNet (ReLU, weight decay 0.01) for the optimizer tests."""
    from xpnet import nets

    return nets.build("multi-layer", features=8, classes=3, hidden=(6, 5), activation="relu",
                      weight_init_std="he", weight_decay=0.01, dtype="float64", device="cpu",
                      seed=4)
