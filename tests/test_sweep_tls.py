"""xpnet sweep on a TLS-secured Dask cluster: scheduler and worker on 127.0.0.1 speaking
tls:// with certificates made here (openssl), the client's TLS settings from Dask's own
configuration (environment variables), as the README's recipe says."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from run_toys import toy_dataset
from support import DASK, start_logged, stop_processes

EXTENSIONS = """\
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def make_certificates(folder: Path) -> dict[str, Path]:
    """A CA and one certificate it signed, for the scheduler, the worker and the client."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed: no certificates for the TLS test")
    (folder / "ext.cnf").write_text(EXTENSIONS)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True,
                       timeout=60)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=xpnet test CA", "-config", "ext.cnf", "-extensions", "ca")
    openssl("req", *ec, "-keyout", "node.key", "-out", "node.csr", "-subj", "/CN=127.0.0.1")
    openssl("x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "node.pem", "-days", "2", "-extfile", "ext.cnf",
            "-extensions", "leaf")
    return {"ca": folder / "ca.pem", "cert": folder / "node.pem", "key": folder / "node.key"}


@pytest.mark.slow
def test_a_sweep_runs_on_a_tls_scheduler_and_worker(tmp_path):
    certs = make_certificates(tmp_path)
    tls = ["--tls-ca-file", str(certs["ca"]), "--tls-cert", str(certs["cert"]),
           "--tls-key", str(certs["key"])]
    file = tmp_path / "scheduler.json"
    processes = [start_logged([str(DASK), "scheduler", "--host", "tls://127.0.0.1",
                               "--port", "0", "--no-dashboard", "--scheduler-file", str(file),
                               *tls], tmp_path / "scheduler.log")]
    try:
        deadline = time.monotonic() + 60
        while not file.exists():
            assert processes[0].poll() is None, (tmp_path / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)
        address = json.loads(file.read_text())["address"]
        assert address.startswith("tls://127.0.0.1:")
        processes.append(start_logged([str(DASK), "worker", address, "--nthreads", "1",
                                       "--host", "127.0.0.1", "--no-dashboard",
                                       "--local-directory", str(tmp_path / "w"), *tls],
                                      tmp_path / "worker.log"))
        data = toy_dataset(tmp_path / "data")
        sweep = [sys.executable, "-m", "xpnet", "sweep", "--dataset", "fashion-mnist",
                 "--data-dir", str(data), "--lr", "0.1,0.5", "--hidden", "8",
                 "--batch-size", "20", "--seed", "1", "--iters", "30", "--no-progress",
                 "--scheduler", address]
        env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
        # Without the client's settings: refused at once, in one line.
        r = subprocess.run([*sweep, "--out", str(tmp_path / "refused")], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2
        assert r.stderr.splitlines()[-1].startswith(
            f"xpnet sweep: error: {address} is a TLS address but Dask has no TLS settings")
        # With them (Dask's configuration, as environment variables): the sweep runs.
        env.update(DASK_DISTRIBUTED__COMM__TLS__CA_FILE=str(certs["ca"]),
                   DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT=str(certs["cert"]),
                   DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY=str(certs["key"]),
                   DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION="True")
        out = tmp_path / "sweep"
        r = subprocess.run([*sweep, "--out", str(out)], env=env, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert f"2 trials, 0 already done; 1 workers (scheduler); writing {out}" in r.stdout
        rows = list(csv.DictReader((out / "results.csv").open()))
        assert [row["status"] for row in rows] == ["finished", "finished"]
        assert all(row["worker"].startswith("tls://127.0.0.1:") for row in rows)
        assert json.loads((out / "sweep.json").read_text())["engine"]["address"] == address
        # A plain tcp:// client at the TLS port: one line, not a hang.
        r = subprocess.run([*sweep[:-1], address.replace("tls://", "tcp://"), "--out",
                            str(tmp_path / "plain")], env=env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 2 and r.stderr.splitlines()[-1].startswith(
            "xpnet sweep: error: "), r.stderr
    finally:
        stop_processes(processes[1:])
        stop_processes(processes[:1])
