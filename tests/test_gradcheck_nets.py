"""`xpnet gradcheck --net`: the book's gradient check of ch. 6's MultiLayerNet from the
command line, with train's settings, rules and defaults (issue 21)."""

from __future__ import annotations

import pytest
from support import require_fashion_mnist

from xpnet import cli
from xpnet.errors import InputError
from xpnet.nets import BookNet
from xpnet.run_config import RunConfig


@pytest.fixture(autouse=True)
def _cpu(monkeypatch) -> None:
    monkeypatch.setenv("XPNET_DEVICE", "cpu")


@pytest.fixture(scope="module")
def fashion() -> tuple[str, ...]:
    return ("--dataset", "fashion-mnist", "--data-dir", str(require_fashion_mnist()))


def gradcheck(capsys, *args: str) -> tuple[int, list[str], str]:
    code = cli.main(["gradcheck", *args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def differences(lines: list[str]) -> dict[str, float]:
    """The ``name:difference`` lines between the heading and the verdict, in order."""
    return {name: float(value) for name, value in (line.split(":") for line in lines[1:-1])}


def one_line(capsys, *args: str) -> str:
    code, out, err = gradcheck(capsys, *args)
    assert code == 2 and out == [] and "Traceback" not in err, err
    [line] = err.splitlines()
    return line


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_multi_layer_backprop_agrees_with_the_numerical_gradient(capsys, fashion,
                                                                 activation) -> None:
    code, lines, _ = gradcheck(capsys, *fashion, "--net", "multi-layer", "--hidden", "100x2+50",
                               "--activation", activation, "--weight-decay", "0.1",
                               "--seed", "0")
    assert code == 0
    assert lines[0].startswith(
        f"mean |numerical (fused) - backprop| of MultiLayerNet(784, [100, 100, 50], 10, "
        f"{activation}, weight decay 0.1) on 3 samples of fashion-mnist, float64, device "
        "cpu, seed 0:")
    diffs = differences(lines)
    assert list(diffs) == ["W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4"]
    # The hidden layers agree to ~1e-8. The output layer differs by ~1e-7 because the
    # book's loss is -log(y + 1e-7), whose 1e-7 backprop's (y - t) / B leaves out: the two
    # are computed apart (never one against itself), so that difference is never 0.
    hidden = [diffs[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3")]
    assert max(hidden) < 1e-7, diffs
    assert 1e-9 < diffs["b4"] < 1e-6 and diffs["W4"] < 1e-6, diffs
    assert lines[-1] == ("OK: every mean difference is below 1e-06: backprop agrees with the "
                         "numerical gradient")


def wrong_backprop(monkeypatch, change) -> None:
    real = BookNet._loss_and_gradient

    def wrong(self, x, labels):
        loss, grads = real(self, x, labels)
        change(self, grads)
        return loss, grads

    monkeypatch.setattr(BookNet, "_loss_and_gradient", wrong)


@pytest.mark.parametrize(("change", "bad"), [
    (lambda net, g: g.__setitem__("W2", g["W2"] * 1.5), "W2"),
    # the weight decay's lambda * W left out of the first layer's gradient
    (lambda net, g: g.__setitem__("W1", g["W1"] - net.weight_decay * net.params["W1"]), "W1"),
])
def test_a_wrong_backprop_is_a_mismatch_and_exit_status_1(capsys, fashion, monkeypatch,
                                                         change, bad) -> None:
    wrong_backprop(monkeypatch, change)
    code, lines, _ = gradcheck(capsys, *fashion, "--net", "multi-layer", "--hidden", "20x2",
                               "--activation", "sigmoid", "--weight-decay", "0.1",
                               "--seed", "1")
    assert code == 1
    assert lines[-1].startswith(f"MISMATCH: {bad} differs by ")
    assert "ReLU" not in lines[-1]  # a sigmoid net has no kink to blame
    assert differences(lines)[bad] > 1e-4


def test_fused_and_the_books_loop_give_the_same_differences(capsys, fashion,
                                                            monkeypatch) -> None:
    from xpnet.common import _gradient_check

    looped = []
    real = _gradient_check.loop

    def loop(loss, params, keys):
        looped.append(list(keys))
        return real(loss, params, looped[-1])

    monkeypatch.setattr(_gradient_check, "loop", loop)
    common = (*fashion, "--net", "multi-layer", "--hidden", "8+6", "--weight-decay", "0.5",
              "--activation", "sigmoid", "--seed", "2")
    fused = differences(gradcheck(capsys, *common)[1])
    assert looped == []
    code, lines, _ = gradcheck(capsys, *common, "--method", "generic")
    assert looped == [["W1", "b1", "W2", "b2", "W3", "b3"]]  # the book's loop, every parameter
    assert code == 0 and lines[0].startswith("mean |numerical (generic) - backprop| of ")
    generic = differences(lines)
    assert list(generic) == list(fused) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    for key in fused:
        assert generic[key] == pytest.approx(fused[key], abs=1e-9)


def test_the_nets_defaults_are_trains(capsys, fashion) -> None:
    code, lines, _ = gradcheck(capsys, *fashion, "--net", "multi-layer", "--seed", "0")
    assert code == 0
    assert " of MultiLayerNet(784, [100, 100, 100, 100], 10, relu) on 3 samples " in lines[0]
    assert len(differences(lines)) == 10
    code, lines, _ = gradcheck(capsys, *fashion, "--seed", "0", "--samples", "1")
    assert code == 0 and " of TwoLayerNet(784, 50, 10) on 1 samples " in lines[0]
    assert list(differences(lines)) == ["W1", "b1", "W2", "b2"]


@pytest.mark.parametrize("net", ["simple-conv", "deep-conv"])
def test_the_conv_nets_are_refused_in_one_line_saying_why_and_what_instead(capsys,
                                                                           net) -> None:
    line = one_line(capsys, "--net", net, "--dataset", "fashion-mnist")
    assert line == (f"xpnet gradcheck: error: gradcheck is for the two-layer and multi-layer "
                    f"nets: {net}'s numerical gradient is the book's loop over every parameter, "
                    "hundreds of thousands of forward passes; check it on a small net through "
                    "the API's numerical_gradient instead (xpnet.common)")


@pytest.mark.parametrize(("flags", "settings"), [
    (("--weight-decay", "0.1"), {"weight_decay": 0.1}),
    (("--activation", "relu"), {"activation": "relu"}),
    (("--hidden", "100x2"), {"hidden": (100, 100)}),
    (("--weight-init-std", "he"), {"weight_init_std": "he"}),
])
def test_a_setting_the_net_lacks_is_runconfigs_one_line(capsys, flags, settings) -> None:
    with pytest.raises(InputError) as refused:
        RunConfig(**settings)
    # refused before any data is read: the folder given does not exist
    line = one_line(capsys, *flags, "--dataset", "fashion-mnist", "--data-dir", "/nonexistent")
    assert line == f"xpnet gradcheck: error: {refused.value}"


def test_a_relu_kink_in_the_step_is_named_as_a_cause_of_a_mismatch(capsys, fashion) -> None:
    # Seed 0's first sample: a unit of the third layer has input 1.1e-4 and the layer's
    # inputs reach 2.6, so a 1e-4 step of W3 crosses the kink; both gradients are right.
    code, lines, _ = gradcheck(capsys, *fashion, "--net", "multi-layer", "--seed", "0",
                               "--samples", "1")
    diffs = differences(lines)
    assert code == 1 and 1e-6 < diffs["W3"] < 1e-5, diffs
    assert max(v for k, v in diffs.items() if k != "W3") < 1e-6, diffs
    assert lines[-1].startswith("MISMATCH: W3 differs by 1.6")
    assert lines[-1].endswith("; or, with ReLU, a unit's input lies within the numerical step "
                              "(1e-4) of its kink at 0, where a central difference is no "
                              "derivative: if another --seed agrees, that was it")


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_differences_that_are_the_books_1e_7_alone_are_said_so_and_ok(capsys, fashion,
                                                                     activation) -> None:
    # A sample whose label has probability 0.004 (seed 0's second) weighs the book's
    # -log(y + 1e-7) off backprop's (y - t) / B by 1e-7 / 0.004: 1e-6 in the last layers.
    code, lines, _ = gradcheck(capsys, *fashion, "--net", "multi-layer", "--hidden", "50x2+30",
                               "--activation", activation, "--weight-decay", "0.1",
                               "--seed", "0")
    diffs = differences(lines)
    above = [k for k, v in diffs.items() if v > 1e-6]
    assert "b4" in above and diffs["b4"] < 3e-6, diffs
    assert code == 0
    head, largest = lines[-1].rsplit(" ", 1)
    assert head == ("OK: backprop agrees with the numerical gradient: the differences above "
                    f"1e-06 ({', '.join(above)}) are the book's 1e-7 in log(y + 1e-7), which "
                    "backprop's (y - t) / B leaves out; with it counted, the largest is")
    assert float(largest) < 1e-9  # the numerical gradient is the book's loss's to 1e-10
