"""xpnet.common's modules hand on through `import *` the names the book's modules do, and
import only from the floors below them."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import xpnet.functions
import xpnet.gradient

COMMON = Path(__file__).resolve().parents[1] / "xpnet" / "common"
FUNCTIONS = {"np", "identity_function", "step_function", "sigmoid", "sigmoid_grad", "relu",
             "relu_grad", "softmax", "sum_squared_error", "cross_entropy_error", "softmax_loss"}
LAYERS = FUNCTIONS | {"im2col", "col2im", "Relu", "Sigmoid", "Affine", "SoftmaxWithLoss",
                      "Dropout", "BatchNormalization", "Convolution", "Pooling"}
OPTIMIZERS = {"np", "SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"}
# The public top-level names of the book's modules, which `from common.X import *` gives.
BOOK_NAMES = {
    "functions": FUNCTIONS,
    "gradient": {"np", "numerical_gradient", "numerical_gradient_2d"},
    "layers": LAYERS,
    "optimizer": OPTIMIZERS,
    "util": {"np", "smooth_curve", "shuffle_dataset", "conv_output_size", "im2col", "col2im"},
    "multi_layer_net": LAYERS | {"sys", "os", "OrderedDict", "numerical_gradient",
                                 "MultiLayerNet"},
    "multi_layer_net_extend": LAYERS | {"sys", "os", "OrderedDict", "numerical_gradient",
                                        "MultiLayerNetExtend"},
    "trainer": OPTIMIZERS | {"sys", "os", "Trainer"},
}


@pytest.mark.parametrize("module", sorted(BOOK_NAMES))
def test_star_import_hands_on_the_books_names(module: str) -> None:
    names: dict = {}
    exec(f"from xpnet.common.{module} import *", names)  # noqa: S102
    missing = BOOK_NAMES[module] - set(names)
    assert not missing, f"xpnet.common.{module} lacks {sorted(missing)}"
    assert names["np"].__name__ == "numpy"


def test_functions_and_gradient_are_xpnets_own_not_copies() -> None:
    from xpnet.common import functions, gradient

    for name in FUNCTIONS - {"np"}:
        assert getattr(functions, name) is getattr(xpnet.functions, name)
    for name in ("numerical_gradient", "numerical_gradient_2d", "_numerical_gradient_1d"):
        assert getattr(gradient, name) is getattr(xpnet.gradient, name)


ALLOWED = {"xpnet.backend", "xpnet.inputs", "xpnet.functions", "xpnet.gradient", "xpnet.fused",
           "xpnet.kernels", "xpnet.dataset"}


def _xpnet_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside xpnet.common
                found.add("xpnet.common." + (node.module or ""))
            elif node.module and node.module.startswith("xpnet"):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("xpnet")}
    return found


@pytest.mark.parametrize("path", sorted(COMMON.glob("*.py")), ids=lambda p: p.name)
def test_common_imports_only_the_floors_below(path: Path) -> None:
    for name in _xpnet_imports(path):
        if name.startswith("xpnet.common."):
            inner = name.removeprefix("xpnet.common.")
            if path.stem != "trainer":
                assert inner != "trainer", f"{path.name} imports the trainer (a floor up)"
            continue
        assert any(name == a or name.startswith(a + ".") for a in ALLOWED), (
            f"{path.name} imports {name}, above or beside xpnet.common's floor")


def test_every_module_imports_on_its_own() -> None:
    for path in COMMON.glob("*.py"):
        importlib.import_module(f"xpnet.common.{path.stem}" if path.stem != "__init__"
                                else "xpnet.common")
