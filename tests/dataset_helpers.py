"""Shared helpers for the dataset tests: tiny IDX files, a toy spec, a local HTTP mirror."""

from __future__ import annotations

import gzip
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from xpnet.dataset import download, source
from xpnet.dataset.specs import DatasetSpec

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
KEYS = ("x_train", "t_train", "x_test", "t_test")
PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
              "ALL_PROXY")


def isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hide_system: bool = True) -> None:
    """Point every place the loader reads or writes into tmp_path; keep the network local."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("XPNET_DATA_DIR", raising=False)
    # A forgotten mirrors= must not reach the internet: the defaults lead to a closed port.
    for var in ("XPNET_MNIST_MIRRORS", "XPNET_FASHION_MNIST_MIRRORS", "XPNET_TOY_MIRRORS"):
        monkeypatch.setenv(var, closed_port_url())
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setattr(download, "TIMEOUT_S", 5.0)
    if hide_system:
        monkeypatch.setattr(source, "SYSTEM_DIRS", {})


def make_arrays(seed: int = 0, n_train: int = 20, n_test: int = 10) -> dict[str, np.ndarray]:
    """Random uint8 images (N, 28, 28) and labels (N,) covering all ten classes."""
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "t_train": rng.permutation(np.arange(n_train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t_test": rng.permutation(np.arange(n_test) % 10).astype(np.uint8),
    }


def idx_bytes(array: np.ndarray, magic: int | None = None, count: int | None = None) -> bytes:
    """An uncompressed IDX file; ``magic`` and ``count`` override the header to forge bad files."""
    if magic is None:
        magic = 2051 if array.ndim == 3 else 2049
    dims = list(array.shape)
    if count is not None:
        dims[0] = count
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + array.astype(np.uint8).tobytes()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)  # mtime=0: same bytes, same MD5, every run


def blobs_for(arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    """File name -> gzipped IDX bytes, as the mirrors serve them."""
    return {name: gz(idx_bytes(arrays[key])) for name, key in zip(FILES, KEYS, strict=True)}


def write_files(directory: Path, blobs: dict[str, bytes], names: tuple[str, ...] = FILES) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_bytes(blobs[name])


def toy_spec(blobs: dict[str, bytes], name: str = "toy") -> DatasetSpec:
    """A DatasetSpec whose MD5s (file and content) are those of ``blobs``, no mirrors."""
    resources = tuple((f, hashlib.md5(blobs[f]).hexdigest()) for f in FILES)
    content = tuple(hashlib.md5(gzip.decompress(blobs[f])).hexdigest() for f in FILES)
    return DatasetSpec(name=name, title=name.title(), resources=resources, mirrors=(),
                       mirrors_env=f"XPNET_{name.upper()}_MIRRORS", content_md5=content)


def load_raw(spec: DatasetSpec, **kwargs: object) -> dict[str, np.ndarray]:
    """The four raw arrays of ``source.load_spec(spec, **kwargs)`` by KEYS."""
    ds = source.load_spec(spec, **kwargs)
    return {key: getattr(ds, key) for key in KEYS}


def cache_files(tmp_path: Path, name: str = "toy") -> list[Path]:
    """The .npz caches under the isolated user cache folder of dataset ``name``."""
    return sorted((tmp_path / "xdg-cache" / "xpnet" / name).glob("*.npz"))


def flat(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays as load_raw returns them: images (N, 784)."""
    return {k: v.reshape(len(v), -1) if k.startswith("x") else v for k, v in arrays.items()}


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@contextmanager
def mirror_server(blobs: dict[str, bytes]) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """Serve ``blobs`` on 127.0.0.1; yield (base URL, [(path, User-Agent) per request]).

    The first path component picks the behaviour of that "mirror":
    ``good/``: the file; ``forbidden/``: HTTP 403; ``corrupt/``: the file with one byte
    changed; ``drop/``: Content-Length of the whole file, half of it, then close;
    ``stall/``: headers, then silence for 2 s; ``trickle/``: the file one byte every
    50 ms (at most 100 bytes); ``endless/``: no Content-Length, zeros in 64 KiB chunks
    until the client hangs up (at most 1000 chunks).
    """
    requests: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            try:
                self._serve()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up on a mirror: what these modes are for

        def _serve(self) -> None:
            requests.append((self.path, self.headers.get("User-Agent", "")))
            mode, _, name = self.path.strip("/").partition("/")
            body = blobs.get(name)
            if mode == "endless":
                self.send_response(200)
                self.end_headers()
                for _ in range(1000):
                    self.wfile.write(bytes(1 << 16))
                return
            if mode == "forbidden" or body is None:
                self.send_error(403 if body is not None else 404)
                return
            if mode == "corrupt":
                body = body[:-9] + bytes([body[-9] ^ 0xFF]) + body[-8:]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if mode == "drop":
                self.wfile.write(body[: len(body) // 2])
                self.close_connection = True
            elif mode == "trickle":
                for byte in body[:100]:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.05)
            elif mode == "stall":
                self.wfile.flush()
                time.sleep(2)
            else:
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as url:
        yield url, requests


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """An HTTP server of ``handler`` on 127.0.0.1 (a free port) for the block: its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
