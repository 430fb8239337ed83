#!/usr/bin/env bash
# The 64 px emoji model on one NVIDIA GPU, in one command: trains a StyleGAN2 on emoji64.zip for a time budget
# and leaves the final checkpoint, its sample grid and the training statistics in ${OUT:-out/gpu_emoji64}.
#
# On the GPU machine, in a clone of this repository with the torch extra installed (make install, or
# pip install ".[train]" with a CUDA build of torch):
#   python -m training.emoji64 --out data        # once: data/emoji64.zip + data/emoji64_labels.json (npm, ~150 MB)
#   bash training/gpu_emoji64.sh                  # about 9 minutes: 8 of training, then the snapshot
# Try it first on any machine, on the CPU with a tiny network and made-up images (about a minute):
#   SMOKE=1 bash training/gpu_emoji64.sh
# Then FID with the model card's protocol (fid5k_full, psi 1) at 64 px, where the Inception weights are:
#   python -m training.metrics --model out/gpu_emoji64/network-snapshot.safetensors \
#       --data data/emoji64.zip --metrics fid5k_full --feature-weights ~/weights
# On a machine that sees only this folder (a GPU lent for a few minutes), copy the two data files into a folder
# of the repo, e.g. .gpu/ (listed in .git/info/exclude), and run DATA=.gpu/emoji64.zip
# LABELS=.gpu/emoji64_labels.json bash training/gpu_emoji64.sh there.
#
# Knobs (environment): MINUTES (training budget, default 8; the run stops after the first step past it, with a
#   snapshot), COND (1: conditional on the emoji category, from LABELS), CBASE / CMAX (channels, default
#   8192 / 128: 2.8 M generator parameters, an 11 MB checkpoint that the repo and a CPU demo can carry),
#   BATCH (64), AUG (ada), SEED (0), DATA (data/emoji64.zip), LABELS (data/emoji64_labels.json), PYTHON
#   (.venv/bin/python when there, else python3), LIMIT_S (hard stop of the training process, default
#   MINUTES * 60 + 75 s).
# What comes back in OUT (<= 8 files): run.log, network-snapshot.safetensors, fakes.png (the fixed grid, psi 1),
#   reals.png, stats.jsonl, training_options.json, and training-state.safetensors when it is under 16 MiB.
# Exit code: the training's (0 done, 2 a bad option), 124 when LIMIT_S stopped it, 1 when there is no CUDA (unless
#   SMOKE=1).

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SMOKE=${SMOKE:-0}
OUT=${OUT:-out/gpu_emoji64}
DATA=${DATA:-data/emoji64.zip}
LABELS=${LABELS:-data/emoji64_labels.json}
COND=${COND:-0}
SEED=${SEED:-0}
AUG=${AUG:-ada}
if [[ -z ${PYTHON:-} ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
[[ -f $DATA || $SMOKE == 1 ]] || { echo "gpu_emoji64.sh: error: no data at $DATA (make it with: python -m training.emoji64 --out data)" >&2; exit 2; }
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
LOG="$OUT/run.log"
: > "$LOG"

if [[ $SMOKE == 1 ]]; then
    # The same steps on the CPU, small: a made-up 64 px data set unless DATA holds the real one.
    MINUTES=${MINUTES:-0.5} CBASE=${CBASE:-512} CMAX=${CMAX:-16} BATCH=${BATCH:-8}
    DEVICE=cpu EXTRA=(--z-dim 32 --w-dim 32 --map 1 --tick 0.032)
    if [[ ! -f $DATA ]]; then
        DATA="$WORK/smoke64.zip"
        "$PYTHON" - "$DATA" <<'EOF'
import io, sys, zipfile
import numpy as np
from PIL import Image
rng = np.random.default_rng(0)
with zipfile.ZipFile(sys.argv[1], "w") as z:
    for i in range(16):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, format="PNG")
        z.writestr(f"img{i:02d}.png", buf.getvalue())
EOF
    fi
else
    MINUTES=${MINUTES:-8} CBASE=${CBASE:-8192} CMAX=${CMAX:-128} BATCH=${BATCH:-64}
    DEVICE=cuda EXTRA=(--tick 10)
    if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
        echo "gpu_emoji64.sh: no CUDA device here (SMOKE=1 plans the run on the CPU)" | tee -a "$LOG" >&2
        exit 1
    fi
fi

{
    echo "# gpu_emoji64.sh $(date -u +%FT%TZ): MINUTES=$MINUTES COND=$COND CBASE=$CBASE CMAX=$CMAX BATCH=$BATCH AUG=$AUG SEED=$SEED"
    command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())'
} >> "$LOG" 2>&1

# The data: the 64 px images as they are, or with the category labels for a conditional run.
TRAIN_DATA=$DATA
COND_FLAG=--no-cond
if [[ $COND == 1 ]]; then
    TRAIN_DATA="$WORK/emoji64_cat.zip"
    "$PYTHON" -m training.dataset_tool --source "$DATA" --dest "$TRAIN_DATA" --resolution 64 \
        --labels "$LABELS" --label-field category >> "$LOG" 2>&1
    COND_FLAG=--cond
fi

# A snapshot every 10 ticks and one at the end; should the budget's last tick run long, SIGINT (as Ctrl-C)
# stops the run LIMIT_S seconds in (setup included), and the newest snapshot so far still comes back.
LIMIT_S=${LIMIT_S:-$(awk -v m="$MINUTES" 'BEGIN { printf "%d", m * 60 + 75 }')}
RUN="$WORK/run"
set +e
timeout -s INT -k 15 "$LIMIT_S" \
    "$PYTHON" -m training.run --data "$TRAIN_DATA" --outdir "$RUN" --cfg auto --resolution 64 --mirror "$COND_FLAG" \
    --batch "$BATCH" --cbase "$CBASE" --cmax "$CMAX" --aug "$AUG" --seed "$SEED" --device "$DEVICE" \
    --kimg 100000 --snap 10 --max-minutes "$MINUTES" "${EXTRA[@]}" >> "$LOG" 2>&1
rc=$?
set -e
echo "# training exit code $rc" >> "$LOG"

# The newest of each kind of file (the run stops at the first tick past its budget, writing a snapshot).
newest() { find "$RUN" -maxdepth 1 -name "$1" 2> /dev/null | sort | tail -n 1; }
copy() { [[ -n $1 && -f $1 ]] && cp "$1" "$OUT/$2" || true; }
copy "$(newest 'network-snapshot-*.safetensors')" network-snapshot.safetensors
copy "$(newest 'fakes[0-9]*.png')" fakes.png
copy "$RUN/reals.png" reals.png
copy "$RUN/stats.jsonl" stats.jsonl
copy "$RUN/training_options.json" training_options.json
STATE=$(newest 'training-state-*.safetensors')
if [[ -n $STATE ]] && (( $(stat -c %s "$STATE") < 16 * 1024 * 1024 )); then
    cp "$STATE" "$OUT/training-state.safetensors"
fi
ls -l "$OUT" >> "$LOG"
tail -n 3 "$LOG"
exit $rc
