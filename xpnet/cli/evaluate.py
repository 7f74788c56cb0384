"""``xpnet eval RUN_DIR`` and ``xpnet predict RUN_DIR IMAGE...``: using a trained run.

``eval`` scores the run's params.npz on its dataset's test set: accuracy, accuracy per
class, the most frequent confusions, and writes confusion.png and eval.json into the run
folder. ``predict`` classifies picture files made MNIST-like by ``xpnet.images``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import InputError, ModelFileError
from .common import add_data_args, add_device_arg, note, positive_int


def register(sub: Any) -> None:
    """Add ``eval`` and ``predict`` to the xpnet subcommands ``sub``."""
    e = sub.add_parser("eval", help="score a trained run on its test set",
                       description="Score RUN_DIR/params.npz on the test set of the run's "
                                   "dataset: accuracy, per class, the most frequent "
                                   "confusions; writes confusion.png and eval.json.")
    e.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a folder of xpnet train")
    add_data_args(e, default="the run's own, from its metrics.json")
    e.add_argument("--out", type=Path, default=None, metavar="FILE.png",
                   help="the confusion-matrix picture (default: RUN_DIR/confusion.png)")
    e.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="classify image files with a trained run",
                       description="Classify pictures (PNG, JPEG, ... of one digit or "
                                   "garment) with RUN_DIR/params.npz; each is first made "
                                   "like an MNIST image (grayscale, light on black, "
                                   "cropped, 28x28, centred).")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a folder of xpnet train")
    p.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="picture files")
    add_device_arg(p)
    p.add_argument("--top", type=positive_int, default=3, metavar="K",
                   help="how many classes to list per picture (default: 3)")
    p.add_argument("--save-inputs", type=Path, default=None, metavar="DIR",
                   help="also write each picture as the net saw it (28x28, after the MNIST-"
                        "like preparation) to DIR/<name>.input.png")
    p.set_defaults(func=cmd_predict)


def _load(run_dir: Path, device: str | None) -> tuple[Any, dict[str, Any]]:
    """The run's net and metrics.json, with a note if the run did not finish."""
    from ..backend import parse_device
    from ..run_folder import load_net

    net, metrics = load_net(run_dir, parse_device(device))
    if metrics.get("status") != "finished":
        note(f"{run_dir}/metrics.json says the run is {metrics.get('status')}; using the "
             "parameters it saved")
    return net, metrics


def cmd_eval(args: argparse.Namespace) -> int:
    from ..run_folder import held, refuse_run_folder

    run_dir = Path(args.run_dir)
    refuse_run_folder(run_dir)  # one line, and the best trial or latest run if there is one
    with held(run_dir):  # it writes eval.json there: a second command waits its turn
        return _eval(args, run_dir)


def _eval(args: argparse.Namespace, run_dir: Path) -> int:
    from ..dataset import load_dataset, normalized
    from ..dataset.atomic import WriteFaultError
    from ..evaluate import check_writable, confusion_figure, eval_document, evaluate
    from ..run import check_same_data, provenance
    from ..run_folder import CONFUSION_PNG, EVAL_JSON, refuse_run_file, save_figure, write_eval

    net, metrics = _load(run_dir, args.device)
    config = metrics["config"]
    dataset = args.dataset or config["dataset"]
    data_dir = args.data_dir if args.data_dir is not None else config.get("data_dir")
    picture = args.out if args.out is not None else run_dir / CONFUSION_PNG
    if picture.is_dir():
        raise InputError(f"--out {picture} is a folder; pass a file name such as "
                         f"{picture / CONFUSION_PNG}")
    refuse_run_file(picture, run_dir, "--out")
    check_writable(run_dir, EVAL_JSON)
    check_writable(picture.parent, picture.name)
    data = load_dataset(dataset, data_dir=data_dir)
    if args.dataset is None and args.data_dir is None:
        # The run's own data, as it says: it must still be what the run trained on.
        check_same_data(run_dir, metrics.get("data"), provenance(data))
    if net.features != data.x_test.shape[1]:
        raise InputError(f"the net takes {net.features} inputs but {data.title} images have "
                         f"{data.x_test.shape[1]} pixels")
    result = evaluate(net, normalized(data.x_test), data.t_test, data.class_names)
    _print_scores(run_dir, net, data, result)
    recorded = metrics.get("final_test_acc")
    if recorded is not None and dataset == config["dataset"] and recorded != result.accuracy:
        print(f"(metrics.json recorded {recorded:.4f} at the end of training)")
    _print_classes(data.class_names, result)
    try:
        save_figure(confusion_figure(result, f"{data.title} test set, {run_dir.name}"), picture)
        write_eval(run_dir, eval_document(run_dir, metrics, net.device, data, result))
    except WriteFaultError:
        raise  # already one line naming the file and what to do
    except OSError as err:
        raise InputError(f"cannot write {err.filename or picture} "
                         f"({err.strerror or err})") from None
    print(f"wrote {picture}, {run_dir / EVAL_JSON}")
    return 0


