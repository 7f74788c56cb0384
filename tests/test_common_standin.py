"""xpnet.common on ``cuda`` through the strict CuPy stand-in: every net, layer and optimizer
gives the CPU's numbers (float64 to 1e-12; the gradient checks, fused or looped, to 1e-9), in
a process where ``import cupy`` is the stand-in (tests/common_scripts/standin_check.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent
CASES = {"two_layer_net/sgd", "multi_layer_net/momentum", "multi_layer_net_extend/nesterov",
         "multi_layer_net_extend/adagrad", "simple_convnet/rmsprop", "simple_convnet/adam",
         "deep_convnet/gradient", "util/shuffle_dataset"}
# The fused gradient check and the book's loop agree to 1e-9, not to the bit.
CHECKS = {"two_layer_net/numerical_gradient", "multi_layer_net/numerical_gradient",
          "multi_layer_net_extend/numerical_gradient"}


def test_every_net_on_the_standin_gives_the_cpus_numbers() -> None:
    path = os.pathsep.join(p for p in (str(TESTS / "standin"), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "NUMBA_ENABLE_CUDASIM": "1", "XPNET_DEVICE": "cpu"}
    r = subprocess.run([sys.executable, str(TESTS / "common_scripts" / "standin_check.py")],
                       capture_output=True, text=True, env=env, timeout=600, cwd=TESTS.parent)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.splitlines()
    assert "cupy" in lines[-1].split(), lines[-1]  # the nets really held device arrays
    gaps = {name: float(gap) for name, gap in (line.split() for line in lines[:-1])}
    assert set(gaps) == CASES | CHECKS
    assert max(gaps[case] for case in CASES) <= 1e-12, gaps
    assert max(gaps[case] for case in CHECKS) <= 1e-9, gaps
