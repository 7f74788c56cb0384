"""Run the benchmark suites and print one table: backend, group, median, speed-up.

    python bench/run.py [--out DIR] [--cuda-only] [-k EXPR] [--table-from JSON]

Every ratio compares two figures from the same run: the baseline of the group (the
book's NumPy code, or the CPU for the GPU-scaling groups) over the entry's median.
Writes DIR/bench.json (pytest-benchmark's full record), DIR/table.md and DIR/log.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SKIP_KEYS = {"backend", "baseline", "dtype"}


def machine() -> str:
    """One line: CPU model, cores, and the GPU when CuPy sees one."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    text = f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"
    try:
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        text += f", GPU {props['name'].decode()} (CuPy {cupy.__version__})"
    except Exception:
        text += ", no GPU"
    return text


def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def rows_from(record: dict) -> list[dict]:
    """Table rows from a pytest-benchmark JSON record, with speed-ups against baselines."""
    entries = []
    for b in record["benchmarks"]:
        info = b.get("extra_info", {})
        params = {k: v for k, v in info.items() if k not in SKIP_KEYS}
        entries.append({
            "group": b.get("group") or "", "backend": info.get("backend", b["name"]),
            "dtype": info.get("dtype", ""), "params": params,
            "baseline": bool(info.get("baseline")), "median": b["stats"]["median"],
        })
    for e in entries:
        same_group = [b for b in entries if b["baseline"] and b["group"] == e["group"]
                      and b["params"] == e["params"]]
        base = next((b for b in same_group if b["dtype"] == e["dtype"]), None) or next(
            (b for b in same_group if b["dtype"] in ("float64", "")), None)
        e["speedup"] = base["median"] / e["median"] if base else None
        e["vs"] = f"{base['backend']} {base['dtype']}".strip() if base else ""
    return entries


def table(entries: list[dict]) -> str:
    head = ("| group | backend | dtype | params | median | speed-up | vs |\n"
            "|---|---|---|---|---:|---:|---|\n")
    lines = []
    for e in sorted(entries, key=lambda e: (e["group"], not e["baseline"], e["median"])):
        params = ", ".join(f"{k} {v}" for k, v in e["params"].items())
        speed = f"{e['speedup']:.3g}x" if e["speedup"] is not None else ""
        lines.append(f"| {e['group']} | {e['backend']} | {e['dtype']} | {params} | "
                     f"{fmt_time(e['median'])} | {speed} | {e['vs']} |")
    return head + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "bench-results"),
                        help="directory for bench.json, table.md, log.txt (default: $OUT or "
                             "./bench-results)")
    parser.add_argument("--cuda-only", action="store_true",
                        help="only the groups that have a CUDA entry (and their baselines)")
    parser.add_argument("-k", default=None, help="pytest -k expression to pick benchmarks")
    parser.add_argument("--table-from", type=Path, default=None,
                        help="print the table of an existing bench.json and exit")
    args = parser.parse_args(argv)

    if args.table_from is None:
        args.out.mkdir(parents=True, exist_ok=True)
        json_path = args.out / "bench.json"
        command = [sys.executable, "-m", "pytest", str(HERE), "-q", "-p", "no:cacheprovider",
                   "--benchmark-enable", f"--benchmark-json={json_path}",
                   "--benchmark-columns=median,iqr,rounds", "--benchmark-sort=name"]
        expression = args.k
        if args.cuda_only:
            gpu = "cuda or cupy or numpy or xpnet-cpu"
            expression = f"({expression}) and ({gpu})" if expression else gpu
            command += ["--ignore", str(HERE / "test_bench_dataset.py")]
        if expression:
            command += ["-k", expression]
        start = time.perf_counter()
        with open(args.out / "log.txt", "w") as log:
            rc = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
        print(f"benchmarks finished in {time.perf_counter() - start:.0f} s (exit {rc}); "
              f"log: {args.out / 'log.txt'}", file=sys.stderr)
        if rc not in (0, 5) or not json_path.exists():
            print(f"bench: pytest failed (exit {rc}); see {args.out / 'log.txt'}", file=sys.stderr)
            return rc or 1
    else:
        json_path = args.table_from
    record = json.loads(json_path.read_text())
    text = f"Machine: {machine()}\n\n" + table(rows_from(record))
    if args.table_from is None:
        (args.out / "table.md").write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
