"""The sweep's table and pictures name the nets' settings where they vary (no cluster)."""

from __future__ import annotations

from xpnet import sweep_report as sr
from xpnet.run_config import RunConfig
from xpnet.sweep_spec import swept_of

CONFIGS = [
    RunConfig(net="two-layer", seed=0, iters=100),
    RunConfig(net="multi-layer", hidden=(100,) * 4, seed=0, iters=100),
    RunConfig(net="multi-layer", hidden=(100, 100, 50), weight_decay=1e-6, seed=0, iters=100,
              optimizer="adam"),
    RunConfig(net="multi-layer", hidden=(100,) * 4, weight_decay=1e-4, seed=0, iters=100,
              optimizer="adam", weight_init_std="xavier"),
]


def finished_rows() -> tuple[list[dict], dict]:
    keys = [f"k{i}" for i in range(len(CONFIGS))]
    docs = {k: {"status": "finished", "final_test_acc": 0.5 + i / 10, "best_test_acc": 0.6,
                "final_train_acc": 0.7, "wall_time_s": 1.0,
                "epochs": [{"iteration": 0, "train_acc": 0.1, "test_acc": 0.1},
                           {"iteration": 60, "train_acc": 0.5, "test_acc": 0.5 + i / 10}],
                "iter_per_epoch": 60, "iterations_done": 100}
            for i, k in enumerate(keys)}
    return sr.rows(CONFIGS, keys, docs), docs


def test_the_table_and_labels_show_the_settings_as_a_sweep_takes_them() -> None:
    swept = swept_of(CONFIGS)
    assert swept == ["net", "optimizer", "lr", "weight_decay", "hidden", "activation",
                     "weight_init_std"]
    rows, _ = finished_rows()
    lines = sr.table(rows, swept).splitlines()
    assert lines[0].split()[:8] == ["trial", *swept]
    assert lines[1].split()[1:8] == ["two-layer", "sgd", "0.1", "0", "50", "sigmoid", "0.01"]
    assert lines[3].split()[1:8] == ["multi-layer", "adam", "0.001", "1e-06", "100x2+50",
                                     "relu", "he"]
    assert [r["hidden"] for r in rows] == ["50", "100x4", "100x2+50", "100x4"]  # results.csv
    assert sr.label(CONFIGS[3], ["net", "weight_decay", "hidden"]) == (
        "net multi-layer, weight decay 0.0001, hidden 100x4")


def test_the_pictures_draw_names_layer_lists_and_a_weight_decay_of_zero() -> None:
    rows, docs = finished_rows()
    swept = swept_of(CONFIGS)
    fig = sr.by_setting_figure(rows, swept)
    axes = {ax.get_xlabel(): ax for ax in fig.axes}
    ticks = {name: [t.get_text() for t in axes[name].get_xticklabels()]
             for name in ("net", "hidden", "weight init std", "optimizer")}
    assert ticks["net"] == ["multi-layer", "two-layer"]
    assert ticks["hidden"] == ["50", "100x2+50", "100x4"]
    assert ticks["weight init std"] == ["0.01", "he", "xavier"]
    assert ticks["optimizer"] == ["adam", "sgd"]
    # 0 and 1e-6..1e-4 on one axis: logarithmic above the smallest decay, linear below
    assert axes["weight decay"].get_xscale() == "symlog"
    assert axes["lr"].get_xscale() == "log"
    legend = [t.get_text() for t in sr.accuracy_figure(rows, docs, swept).axes[0]
              .get_legend().get_texts()]
    assert legend[2] == ("net multi-layer, optimizer adam, lr 0.001, weight decay 1e-06, "
                         "hidden 100x2+50, activation relu, weight init std he")
    fig.canvas.draw()  # drawn, not only built: every tick label renders
    assert fig.get_suptitle().endswith(
        "\ntwo-layer, multi-layer nets on MNIST, 100 iterations")
    assert sr.what_data(rows[1:]) == "multi-layer net on MNIST, 100 iterations"
