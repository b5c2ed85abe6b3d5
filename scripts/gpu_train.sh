#!/usr/bin/env bash
# Trains checkpoints/default further on the lent GPU machine (JAX backend), resumably.
#
# Here, once:  python scripts/pack_images.py .gpu/train ../shared/data/imagenet_sample/train.flist \
#                  ../shared/data/flowers/train.flist --quality 85 --piece_mb 33 --shuffle_seed 0
#              python scripts/pack_images.py .gpu/val <16 lines of imagenet_sample/val.flist as paths>
#              (and keras, namex, optree wheels in .whl; see the device tool's README)
# There, one call per piece (carry .whl, .gpu/train/pieceK and .gpu/val):
#              bash scripts/gpu_train.sh SECONDS
# Each call adds its piece to /tmp/data (kept while the machine is warm), resumes the run in
# /tmp/run (or starts it from checkpoints/default's weights: the optimizer state restarts), trains
# for SECONDS, stops with SIGINT (the trainer saves on it) and exports the weights to $OUT/w.
set -uo pipefail
seconds=${1:-480}
if ! python3 -c 'import keras' 2>/dev/null; then  # the GPU machine has JAX but not Keras
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD TF_CPP_MIN_LOG_LEVEL=3 PYTHONUNBUFFERED=1 KERAS_BACKEND=jax
OUT=${OUT:-runs/gpu_out}
mkdir -p /tmp/data /tmp/val .gpu
for piece in .gpu/train/piece*; do
  cp "$piece"/*.jpg /tmp/data/ && cat "$piece/train.flist" >> /tmp/data/train.flist
done
sort -u -o /tmp/data/train.flist /tmp/data/train.flist
cp .gpu/val/piece0/*.jpg /tmp/val/ && cp .gpu/val/piece0/train.flist /tmp/val/val.flist
ln -sfn /tmp/data .gpu/data && ln -sfn /tmp/val .gpu/heldout  # the paths checkpoints/default/train.yml names
timeout -s INT "$seconds" python3 train.py --config checkpoints/default/train.yml \
    --set log_dir=/tmp/run --set model_restore=checkpoints/default 2>&1 \
    | tr '\r' '\n' | grep -E 'held-out|saved|interrupted|Training|Error|error' | tail -40
python3 -m inpaint.commands.convert /tmp/run "$OUT/w"
cp /tmp/run/events.out.* "$OUT/" 2>/dev/null  # scalars; images only every val_psteps
