"""`xpnet eval` and `xpnet predict`: real runs on real Fashion-MNIST, one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support import FASHION_DIR, require_fashion_mnist

from xpnet.cli import main
from xpnet.evaluate import evaluate
from xpnet.inputs import InputError
from xpnet.two_layer_net import TwoLayerNet

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data():
    require_fashion_mnist()
    from xpnet.dataset import load_dataset

    return load_dataset("fashion-mnist", data_dir=FASHION_DIR, download=False)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory, data) -> Path:
    """A real run: 300 iterations on Fashion-MNIST, seed 0 (test accuracy 0.5655)."""
    from xpnet.run import run
    from xpnet.run_config import RunConfig
    from xpnet.run_folder import claim_dir

    out = claim_dir(tmp_path_factory.mktemp("trained") / "run")
    run(RunConfig(dataset="fashion-mnist", data_dir=str(FASHION_DIR), iters=300, seed=0),
        data=data, out=out)
    return out


def make_run(folder: Path, *, status: str = "finished", hidden: int = 8) -> Path:
    """A run folder without training: random weights and a minimal metrics.json."""
    folder.mkdir(parents=True, exist_ok=True)
    TwoLayerNet(784, hidden, 10, weight_init_std=0.1, seed=5).save(folder / "params.npz")
    metrics = {"schema_version": 1, "status": status,
               "config": {"dataset": "fashion-mnist", "data_dir": str(FASHION_DIR)}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def cli(capsys, *argv) -> tuple[int, str, str]:
    """``xpnet argv`` in this process: (exit status, stdout, stderr)."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as stop:  # argparse's own errors
        status = stop.code
    out, err = capsys.readouterr()
    return status, out, err


def one_line_error(capsys, *argv) -> str:
    status, out, err = cli(capsys, *argv)
    assert status == 2, (out, err)
    assert out == ""  # nothing half-done on stdout
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# -- evaluate(): the numbers ----------------------------------------------------------------

class FixedNet:
    """A classifier whose probabilities are given."""

    def __init__(self, probabilities: np.ndarray) -> None:
        self.probabilities = probabilities

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.probabilities


