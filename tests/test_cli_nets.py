"""`xpnet train --net`, eval, predict and sweep for the book's nets of chapters 6 to 8,
end to end on a toy data set in the real IDX format (runs of a second or two)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from run_toys import toy_dataset
from test_cli import one_line_error, start, wait_for_line, xpnet

from xpnet import cli
from xpnet.cli.common import NET_DEFAULT_HELP
from xpnet.run_config import DEFAULT_LR, NET_DEFAULTS, TWO_LAYER_LR, RunConfig
from xpnet.sweep_spec import show

MULTI = ["--net", "multi-layer", "--hidden", "30x3", "--optimizer", "adam",
         "--weight-decay", "1e-3", "--seed", "4", "--no-progress"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> list[str]:
    folder = toy_dataset(tmp_path_factory.mktemp("toy") / "data")
    return ["--dataset", "fashion-mnist", "--data-dir", str(folder)]


@pytest.fixture(scope="module")
def multi_run(toy, tmp_path_factory):
    """A MultiLayerNet trained by Adam with weight decay: (folder, the command's result)."""
    out = tmp_path_factory.mktemp("multi") / "run"
    # 6 iterations: far from the toy set's 100%, so the accuracy says something
    return out, xpnet("train", *toy, *MULTI, "--iters", "6", "--out", str(out))


def run_main(*args: str) -> tuple[int, str, str]:
    """``xpnet ARGS`` in this process: (status, stdout, stderr)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            status = cli.main(list(args))
        except SystemExit as stop:  # argparse's refusals
            status = stop.code
    return status, stdout.getvalue(), stderr.getvalue()


def test_multi_layer_with_adam_trains_and_records_its_settings(multi_run) -> None:
    out, r = multi_run
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert "MultiLayerNet(784, [30, 30, 30], 10, relu, weight decay 0.001)" in first, first
    assert "adam lr 0.001," in first
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "finished"
    config = metrics["config"]
    assert {k: config[k] for k in ("net", "hidden", "optimizer", "lr", "activation",
                                   "weight_decay", "weight_init_std")} == {
        "net": "multi-layer", "hidden": [30, 30, 30], "optimizer": "adam", "lr": 0.001,
        "activation": "relu", "weight_decay": 0.001, "weight_init_std": "he"}
    assert RunConfig.from_dict(config).hidden == (30, 30, 30)
    with np.load(out / "params.npz", allow_pickle=False) as params:
        assert {k: params[k].shape for k in params.files} == {
            "W1": (784, 30), "b1": (30,), "W2": (30, 30), "b2": (30,), "W3": (30, 30),
            "b3": (30,), "W4": (30, 10), "b4": (10,)}
    assert 0.2 < metrics["final_test_acc"] < 1.0  # learning, not done


@pytest.mark.parametrize(("args", "fragment"), [
    (["--net", "two-layer", "--optimizer", "adam"], "optimizer adam is for the nets of"),
    (["--optimizer", "momentum"], "optimizer momentum is for the nets of chapters 6 to 8"),
    (["--net", "simple-conv", "--weight-decay", "0.1"], "weight_decay is for --net multi-layer"),
    (["--net", "two-layer", "--activation", "relu"], "activation relu is for --net multi-layer"),
    (["--hidden", "100x4"], "hidden takes one size for the two-layer net"),
    (["--net", "deep-conv", "--weight-init-std", "0.01"], "cannot be set for deep-conv"),
    (["--weight-init-std", "he"], "weight_init_std he is a scale by name, for --net multi"),
    (["--net", "simple-conv", "--grad", "numerical"], "grad numerical is for the two-layer"),
    (["--net", "multi-layer", "--hidden", "100x"], "argument --hidden: expected a size"),
    (["--net", "multi-layer", "--hidden", "100++50"], "argument --hidden: expected a size"),
    (["--net", "multi-layer", "--hidden", "0x4"], "argument --hidden: expected a size"),
    (["--weight-init-std", "glorot"], "expected a positive number or one of relu, he"),
    (["--weight-decay", "-0.1"], "argument --weight-decay: expected a number >= 0"),
    (["--net", "resnet"], "argument --net: invalid choice: 'resnet'"),
    (["--optimizer", "lbfgs"], "argument --optimizer: invalid choice: 'lbfgs'"),
])
def test_a_setting_the_net_lacks_is_one_line_and_nothing_is_written(toy, tmp_path, args,
                                                                    fragment) -> None:
    out = tmp_path / "run"
    status, stdout, stderr = run_main("train", *toy, *args, "--iters", "5", "--out", str(out))
    assert status == 2
    assert stderr.startswith("xpnet train: error: ") and stderr.count("\n") == 1, stderr
    assert fragment in stderr
    assert stdout == ""
    assert not out.exists()


def test_a_bad_combination_is_one_line_in_a_real_process(toy, tmp_path) -> None:
    line = one_line_error(xpnet("train", *toy, "--net", "simple-conv", "--activation",
                                "sigmoid", "--out", str(tmp_path / "run")))
    assert line == ("xpnet train: error: activation sigmoid is for --net multi-layer; the "
                    "simple-conv net's is relu")


def net_of(command: str, text: str) -> tuple[int, ...] | None:
    """The layers of ``xpnet COMMAND --net multi-layer --hidden TEXT``; None if refused."""
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            args = cli.build_parser().parse_args([command, "--net", "multi-layer",
                                                  "--hidden", text])
        except SystemExit as refused:
            assert refused.code == 2
            return None
    return RunConfig(net=args.net, hidden=args.hidden).hidden


@pytest.mark.parametrize(("text", "hidden"), [
    ("100x4", (100, 100, 100, 100)),
    ("100x2+50", (100, 100, 50)),
    ("50+20x2", (50, 20, 20)),
    (" 64 ", (64,)),
])
def test_hidden_layer_forms(text, hidden) -> None:
    assert net_of("train", text) == net_of("gradcheck", text) == hidden


def sweep_trials(*args: str) -> list[RunConfig]:
    """The trials ``xpnet sweep ARGS`` would run (nothing read, nothing run)."""
    from xpnet.cli.sweep import _plan

    parsed = cli.build_parser().parse_args(["sweep", "--dataset", "fashion-mnist", *args])
    return _plan(parsed, None)[0]


@pytest.mark.parametrize("text", ["100x2+50", "100x4", "64", "100,50", "50,100x2",
                                  "100+50,20"])
def test_a_hidden_that_train_takes_is_the_one_net_a_sweep_of_it_trains(text) -> None:
    # The same text means the same nets in every command: one net in train and
    # gradcheck exactly when a sweep makes one trial of it, and the same net.
    trials = [c.hidden for c in sweep_trials("--net", "multi-layer", "--hidden", text)]
    assert len(trials) == text.count(",") + 1
    for command in ("train", "gradcheck"):
        net = net_of(command, text)
        assert (trials == [net]) if len(trials) == 1 else (net is None), (command, net, trials)


def test_a_comma_in_a_sweeps_hidden_separates_nets_as_in_every_setting() -> None:
    assert [c.hidden for c in sweep_trials("--net", "multi-layer", "--hidden", "50,100")] == [
        (50,), (100,)]
    assert [c.hidden for c in sweep_trials("--net", "multi-layer", "--hidden",
                                           "100x2+50,30")] == [(100, 100, 50), (30,)]


@pytest.mark.parametrize(("text", "joined", "repeated"), [
    ("100,50", "100+50", "100x2"),
    ("100,100,100", "100+100+100", "100x3"),
    ("100x2,50", "100+100+50", "100x2+50"),
    ("a,b", "100+50", "100x2"),  # not sizes: the spelling still comes first
])
@pytest.mark.parametrize("command", ["train", "gradcheck"])
def test_a_comma_in_hidden_is_refused_in_one_line_with_the_spelling(command, text, joined,
                                                                   repeated) -> None:
    status, stdout, stderr = run_main(command, "--net", "multi-layer", "--hidden", text,
                                      "--data-dir", "/nonexistent")
    assert (status, stdout) == (2, "")
    assert stderr == (f"xpnet {command}: error: --hidden {text}: write a net's layers joined by "
                      f"+ ({joined}) or repeated with x ({repeated}); a comma separates values "
                      f"to try in xpnet sweep (see xpnet {command} --help)\n")


def test_the_comma_refusal_in_a_real_process(toy, tmp_path) -> None:
    line = one_line_error(xpnet("train", *toy, "--net", "multi-layer", "--hidden", "100,50",
                                "--iters", "1", "--out", str(tmp_path / "run")))
    assert line == ("xpnet train: error: --hidden 100,50: write a net's layers joined by + "
                    "(100+50) or repeated with x (100x2); a comma separates values to try in "
                    "xpnet sweep (see xpnet train --help)")
    assert not (tmp_path / "run").exists()


def test_unset_flags_stay_unset_so_the_net_decides() -> None:
    args = cli.build_parser().parse_args(["train", "--net", "deep-conv"])
    assert all(getattr(args, k) is None for k in ("hidden", "lr", "optimizer", "activation",
                                                   "weight_init_std", "weight_decay"))


def test_the_help_says_the_books_value_of_each_setting_for_each_net() -> None:
    for name in ("hidden", "optimizer", "activation", "weight_init_std"):
        said = {}
        for clause in re.sub(r" \([^)]*\)", "", NET_DEFAULT_HELP[name]).split(", "):
            value, nets = clause.split(" for ")
            said.update(dict.fromkeys(nets.split(" and "), value))
        assert said == {net: show(NET_DEFAULTS[net][name]) for net in NET_DEFAULTS}, name
    lr = NET_DEFAULT_HELP["lr"]
    assert lr.startswith(f"{TWO_LAYER_LR:g} for two-layer;")
    assert f"{DEFAULT_LR['adam']:g} for adam and 0.01 for the rest" in lr
    assert {v for k, v in DEFAULT_LR.items() if k != "adam"} == {0.01}
    assert NET_DEFAULT_HELP["weight_decay"].startswith(f"{RunConfig().weight_decay:g};")
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "100x4 for" in " ".join(help_text.split())


def test_eval_of_a_multi_layer_run_gives_its_final_test_accuracy(multi_run) -> None:
    out, trained = multi_run
    assert trained.returncode == 0, trained.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    r = xpnet("eval", str(out))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"{out}: MultiLayerNet(784, [30, 30, 30], 10, relu, weight "
                               "decay 0.001) float64 on the Fashion-MNIST test set")
    final = metrics["final_test_acc"]
    assert lines[1].startswith(f"test accuracy {final:.4f} ")
    assert "recorded" not in r.stdout  # the same number as at the end of training
    assert json.loads((out / "eval.json").read_text())["accuracy"] == final


def test_predict_with_a_multi_layer_run(multi_run, tmp_path) -> None:
    from PIL import Image

    from xpnet.backend import parse_device
    from xpnet.images import mnist_like
    from xpnet.run_folder import load_net

    out, trained = multi_run
    assert trained.returncode == 0, trained.stderr
    picture = tmp_path / "shirt.png"
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(picture)
    status, stdout, stderr = run_main("predict", str(out), str(picture), "--top", "2")
    assert status == 0, stderr
    net, _ = load_net(out, parse_device("cpu"))
    p = net.predict(mnist_like(picture, dataset="fashion-mnist")[None])[0]
    best = int(np.argmax(p))
    assert stdout.startswith(f"{picture}: {best} ")
    assert f"(p={p[best]:.4f}); top 2: " in stdout


@pytest.mark.slow
def test_a_stopped_multi_layer_run_resumes_to_the_numbers_of_one_never_stopped(toy,
                                                                              tmp_path) -> None:
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    args = [*toy, *MULTI, "--optimizer", "momentum", "--iters", "200", "--batch-size", "40"]
    assert xpnet("train", *args, "--out", str(whole)).returncode == 0
    proc = start("train", *args, "--out", str(stopped))
    wait_for_line(proc, "train acc, test acc")
    wait_for_line(proc, "train acc, test acc")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal came")
    assert proc.returncode == 130, err
    assert "continue with: xpnet train --resume" in err
    r = xpnet("train", "--resume", str(stopped), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "MultiLayerNet(784, [30, 30, 30], 10, relu, weight decay 0.001)" in r.stdout
    with np.load(whole / "params.npz") as a, np.load(stopped / "params.npz") as b:
        assert a.files == b.files
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])
    docs = [json.loads((f / "metrics.json").read_text()) for f in (whole, stopped)]
    assert docs[0]["train_loss_list"] == docs[1]["train_loss_list"]


@pytest.mark.parametrize(("net", "title"), [
    ("simple-conv", "SimpleConvNet(1x28x28, 30 filters 5x5, 100, 10)"),
    pytest.param("deep-conv", "DeepConvNet(1x28x28, 50, 10)", marks=pytest.mark.slow),
])
def test_the_conv_nets_train_with_the_books_settings_and_eval_agrees(toy, tmp_path, net,
                                                                      title) -> None:
    out = tmp_path / "conv"
    r = xpnet("train", *toy, "--net", net, "--iters", "2", "--batch-size", "20",
              "--seed", "1", "--no-progress", "--out", str(out))
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert title in first
    assert "adam lr 0.001," in first
    metrics = json.loads((out / "metrics.json").read_text())
    config = metrics["config"]
    assert (config["net"], config["optimizer"]) == (net, "adam")
    status, stdout, stderr = run_main("eval", str(out))
    assert status == 0, stderr
    assert stdout.splitlines()[1].startswith(f"test accuracy {metrics['final_test_acc']:.4f} ")
    assert json.loads((out / "eval.json").read_text())["accuracy"] == metrics["final_test_acc"]


# -- sweeps -----------------------------------------------------------------------------

def test_a_sweep_over_weight_decay_runs_a_trial_for_each_value(toy, tmp_path) -> None:
    from xpnet.run import load_data, run
    from xpnet.sweep import one_core

    out = tmp_path / "sweep"
    status, stdout, stderr = run_main(
        "sweep", *toy, "--net", "multi-layer", "--hidden", "20x2", "--weight-decay", "0,0.01",
        "--iters", "12", "--seed", "2", "--workers", "2", "--no-progress", "--out", str(out))
    assert status == 0, stderr
    assert "xpnet sweep: 2 trials, 0 already done; 2 workers (LocalCluster)" in stdout
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [(r["status"], r["net"], r["hidden"], r["weight_decay"], r["optimizer"])
            for r in rows] == [("finished", "multi-layer", "20x2", "0.0", "sgd"),
                               ("finished", "multi-layer", "20x2", "0.01", "sgd")]
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["swept"] == ["weight_decay"]
    assert [t["config"]["weight_decay"] for t in summary["trials"]] == [0.0, 0.01]
    # the trial with weight decay is the run of its config here, to the bit
    config = RunConfig.from_dict(summary["trials"][1]["config"])
    with one_core():
        expected = run(config, data=load_data(config))
    doc = json.loads((out / "trials" / rows[1]["trial"] / "metrics.json").read_text())
    assert doc["train_loss_list"] == expected.history.train_loss_list
    assert float(rows[1]["final_test_acc"]) == expected.final_test_acc
    assert doc["train_loss_list"] != json.loads(
        (out / "trials" / rows[0]["trial"] / "metrics.json").read_text())["train_loss_list"]
    best = stdout[stdout.index("best 2 of 2 trials"):].splitlines()
    assert best[1].split()[:2] == ["trial", "weight_decay"]


def test_the_books_hyperparameter_search_lists_its_trials(toy, tmp_path) -> None:
    status, stdout, stderr = run_main(
        "sweep", *toy, "--net", "multi-layer", "--hidden", "100x6", "--lr", "log:1e-6:1e-2",
        "--weight-decay", "log:1e-8:1e-4", "--trials", "5", "--iters", "10", "--dry-run",
        "--out", str(tmp_path / "sweep"))
    assert status == 0, stderr
    lines = stdout.splitlines()
    assert lines[0].split() == ["trial", "lr", "weight_decay"]
    drawn = [(float(line.split()[1]), float(line.split()[2])) for line in lines[1:-1]]
    assert len(drawn) == 5 and len(set(drawn)) == 5
    assert all(1e-6 <= lr <= 1e-2 and 1e-8 <= wd <= 1e-4 for lr, wd in drawn)
    assert lines[-1] == "5 trials"
    assert not (tmp_path / "sweep").exists()


def test_the_books_hyperparameter_search_runs_end_to_end(toy, tmp_path) -> None:
    out = tmp_path / "sweep"
    status, stdout, stderr = run_main(
        "sweep", *toy, "--net", "multi-layer", "--hidden", "100x6", "--lr", "log:1e-6:1e-2",
        "--weight-decay", "log:1e-8:1e-4", "--trials", "3", "--iters", "8", "--workers", "2",
        "--no-progress", "--out", str(out))
    assert status == 0, stderr
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["counts"]["finished"] == 3 and summary["swept"] == ["lr", "weight_decay"]
    for trial in summary["trials"]:
        config = trial["config"]
        assert config["hidden"] == [100] * 6 and config["net"] == "multi-layer"
        assert 1e-6 <= config["lr"] <= 1e-2 and 1e-8 <= config["weight_decay"] <= 1e-4
        doc = json.loads((out / trial["folder"] / "metrics.json").read_text())
        assert doc["config"] == config and doc["status"] == "finished"
    for picture in ("accuracy.png", "by_setting.png"):
        assert (out / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "best 3 of 3 trials by final test accuracy:" in stdout


@pytest.mark.parametrize(("args", "fragment"), [
    (["--net", "multi-layer", "--hidden", "100,100,100"],
     "--hidden 100,100,100: a comma separates the values to try, so 100 would be tried 3 "
     "times; for one net of 3 layers of 100 write 100x3"),
    (["--weight-decay=-1e-4"], "--weight-decay: -1e-4 is out of range (it must be >= 0)"),
    (["--net", "two-layer", "--optimizer", "sgd,adam"], "optimizer adam is for the nets of"),
    (["--net", "multi-layer", "--weight-decay", "log:0:1e-4", "--trials", "2"], "above 0"),
])
def test_a_bad_sweep_of_the_new_settings_is_one_line(toy, tmp_path, args, fragment) -> None:
    out = tmp_path / "sweep"
    status, _, stderr = run_main("sweep", *toy, "--iters", "5", *args, "--out", str(out))
    assert status == 2
    assert stderr.startswith("xpnet sweep: error: ") and stderr.count("\n") == 1, stderr
    assert fragment in stderr
    assert not out.exists()


def test_a_sweep_folder_keyed_by_an_older_xpnet_says_so(toy, tmp_path) -> None:
    out = tmp_path / "sweep"
    args = ["sweep", *toy, "--lr", "0.1,0.2", "--iters", "3", "--workers", "1",
            "--no-progress", "--out", str(out)]
    assert run_main(*args)[0] == 0
    doc = json.loads((out / "sweep.json").read_text())
    for trial in doc["trials"]:  # as an older xpnet left it: other names, older settings
        trial["trial"] = "0" + trial["trial"][1:]
        for name in ("net", "optimizer", "activation", "weight_decay"):
            del trial["config"][name]
    doc["xpnet_version"] = "0.0.9"
    (out / "sweep.json").write_text(json.dumps(doc))
    status, _, stderr = run_main(*args)
    assert status == 2
    assert stderr == (f"xpnet sweep: error: {out} holds this sweep as xpnet 0.0.9 named its "
                      "trials, before a trial's name held the net's settings; pass a new --out "
                      "(its results stay readable there)\n")
    doc["trials"][0]["config"]["lr"] = 0.3  # a sweep of other settings is another sweep
    (out / "sweep.json").write_text(json.dumps(doc))
    assert "holds another sweep; pass a new --out" in run_main(*args)[2]


def test_the_parser_imports_nothing_heavy() -> None:
    # --help is quick, and a Ctrl-C at start-up lands in a command, not in a big import
    code = ("import sys; from xpnet import cli; cli.build_parser(); "
            "print([m for m in ('matplotlib', 'distributed', 'numba', 'xpnet.sweep', "
            "'xpnet.run_config') if m in sys.modules])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.stdout.strip() == "[]", r.stderr


def test_a_ctrl_c_python_wraps_in_a_runtime_error_is_still_a_ctrl_c(monkeypatch) -> None:
    from xpnet.cli import train

    def importing(args) -> int:
        # What Python 3.11 raises for a Ctrl-C inside a class body's __set_name__
        raise RuntimeError("Error calling __set_name__") from KeyboardInterrupt()

    monkeypatch.setattr(train, "cmd_train", importing)
    status, stdout, stderr = run_main("train")
    assert (status, stdout, stderr) == (130, "", "xpnet: interrupted\n")

    def broken(args) -> int:
        raise RuntimeError("a bug") from ValueError("cause")

    monkeypatch.setattr(train, "cmd_train", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        run_main("train")
