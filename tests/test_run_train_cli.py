"""`xpnet train` around ``run``: its start line comes from the net the run built (one build),
and a conv run's evaluations say they scored the first --eval-samples images."""

from __future__ import annotations

import json

import pytest
from run_toys import toy_dataset
from test_cli_nets import run_main

from xpnet import run, run_folder

CONV = ["--net", "simple-conv", "--hidden", "4", "--iters", "3", "--batch-size", "5",
        "--seed", "2", "--no-progress"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> list[str]:
    folder = toy_dataset(tmp_path_factory.mktemp("toy") / "data", train=40, test=20)
    return ["--dataset", "fashion-mnist", "--data-dir", str(folder)]


@pytest.fixture
def builds(monkeypatch) -> list[str]:
    """The nets built while the test runs."""
    built = []

    def counted(config, *args, **kwargs):
        built.append(config.net)
        return real(config, *args, **kwargs)

    real = run_folder.build_net
    monkeypatch.setattr(run_folder, "build_net", counted)
    monkeypatch.setattr(run, "build_net", counted)
    return built


def test_the_start_line_names_the_net_the_run_built_and_trains(toy, tmp_path, builds) -> None:
    status, out, err = run_main("train", *toy, *CONV, "--eval-samples", "10",
                                "--out", str(tmp_path / "run"))
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("xpnet ") and "SimpleConvNet(1x28x28, 30 filters 5x5, 4, 10) " \
        "on fashion-mnist (40 train, 20 test)" in lines[0], lines[0]
    assert builds == ["simple-conv"]  # no throwaway net to name it
    epochs = [ln for ln in lines if ln.startswith("train acc, test acc | ")]
    assert epochs and all(ln.endswith(" (first 10 images)") for ln in epochs), epochs
    done = next(ln for ln in lines if ln.startswith("done in"))
    assert " train accuracy 0." in done and "(first 10 images), test accuracy 0." in done, done
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (metrics["eval_samples"], metrics["final_train_acc_samples"],
            metrics["final_test_acc_samples"]) == (10, 10, 20)


def test_every_image_says_no_subset_and_bad_counts_are_one_line(toy, tmp_path) -> None:
    # the conv default, 1000, is more than the toy's 40 and 20: every image, no note
    status, out, err = run_main("train", *toy, *CONV, "--out", str(tmp_path / "a"))
    assert status == 0, err
    assert "(first" not in out
    status, out, err = run_main("train", *toy, *CONV, "--eval-samples", "30",
                                "--out", str(tmp_path / "b"))
    assert status == 0, err
    assert out.splitlines()[1].endswith(" (first 30 train images)")
    for bad in ("-1", "x", "1.5"):
        status, _, err = run_main("train", *toy, *CONV, "--eval-samples", bad)
        assert status == 2 and "--eval-samples: expected 0 or a positive integer" in err, err
    status, _, err = run_main("train", "--resume", str(tmp_path / "b"), "--eval-samples", "5")
    assert status == 2 and "drop --eval-samples" in err, err
