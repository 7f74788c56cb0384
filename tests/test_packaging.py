"""Installed, xpnet is one import name: it never collides with other `dataset`/`kernels`."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from support import FASHION_DIR

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """xpnet built as a wheel, as `pip install xpnet` would install it."""
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
                        str(ROOT)], capture_output=True, text=True, timeout=600)
    if r.returncode != 0 and not os.environ.get("CI"):
        pytest.skip(f"cannot build a wheel here (no package index?): {r.stderr[-300:]}")
    assert r.returncode == 0, r.stderr
    return next(out.glob("xpnet-*.whl"))


@pytest.mark.slow
def test_the_wheel_installs_only_under_xpnet(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"xpnet", next(t for t in tops if t.endswith(".dist-info"))}
    for module in ("xpnet/kernels/__init__.py", "xpnet/kernels/numerical_gradient.py",
                   "xpnet/dataset/__init__.py", "xpnet/dataset/atomic.py", "xpnet/cli/__init__.py",
                   "xpnet/common/__init__.py"):
        assert module in names


@pytest.mark.slow
def test_installing_beside_other_dataset_and_kernels_packages_leaves_them_working(
        wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    for other in ("dataset", "kernels"):  # stand-ins for the index's packages of these names
        (site / other).mkdir(parents=True)
        (site / other / "__init__.py").write_text(f"WHO = 'the other {other}'\n")
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                        str(site), str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    code = ("import dataset, kernels, xpnet.dataset.mnist, xpnet.kernels;"
            "from xpnet import TwoLayerNet, load_mnist;"
            "print(dataset.WHO, kernels.WHO, xpnet.kernels.__file__, xpnet.__version__)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(site)}, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "the other dataset the other kernels" in r.stdout
    assert str(site / "xpnet" / "kernels") in r.stdout


@pytest.mark.slow
def test_a_readers_own_dataset_folder_does_not_shadow_ours(fashion, tmp_path: Path) -> None:
    # The book's repository has dataset/mnist.py at its root; its readers run from there.
    for own in ("dataset", "kernels"):
        (tmp_path / own).mkdir()
        (tmp_path / own / "__init__.py").write_text("")
    (tmp_path / "dataset" / "mnist.py").write_text(
        "def load_mnist(normalize=True, flatten=True, one_hot_label=False):\n"
        "    raise SystemExit('the book loader was called')\n")
    r = subprocess.run([sys.executable, "-m", "xpnet", "train", "--dataset", "fashion-mnist",
                        "--data-dir", str(FASHION_DIR), "--iters", "5", "--no-progress",
                        "--out", "run"], capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "XPNET_DEVICE": "cpu"}, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_top_level_names_for_a_training_script() -> None:
    import xpnet

    assert {"TwoLayerNet", "train", "load_mnist", "load_fashion_mnist"} <= set(dir(xpnet))
    from xpnet.dataset.mnist import load_mnist as book_name

    from xpnet import TwoLayerNet, load_mnist, train
    from xpnet.trainer import train as trainer_train
    from xpnet.two_layer_net import TwoLayerNet as net_class

    assert TwoLayerNet is net_class and train is trainer_train and load_mnist is book_name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        xpnet.nope  # noqa: B018


def test_the_version_is_read_from_the_package_metadata() -> None:
    import re

    import xpnet

    written = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    assert xpnet.__version__ == written.group(1)