def test_evaluate_counts_by_hand() -> None:
    predicted = [0, 1, 1, 1, 0, 2]
    probabilities = np.eye(3)[predicted] * 0.8 + 0.2 / 3
    t = np.array([0, 0, 1, 1, 2, 2])
    result = evaluate(FixedNet(probabilities), None, t, ("a", "b", "c"))
    np.testing.assert_array_equal(result.confusion, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    assert (result.correct, result.total, result.accuracy) == (4, 6, 4 / 6)
    assert result.counts.tolist() == [2, 2, 2]
    assert result.per_class_accuracy == [0.5, 1.0, 0.5]
    assert result.top_confusions(3) == [(0, 1, 1), (2, 0, 1)]  # only real mistakes
    one_hot = evaluate(FixedNet(probabilities), None, np.eye(3)[t], ("a", "b", "c"))
    np.testing.assert_array_equal(one_hot.confusion, result.confusion)
    with pytest.raises(InputError, match="3 classes but 2 class names"):
        evaluate(FixedNet(probabilities), None, t, ("a", "b"))
    with pytest.raises(InputError, match="outside 0..2"):
        evaluate(FixedNet(probabilities), None, t + 1, ("a", "b", "c"))


def test_evaluate_a_net_on_the_real_test_set(data) -> None:
    net = TwoLayerNet(784, 20, 10, weight_init_std=0.1, seed=3)
    x = data.x_test.astype(np.float32) / 255.0
    result = evaluate(net, x, data.t_test, data.class_names)
    assert result.accuracy == net.accuracy(x, data.t_test)  # the same number, to the bit
    predicted = net.predict(x.astype(np.float64)).argmax(axis=1)
    for i in range(10):
        for j in range(10):
            assert result.confusion[i, j] == np.sum((data.t_test == i) & (predicted == j))
    assert result.counts.tolist() == [1000] * 10


# -- xpnet eval ---------------------------------------------------------------------------------

def no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_eval_reproduces_the_runs_test_accuracy(trained_run, capsys) -> None:
    status, out, err = cli(capsys, "eval", trained_run)
    assert status == 0 and err == "", err
    metrics = json.loads((trained_run / "metrics.json").read_text())
    acc = metrics["final_test_acc"]
    assert 0.5 < acc < 0.7  # 300 iterations of the book's SGD: ~0.57
    doc = json.loads((trained_run / "eval.json").read_text())
    assert doc["accuracy"] == acc  # exactly what training measured
    assert f"test accuracy {acc:.4f} ({round(acc * 10000)} of 10000 right)" in out
    m = np.array(doc["confusion"])
    assert m.shape == (10, 10) and m.sum(axis=1).tolist() == [1000] * 10
    assert np.trace(m) == doc["correct"] == round(acc * 10000)
    assert doc["dataset"] == "fashion-mnist" and doc["split"] == "test"
    assert doc["data"]["directory"] == str(FASHION_DIR) and doc["data"]["test_size"] == 10000
    assert [c["accuracy"] for c in doc["per_class"]] == [m[i, i] / 1000 for i in range(10)]
    # The table: one row per class with its name, count and accuracy.
    for i, c in enumerate(doc["per_class"]):
        assert re.search(rf"^\s+{i}\s+{re.escape(c['name'])}\s+1000\s+{c['accuracy']:.4f}$",
                         out, re.M), out
    # The three most frequent mistakes, as the matrix has them.
    off = m - np.diag(np.diag(m))
    top = sorted(((off[i, j], i, j) for i in range(10) for j in range(10)), reverse=True)[:3]
    names = doc["class_names"]
    lines = out.split("most frequent confusions (true -> predicted: count):\n")[1].splitlines()
    assert lines[:3] == [f"  {i} {names[i]} -> {j} {names[j]}: {n}" for n, i, j in top]
    picture = (trained_run / "confusion.png").read_bytes()
    assert picture.startswith(PNG) and len(picture) > 20_000
    assert no_temporaries(trained_run)


def test_eval_of_a_failed_run_says_so_and_writes_out(data, tmp_path, capsys) -> None:
    run_dir = make_run(tmp_path / "run", status="failed")
    status, out, err = cli(capsys, "eval", run_dir, "--out", tmp_path / "m.png")
    assert status == 0
    assert err.strip().splitlines() == [
        f"xpnet: {run_dir}/metrics.json says the run is failed; using the parameters it saved"]
    net = TwoLayerNet.load(run_dir / "params.npz")
    acc = net.accuracy(data.x_test.astype(np.float32) / 255.0, data.t_test)
    assert json.loads((run_dir / "eval.json").read_text())["accuracy"] == acc
    assert f"test accuracy {acc:.4f}" in out
    assert (tmp_path / "m.png").read_bytes().startswith(PNG)
    assert not (run_dir / "confusion.png").exists()


# -- xpnet predict --------------------------------------------------------------------------

LINE = re.compile(r"^(?P<file>.+): (?P<k>\d) (?P<name>.+) \(p=(?P<p>[\d.]+)\); "
                  r"top (?P<top>\d+): (?P<list>.+)$")


@pytest.mark.slow
def test_predict_agrees_with_the_net_on_the_original_arrays(trained_run, data, tmp_path,
                                                            capsys) -> None:
    images = data.x_test[:8].reshape(-1, 28, 28)
    as_is, scaled = [], []
    for k, image in enumerate(images):
        as_is.append(tmp_path / f"as-is-{k}.png")
        Image.fromarray(image).save(as_is[-1])
        scaled.append(tmp_path / f"scaled-{k}.png")
        big = Image.fromarray(255 - image).resize((112, 112), Image.Resampling.NEAREST)
        big.convert("RGB").save(scaled[-1])
    status, out, err = cli(capsys, "predict", trained_run, *as_is, *scaled, "--top", "3")
    assert status == 0 and err == "", err
    lines = [LINE.match(line) for line in out.splitlines()]
    assert all(lines) and len(lines) == 16, out

    net = TwoLayerNet.load(trained_run / "params.npz")
    p = net.predict(images.reshape(-1, 784).astype(np.float32) / 255.0)
    expected = p.argmax(axis=1)
    for k, line in enumerate(lines[:8]):  # the dataset's own pictures: the same numbers
        assert line["file"] == str(as_is[k])
        assert int(line["k"]) == expected[k]
        assert line["name"] == data.class_names[expected[k]]
        assert line["p"] == f"{p[k, expected[k]]:.4f}"
        top3 = np.argsort(-p[k])[:3]
        assert line["list"] == ", ".join(
            f"{j} {data.class_names[j]} {p[k, j]:.4f}" for j in top3)
    assert [int(line["k"]) for line in lines[8:]] == expected.tolist()  # recovered pictures


def test_predict_lists_top_k(tmp_path, capsys) -> None:
    run_dir = make_run(tmp_path / "run")
    picture = np.zeros((28, 28), dtype=np.uint8)
    picture[4:24, 10:18] = 255
    Image.fromarray(picture).save(tmp_path / "bar.png")
    status, out, _ = cli(capsys, "predict", run_dir, tmp_path / "bar.png", "--top", "12")
    assert status == 0
    line = LINE.match(out.strip())
    assert line["top"] == "10"  # at most the 10 classes
    probabilities = [float(item.rsplit(" ", 1)[1]) for item in line["list"].split(", ")]
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1, abs=6e-4)


