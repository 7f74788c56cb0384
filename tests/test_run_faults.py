"""A run's files: written only by the run, on its own data, every fault one line (issue 18)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from run_toys import toy_dataset
from small_disk import small_tmpfs
from xpnet.dataset.atomic import WriteFaultError

from xpnet import cli, run_folder
from xpnet import run as run_module
from xpnet.errors import RunFolderError, UserError
from xpnet.run import provenance, run
from xpnet.run_config import RunConfig
from xpnet.run_folder import (
    CHECKPOINT,
    METRICS,
    PARAMS,
    claim_dir,
    new_run_dir,
    read_checkpoint,
    read_metrics,
    write_json,
)

TOY_ARGS = ("--dataset", "fashion-mnist", "--no-progress", "--seed", "3", "--batch-size", "20")


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return toy_dataset(tmp_path_factory.mktemp("toy"))


@pytest.fixture(autouse=True)
def _cpu(monkeypatch) -> None:
    monkeypatch.setenv("XPNET_DEVICE", "cpu")


def xpnet(capsys, *args: str) -> tuple[int, str, str]:
    argv = [str(a) for a in args]
    saved = sys.argv
    sys.argv = ["xpnet", *argv]  # what metrics.json records as the command
    try:
        code = cli.main(argv)
    finally:
        sys.argv = saved
    out, err = capsys.readouterr()
    return code, out, err


def one_line(capsys, *args: str) -> str:
    code, _, err = xpnet(capsys, *args)
    lines = [s for s in err.splitlines() if "warning" not in s]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def train(capsys, toy: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return xpnet(capsys, "train", *TOY_ARGS, "--data-dir", toy, "--out", out, *extra)


def interrupt_after(monkeypatch, steps: int) -> None:
    """The next run gets SIGINT during step ``steps`` (a real signal, in this process)."""
    real = run_module.train

    def train_then_signal(*args, **kwargs):
        stop = kwargs["stop"]
        count = [0]

        def stop_hook() -> bool:
            count[0] += 1
            if count[0] == steps:
                signal.raise_signal(signal.SIGINT)
            return stop()

        return real(*args, **{**kwargs, "stop": stop_hook})

    monkeypatch.setattr(run_module, "train", train_then_signal)


# -- 2. a run's files are the run's -------------------------------------------------------

def test_resume_of_a_finished_run_says_so_and_changes_nothing(capsys, toy, tmp_path) -> None:
    out = tmp_path / "done"
    assert train(capsys, toy, out, "--iters", "30")[0] == 0
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    code, said, _ = xpnet(capsys, "train", "--resume", out)
    assert code == 0
    assert said.strip() == (f"xpnet train: {out} is finished (30 of 30 iterations): nothing to "
                            f"resume, nothing changed; score it with: xpnet eval {out}")
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before


def test_resumes_keep_the_first_command_and_list_their_own(capsys, toy, tmp_path,
                                                           monkeypatch) -> None:
    out = tmp_path / "my run"
    interrupt_after(monkeypatch, 7)
    code, _, err = train(capsys, toy, out, "--iters", "60")
    # The hint is shell-quoted: pasted into a shell it names the folder with the space.
    assert code == 130 and f"continue with: xpnet train --resume '{out}'" in err
    first = read_metrics(out)["command"]
    monkeypatch.undo()
    monkeypatch.setenv("XPNET_DEVICE", "cpu")
    interrupt_after(monkeypatch, 11)
    assert xpnet(capsys, "train", "--resume", out, "--no-progress")[0] == 130
    monkeypatch.undo()
    monkeypatch.setenv("XPNET_DEVICE", "cpu")
    assert xpnet(capsys, "train", "--resume", out, "--no-progress")[0] == 0
    m = read_metrics(out)
    assert m["command"] == first and "--out" in first and m["status"] == "finished"
    assert [(r["from_iteration"], r["to_iteration"]) for r in m["resumes"]] == [(7, 18),
                                                                               (18, 60)]
    assert all(r["command"][1:3] == ["train", "--resume"] and r["started_at"] <= r["finished_at"]
               for r in m["resumes"])


def test_eval_never_writes_over_a_runs_files(capsys, toy, tmp_path) -> None:
    out = tmp_path / "r"
    assert train(capsys, toy, out, "--iters", "20")[0] == 0
    params = (out / PARAMS).read_bytes()
    for name in (PARAMS, CHECKPOINT, METRICS, "loss.png", "accuracy.png", "eval.json"):
        line = one_line(capsys, "eval", out, "--out", out / name)
        assert f"would replace a run's own {name}" in line
    assert (out / PARAMS).read_bytes() == params and not (out / "eval.json").exists()
    other = tmp_path / "other"
    assert train(capsys, toy, other, "--iters", "20")[0] == 0
    assert "would replace a run's own params.npz" in one_line(capsys, "eval", out, "--out",
                                                              other / PARAMS)


# -- 3. data identity -------------------------------------------------------------------------

def test_data_dir_is_absolute_and_a_resume_on_other_data_is_refused(capsys, toy, tmp_path,
                                                                    monkeypatch) -> None:
    monkeypatch.chdir(toy.parent)
    out = tmp_path / "r"
    interrupt_after(monkeypatch, 3)
    assert xpnet(capsys, "train", *TOY_ARGS, "--data-dir", toy.name, "--out", out,
                 "--iters", "40")[0] == 130
    m = read_metrics(out)
    assert m["config"]["data_dir"] == str(toy) and m["data"]["directory"] == str(toy)
    identity = m["data"]["identity"]
    assert len(identity) == 16
    # Another folder with other data of the same names: the relative path meant the toy.
    elsewhere = tmp_path / "elsewhere"
    toy_dataset(elsewhere / toy.name, seed=6)
    monkeypatch.chdir(elsewhere)
    monkeypatch.undo()
    monkeypatch.setenv("XPNET_DEVICE", "cpu")
    assert xpnet(capsys, "train", "--resume", out, "--no-progress")[0] == 0  # same files
    # Now the run's own files change under it.
    out2 = tmp_path / "r2"
    data_dir = tmp_path / "data"
    toy_dataset(data_dir)
    interrupt_after(monkeypatch, 3)
    assert xpnet(capsys, "train", *TOY_ARGS, "--data-dir", data_dir, "--out", out2,
                 "--iters", "40")[0] == 130
    monkeypatch.undo()
    monkeypatch.setenv("XPNET_DEVICE", "cpu")
    before = (out2 / CHECKPOINT).read_bytes()
    toy_dataset(data_dir, seed=7)
    line = one_line(capsys, "train", "--resume", out2, "--no-progress")
    found = provenance(run_module.load_data(RunConfig(dataset="fashion-mnist",
                                                      data_dir=str(data_dir))))
    assert line == (f"xpnet train: error: {out2} was trained on fashion-mnist data in {data_dir}"
                    f" (content {read_metrics(out2)['data']['identity']}), but the data read "
                    f"now from {data_dir} is different (content {found['identity']}): pass "
                    f"--data-dir {data_dir} with the run's own files, or start a new run")
    assert (out2 / CHECKPOINT).read_bytes() == before


def test_eval_refuses_a_runs_changed_data(capsys, tmp_path) -> None:
    data_dir = toy_dataset(tmp_path / "data")
    out = tmp_path / "r"
    assert train(capsys, data_dir, out, "--iters", "20")[0] == 0
    assert xpnet(capsys, "eval", out)[0] == 0
    toy_dataset(data_dir, seed=9)
    assert "is different (content" in one_line(capsys, "eval", out)


def test_provenance_identity_is_the_contents_not_the_folder(tmp_path) -> None:
    a = run_module.load_data(RunConfig(dataset="fashion-mnist",
                                       data_dir=str(toy_dataset(tmp_path / "a"))))
    b = run_module.load_data(RunConfig(dataset="fashion-mnist",
                                       data_dir=str(toy_dataset(tmp_path / "b"))))
    c = run_module.load_data(RunConfig(dataset="fashion-mnist",
                                       data_dir=str(toy_dataset(tmp_path / "c", seed=8))))
    assert provenance(a)["identity"] == provenance(b)["identity"] != provenance(c)["identity"]
    assert set(provenance(a)) == {"name", "directory", "files", "verified", "train_size",
                                  "test_size", "identity"}


# -- 4. file faults -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished(tmp_path_factory, toy) -> Path:
    out = tmp_path_factory.mktemp("runs") / "done"
    assert cli.main(["train", *TOY_ARGS, "--data-dir", str(toy), "--out", str(out),
                     "--iters", "50"]) == 0
    return out


def copy_run(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for p in src.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def flip_a_byte_in(path: Path, member: str) -> None:
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    data = bytearray(path.read_bytes())
    at = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.file_size // 2
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", [PARAMS, CHECKPOINT])
def test_a_byte_flipped_npz_is_one_line(capsys, finished, tmp_path, name) -> None:
    run_dir = copy_run(finished, tmp_path / "r")
    flip_a_byte_in(run_dir / name, "W1.npy")
    with pytest.raises(zipfile.BadZipFile):  # as the file really is: numpy would say so
        with np.load(run_dir / name, allow_pickle=False) as npz:
            npz["W1"]
    line = (one_line(capsys, "eval", run_dir) if name == PARAMS else
            one_line(capsys, "train", "--resume", run_dir))
    assert f"{run_dir / name} is damaged (member W1.npy fails its CRC check)" in line


def write_claiming(path: Path, shape: tuple[int, ...], **arrays: np.ndarray) -> None:
    """An .npz whose W1 header claims ``shape`` while its member holds a few bytes."""
    header = {"descr": "<f8", "fortran_order": False, "shape": shape}
    with zipfile.ZipFile(path, "w") as zf:
        for k, v in arrays.items():
            with zf.open(f"{k}.npy", "w") as f:
                np.lib.format.write_array(f, v)
        with zf.open("W1.npy", "w") as f:
            np.lib.format.write_array_header_1_0(f, header)
            f.write(b"\0" * 64)


def test_a_header_claiming_more_than_its_member_is_refused_before_allocating(
        capsys, finished, tmp_path) -> None:
    import tracemalloc

    run_dir = copy_run(finished, tmp_path / "r")
    with np.load(finished / PARAMS) as npz:
        rest = {k: npz[k] for k in ("b1", "W2", "b2")}
    write_claiming(run_dir / PARAMS, (784, 50_000_000), **rest)  # 313 GB claimed
    tracemalloc.start()
    try:
        line = one_line(capsys, "eval", run_dir)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "W1 claims (784, 50000000) float64, more than its" in line
    assert peak < 50e6


@pytest.mark.parametrize(("field", "value", "why"), [
    ("iterations", -700, "iterations -700 is not within 0..50"),
    ("iterations", "5", "iterations is '5', not an integer"),
    ("iterations", 5000, "iterations 5000 is not within 0..50"),
    ("iterations", True, "iterations is True, not an integer"),
    ("iter_per_epoch", 0, "iter_per_epoch 0 is below 1"),
    ("loss_stride", 0, "loss_stride 0 is below 1"),
    ("loss_pending", [0.0, 7], "50 losses of stride 1 (+7) do not make its 50 iterations"),
    ("seed", 4, "its seed 4 is not its config's 3"),
    ("test_acc_list", [2.0] * 3, "test_acc_list holds 2.0, not an accuracy"),
])
def test_every_field_of_a_checkpoints_state_is_checked(capsys, finished, tmp_path, field, value,
                                                       why) -> None:
    run_dir = copy_run(finished, tmp_path / "r")
    edit_state(run_dir, lambda s: s["history"].__setitem__(field, value))
    (run_dir / METRICS).write_text(json.dumps({**read_metrics(finished), "status": "running"}))
    line = one_line(capsys, "train", "--resume", run_dir)
    assert line.startswith(f"xpnet train: error: {run_dir / CHECKPOINT} is damaged ({why}")


def test_an_edited_epoch_length_is_refused_at_resume(capsys, finished, tmp_path) -> None:
    run_dir = copy_run(finished, tmp_path / "r")
    edit_state(run_dir, lambda s: s["history"].__setitem__("iter_per_epoch", 7))
    (run_dir / METRICS).write_text(json.dumps({**read_metrics(finished), "status": "running"}))
    assert "says an epoch is 7 iterations, not the 20" in one_line(capsys, "train", "--resume",
                                                                   run_dir)


def edit_state(run_dir: Path, edit) -> None:
    path = run_dir / CHECKPOINT
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    state = json.loads(str(arrays["state"]))
    edit(state)
    arrays["state"] = np.array(json.dumps(state))
    with path.open("wb") as f:
        np.savez(f, **arrays)


def strict_json(path: Path):
    """The JSON in ``path``; NaN, Infinity or -Infinity literals fail."""
    def refuse(literal: str):
        raise AssertionError(f"{literal} literal in {path}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_no_nan_or_infinity_literal_reaches_a_json_file(tmp_path) -> None:
    write_json(tmp_path / "a.json", {"x": [1.0, float("nan")], "y": {"z": float("-inf")},
                                     "n": np.float64("inf"), "ok": 0.5})
    doc = strict_json(tmp_path / "a.json")
    assert doc["x"] == [1.0, None] and doc["y"] == {"z": None} and doc["n"] is None
    assert doc["ok"] == 0.5 and "written as null" in doc["non_finite_note"]
    write_json(tmp_path / "b.json", {"ok": 1.0})
    assert "non_finite_note" not in json.loads((tmp_path / "b.json").read_text())


def test_a_nan_in_a_checkpoints_losses_reaches_metrics_json_as_null(capsys, finished,
                                                                   tmp_path) -> None:
    run_dir = copy_run(finished, tmp_path / "r")
    path = run_dir / CHECKPOINT
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["train_loss_list"] = arrays["train_loss_list"].copy()
    arrays["train_loss_list"][3] = np.nan
    with path.open("wb") as f:
        np.savez(f, **arrays)
    (run_dir / METRICS).write_text(json.dumps({**read_metrics(finished), "status": "running"}))
    assert xpnet(capsys, "train", "--resume", run_dir)[0] == 0  # completes the writing
    assert strict_json(run_dir / METRICS)["train_loss_list"][3] is None


def test_write_faults_are_user_errors() -> None:
    assert issubclass(WriteFaultError, UserError) and issubclass(WriteFaultError, OSError)


def test_a_full_disk_is_one_line_and_leaves_a_failed_run_or_nothing(capsys, toy,
                                                                    tmp_path) -> None:
    with small_tmpfs(tmp_path / "disk", "64k") as disk:
        out = disk / "r"
        line = one_line(capsys, "train", *TOY_ARGS, "--data-dir", toy, "--out", out,
                        "--iters", "30", "--hidden", "100")
        assert line == (f"xpnet train: error: cannot write {out / CHECKPOINT}: the disk is "
                        "full; free some space or write to another disk")
        # Not even the first checkpoint fitted: nothing is left, the same command reruns.
        assert not out.exists()


def test_a_disk_that_fills_during_training_marks_the_run_failed(capsys, toy, tmp_path) -> None:
    # Room for the first checkpoint and metrics.json, not for the final pictures.
    with small_tmpfs(tmp_path / "disk", "160k") as disk:
        out = disk / "r"
        line = one_line(capsys, "train", *TOY_ARGS, "--data-dir", toy, "--out", out,
                        "--iters", "30", "--hidden", "8")
        m = read_metrics(out)
        assert m["status"] == "failed" and "the disk is full" in m["error"]
        assert line.endswith(f"continue with: xpnet train --resume {out}")


def test_a_read_only_run_folder_is_refused_before_training(capsys, finished, tmp_path,
                                                           monkeypatch) -> None:
    with small_tmpfs(tmp_path / "ro", "1m") as disk:
        run_dir = copy_run(finished, disk / "r")
        (run_dir / METRICS).write_text(json.dumps({**read_metrics(finished),
                                                   "status": "interrupted"}))
        edit_state(run_dir, lambda s: s["history"].update(
            iterations=20, train_acc_list=s["history"]["train_acc_list"][:1],
            test_acc_list=s["history"]["test_acc_list"][:1],
            eval_iterations=s["history"]["eval_iterations"][:1]))
        with np.load(run_dir / CHECKPOINT) as npz:
            arrays = {k: npz[k] for k in npz.files}
        arrays["train_loss_list"] = arrays["train_loss_list"][:20]
        with (run_dir / CHECKPOINT).open("wb") as f:
            np.savez(f, **arrays)
        read_checkpoint(run_dir)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True, timeout=30)
        trained = []
        real = run_module.train
        monkeypatch.setattr(run_module, "train", lambda *a, **k: trained.append(1) or real(*a, **k))
        line = one_line(capsys, "train", "--resume", run_dir)
        assert line == (f"xpnet train: error: cannot lock the run folder {run_dir} (Read-only "
                        "file system); pass a folder you can write in") and not trained


# -- 5. small lies --------------------------------------------------------------------------

def test_a_run_made_on_cuda_resumes_on_the_cpu_when_asked(capsys, finished, tmp_path) -> None:
    from xpnet.backend import cuda_unavailable_reason

    if cuda_unavailable_reason() is None:
        pytest.skip("this machine has CUDA")
    run_dir = copy_run(finished, tmp_path / "r")
    edit_state(run_dir, lambda s: s["config"].__setitem__("device", "cuda:0"))
    (run_dir / METRICS).write_text(json.dumps({**read_metrics(finished), "status": "running"}))
    line = one_line(capsys, "train", "--resume", run_dir)
    assert line.startswith(f"xpnet train: error: {run_dir} was trained on cuda:0, which cannot "
                           "be used here (")
    assert line.endswith(f"continue it on the CPU with: xpnet train --resume {run_dir} "
                         "--device cpu")
    assert xpnet(capsys, "train", "--resume", run_dir, "--device", "cpu")[0] == 0
    m = read_metrics(run_dir)
    assert m["config"]["device"] == "cpu" and m["resumes"][-1]["device"] == "cpu"


def test_gradcheck_says_how_many_samples_it_used_and_a_verdict(capsys, toy) -> None:
    code, out, _ = xpnet(capsys, "gradcheck", "--dataset", "fashion-mnist", "--data-dir", toy,
                         "--samples", "100000", "--hidden", "3", "--seed", "1")
    assert code == 0
    assert ("on 400 samples (all there are: --samples 100000 is more than the 400 training "
            "images)") in out
    assert out.splitlines()[-1] == ("OK: every mean difference is below 1e-06: backprop agrees "
                                    "with the numerical gradient")


def test_gradcheck_says_mismatch_when_backprop_is_wrong(capsys, toy, monkeypatch) -> None:
    from xpnet.two_layer_net import TwoLayerNet

    real = TwoLayerNet.gradient

    def wrong(self, x, t):
        grads = real(self, x, t)
        grads["W2"] = grads["W2"] * 1.5
        return grads

    monkeypatch.setattr(TwoLayerNet, "gradient", wrong)
    code, out, _ = xpnet(capsys, "gradcheck", "--dataset", "fashion-mnist", "--data-dir", toy,
                         "--hidden", "3", "--seed", "1")
    assert code == 1 and out.splitlines()[-1].startswith("MISMATCH: W2 differs by ")


def test_train_help_shows_every_default(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(the fused central difference) (default: backprop)" in text
    assert "--cuda-graph, --no-cuda-graph" in text
    assert "one CUDA graph launch per step on CUDA (default: on there)" in text


# -- 6. tests that can fail ----------------------------------------------------------------------

def test_two_runs_forced_onto_one_generated_name_get_two_folders(tmp_path, monkeypatch) -> None:
    names = iter(["20250101-000000-aaaaaa", "20250101-000000-aaaaaa", "20250101-000000-bbbbbb"])
    monkeypatch.setattr(run_folder, "_run_name", lambda: next(names))
    first, second = new_run_dir(tmp_path), new_run_dir(tmp_path)
    assert first.name == "20250101-000000-aaaaaa" and second.name == "20250101-000000-bbbbbb"
    monkeypatch.setattr(run_folder, "_run_name", lambda: "20250101-000000-aaaaaa")
    with pytest.raises(RunFolderError, match="could not create a new run folder"):
        new_run_dir(tmp_path)


@pytest.fixture(scope="module")
def data():
    from test_run import Data

    rng = np.random.default_rng(5)
    centers = rng.integers(0, 256, size=(10, 784))

    def split(n: int):
        t = rng.integers(0, 10, size=n).astype(np.uint8)
        return np.clip(centers[t] + rng.normal(scale=40, size=(n, 784)), 0, 255).astype(
            np.uint8), t

    return Data(*split(400), *split(100))


CONFIG = RunConfig(dataset="fashion-mnist", iters=200, batch_size=20, seed=3, hidden=8,
                   weight_init_std=0.1, lr=0.5)


def test_checkpoint_every_writes_the_checkpoint_it_asks_for(data, tmp_path) -> None:
    # Epochs are 20 iterations; every 7 gives checkpoints at 7, 14, 21, 28 too.
    out = claim_dir(tmp_path / "r")
    calls = []

    def stop() -> bool:
        calls.append(1)
        if len(calls) == 29:  # the step of iteration 29 done: stop there
            h = read_checkpoint(out)["history"]
            assert h.iterations == 28
        return False

    run(CONFIG, data=data, out=out, checkpoint_every=7, stop=stop)
    seen = []
    out2 = claim_dir(tmp_path / "r2")

    def stop2() -> bool:
        seen.append(read_checkpoint(out2)["history"].iterations)
        return len(seen) == 30

    result = run(CONFIG, data=data, out=out2, checkpoint_every=7, stop=stop2)
    assert result.status == "interrupted"
    # stop() is asked after each step, before that step's checkpoint: after step 8 the
    # checkpoint of iteration 7 is there, after step 14 still 7, after step 15 that of 14.
    assert seen[:8] == [0, 1, 1, 1, 1, 1, 1, 7]
    assert seen[13] == 7 and seen[14] == 14 and seen[21] == 21 and seen[28] == 28


def test_the_first_sigint_lets_the_current_step_finish(data, tmp_path) -> None:
    from xpnet.run import stop_on_signals

    out = claim_dir(tmp_path / "r")
    with stop_on_signals() as received:
        def on_epoch(i: int, train_acc: float, test_acc: float) -> None:
            if i == 40:  # inside the step of iteration 41 (its evaluation)
                signal.raise_signal(signal.SIGINT)

        try:
            result = run(CONFIG, data=data, out=out, on_epoch=on_epoch,
                         stop=lambda: received() is not None)
        except KeyboardInterrupt:
            pytest.fail("the first SIGINT raised in the middle of a step")
    assert received() == signal.SIGINT
    assert result.status == "interrupted" and result.history.iterations == 41
    assert read_checkpoint(out)["history"].iterations == 41
    assert read_metrics(out)["status"] == "interrupted"


def test_signals_as_a_flag_only_and_ignored_after_the_work_stopped() -> None:
    # A sweep's mode: every signal only recorded, never raised; once one came, later ones
    # are ignored to the process's end (Python's exit would meet them with the default
    # action, killing it instead of letting it end with 143).
    from xpnet.run import stop_on_signals

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with stop_on_signals(raise_again=False) as received:
            for _ in range(3):
                signal.raise_signal(signal.SIGTERM)  # would raise SignalStop the 2nd time
            signal.raise_signal(signal.SIGINT)
        assert received() == signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        with stop_on_signals(raise_again=False) as received:
            pass  # no signal: the handlers before it come back
        assert received() is None
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        for s, h in before.items():
            signal.signal(s, h)
    with stop_on_signals(raise_again=False):
        pass
    assert {s: signal.getsignal(s) for s in before} == before


# -- 7. runs that learn nothing say so ----------------------------------------------

def test_a_run_at_chance_level_says_it_learned_nothing(capsys, toy, tmp_path) -> None:
    out = tmp_path / "r"
    code, said, _ = train(capsys, toy, out, "--iters", "60", "--lr", "1000")
    assert code == 0
    m = read_metrics(out)
    assert m["status"] == "finished" and m["final_test_acc"] < 0.12
    assert m["verdict"].startswith(f"learned nothing: test accuracy {m['final_test_acc']:.4f} "
                                   "is chance level (10 classes)")
    assert said.splitlines()[-1] == f"xpnet train: {m['verdict']}"
    good = tmp_path / "good"
    code, said, _ = train(capsys, toy, good, "--iters", "60", "--lr", "0.5",
                          "--weight-init-std", "0.1")
    assert "verdict" not in read_metrics(good) and said.splitlines()[-1].startswith("done in")


def test_a_loss_that_grew_is_said(data) -> None:
    from xpnet.run_config import RunResult
    from xpnet.trainer import History

    # What --lr 1e300 does: the loss jumps at once and stays high, never NaN.
    h = History(train_loss_list=[2.3, 16.1, 2.2, 7.5, 6.6], iter_per_epoch=2)
    result = RunResult(config=CONFIG, history=h, status="finished", final_train_acc=0.5,
                       final_test_acc=0.5, params={}, wall_time_s=1.0)
    assert run_module.verdict(result) == (
        "the loss grew: its mean over the last epoch, 7.05, is above the first mini-batch's, "
        "2.3; try a smaller learning rate than 0.5")
    h.train_loss_list = [2.3, 2.4, 2.2, 1.5, 1.6]
    assert run_module.verdict(result) is None
    h.train_loss_list = [2.3]
    assert run_module.verdict(result) is None
    h.train_loss_list = [2.299, 2.31, 2.28, 2.305, 2.301]  # a short run's noise: no growth
    assert run_module.verdict(result) is None
    result.final_test_acc = 0.11
    assert run_module.verdict(result).startswith("learned nothing: test accuracy 0.1100")
    assert run_module.verdict(dataclasses.replace(result, final_test_acc=0.125)) is None


# -- 8. eval points the way --------------------------------------------------------------

def test_eval_of_a_sweep_or_a_folder_of_runs_names_the_run_to_use(capsys, finished,
                                                                  tmp_path) -> None:
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "results.csv").write_text("trial\n")
    (sweep / "trials").mkdir()
    for name, acc in (("t1", 0.5), ("t2", 0.875), ("t3", 0.25)):
        trial = copy_run(finished, sweep / "trials" / name)
        (trial / METRICS).write_text(json.dumps({**read_metrics(finished),
                                                 "final_test_acc": acc}))
    assert one_line(capsys, "eval", sweep) == (
        f"xpnet eval: error: {sweep} is a sweep's folder, not a run's; its best trial is "
        f"{sweep / 'trials' / 't2'} (test accuracy 0.8750): pass that")
    runs = tmp_path / "runs"
    runs.mkdir()
    for name, started in (("a", "2026-01-02T00:00:00+00:00"), ("b", "2026-03-01T00:00:00+00:00"),
                          ("c", "2026-02-01T00:00:00+00:00")):
        trial = copy_run(finished, runs / name)
        (trial / METRICS).write_text(json.dumps({**read_metrics(finished),
                                                 "started_at": started}))
    assert one_line(capsys, "eval", runs) == (
        f"xpnet eval: error: {runs} holds runs, not a run's files; the latest is {runs / 'b'} "
        "(started 2026-03-01T00:00:00+00:00, finished): pass that")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert one_line(capsys, "predict", empty, finished / "loss.png").endswith(
        "holds no metrics.json; pass a run folder written by xpnet train")


def test_predict_saves_the_picture_the_net_saw(capsys, finished, tmp_path) -> None:
    from PIL import Image

    from xpnet.images import mnist_like

    pic = tmp_path / "shirt.png"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (60, 40), dtype=np.uint8)).save(pic)
    code, said, _ = xpnet(capsys, "predict", finished, pic, "--save-inputs", tmp_path / "seen")
    saved = tmp_path / "seen" / "shirt.input.png"
    assert code == 0 and said.strip().endswith(f"; the net saw {saved}")
    seen = np.asarray(Image.open(saved))
    assert seen.shape == (28, 28) and seen.dtype == np.uint8
    expected = mnist_like(pic, dataset="fashion-mnist").reshape(28, 28)
    assert np.abs(seen / 255 - expected).max() <= 0.5 / 255 + 1e-6
    assert "is a run's folder" in one_line(capsys, "predict", finished, pic, "--save-inputs",
                                           finished)


def test_a_run_folder_cannot_be_reclaimed_while_another_holds_it(tmp_path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from xpnet import folder_lock; "
         "lock = folder_lock.FolderLock(sys.argv[1]); print('held', flush=True); time.sleep(60)",
         str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderError, match=f"pid {holder.pid}"):
            claim_dir(tmp_path)
        with pytest.raises(RunFolderError, match=f"pid {holder.pid}"):
            run(CONFIG, out=tmp_path, resume=True)
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert os.listdir(tmp_path) == [".xpnet.lock"]  # a killed holder's file; harmless
    assert claim_dir(tmp_path) == tmp_path


def test_eval_and_resume_of_a_held_run_are_refused_at_once(capsys, finished, tmp_path) -> None:
    run_dir = copy_run(finished, tmp_path / "r")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from xpnet import folder_lock; "
         "lock = folder_lock.FolderLock(sys.argv[1]); print('held', flush=True); "
         "time.sleep(60)", str(run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = (f"{run_dir} is in use by another xpnet process (pid {holder.pid}): wait for it "
                "to end, or use another run folder")
        assert one_line(capsys, "eval", run_dir) == f"xpnet eval: error: {busy}"
        assert one_line(capsys, "train", "--resume", run_dir) == f"xpnet train: error: {busy}"
        assert one_line(capsys, "train", *TOY_ARGS, "--out", run_dir) == (
            f"xpnet train: error: {busy}")
        assert not (run_dir / "eval.json").exists()
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_run_makes_a_relative_data_dir_absolute(toy, monkeypatch) -> None:
    monkeypatch.chdir(toy.parent)
    config = RunConfig(dataset="fashion-mnist", iters=2, batch_size=20, seed=1, hidden=4,
                       data_dir=toy.name)
    result = run(config)
    assert result.config.data_dir == str(toy)
    assert result.record.data["directory"] == str(toy)


def test_a_file_size_limit_is_one_line_and_leaves_no_half_written_file(toy, tmp_path) -> None:
    import resource

    def limit() -> None:  # ulimit -f: Python ignores SIGXFSZ, so writes fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    out = tmp_path / "r"
    done = subprocess.run([sys.executable, "-m", "xpnet", "train", *TOY_ARGS, "--data-dir",
                           str(toy), "--out", str(out), "--iters", "20"],
                          capture_output=True, text=True, timeout=300, preexec_fn=limit,
                          env={**os.environ, "XPNET_DEVICE": "cpu"})
    lines = [s for s in done.stderr.splitlines() if "warning" not in s]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0] == (f"xpnet train: error: cannot write {out / CHECKPOINT}: the file is "
                        "larger than this process may write (a file-size limit, ulimit -f, or "
                        "the file system's maximum); raise the limit or write elsewhere")
    assert not out.exists()


def test_eval_on_a_full_disk_is_one_line(capsys, finished, tmp_path) -> None:
    need_kb = sum(-(-p.stat().st_size // 4096) * 4 for p in finished.iterdir())
    with small_tmpfs(tmp_path / "disk", f"{need_kb + 8}k") as disk:
        run_dir = copy_run(finished, disk / "r")
        line = one_line(capsys, "eval", run_dir)
        assert line.startswith(f"xpnet eval: error: cannot write {run_dir}/") and line.endswith(
            "the disk is full; free some space or write to another disk")
        assert not [p for p in run_dir.iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize(("signum", "code", "said"), [
    (signal.SIGTERM, 143, "xpnet: stopped by SIGTERM"), (signal.SIGINT, 130, "xpnet: interrupted")])
def test_a_second_signal_stops_at_once_with_its_own_exit_status(capsys, toy, tmp_path,
                                                               monkeypatch, signum, code,
                                                               said) -> None:
    real = run_module.train

    def twice(*args, **kwargs):
        def on_epoch(i, a, b):  # both inside one step: the second cannot wait for its end
            signal.raise_signal(signum)
            signal.raise_signal(signum)

        return real(*args, **{**kwargs, "on_epoch": on_epoch})

    monkeypatch.setattr(run_module, "train", twice)
    got, _, err = train(capsys, toy, tmp_path / "r", "--iters", "30")
    assert got == code and err.strip().splitlines()[-1] == said
