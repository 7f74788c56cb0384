"""The pictures of a run, drawn from its metrics.json document (never saved here).

A run's folder gets ``accuracy.png`` and ``loss.png`` from these; a sweep draws its
trials' test curves with the same ``accuracy_points``. ``xpnet.run_folder`` saves them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure


def title(doc: Mapping[str, Any]) -> str:
    """The settings of a run in one line, and its final test accuracy if it has one."""
    c = doc["config"]
    acc = doc.get("final_test_acc")
    final = "" if acc is None else f", test acc {acc:.4f}"
    net, optimizer = c.get("net", "two-layer"), c.get("optimizer", "sgd")  # older runs'
    decay = f", weight decay {c['weight_decay']:g}" if c.get("weight_decay") else ""
    return (f"{c['dataset']}, {net} by {optimizer}, {c['device']}, {c['dtype']}, {c['grad']}: "
            f"lr {c['lr']:g}, hidden {c['hidden']}{decay}, batch {c['batch_size']}, "
            f"seed {c['seed']}{final}")


def accuracy_points(doc: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(epochs, train acc, test acc): each evaluation, then the end of the run if later."""
    per_epoch = doc["iter_per_epoch"]
    epochs = [e["iteration"] / per_epoch for e in doc["epochs"]]
    train = [e["train_acc"] for e in doc["epochs"]]
    test = [e["test_acc"] for e in doc["epochs"]]
    end = doc["iterations_done"] / per_epoch
    if doc.get("final_test_acc") is not None and (not epochs or end > epochs[-1]):
        epochs.append(end)
        train.append(doc["final_train_acc"])
        test.append(doc["final_test_acc"])
    return np.asarray(epochs), np.asarray(train), np.asarray(test)


def accuracy_figure(doc: Mapping[str, Any]) -> Figure:
    """The book's figure: train (solid) and test (dashed) accuracy per epoch, y in [0, 1].

    Points are marked, and the accuracy after the last iteration is the last point, so
    even a run shorter than an epoch draws a line.
    """
    epochs, train, test = accuracy_points(doc)
    fig = Figure(figsize=(7.2, 4.8))
    ax = fig.add_subplot()
    ax.plot(epochs, train, marker="o", markersize=3, label="train acc")
    ax.plot(epochs, test, marker="s", markersize=3, linestyle="--", label="test acc")
    ax.set_xlabel("epochs")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.0)
    ax.legend(loc="lower right")
    ax.set_title(title(doc), fontsize=9)
    return fig


def centred_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean over ``window`` values centred on each point.

    Near the ends the window shrinks on both sides alike (at the first point, the first
    value alone), so the mean starts and ends where the values do: a one-sided window
    there would pull it towards the later, lower losses (1.85 where the first batch
    losses are 2.30).
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    half = np.minimum(window // 2, np.minimum(np.arange(n), n - 1 - np.arange(n)))
    sums = np.concatenate(([0.0], np.cumsum(values)))
    i = np.arange(n)
    return (sums[i + half + 1] - sums[i - half]) / (2 * half + 1)


def loss_figure(doc: Mapping[str, Any]) -> Figure:
    """Mini-batch loss per iteration, with a centred mean over one epoch."""
    loss = np.asarray(doc["train_loss_list"], dtype=float)
    stride = doc["loss_stride"]
    iterations = (np.arange(loss.size) + 0.5) * stride - 0.5
    fig = Figure(figsize=(7.2, 4.8))
    ax = fig.add_subplot()
    ax.plot(iterations, loss, linewidth=0.5, alpha=0.5, label="mini-batch loss")
    window = int(round(doc["iter_per_epoch"] / stride))
    if loss.size >= window > 1:
        ax.plot(iterations, centred_mean(loss, window),
                label=f"centred mean over one epoch ({window * stride} iterations)")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    # Above the axes, never over the curve, whatever its shape (a flat loss included).
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.08), ncols=2, fontsize=8, frameon=False)
    ax.set_title(title(doc), fontsize=9)
    return fig
