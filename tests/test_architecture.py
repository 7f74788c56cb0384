"""The floors of ARCHITECTURE.md, held by reading every module's imports.

Every ``import`` counts, at the top of a module or inside a function (a lazy import of
an upper floor is still an upward arrow). A module may import from its own floor or
below, never above, and never in a circle; ``xpnet.dataset`` and ``xpnet.kernels`` stand
alone; only the command line knows argparse; only ``xpnet.backend`` imports CuPy.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Where each installed package's files live in the repository (pyproject's package-dir).
SOURCES = {"xpnet": ROOT / "xpnet", "xpnet.dataset": ROOT / "dataset",
           "xpnet.kernels": ROOT / "kernels"}

# One line per module or pattern; the first match wins, so exceptions come first.
FLOORS: list[tuple[str, int]] = [
    ("xpnet", 0),  # the package itself: a version and lazy names, imports nothing of ours
    ("xpnet.dataset", 1),
    ("xpnet.dataset.*", 1),
    ("xpnet.kernels", 1),
    ("xpnet.kernels.*", 1),
    ("xpnet.errors", 1),
    ("xpnet.folder_lock", 1),
    ("xpnet.backend", 1),
    ("xpnet.inputs", 1),
    ("xpnet.counter_random", 1),
    ("xpnet.functions", 2),
    ("xpnet.gradient", 2),
    ("xpnet.fused", 3),
    ("xpnet.two_layer_net", 3),
    ("xpnet.layered_step", 3),
    ("xpnet.nets", 3),
    ("xpnet.common.trainer", 4),
    ("xpnet.common", 3),
    ("xpnet.common.*", 3),
    ("xpnet.trainer", 4),
    ("xpnet.run_config", 5),
    ("xpnet.run_plots", 5),
    ("xpnet.run_folder", 5),
    ("xpnet.run", 6),
    ("xpnet.evaluate", 7),
    ("xpnet.images", 7),
    ("xpnet.sweep_spec", 7),
    ("xpnet.sweep_report", 7),
    ("xpnet.sweep", 7),
    ("xpnet.cli", 8),
    ("xpnet.cli.*", 8),
    ("xpnet.__main__", 8),
]
STANDALONE = ("xpnet.dataset", "xpnet.kernels")


def module_files() -> dict[str, Path]:
    """{module name: file} of every module of the three packages."""
    found = {}
    for package, folder in SOURCES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


MODULES = module_files()


def floor(module: str) -> int | None:
    return next((f for pattern, f in FLOORS if fnmatch.fnmatchcase(module, pattern)), None)


def imports(module: str, path: Path) -> set[str]:
    """The modules of ours that ``module`` imports, anywhere in its code."""
    is_package = path.name == "__init__.py"
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: len(module.split(".")) - node.level + is_package]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            # ``from package import module`` imports the module; anything else, the source
            names = [f"{source}.{a.name}" if f"{source}.{a.name}" in MODULES else source
                     for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:  # xpnet.dataset.errors.X -> the module
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
    return targets


def third_party(path: Path) -> set[str]:
    """Top-level names of everything a file imports that is not relative."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


GRAPH = {m: imports(m, p) for m, p in MODULES.items()}


def test_the_modules_are_found() -> None:
    # A broken walk would make every other test here pass on nothing.
    for name in ("xpnet.cli", "xpnet.cli.train", "xpnet.run_folder", "xpnet.dataset.source",
                 "xpnet.kernels.cuda", "xpnet.trainer"):
        assert name in MODULES
    assert "xpnet.run_config" in GRAPH["xpnet.run_folder"]
    assert "xpnet.run" in GRAPH["xpnet.cli.train"]  # an import inside a function counts


def test_every_module_has_a_floor() -> None:
    missing = sorted(m for m in MODULES if floor(m) is None)
    assert not missing, f"add these to FLOORS (and to ARCHITECTURE.md): {missing}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    upward = sorted(f"{t} (floor {floor(t)})" for t in GRAPH[module]
                    if floor(t) is not None and floor(module) is not None
                    and floor(t) > floor(module))
    assert not upward, f"{module} (floor {floor(module)}) imports upward: {upward}"


@pytest.mark.parametrize("package", STANDALONE)
def test_dataset_and_kernels_stand_alone(package: str) -> None:
    outside = sorted(f"{m} -> {t}" for m, targets in GRAPH.items()
                     if m == package or m.startswith(package + ".")
                     for t in targets if not (t == package or t.startswith(package + ".")))
    assert not outside, f"{package} must import nothing of xpnet outside itself: {outside}"


def test_no_import_circle() -> None:
    state: dict[str, str] = {}  # "open" while on the path, "done" after

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for target in sorted(GRAPH[module]):
            if state.get(target) == "open":
                return [*path[path.index(target):], target] if target in path else [target]
            if target not in state:
                circle = visit(target, [*path, target])
                if circle:
                    return circle
        state[module] = "done"
        return None

    for module in sorted(GRAPH):
        if module not in state:
            circle = visit(module, [module])
            assert circle is None, f"import circle: {' -> '.join(circle)}"


def test_only_the_command_line_knows_argparse() -> None:
    users = sorted(m for m, p in MODULES.items()
                   if "argparse" in third_party(p) and not fnmatch.fnmatchcase(m, "xpnet.cli*"))
    assert not users, f"argparse outside xpnet.cli: {users}"


def test_backend_is_the_one_door_to_cupy() -> None:
    users = sorted(m for m, p in MODULES.items()
                   if "cupy" in third_party(p) and m != "xpnet.backend")
    assert not users, f"these import CuPy; ask xpnet.backend instead: {users}"
