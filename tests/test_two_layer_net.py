"""TwoLayerNet: the book's behaviour, gradients that agree, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import backend
from xpnet.functions import cross_entropy_error, sigmoid, softmax
from xpnet.inputs import InputError
from xpnet.two_layer_net import ModelFileError, TwoLayerNet

KEYS = ("W1", "b1", "W2", "b2")


def small_batch(rng, batch=5, d=12, c=4):
    x = rng.random((batch, d))
    x[x < 0.4] = 0.0  # images are mostly exact zeros
    return x, rng.integers(0, c, size=batch)


def test_params_like_the_book() -> None:
    net = TwoLayerNet(784, 50, 10, seed=0)
    shapes = {k: v.shape for k, v in net.params.items()}
    assert shapes == {"W1": (784, 50), "b1": (50,), "W2": (50, 10), "b2": (10,)}
    assert all(v.dtype == np.float64 for v in net.params.values())
    assert np.std(net.params["W1"]) == pytest.approx(0.01, rel=0.02)
    assert not net.params["b1"].any() and not net.params["b2"].any()


def test_seed_none_uses_numpys_global_generator_like_the_book() -> None:
    np.random.seed(3)
    a = TwoLayerNet(6, 4, 3).params["W1"]
    np.random.seed(3)
    b = TwoLayerNet(6, 4, 3).params["W1"]
    np.testing.assert_array_equal(a, b)
    np.random.seed(3)
    np.testing.assert_array_equal(a, 0.01 * np.random.randn(6, 4))


def test_seed_and_float32() -> None:
    a = TwoLayerNet(6, 4, 3, seed=7)
    b = TwoLayerNet(6, 4, 3, seed=7, dtype=np.float32)
    assert b.params["W1"].dtype == np.float32
    np.testing.assert_allclose(b.params["W1"], a.params["W1"], rtol=1e-7)


def test_predict_loss_accuracy_match_the_books_formulas(rng) -> None:
    net = TwoLayerNet(12, 6, 4, weight_init_std=1.0, seed=1)
    x, t = small_batch(rng)
    p = net.params
    y = softmax(sigmoid(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"])
    np.testing.assert_allclose(net.predict(x), y, rtol=1e-14)
    np.testing.assert_allclose(net.predict(x[0]), y[0], rtol=1e-14)
    assert net.loss(x, t) == pytest.approx(cross_entropy_error(y, t), rel=1e-12)
    assert net.loss(x, np.eye(4)[t]) == pytest.approx(cross_entropy_error(y, t), rel=1e-12)
    expected_acc = float(np.mean(y.argmax(axis=1) == t))
    assert net.accuracy(x, t) == expected_acc
    assert net.accuracy(x, np.eye(4)[t]) == expected_acc


@pytest.mark.parametrize("batch", [1, 8])
def test_numerical_gradient_agrees_with_backprop(rng, batch) -> None:
    net = TwoLayerNet(12, 6, 4, weight_init_std=0.5, seed=2)
    x, t = small_batch(rng, batch)
    numerical = net.numerical_gradient(x, t, method="generic")
    backprop = net.gradient(x, t)
    for key in KEYS:
        assert numerical[key].shape == net.params[key].shape
        assert np.abs(numerical[key] - backprop[key]).max() < 1e-6, key


def test_gradient_takes_labels_or_one_hot_and_keeps_the_books_numbers(rng) -> None:
    net = TwoLayerNet(12, 6, 4, weight_init_std=0.5, seed=3)
    x, t = small_batch(rng, 6)
    one_hot = np.eye(4)[t]
    by_label = net.gradient(x, t)
    by_one_hot = net.gradient(x, one_hot)
    # the book's gradient, written out: dy = (y - t) / batch
    p = net.params
    a1 = x @ p["W1"] + p["b1"]
    z1 = sigmoid(a1)
    dy = (softmax(z1 @ p["W2"] + p["b2"]) - one_hot) / x.shape[0]
    da1 = (1.0 - sigmoid(a1)) * sigmoid(a1) * (dy @ p["W2"].T)
    book = {"W1": x.T @ da1, "b1": da1.sum(0), "W2": z1.T @ dy, "b2": dy.sum(0)}
    for key in KEYS:
        np.testing.assert_allclose(by_label[key], book[key], rtol=1e-10, atol=1e-15)
        np.testing.assert_array_equal(by_label[key], by_one_hot[key])


def test_float32_net_computes_in_float32(rng) -> None:
    net = TwoLayerNet(12, 6, 4, seed=4, dtype="float32")
    x, t = small_batch(rng)
    assert net.predict(x).dtype == np.float32
    assert all(g.dtype == np.float32 for g in net.gradient(x, t).values())
    loss64 = TwoLayerNet(12, 6, 4, seed=4).loss(x, t)
    assert net.loss(x, t) == pytest.approx(loss64, rel=1e-5)


def test_shape_mistakes_say_what_was_expected(rng) -> None:
    net = TwoLayerNet(12, 6, 4, seed=5)
    x, t = small_batch(rng)
    expected = r"x has shape \(5, 11\) but the net expects \(batch, 12\)"
    with pytest.raises(ValueError, match=expected):
        net.predict(x[:, :11])
    expected = r"t has shape \(4,\) but there are 5 samples.*\(5,\).*\(5, 4\)"
    with pytest.raises(InputError, match=expected):
        net.gradient(x, t[:4])
    with pytest.raises(InputError, match=r"label 4, outside 0\.\.3"):
        net.loss(x, np.array([0, 1, 2, 3, 4]))
    with pytest.raises(InputError, match="no samples"):
        net.predict(x[:0])
    with pytest.raises(ValueError, match="method must be"):
        net.numerical_gradient(x, t, method="fast")
    with pytest.raises(ValueError, match="positive integer"):
        TwoLayerNet(0, 6, 4)
    with pytest.raises(ValueError, match="float32 or float64"):
        TwoLayerNet(12, 6, 4, dtype=np.int32)


@pytest.mark.cuda
def test_same_seed_same_start_and_same_numbers_on_cpu_and_gpu(rng) -> None:
    import cupy

    cpu = TwoLayerNet(12, 6, 4, weight_init_std=0.5, seed=9)
    gpu = TwoLayerNet(12, 6, 4, weight_init_std=0.5, seed=9, device="cuda")
    x, t = small_batch(rng, 8)
    for key in KEYS:
        assert isinstance(gpu.params[key], cupy.ndarray)
        np.testing.assert_array_equal(backend.asnumpy(gpu.params[key]), cpu.params[key])
    # host arrays are moved to the net's device, as the book's loop passes NumPy slices
    assert float(gpu.loss(x, t)) == pytest.approx(cpu.loss(x, t), rel=1e-12)
    assert gpu.accuracy(x, t) == cpu.accuracy(x, t)
    g_cpu, g_gpu = cpu.gradient(x, t), gpu.gradient(x, t)
    n_cpu, n_gpu = cpu.numerical_gradient(x, t), gpu.numerical_gradient(x, t)
    for key in KEYS:
        np.testing.assert_allclose(backend.asnumpy(g_gpu[key]), g_cpu[key], atol=1e-14)
        np.testing.assert_allclose(backend.asnumpy(n_gpu[key]), n_cpu[key], atol=1e-12)


BAD_LABELS = [
    (np.array([0, 1, 2, 3, -1]), "label -1"),
    (np.array([0, 1, 2, 3, 2.99]), "2.99, not a class index"),
    (np.eye(5)[[0, 1, 2, 3, 4]], r"shape \(5, 5\)"),  # one-hot of the wrong width
    (np.full((5, 4), 0.25), "row 0 is not one-hot"),
]


@pytest.mark.parametrize(("t", "match"), BAD_LABELS)
def test_one_label_rule_for_every_method(rng, t, match) -> None:
    net = TwoLayerNet(12, 6, 4, seed=5)
    x, _ = small_batch(rng)
    for method in (net.loss, net.accuracy, net.gradient, net.numerical_gradient):
        with pytest.raises(InputError, match=match):
            method(x, t)


def test_labels_one_hot_and_whole_floats_give_the_same_numbers(rng) -> None:
    net = TwoLayerNet(12, 6, 4, weight_init_std=0.5, seed=5)
    x, t = small_batch(rng)
    for same in (np.eye(4)[t], t.astype(np.float32), t.astype(np.uint8)):
        assert net.loss(x, same) == net.loss(x, t)
        assert net.accuracy(x, same) == net.accuracy(x, t)


def test_save_and_load_round_trip(rng, tmp_path) -> None:
    for dtype in (np.float64, np.float32):
        net = TwoLayerNet(12, 6, 4, weight_init_std=0.5, seed=7, dtype=dtype)
        net.save(tmp_path / "net.npz")
        back = TwoLayerNet.load(tmp_path / "net.npz")
        assert back.sizes == (12, 6, 4) and back.dtype == dtype
        for key in KEYS:
            np.testing.assert_array_equal(back.params[key], net.params[key])
        x, t = small_batch(rng)
        assert back.loss(x, t) == net.loss(x, t)
    with np.load(tmp_path / "net.npz", allow_pickle=False) as npz:
        assert str(npz["format"]) == "xpnet-two-layer-net/1"
    assert [p.name for p in tmp_path.iterdir()] == ["net.npz"]  # no temporary left


def test_load_refuses_bad_files_in_one_line(tmp_path) -> None:
    good = {"W1": np.zeros((3, 2)), "b1": np.zeros(2), "W2": np.zeros((2, 4)), "b2": np.zeros(4)}
    cases = {
        "missing.npz": (None, "no such file"),
        "text.npz": (b"hello", "not a readable .npz"),
        "partial.npz": ({k: good[k] for k in ("W1", "b1")},
                        r"partial.npz: not a TwoLayerNet file \(no W2, b2\)$"),
        "shapes.npz": ({**good, "b1": np.zeros(3)}, "inconsistent shapes"),
        "ints.npz": ({k: v.astype(np.int64) for k, v in good.items()}, "float32 or float64"),
        "nan.npz": ({**good, "W2": np.full((2, 4), np.nan)}, "W2 holds NaN"),
    }
    for name, (content, match) in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            np.savez(path, **content)
        with pytest.raises(ModelFileError, match=match) as info:
            TwoLayerNet.load(path)
        assert "\n" not in str(info.value)


def test_load_reads_headers_before_allocating(tmp_path) -> None:
    # A tiny file whose W1 header claims 10**9 x 784 float64 (5.7 TiB) is refused at once.
    path = tmp_path / "huge.npz"
    np.savez(path, W1=np.zeros((3, 2)), b1=np.zeros(2), W2=np.zeros((2, 4)), b2=np.zeros(4))
    import zipfile

    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["W1.npy"] = members["W1.npy"].replace(b"(3, 2)", b"(1000000000, 784)".ljust(6))
    members["b1.npy"] = members["b1.npy"].replace(b"(2,)", b"(784,)")
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(ModelFileError):
        TwoLayerNet.load(path)


def test_load_of_a_damaged_file_is_one_line(tmp_path) -> None:
    # Byte-flipped data (a bad CRC), and a member whose header claims more than it holds:
    # TwoLayerNet.load itself, not only the CLI's run-folder checks, says so in one line.
    import zipfile

    path = tmp_path / "net.npz"
    TwoLayerNet(30, 20, 4, seed=0).save(path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("W1.npy")
    data[info.header_offset + 30 + len(info.filename) + 400] ^= 0xFF  # inside W1's data
    flipped = tmp_path / "flipped.npz"
    flipped.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="flipped.npz.*CRC") as err:
        TwoLayerNet.load(flipped)
    assert "\n" not in str(err.value)

    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["W1.npy"] = members["W1.npy"][:-800]  # cut: the header claims 30 x 20 float64
    cut = tmp_path / "cut.npz"
    with zipfile.ZipFile(cut, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    with pytest.raises(ModelFileError, match="cut.npz.*W1 claims"):
        TwoLayerNet.load(cut)


def test_a_chapter_5_script_cannot_silently_use_the_chapter_4_net() -> None:
    net = TwoLayerNet(12, 6, 4, seed=0)
    assert "chapter 4" in repr(net)
    with pytest.raises(AttributeError, match="chapter-4 network.*ch05/two_layer_net.py"):
        net.layers  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        net.nope  # noqa: B018


@pytest.mark.parametrize("seed", [-1, 1.5, 2**63, True, "7"])
def test_a_bad_seed_is_one_input_error(seed) -> None:
    with pytest.raises(InputError, match=r"seed must be an integer in 0\.\.2\*\*63-1"):
        TwoLayerNet(4, 3, 2, seed=seed)


def test_a_net_too_big_for_memory_is_refused_before_it_is_built(monkeypatch) -> None:
    """`--hidden 1000000000` was a MemoryError traceback after minutes of drawing."""
    monkeypatch.setattr("xpnet.two_layer_net.device_memory_bytes", lambda device: 2**30)
    with pytest.raises(InputError, match=r"TwoLayerNet\(784, 1000000000, 10\) needs 5923\.2 "
                       r"GiB .* of the 1\.0 GiB of cpu; use a smaller hidden size"):
        TwoLayerNet(784, 10**9, 10)
    TwoLayerNet(784, 50, 10)  # 0.3 MiB: fine


def test_loss_is_a_python_float_the_books_list_can_plot(rng) -> None:
    net = TwoLayerNet(6, 4, 3, seed=1)
    x, t = rng.random((5, 6)), rng.integers(0, 3, 5)
    loss = net.loss(x, t)
    assert type(loss) is float
    assert abs(loss - float(cross_entropy_error(net.predict(x), t))) < 1e-12

