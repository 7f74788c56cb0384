"""RunConfig resolves each net's settings through xpnet.nets' one table, and a run of a net
too big for its device is refused in one line before anything is drawn or written."""

from __future__ import annotations

import numpy as np
import pytest
from run_toys import toy_data

from xpnet import nets
from xpnet.errors import InputError
from xpnet.run import run
from xpnet.run_config import NET_DEFAULTS, RunConfig


@pytest.mark.parametrize(("net", "change"), [
    ("two-layer", {"optimizer": "adam"}),
    ("two-layer", {"activation": "relu"}),
    ("two-layer", {"hidden": (100, 100)}),
    ("two-layer", {"weight_init_std": "he"}),
    ("simple-conv", {"weight_decay": 0.1}),
    ("simple-conv", {"grad": "numerical"}),
    ("deep-conv", {"weight_init_std": 0.01}),
    ("multi-layer", {"hidden": ()}),
    ("multi-layer", {"activation": "tanh"}),
    ("multi-layer", {"weight_init_std": "glorot"}),
])
def test_run_config_refuses_what_check_settings_refuses_in_its_words(net, change) -> None:
    settings = {name: NET_DEFAULTS[net][name]
                for name in ("hidden", "activation", "weight_init_std", "optimizer")}
    settings.update(weight_decay=0.0, grad="backprop")
    settings.update(change)
    with pytest.raises(InputError) as by_table:
        nets.check_settings(net, **settings)
    with pytest.raises(InputError) as by_config:
        RunConfig(net=net, **change)
    assert str(by_config.value) == str(by_table.value)


def test_run_config_records_the_values_the_table_normalises() -> None:
    config = RunConfig(net="multi-layer", hidden=[30, 20], weight_init_std="SIGMOID",
                       weight_decay=1)
    assert (config.hidden, config.weight_init_std, config.weight_decay) == (
        (30, 20), "xavier", 1.0)
    assert RunConfig(net="deep-conv", weight_init_std="relu").weight_init_std == "he"
    assert RunConfig().hidden == 50 and RunConfig(hidden=[7]).hidden == 7


def test_a_run_of_a_net_too_big_for_its_device_is_refused_before_anything_is_written(
        tmp_path) -> None:
    config = RunConfig(dataset="fashion-mnist", net="multi-layer", hidden=(300000, 300000),
                       iters=1, seed=1, device="cpu")
    out = tmp_path / "run"
    out.mkdir()
    with pytest.raises(InputError, match=r"^a MultiLayerNet\(784, \[300000, 300000\], 10, relu\) "
                       r"needs 672\.3 GiB for its parameters, .* use a smaller hidden size$"):
        run(config, data=toy_data(train=20, test=10), out=out)
    assert sorted(p.name for p in out.iterdir()) == []


@pytest.mark.parametrize("value", [0, 1, 1000, np.int64(0)])
def test_eval_samples_takes_zero_or_a_positive_integer(value) -> None:
    assert RunConfig(eval_samples=value).eval_samples == int(value)


@pytest.mark.parametrize("value", [-1, 0.0, 1.5, False, True, "10"])
def test_eval_samples_refuses_anything_else_in_one_line(value) -> None:
    with pytest.raises(InputError, match="eval_samples must be 0 or a positive integer"):
        RunConfig(eval_samples=value)
