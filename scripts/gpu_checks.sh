#!/usr/bin/env bash
# The GPU checks that follow training (issue 22, item 6), as one call on the warm machine:
#   1. the golden parity on PyTorch (tests/test_backends.py's, on the GPU when torch sees one),
#   2. benchmarks/gpu.py's inference rows on JAX (256 to 2048 px),
#   3. 512 px again with XLA's autotuning off: is its 18 GiB peak (H100) the autotuner's?
# Here, first: python scripts/gpu_session.py --prepare (wheels), and
#   mkdir -p .gpu/golden && cp -r ../shared/golden/small .gpu/golden/   (9.8 MiB)
# There (carry .gpu/golden, and .whl unless the machine is still warm from gpu_session.py):
#   bash scripts/gpu_checks.sh            # SIZES="256 512" bash scripts/gpu_checks.sh for fewer
# Results in $OUT: parity.log, gpu_bench.json, gpu_bench_512_no_autotune.json, checks.log.
set -u
OUT=${OUT:-runs/gpu_checks}
SIZES=${SIZES:-256 512 1024 2048}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/checks.log") 2>&1
site=/tmp/deepfill/site
if ! python3 -c 'import keras' 2>/dev/null; then
  [ -d "$site/keras" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --upgrade --target "$site" .whl/*.whl || exit 1
  export PYTHONPATH=$site:$PWD
fi
export TF_CPP_MIN_LOG_LEVEL=3 PYTHONUNBUFFERED=1
if [ -d .gpu/golden/small ] && [ ! -e ../shared/golden/small ]; then  # the tests find it at ../shared
  mkdir -p ../shared/golden && cp -r .gpu/golden/small ../shared/golden/
fi
echo "== golden parity on PyTorch"
KERAS_BACKEND=jax python3 -m pytest -q -p no:cacheprovider -rs \
    'tests/test_backends.py::test_golden_parity_in_a_fresh_process' 2>&1 | tee "$OUT/parity.log" | tail -5
echo "== inference on JAX: $SIZES"
# shellcheck disable=SC2086
python3 benchmarks/gpu.py --backends jax --sizes $SIZES --repeats 2 --block_mb 1024 --json "$OUT/gpu_bench.json"
echo "== 512 px with XLA's autotuning off"
XLA_FLAGS=--xla_gpu_autotune_level=0 python3 benchmarks/gpu.py --backends jax --sizes 512 --repeats 2 \
    --block_mb 1024 --json "$OUT/gpu_bench_512_no_autotune.json"
