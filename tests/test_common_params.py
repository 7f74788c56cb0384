"""Parameter files of the chapter nets: .npz round trips, .pkl names, the pickle converter
that admits NumPy arrays and nothing else."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from xpnet.common import ParamsFileError, convert_pickle
from xpnet.common.deep_convnet import DeepConvNet
from xpnet.common.simple_convnet import SimpleConvNet

CONV = {"filter_num": 2, "filter_size": 3, "pad": 0, "stride": 1}


def small_net(seed: int) -> SimpleConvNet:
    np.random.seed(seed)  # noqa: NPY002
    return SimpleConvNet((1, 8, 8), CONV, hidden_size=5, output_size=3)


def test_save_then_load_gives_the_same_predictions(tmp_path: Path, rng) -> None:
    trained, fresh = small_net(1), small_net(2)
    x = rng.random((4, 1, 8, 8))
    trained.save_params(tmp_path / "p.npz")
    fresh.load_params(tmp_path / "p.npz")
    np.testing.assert_array_equal(fresh.predict(x), trained.predict(x))
    assert fresh.layers["Conv1"].W is fresh.params["W1"]  # layers relinked to the new arrays
    with np.load(tmp_path / "p.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(trained.params)


def test_a_pkl_name_stands_for_the_npz_beside_it(tmp_path: Path, rng) -> None:
    net = small_net(3)
    net.save_params(tmp_path / "params.pkl")  # the book's train_convnet.py says so
    assert (tmp_path / "params.npz").is_file() and not (tmp_path / "params.pkl").exists()
    other = small_net(4)
    other.load_params(tmp_path / "params.pkl")
    x = rng.random((2, 1, 8, 8))
    np.testing.assert_array_equal(other.predict(x), net.predict(x))


def test_loading_a_pickle_says_how_to_convert_it(tmp_path: Path) -> None:
    net = small_net(5)
    (tmp_path / "params.pkl").write_bytes(pickle.dumps(dict(net.params)))
    with pytest.raises(ParamsFileError, match=r"is a pickle.*convert_pickle\("):
        net.load_params(tmp_path / "params.pkl")


def test_files_that_do_not_fit_are_refused_in_one_line(tmp_path: Path) -> None:
    net = small_net(6)
    with pytest.raises(ParamsFileError, match="no such file"):
        net.load_params(tmp_path / "none.npz")
    np.savez(tmp_path / "short.npz", W1=net.params["W1"])
    with pytest.raises(ParamsFileError, match="missing: b1, W2"):
        net.load_params(tmp_path / "short.npz")
    np.savez(tmp_path / "shape.npz", **{**net.params, "W3": np.zeros((5, 4))})
    with pytest.raises(ParamsFileError, match=r"W3 has shape \(5, 4\), the net needs \(5, 3\)"):
        net.load_params(tmp_path / "shape.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ParamsFileError, match="not a readable .npz"):
        net.load_params(tmp_path / "junk.npz")
    np.savez(tmp_path / "objects.npz", **{**net.params, "b1": np.array([None, 1], dtype=object)})
    with pytest.raises(ParamsFileError):
        net.load_params(tmp_path / "objects.npz")


def test_convert_pickle_turns_a_dict_of_arrays_into_npz(tmp_path: Path, rng) -> None:
    np.random.seed(7)  # noqa: NPY002
    net = DeepConvNet()
    params = {k: v.copy() for k, v in net.params.items()}
    params["W8"] = rng.standard_normal(params["W8"].shape)
    (tmp_path / "deep_convnet_params.pkl").write_bytes(pickle.dumps(params, protocol=4))
    out = convert_pickle(tmp_path / "deep_convnet_params.pkl")
    assert out == tmp_path / "deep_convnet_params.npz"
    net.load_params(tmp_path / "deep_convnet_params.pkl")  # finds the converted file
    np.testing.assert_array_equal(net.params["W8"], params["W8"])
    assert net.layers[18].W is net.params["W8"]


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


@pytest.mark.parametrize("payload", [
    {"W1": _Boom()},
    [np.zeros(2)],
    {"W1": np.array([1, None], dtype=object)},
    {"W1": np.zeros(2), "note": "a string"},
], ids=["code", "list", "object-array", "not-an-array"])
def test_convert_pickle_refuses_anything_but_arrays(tmp_path: Path, payload, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(payload))
    with pytest.raises(ParamsFileError, match="the converter admits"):
        convert_pickle(tmp_path / "evil.pkl")
    assert not (tmp_path / "pwned.txt").exists()
    assert not (tmp_path / "evil.npz").exists()


def test_the_books_own_pickles_convert_when_a_checkout_is_at_hand(tmp_path: Path) -> None:
    book = Path(os.environ.get("XPNET_BOOK_DIR", "/tmp/book"))
    source = book / "ch07" / "params.pkl"
    if not source.is_file():
        pytest.skip(f"no checkout of the book's repository at {book} (XPNET_BOOK_DIR)")
    out = convert_pickle(source, tmp_path / "params.npz")
    net = SimpleConvNet()
    net.load_params(out)
    assert net.params["W2"].shape == (4320, 100)
