"""The sweep's value syntax, trial list and trial key (pure: no cluster, no data)."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest

from xpnet.run_config import RunConfig
from xpnet.sweep_spec import (
    Distribution,
    SpecError,
    count,
    default_seed,
    layers,
    parse,
    show,
    swept_of,
    trial_key,
    trials,
)

BASE = {"dataset": "fashion-mnist", "device": "cpu", "data_dir": None}


@pytest.mark.parametrize(("name", "text", "values"), [
    ("lr", "0.01,0.1,1", [0.01, 0.1, 1.0]),
    ("lr", " 3e-4 ", [3e-4]),
    ("seed", "0-4", [0, 1, 2, 3, 4]),
    ("seed", "0-2,10", [0, 1, 2, 10]),
    ("hidden", "50-200:50", [50, 100, 150, 200]),
    ("hidden", "50-220:50", [50, 100, 150, 200]),
    ("dtype", "float32,float64", ["float32", "float64"]),
    ("grad", "numerical", ["numerical"]),
    ("weight_decay", "0,1e-6", [0.0, 1e-6]),
    ("eval_samples", "0,500", [0, 500]),
    ("eval_samples", "0-1000:500", [0, 500, 1000]),
    ("net", "two-layer,multi-layer", ["two-layer", "multi-layer"]),
    ("optimizer", "adam,sgd", ["adam", "sgd"]),
    ("activation", "sigmoid", ["sigmoid"]),
    ("weight_init_std", "he,0.01,Xavier", ["he", 0.01, "xavier"]),
])
def test_values_lists_and_ranges(name, text, values):
    spec = parse(name, text)
    assert list(spec) == values
    assert len(spec) == len(values)
    assert [type(v) for v in spec] == [type(v) for v in values]


@pytest.mark.parametrize(("text", "values"), [
    ("100x6", [(100,) * 6]),
    ("100x4,50", [(100,) * 4, 50]),
    ("100x2+50,20+30+40", [(100, 100, 50), (20, 30, 40)]),
    ("100x1", [(100,)]),
    ("50-150:50x2,7", [(50, 50), (100, 100), (150, 150), 7]),
    ("50-150:50", [50, 100, 150]),
])
def test_hidden_layers_in_a_sweep(text, values):
    spec = parse("hidden", text)
    assert list(spec) == values
    assert len(spec) == len(values)


def test_one_value_of_layers_is_read_alone():
    assert layers("hidden", "100x4") == (100,) * 4
    assert layers("hidden", "100x2+50") == layers("hidden", "100+100+50") == (100, 100, 50)
    assert layers("hidden", " 50 ") == 50
    with pytest.raises(SpecError, match="'100,50' is not an integer"):
        layers("hidden", "100,50")  # a comma is the sweep's, between values
    for value in [(100,) * 4, (100, 100, 50), (20, 30, 40)]:
        assert layers("hidden", show(value)) == value  # what the table shows, a sweep takes
    assert [show(v) for v in [(100,) * 4, (100, 100, 50), (7,), 50, 1e-06, "he"]] == [
        "100x4", "100x2+50", "7", "50", "1e-06", "he"]


def test_a_huge_range_is_counted_without_being_built():
    spec = parse("seed", "0-999999999999")
    assert count({"seed": spec, "lr": parse("lr", "0.1,1")}, 3) == 10**12 * 2 * 3


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("lr", "log:1e-4:1", Distribution("log", 1e-4, 1.0)),
    ("weight_init_std", "uniform:0.001:0.1", Distribution("uniform", 0.001, 0.1)),
    ("hidden", "int:20:500", Distribution("int", 20, 500)),
    ("hidden", "log:20:500", Distribution("log", 20, 500)),
])
def test_distributions(name, text, expected):
    assert parse(name, text) == expected


@pytest.mark.parametrize(("name", "text", "fragment"), [
    ("lr", "", "--lr is empty"),
    ("lr", "0.1,,1", "empty item"),
    ("lr", ",", "empty item"),
    ("lr", "fast", "'fast' is not a number"),
    ("lr", "-0.1", "out of range"),
    ("lr", "nan", "out of range"),
    ("lr", "inf", "out of range"),
    ("hidden", "0", "out of range"),
    ("hidden", "2.5", "not an integer"),
    ("seed", "4-1", "the range '4-1' is empty"),
    ("seed", "1-x", "'x' is not an integer"),
    ("seed", "0-4:0", "the range '0-4:0' is empty"),
    ("seed", "-1", "-1 is out of range (it must be an integer in"),
    ("seed", str(2**63), "out of range"),
    ("dtype", "float16", "not one of float64, float32"),
    ("grad", "log:1:2", "takes values"),
    ("lr", "log:1:0.5", "LOW must be below HIGH"),
    ("lr", "log:1:0", "LOW and HIGH must be positive numbers"),
    ("lr", "log:1e-4", "is not a distribution"),
    ("lr", "log:a:1", "LOW and HIGH must be positive numbers"),
    ("lr", "int:1:5", "is a real number"),
    ("seed", "log:0:10", "above 0"),
    ("hidden", "uniform:20:20", "LOW must be below HIGH"),
    ("hidden", "100,100,100", "would be tried 3 times; for one net of 3 layers of 100 write "
                              "100x3"),
    ("hidden", "50,100x2,50", "write 50x2"),
    ("hidden", "100x", "is not layer sizes"),
    ("hidden", "x4", "is not layer sizes"),
    ("hidden", "100x0", "out of range"),
    ("hidden", "100+", "is not layer sizes"),
    ("hidden", "10x2000", "more than 1000 hidden layers"),
    ("hidden", "50-100+20", "joins a range to other layers"),
    ("weight_decay", "-1e-4", "it must be >= 0"),
    ("weight_decay", "log:0:1e-4", "above 0"),
    ("weight_decay", "uniform:-1:1", "LOW and HIGH must be numbers >= 0"),
    ("eval_samples", "-5", "-5 is out of range (it must be >= 0)"),  # not a range
    ("eval_samples", "0,-5", "-5 is out of range (it must be >= 0)"),
    ("hidden", "-5", "-5 is out of range (it must be positive)"),
    ("eval_samples", "0.5", "is not an integer"),
    ("eval_samples", "int:-1:10", "LOW and HIGH must be integers >= 0"),
    ("weight_init_std", "glorot", "not a number or one of relu, he, sigmoid, xavier"),
    ("net", "resnet", "not one of two-layer, multi-layer, simple-conv, deep-conv"),
    ("optimizer", "log:1:2", "takes values"),
])
def test_malformed_specs_say_what_is_wrong(name, text, fragment):
    with pytest.raises(SpecError) as info:
        parse(name, text)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert message.startswith("--" + name.replace("_", "-"))


def test_grid_is_the_product_in_a_fixed_order():
    specs = {"lr": parse("lr", "0.01,0.1"), "hidden": parse("hidden", "50,100"),
             "seed": parse("seed", "0-1")}
    configs = trials(BASE, specs, None, sweep_seed=0)
    got = [(c.lr, c.hidden, c.seed) for c in configs]
    assert got == [(lr, h, s) for lr in (0.01, 0.1) for h in (50, 100) for s in (0, 1)]
    assert all(c.dataset == "fashion-mnist" and c.iters == 10000 for c in configs)
    assert swept_of(configs) == ["lr", "hidden", "seed"]


def test_without_seed_every_trial_gets_the_one_seed_of_the_sweep_seed():
    configs = trials(BASE, {"lr": parse("lr", "0.1,1")}, None, sweep_seed=7)
    expected = int(np.random.SeedSequence(7).generate_state(1)[0] >> 1)
    assert [c.seed for c in configs] == [expected, expected]
    assert default_seed(7) == expected != default_seed(8)


def test_random_search_draws_are_the_books_and_reproducible():
    specs = {"lr": parse("lr", "log:1e-4:1"), "hidden": parse("hidden", "int:20:500"),
             "seed": parse("seed", "0-1")}
    configs = trials(BASE, specs, 3, sweep_seed=42)
    rng = np.random.default_rng(42)
    draws = []
    for _ in range(3):  # settings drawn in the order lr, hidden, for each draw
        lr = float(f"{math.exp(rng.uniform(math.log(1e-4), math.log(1.0))):.6g}")
        draws.append((lr, int(rng.integers(20, 500, endpoint=True))))
    assert [(c.lr, c.hidden, c.seed) for c in configs] == [
        (lr, h, s) for lr, h in draws for s in (0, 1)]
    assert all(1e-4 <= c.lr <= 1 and 20 <= c.hidden <= 500 for c in configs)
    assert trials(BASE, specs, 3, sweep_seed=42) == configs
    assert trials(BASE, specs, 3, sweep_seed=43) != configs


def test_duplicate_trials_are_dropped():
    configs = trials(BASE, {"hidden": parse("hidden", "int:20:21")}, 20, sweep_seed=0)
    assert sorted(c.hidden for c in configs) == [20, 21]
    assert len(trials(BASE, {"seed": parse("seed", "1,1,0-2")}, None, 0)) == 3


def test_distributions_need_trials_and_trials_need_distributions():
    with pytest.raises(SpecError, match="--lr is a distribution: random search needs --trials"):
        trials(BASE, {"lr": parse("lr", "log:1e-4:1")}, None, 0)
    with pytest.raises(SpecError, match="--trials N draws from distributions"):
        trials(BASE, {"lr": parse("lr", "0.1")}, 5, 0)


def test_trial_key_is_a_stable_hash_of_the_settings_that_decide_the_numbers():
    config = RunConfig(dataset="fashion-mnist", lr=0.1, hidden=50, seed=0, iters=2000)
    # Every setting, resolved: the net and what RunConfig filled in for it are in the key.
    text = ('{"activation":"sigmoid","batch_size":100,"dataset":"fashion-mnist",'
            '"device":"cpu","dtype":"float64","eval_samples":0,"grad":"backprop","hidden":50,'
            '"iters":2000,"lr":0.1,"net":"two-layer","optimizer":"sgd","seed":0,'
            '"weight_decay":0.0,"weight_init_std":0.01}')
    assert trial_key(config) == hashlib.sha256(text.encode()).hexdigest()[:12]
    assert trial_key(RunConfig(**config.to_dict())) == trial_key(config)
    moved = RunConfig(**{**config.to_dict(), "data_dir": "/elsewhere", "cuda_graph": False})
    assert trial_key(moved) == trial_key(config)
    keys = {trial_key(RunConfig(**{**config.to_dict(), k: v}))
            for k, v in [("lr", 0.2), ("seed", 1), ("dtype", "float32"), ("iters", 2001),
                         ("batch_size", 50), ("hidden", 51), ("weight_init_std", 0.02),
                         ("grad", "numerical"), ("dataset", "mnist"), ("device", "cuda:0")]}
    assert len(keys) == 10 and trial_key(config) not in keys


def test_the_nets_settings_are_in_the_trial_key():
    multi = RunConfig(net="multi-layer", hidden=(100, 100), seed=0, iters=2000)
    same = RunConfig.from_dict(json.loads(json.dumps(multi.to_dict())))  # as metrics.json
    assert same == multi and trial_key(same) == trial_key(multi)
    # The book's values written out are the same trial as the same values left unset.
    spelled = RunConfig(net="multi-layer", hidden=[100, 100], seed=0, iters=2000, lr=0.01,
                        optimizer="sgd", activation="relu", weight_init_std="relu")
    assert trial_key(spelled) == trial_key(multi)
    changed = [RunConfig(**{**multi.to_dict(), k: v}) for k, v in [
        ("optimizer", "adam"), ("activation", "sigmoid"), ("weight_decay", 1e-6),
        ("hidden", (100, 100, 100)), ("hidden", (100, 50)), ("weight_init_std", 0.01)]]
    changed.append(RunConfig(net="two-layer", hidden=100, seed=0, iters=2000, lr=0.01))
    keys = {trial_key(c) for c in changed}
    assert len(keys) == len(changed) and trial_key(multi) not in keys


def test_the_same_settings_on_other_data_are_another_trial():
    config = RunConfig(dataset="fashion-mnist", lr=0.1, hidden=50, seed=0, iters=2000)
    a, b = trial_key(config, "0123456789abcdef"), trial_key(config, "fedcba9876543210")
    assert len({a, b, trial_key(config)}) == 3
    moved = RunConfig(**{**config.to_dict(), "data_dir": "/elsewhere"})
    assert trial_key(moved, "0123456789abcdef") == a  # same content, other folder: same


def test_eval_samples_is_a_setting_of_each_trial_and_in_its_key():
    configs = trials(BASE, {"net": parse("net", "simple-conv"),
                            "eval_samples": parse("eval_samples", "0,500")}, None, 0)
    assert [c.eval_samples for c in configs] == [0, 500]
    assert swept_of(configs) == ["eval_samples"]
    assert trial_key(configs[0]) != trial_key(configs[1])
    # Not given, a trial takes the net's default, as xpnet train does.
    default, = trials(BASE, {"net": parse("net", "simple-conv")}, None, 0)
    assert default.eval_samples == 1000
    drawn = trials(BASE, {"eval_samples": parse("eval_samples", "int:0:3")}, 20, 0)
    assert {c.eval_samples for c in drawn} == {0, 1, 2, 3}
