"""The command line's own words for errors raised below it (xpnet.cli.common.error_line)."""

from __future__ import annotations

import argparse

from xpnet import backend
from xpnet.cli.common import error_line


def test_missing_cuda_names_the_flag_when_the_flag_chose_it() -> None:
    err = backend.cuda_missing("no usable CUDA device was found (no driver)")
    flag = argparse.Namespace(device="cuda")
    env = argparse.Namespace(device=None)  # XPNET_DEVICE=cuda chose it
    assert error_line(err, flag) == ("CUDA was requested but no usable CUDA device was found "
                                     "(no driver); use the CPU (--device cpu)")
    assert error_line(err, env) == error_line(err) == (
        "CUDA was requested but no usable CUDA device was found (no driver); use the CPU "
        "(XPNET_DEVICE=cpu)")
    installed = backend.cuda_missing("CuPy is not installed", backend.INSTALL_CUPY)
    assert error_line(installed, flag).endswith(
        f": install it with {backend.INSTALL_CUPY}, or use the CPU (--device cpu)")
    assert error_line(backend.DeviceError("unknown device 'tpu'"), flag) == (
        "unknown device 'tpu'")  # other device errors keep their words
