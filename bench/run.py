"""Run the benchmark suites and print one table: backend, group, median, speed-up.

    python bench/run.py [--out DIR] [--cuda-only] [-k EXPR] [--max-seconds S] [--table-from JSON]

Every ratio compares two figures from the same run: the baseline of the group (the
book's NumPy code, or the CPU for the GPU-scaling groups) over the entry's median.
Each suite runs in its own pytest process, so a failure or the time limit costs only its
rows. Writes DIR/bench.json (the merged pytest-benchmark records), DIR/table.md, log.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# "measured": figures a benchmark derives from its run (not settings to compare on)
SKIP_KEYS = {"backend", "baseline", "dtype", "measured"}


def machine(record: dict) -> str:
    """One line: the CPU, cores and GPU of the machine that ran the record."""
    info = record.get("machine_info", {})
    cpu = info.get("cpu", {})
    return (f"{cpu.get('brand_raw') or info.get('processor') or 'unknown CPU'}, "
            f"{cpu.get('count', '?')} cores, Python {info.get('python_version', '?')}, "
            f"{info.get('gpu') or 'no GPU'}")


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
            "measured": info.get("measured", {}),
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
        params = ", ".join([f"{k} {v}" for k, v in e["params"].items()]
                           + [f"{k} {v:.3g}" for k, v in e.get("measured", {}).items()])
        speed = f"{e['speedup']:.3g}x" if e["speedup"] is not None else ""
        lines.append(f"| {e['group']} | {e['backend']} | {e['dtype']} | {params} | "
                     f"{fmt_time(e['median'])} | {speed} | {e['vs']} |")
    return head + "\n".join(lines) + "\n"


# Cheap and most asked-for first: a time limit cuts the tail, not the head. Any other
# bench/test_bench_*.py runs after these, in name order, so a new suite is never left out.
ORDER = (
    "test_bench_cross_entropy.py",
    "test_bench_dataset.py",
    "test_bench_layered_step.py",  # under --cuda-only: DeepConvNet's graph, ~1 min at most
    "test_bench_training.py",
    "test_bench_numerical_gradient.py",
)
CUDA_SUITES = {  # the suites with CUDA entries, for --cuda-only
    "test_bench_cross_entropy.py", "test_bench_training.py", "test_bench_numerical_gradient.py",
    "test_bench_mlp_numerical_gradient.py", "test_bench_common.py",
    "test_bench_layered_step.py",
}


def all_suites(directory: Path = HERE) -> tuple[str, ...]:
    """The file names of every test_bench_*.py in ``directory``, those in ORDER first."""
    found = {path.name for path in directory.glob("test_bench_*.py")}
    return tuple(s for s in ORDER if s in found) + tuple(sorted(found - set(ORDER)))


def run_suites(out: Path, expression: str | None, suites: tuple[str, ...],
               max_seconds: float) -> tuple[dict, list[str]]:
    """Run each suite in its own pytest process; returns the merged record and problems.

    A suite that fails or runs out of time costs only its own rows: every other suite's
    JSON is kept, and the problem is listed under the table.
    """
    deadline = time.monotonic() + max_seconds
    record: dict = {"benchmarks": []}
    problems = []
    with open(out / "log.txt", "w") as log:
        for suite in suites:
            part = out / f"bench-{Path(suite).stem}.json"
            part.unlink(missing_ok=True)
            command = [sys.executable, "-m", "pytest", str(HERE / suite), "-q",
                       "-p", "no:cacheprovider", "--benchmark-enable",
                       f"--benchmark-json={part}", "--benchmark-columns=median,iqr,rounds"]
            if expression:
                command += ["-k", expression]
            remaining = deadline - time.monotonic()
            if remaining < 5:
                problems.append(f"{suite}: not run, out of time (--max-seconds {max_seconds:g})")
                continue
            log.flush()
            try:
                rc = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT,
                                     timeout=remaining)
            except subprocess.TimeoutExpired:
                problems.append(f"{suite}: stopped at the time limit; its rows are missing")
                continue
            if rc not in (0, 5):
                problems.append(f"{suite}: pytest exit {rc}, see log.txt")
            if part.exists():
                data = json.loads(part.read_text())
                record["benchmarks"] += data["benchmarks"]
                record.setdefault("machine_info", data.get("machine_info", {}))
                record.setdefault("datetime", data.get("datetime"))
    (out / "bench.json").write_text(json.dumps(record, indent=1))
    return record, problems


def model_rows(path: Path = HERE / "results" / "gpu-model.json") -> list[dict]:
    """The GPU cost model's rows (bench/gpu_model.py's saved counts), named "(model)".

    A model beside the measured rows, never a measurement: it lets a GPU's figure, when
    one is lent, be set against the prediction. None when the model has not been run.
    """
    if not path.exists():
        return []
    sys.path.insert(0, str(HERE))
    import gpu_model

    saved = json.loads(path.read_text())
    return gpu_model.model_rows(saved["counted"], saved["density"]["value"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "bench-results"),
                        help="directory for bench.json, table.md, log.txt (default: $OUT or "
                             "./bench-results)")
    parser.add_argument("--cuda-only", action="store_true",
                        help="only the groups that have a CUDA entry (and their baselines)")
    parser.add_argument("-k", default=None, help="pytest -k expression to pick benchmarks")
    parser.add_argument("--max-seconds", type=float, default=3600,
                        help="stop starting or running suites after this long (default 3600)")
    parser.add_argument("--table-from", type=Path, default=None,
                        help="print the table of an existing bench.json and exit")
    args = parser.parse_args(argv)

    problems: list[str] = []
    if args.table_from is not None:
        try:
            record = json.loads(args.table_from.read_text())
        except (OSError, ValueError) as err:
            print(f"bench: cannot read {args.table_from}: {err}", file=sys.stderr)
            return 2
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        expression, suites = args.k, all_suites()
        if args.cuda_only:
            gpu = "cuda or cupy or numpy or xpnet-cpu"
            expression = f"({expression}) and ({gpu})" if expression else gpu
            suites = tuple(s for s in suites if s in CUDA_SUITES)
        start = time.perf_counter()
        record, problems = run_suites(args.out, expression, suites, args.max_seconds)
        print(f"benchmarks finished in {time.perf_counter() - start:.0f} s; "
              f"log: {args.out / 'log.txt'}", file=sys.stderr)
    text = f"Machine: {machine(record)}\n\n" + table(rows_from(record) + model_rows())
    text += "".join(f"\nNot measured: {p}" for p in problems) + ("\n" if problems else "")
    if args.table_from is None:
        (args.out / "table.md").write_text(text)
    print(text, end="")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