def _print_scores(run_dir: Path, net: Any, data: Any, result: Any) -> None:
    print(f"{run_dir}: {net.describe()} {net.dtype.name} on the {data.title} test "
          f"set ({result.total} images from {data.directory}), device {net.device}")
    print(f"test accuracy {result.accuracy:.4f} ({result.correct} of {result.total} right)")


def _print_classes(names: tuple[str, ...], result: Any) -> None:
    width = max(len(n) for n in names)
    print(f"class  {'name':<{width}}  count  accuracy")
    for i, (name, n, acc) in enumerate(zip(names, result.counts.tolist(),
                                           result.per_class_accuracy, strict=True)):
        print(f"{i:>5}  {name:<{width}}  {n:>5}  " + ("-" if acc is None else f"{acc:.4f}"))
    print("most frequent confusions (true -> predicted: count):")
    for i, j, n in result.top_confusions(3):
        print(f"  {i} {names[i]} -> {j} {names[j]}: {n}")


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from ..backend import asnumpy
    from ..evaluate import class_names_of
    from ..images import mnist_like, save_input

    run_dir = Path(args.run_dir)
    net, metrics = _load(run_dir, args.device)
    dataset = metrics["config"]["dataset"]
    names = class_names_of(dataset)
    if net.features != 784 or net.classes != len(names):
        raise ModelFileError(f"{run_dir}/params.npz is a {net.describe()}, not a net for "
                             f"28x28 images of {len(names)} classes")
    saved = _input_names(args.save_inputs, args.images) if args.save_inputs else None
    # Every file is read before any is classified: a bad one stops all, with nothing printed.
    x = np.stack([mnist_like(path, dataset=dataset) for path in args.images])
    probabilities = asnumpy(net.predict(x))
    k = min(args.top, len(names))
    for i, (path, p) in enumerate(zip(args.images, probabilities, strict=True)):
        best = np.argsort(-p, kind="stable")[:k]
        top = ", ".join(f"{j} {names[j]} {p[j]:.4f}" for j in best)
        seen = ""
        if saved is not None:
            save_input(x[i], saved[i])
            seen = f"; the net saw {saved[i]}"
        print(f"{path}: {best[0]} {names[best[0]]} (p={p[best[0]]:.4f}); top {k}: {top}{seen}")
    return 0


def _input_names(folder: Path, images: list[Path]) -> list[Path]:
    """Where --save-inputs writes each picture: ``folder/<stem>.input.png``, made unique."""
    from ..run_folder import CHECKPOINT, METRICS

    if (folder / METRICS).exists() or (folder / CHECKPOINT).exists():
        raise InputError(f"--save-inputs {folder} is a run's folder; only the run writes "
                         "there: pass another folder")
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--save-inputs {folder} is a file; pass a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create --save-inputs {folder} ({err.strerror or err}); "
                         "pass a folder you can write") from None
    stems = [p.stem for p in images]
    return [folder / (f"{s}.input.png" if stems.count(s) == 1 else f"{s}-{i + 1}.input.png")
            for i, s in enumerate(stems)]