# -- bad input: one line, exit 2 ------------------------------------------------------------

@pytest.mark.parametrize("command", ["eval", "predict"])
def test_bad_run_folders(command, tmp_path, capsys) -> None:
    picture = tmp_path / "p.png"
    Image.fromarray(np.full((28, 28), 200, dtype=np.uint8)).save(picture)
    extra = [picture] if command == "predict" else []

    def error(run_dir: Path) -> str:
        line = one_line_error(capsys, command, run_dir, *extra)
        assert line.startswith(f"xpnet {command}: error: {run_dir}")
        return line

    assert "does not exist" in error(tmp_path / "missing")
    assert "is not a folder" in error(picture)
    (tmp_path / "empty").mkdir()
    assert "holds no metrics.json" in error(tmp_path / "empty")
    running = make_run(tmp_path / "running", status="running")
    (running / "params.npz").unlink()
    assert "holds no params.npz (its metrics.json says the run is running)" in error(running)
    corrupt = make_run(tmp_path / "corrupt")
    (corrupt / "params.npz").write_bytes(b"PK\x03\x04 not really a zip")
    assert "params.npz is damaged (File is not a zip file)" in error(corrupt)
    damaged = make_run(tmp_path / "damaged")
    (damaged / "metrics.json").write_text("{")
    assert "metrics.json is damaged" in error(damaged)


def test_bad_pictures_stop_predict_before_any_output(tmp_path, capsys) -> None:
    run_dir = make_run(tmp_path / "run")
    good = tmp_path / "good.png"
    picture = np.zeros((28, 28), dtype=np.uint8)
    picture[4:24, 10:18] = 255
    Image.fromarray(picture).save(good)
    (tmp_path / "notes.txt").write_text("hello\n")
    Image.fromarray(np.zeros((10, 10), dtype=np.uint8)).save(tmp_path / "tiny.png")
    Image.fromarray(np.full((64, 64), 255, dtype=np.uint8)).save(tmp_path / "blank.png")
    cases = {"notes.txt": "is not an image Pillow can read",
             "tiny.png": "is 10x10 pixels, smaller than 28x28",
             "blank.png": "is blank",
             "missing.png": "no such file"}
    for name, expected in cases.items():
        line = one_line_error(capsys, "predict", run_dir, good, tmp_path / name)
        assert line.startswith(f"xpnet predict: error: {tmp_path / name}")
        assert expected in line
    assert "argument --top" in one_line_error(capsys, "predict", run_dir, good, "--top", "0")


def test_eval_refuses_an_out_it_cannot_write(tmp_path, capsys) -> None:
    run_dir = make_run(tmp_path / "run")
    line = one_line_error(capsys, "eval", run_dir, "--out", tmp_path / "no" / "m.png")
    assert line == f"xpnet eval: error: cannot write m.png: {tmp_path / 'no'} is not a folder"
    line = one_line_error(capsys, "eval", run_dir, "--out", tmp_path)
    assert "is a folder; pass a file name" in line
    assert not (run_dir / "eval.json").exists()
