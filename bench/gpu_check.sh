#!/usr/bin/env bash
# One-shot GPU check: every `cuda`-marked test, then the GPU benchmarks with their CPU
# baselines (chapter 8's DeepConvNet step early: the book's loop, eager and as one CUDA
# graph, beside the cost model's rows), in one go (at most 8 minutes: each stage has a time
# limit, 150 + 300 + 30 s). Needs CuPy, numba (+ numba-cuda) and
# pytest-benchmark already installed; installs nothing and needs no network: the
# checkout runs in place, through a folder of links that lays kernels/ and dataset/
# inside xpnet/ as an install would (PYTHONPATH, no pip).
#
#   bash bench/gpu_check.sh [OUT_DIR]     (default: $OUT, else ./gpu-check)
#
# Writes OUT_DIR/tests.log, OUT_DIR/bench.json, OUT_DIR/table.md, OUT_DIR/log.txt, the
# cost model (OUT_DIR/gpu-model.md/.json) and the measured figures beside the model's
# (OUT_DIR/gpu-model-vs-measured.md), and prints the table, then that comparison, last.
# Without a usable GPU it stops at once with one line, exit 2.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-${OUT:-gpu-check}}
python=${PYTHON:-python3}
# xpnet/, kernels/ and dataset/ as the installed xpnet, xpnet.kernels and xpnet.dataset.
site=$(mktemp -d) && trap 'rm -rf "$site"' EXIT
mkdir "$site/xpnet" && ln -s "$here"/xpnet/* "$site/xpnet/" &&
  ln -s "$here/kernels" "$site/xpnet/kernels" && ln -s "$here/dataset" "$site/xpnet/dataset"
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"

if ! reason=$("$python" -c 'import sys
from xpnet.backend import cuda_unavailable_reason
sys.exit(cuda_unavailable_reason())' 2>&1); then
  echo "gpu_check: no GPU to check: ${reason##*$'\n'}" >&2
  exit 2
fi

mkdir -p "$out" && out=$(cd "$out" && pwd)  # absolute: the script moves to the checkout
cd "$here" || exit 2
# The cost model counts on the CuPy stand-in (CPU only, Numba's simulator, ~20 s), in the
# background while the GPU works: its own interpreter puts tests/standin first on the path,
# so the real CuPy of the stages below is not touched.
timeout 150 "$python" bench/gpu_model.py --out "$out" > "$out/gpu-model.log" 2>&1 &
model_pid=$!
echo "== cuda tests" >&2
timeout 150 "$python" -m pytest tests -m cuda -q -p no:cacheprovider \
  --benchmark-disable -o addopts="" > "$out/tests.log" 2>&1
tests_rc=$?
tail -n 15 "$out/tests.log" >&2
echo "== GPU benchmarks" >&2
# Each suite runs in its own process inside the time budget, so one slow suite costs only
# its own rows; the outer timeout is a safety net.
timeout 300 "$python" bench/run.py --cuda-only --out "$out" --max-seconds 250
bench_rc=$?
echo "== measured beside the cost model" >&2
wait "$model_pid" && timeout 30 "$python" bench/gpu_model.py --out "$out" \
  --counted "$out/gpu-model.json" --compare "$out/bench.json" >> "$out/gpu-model.log" 2>&1
model_rc=$?
if [ "$model_rc" -eq 0 ]; then cat "$out/gpu-model-vs-measured.md"; else tail -n 5 "$out/gpu-model.log" >&2; fi
echo "cuda tests: exit $tests_rc (log $out/tests.log); benchmarks: exit $bench_rc;" \
  "model: exit $model_rc (log $out/gpu-model.log)" >&2
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
