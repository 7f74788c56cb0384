"""``xpnet convert-params BOOK.pkl [--out X.npz]``: the book's pickle as .npz, or one line and
exit status 2, and nothing written."""

from __future__ import annotations

import os
import pickle
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from xpnet.dataset.errors import UserError

from xpnet import cli
from xpnet.cli import convert
from xpnet.cli.common import EXIT_USAGE, Parser, error_line
from xpnet.common.simple_convnet import SimpleConvNet

CONV = {"filter_num": 2, "filter_size": 3, "pad": 0, "stride": 1}


def xpnet_main(argv: list[str]) -> int:
    """``xpnet ARGV`` through ``xpnet.cli.main`` once convert-params is registered there;
    until then through this module's parser, worded and exited as main does."""
    if "convert-params" in cli.build_parser().format_help():
        return cli.main(argv)
    parser = Parser(prog="xpnet")
    convert.register(parser.add_subparsers(dest="command", required=True,
                                           parser_class=Parser))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as err:
        print(f"xpnet {args.command}: error: {error_line(err)}", file=sys.stderr)
        return EXIT_USAGE


def book_pickle(folder: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A params.pkl as the book's save_params writes it: pickle.dump of a dict of arrays."""
    np.random.seed(0)  # noqa: NPY002
    net = SimpleConvNet((1, 8, 8), CONV, hidden_size=5, output_size=3)
    params = {key: np.asarray(value) for key, value in net.params.items()}
    path = folder / "params.pkl"
    path.write_bytes(pickle.dumps(params))
    return path, params


def test_converts_beside_the_pickle_and_the_net_loads_it(tmp_path, capsys) -> None:
    source, params = book_pickle(tmp_path)
    assert xpnet_main(["convert-params", str(source)]) == 0
    out = capsys.readouterr().out
    assert out == f"wrote {tmp_path / 'params.npz'}: W1 (2, 1, 3, 3), b1 (2,), W2 (18, 5), " \
                  "b2 (5,), W3 (5, 3), b3 (3,)\n"
    np.random.seed(1)  # noqa: NPY002
    net = SimpleConvNet((1, 8, 8), CONV, hidden_size=5, output_size=3)
    net.load_params(source)  # the book's call, naming the .pkl: reads the .npz beside it
    for key, value in params.items():
        np.testing.assert_array_equal(net.params[key], value)


def test_out_names_the_file(tmp_path, capsys) -> None:
    source, params = book_pickle(tmp_path)
    target = tmp_path / "sub" / "deep.npz"
    target.parent.mkdir()
    assert xpnet_main(["convert-params", str(source), "--out", str(target)]) == 0
    with np.load(target, allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(params)
        np.testing.assert_array_equal(npz["W2"], params["W2"])
    assert not (tmp_path / "params.npz").exists()


class Boom:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


@pytest.mark.parametrize(("make", "expected"), [
    (lambda d: d / "missing.pkl", r"missing\.pkl: no such file$"),
    (lambda d: (d / "junk.pkl").write_bytes(b"not a pickle") and d / "junk.pkl",
     r"junk\.pkl: not a readable pickle of arrays"),
    (lambda d: (d / "evil.pkl").write_bytes(pickle.dumps({"W1": Boom()})) and d / "evil.pkl",
     r"evil\.pkl: refused to load posix\.system: the converter admits only a dict of "
     r"NumPy arrays$"),
    (lambda d: (d / "list.pkl").write_bytes(pickle.dumps([np.zeros(2)])) and d / "list.pkl",
     r"list\.pkl: not a dict of numeric NumPy arrays"),
])
def test_bad_pickles_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, monkeypatch,
                                                            make, expected) -> None:
    monkeypatch.chdir(tmp_path)
    source = make(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert xpnet_main(["convert-params", str(source)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("xpnet convert-params: error: ") and err.count("\n") == 1, err
    assert re.search(expected, err.strip()), err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no .npz, no pwned


def test_an_existing_out_is_kept_unless_forced(tmp_path, capsys) -> None:
    source, params = book_pickle(tmp_path)
    target = tmp_path / "params.npz"
    target.write_bytes(b"mine")
    assert xpnet_main(["convert-params", str(source)]) == EXIT_USAGE
    assert capsys.readouterr().err == (f"xpnet convert-params: error: {target} exists: pass "
                                       "--force to replace it, or another --out\n")
    assert target.read_bytes() == b"mine"
    assert xpnet_main(["convert-params", str(source), "--force"]) == 0
    with np.load(target, allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["W1"], params["W1"])


def test_out_must_be_an_npz_and_its_folder_must_exist(tmp_path, capsys) -> None:
    source, _ = book_pickle(tmp_path)
    assert xpnet_main(["convert-params", str(source), "--out", str(tmp_path / "x.bin")]) == 2
    assert "must end in .npz" in capsys.readouterr().err
    missing = tmp_path / "nowhere" / "x.npz"
    assert xpnet_main(["convert-params", str(source), "--out", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xpnet convert-params: error: ") and err.count("\n") == 1, err
    assert str(missing) in err


def test_the_pickle_itself_is_never_the_target(tmp_path, capsys) -> None:
    source, _ = book_pickle(tmp_path)
    npz_named = source.rename(tmp_path / "params.npz")
    assert xpnet_main(["convert-params", str(npz_named), "--force"]) == 2
    assert "would overwrite the pickle" in capsys.readouterr().err
