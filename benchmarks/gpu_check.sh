#!/usr/bin/env bash
# GPU check: the CUDA and TensorRT tests, GPU parity and the GPU benchmarks in one command, with every
# figure, parity error, exit code and wall time in ONE file: ${OUT:-out/gpu_check}/gpu_check.md.
#
# Usage
#   bash benchmarks/gpu_check.sh            full run, <= 8 minutes on one H200 (time budget 450 s)
#   bash benchmarks/gpu_check.sh --quick    smoke run (small sizes, no torch.compile row, budget 240 s);
#                                           on a machine without CUDA every part ends "skipped: no CUDA"
#   OUT=DIR bash benchmarks/gpu_check.sh    write into DIR (default out/gpu_check; the device tool sets OUT)
#
# On the lent GPU machine (the device tool's `run`, repo root as working directory):
#   run(command="bash benchmarks/gpu_check.sh", timeout_s=540)
# What comes back from $OUT: gpu_check.md, setup.log, part1_tests.log, part2_parity.log, part3_bench.log
# (5 files, under the tool's limit of 8). Nothing is fetched there (no network): the package is used from
# the repo (PYTHONPATH, plus `pip install --no-index --no-deps --no-build-isolation -e .` when it is not
# installed); wheels for missing packages (tensorrt, onnxruntime-gpu, ...) are installed from wheels/ or
# .whl/ (carry it) with `pip install --no-index --no-deps --target` into a temporary folder put first on
# PYTHONPATH, so the machine's own packages are left as they are.
#
# Parts (each one records its exit code, wall time and output tail; one failing part never stops the rest):
#   setup   machine (nvidia-smi, torch / CUDA / cuDNN, onnxruntime providers, tensorrt), wheels, install
#   part 1  pytest -q -o addopts= tests/test_torch_backend.py tests/test_tensorrt.py -rs (cap 180 s)
#   part 2  python benchmarks/gpu_parity.py --device cuda: fixtures vs reference (TF32 off), fp16 vs fp32,
#           ONNX Runtime CUDA and TensorRT vs torch, one line each                      (cap 120 s)
#   part 3  python benchmarks/bench_backends.py --device cuda, one process per backend row (so a crash or
#           timeout loses one row only): torch fp16, torch fp32 (sizes 1024,256, batches 1,32),
#           torch fp16 + torch.compile max-autotune = CUDA graphs (1024 only: every (size, batch) is a
#           separate autotuned compile), onnxruntime CUDA (when the provider exists), TensorRT fp16 / fp32
#           (1024, when tensorrt imports); then gpu_parity.py --speed (GPU-resident synthesis, no host
#           copies) and the 1024 px fp16 rows against the targets: >= 1,400 img/s, batch-1 latency < 3 ms.
# Time: every step gets min(its cap, what is left of the budget - 15 s); a step that would get < 20 s is
# recorded "skipped: out of time budget". Setup is bounded by its own timeouts (normally ~15 s). Expected on an H200 without tensorrt / onnxruntime-gpu:
# setup ~15 s, part 1 ~60-120 s, part 2 ~20 s, part 3 ~4 min (the compile row and its autotuning most of it).
#
# Knobs (environment): PYTHON (interpreter; default .venv/bin/python if present, else python3),
#   GPU_CHECK_BUDGET_S, GPU_CHECK_NO_CUDA=1 (take the no-CUDA path), GPU_CHECK_QUICK=1 (= --quick),
#   BENCH_SIZES (1024,256), BENCH_COMPILE_SIZES (1024), BENCH_TRT_SIZES (1024), BENCH_BATCHES (1,32),
#   BENCH_ITERS (30 batch-1 calls), BENCH_TP_ITERS (5 calls per batch), BENCH_EXTRA_ARGS (appended to
#   every bench_backends.py call), PYTEST_ARGS (appended to part 1).
# Exit code: 0 when no step failed (skips are no failure), 1 otherwise, 2 for a bad argument.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

QUICK=${GPU_CHECK_QUICK:-0}
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        -h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "gpu_check.sh: error: unknown argument '$arg' (use --quick or --help)" >&2; exit 2 ;;
    esac
done
[[ $QUICK == 1 ]] || QUICK=0

if [[ $QUICK == 1 ]]; then
    BUDGET=${GPU_CHECK_BUDGET_S:-240}
    BENCH_SIZES=${BENCH_SIZES:-256}
    BENCH_COMPILE_SIZES=${BENCH_COMPILE_SIZES:-}   # empty: no compile row
    BENCH_TRT_SIZES=${BENCH_TRT_SIZES:-256}
    BENCH_BATCHES=${BENCH_BATCHES:-1,8}
    BENCH_ITERS=${BENCH_ITERS:-5}
    BENCH_TP_ITERS=${BENCH_TP_ITERS:-2}
    SPEED_ARGS=(--speed-res 256 --speed-batches 1,8 --speed-iters 5 --no-compile)
    TEST_ARGS=(tests/test_torch_backend.py -k cuda)
else
    BUDGET=${GPU_CHECK_BUDGET_S:-450}
    BENCH_SIZES=${BENCH_SIZES:-1024,256}
    BENCH_COMPILE_SIZES=${BENCH_COMPILE_SIZES-1024}
    BENCH_TRT_SIZES=${BENCH_TRT_SIZES:-1024}
    BENCH_BATCHES=${BENCH_BATCHES:-1,32}
    BENCH_ITERS=${BENCH_ITERS:-30}
    BENCH_TP_ITERS=${BENCH_TP_ITERS:-5}
    SPEED_ARGS=(--speed-res 1024 --speed-batches 1,32 --speed-iters 30)
    TEST_ARGS=(tests/test_torch_backend.py tests/test_tensorrt.py)
fi
MIN_STEP_S=20
START=$(date +%s)

OUT_DIR=${OUT:-out/gpu_check}
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
SUMMARY=$OUT_DIR/gpu_check.md
SETUP_LOG=$OUT_DIR/setup.log
: >"$SETUP_LOG"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROWS=$WORK/rows.md          # the summary table's rows
SECTIONS=$WORK/sections.md  # one section per part
MACHINE=$WORK/machine.md
: >"$ROWS"; : >"$SECTIONS"; : >"$MACHINE"
FAILED=0

export PYTHONUNBUFFERED=1
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"  # the repo's stylegan_sdk, installed or not

if [[ -n ${PYTHON:-} ]]; then
    PY=$PYTHON
elif [[ -x $ROOT/.venv/bin/python ]]; then
    PY=$ROOT/.venv/bin/python
else
    PY=$(command -v python3 || command -v python || echo python3)
fi

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
remaining() { echo $((START + BUDGET - $(date +%s))); }

write_summary() {
    {
        echo "# GPU check"
        echo
        echo "- run: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), host $(hostname 2>/dev/null || echo '?'), mode $([[ $QUICK == 1 ]] && echo quick || echo full), budget ${BUDGET} s, $(( $(date +%s) - START )) s so far"
        echo "- repo: $ROOT; python: $PY"
        echo "- targets: >= 1,400 img/s at 1024 px fp16, batch-1 latency < 3 ms"
        echo
        echo "## Machine"
        echo
        cat "$MACHINE"
        echo
        echo "## Steps"
        echo
        echo "| step | result | exit code | wall s | timeout s |"
        echo "| --- | --- | --- | --- | --- |"
        cat "$ROWS"
        echo
        cat "$SECTIONS"
    } >"$SUMMARY"
}

# row STEP RESULT RC WALL TIMEOUT
row() { echo "| $1 | $2 | $3 | $4 | $5 |" >>"$ROWS"; }

# section TEXT... (appended to the part sections)
section() { printf '%s\n' "$@" >>"$SECTIONS"; }

# fenced FILE N: the last N lines of FILE in a code fence
fenced() {
    echo '```'
    tail -n "$2" "$1" 2>/dev/null | cut -c1-400 || true
    echo '```'
}

# step NAME CAP LOG CMD...: run CMD under min(CAP, budget left) with its output appended to LOG;
# sets STEP_RC (124: timed out; 'skipped' when no time was left) and records a table row.
step() {
    local name=$1 cap=$2 log=$3
    shift 3
    local left t t0 wall result
    left=$(($(remaining) - 15))
    t=$((cap < left ? cap : left))
    if ((t < MIN_STEP_S)); then
        STEP_RC=skipped
        row "$name" "skipped: out of time budget (${left} s left of ${BUDGET} s)" "-" "0" "-"
        echo "== $name: skipped: out of time budget" | tee -a "$log"
        write_summary
        return 0
    fi
    echo "== $name (timeout ${t} s): $*" | tee -a "$log"
    t0=$(now)
    set +e
    timeout -k 10 "$t" "$@" >>"$log" 2>&1
    STEP_RC=$?
    set -e
    wall=$(elapsed "$t0")
    echo "== $name: exit code $STEP_RC in $wall s" | tee -a "$log"
    if [[ $STEP_RC == 0 ]]; then
        result=ok
    elif [[ $STEP_RC == 124 || $STEP_RC == 137 ]]; then
        result="FAILED: timed out after ${t} s"
        FAILED=1
    else
        result=FAILED
        FAILED=1
    fi
    row "$name" "$result" "$STEP_RC" "$wall" "$t"
    write_summary
}

skip_part() {  # skip_part NAME LOG REASON
    row "$1" "skipped: $3" "-" "0" "-"
    echo "== $1: skipped: $3" | tee -a "$2"
}

echo "gpu_check: writing $SUMMARY (mode $([[ $QUICK == 1 ]] && echo quick || echo full), budget $BUDGET s)"

# ----------------------------------------------------------------------------
# Setup: wheels, the package, the machine

t0=$(now)
{
    wheel_dirs=()
    for d in wheels .whl; do
        if compgen -G "$ROOT/$d/*.whl" >/dev/null; then wheel_dirs+=("$ROOT/$d"); fi
    done
    if ((${#wheel_dirs[@]} == 0)); then
        WHEELS="none (no wheels/*.whl or .whl/*.whl)"
    elif [[ $QUICK == 1 ]]; then
        WHEELS="not installed (--quick): ${wheel_dirs[*]}"
    else
        wheels=()
        finds=()
        for d in "${wheel_dirs[@]}"; do
            wheels+=("$d"/*.whl)
            finds+=(--find-links "$d")
        done
        set +e
        timeout 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            "${finds[@]}" --target "$WORK/site" "${wheels[@]}"
        rc=$?
        set -e
        if [[ $rc == 0 ]]; then
            export PYTHONPATH="$WORK/site:$PYTHONPATH"
            WHEELS="installed ${#wheels[@]} wheel(s) into a temporary --target (first on PYTHONPATH): $(for w in "${wheels[@]}"; do basename "$w"; done | tr '\n' ' ')"
        else
            WHEELS="pip install of ${#wheels[@]} wheel(s) FAILED (exit code $rc; see setup.log)"
            FAILED=1
        fi
    fi
    echo "wheels: $WHEELS"

    # The package: from the repo via PYTHONPATH; installed (offline, editable) when its metadata is missing.
    if (cd /tmp && timeout 60 "$PY" -c "import importlib.metadata as m; m.version('stylegan-sdk')") 2>/dev/null; then
        INSTALL="stylegan-sdk already installed"
    elif [[ $QUICK == 1 ]]; then
        INSTALL="stylegan-sdk not installed; not installing (--quick); used from the repo through PYTHONPATH"
    else
        set +e
        timeout 90 "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e "$ROOT"
        rc=$?
        set -e
        INSTALL="pip install --no-index --no-deps --no-build-isolation -e . -> exit code $rc (the repo is on PYTHONPATH either way)"
    fi
    echo "install: $INSTALL"
} >>"$SETUP_LOG" 2>&1

{
    echo '```'
    if command -v nvidia-smi >/dev/null 2>&1; then
        timeout 30 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "nvidia-smi: exit code $?"
    else
        echo "nvidia-smi: not found"
    fi
    echo '```'
    echo
} >>"$MACHINE"

set +e
timeout 60 "$PY" - "$WORK" >>"$MACHINE" 2>>"$SETUP_LOG" <<'EOF'
import os, platform, sys

work = sys.argv[1]
flags = {"cuda": "0", "ort_cuda": "0", "trt": "0", "reason": "no CUDA"}
print(f"- python: {platform.python_version()} ({sys.executable}); CPU cores: {os.cpu_count()}")
try:
    import torch
    cuda = torch.cuda.is_available()
    line = (f"- torch: {torch.__version__}, CUDA build {torch.version.cuda or 'none'}, "
            f"cuDNN {torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else 'none'}, "
            f"CUDA available: {cuda}")
    if cuda:
        flags["cuda"] = "1"
        line += f" ({torch.cuda.device_count()} device(s): {torch.cuda.get_device_name()})"
    else:
        flags["reason"] = f"no CUDA (torch {torch.__version__}: torch.cuda.is_available() is False)"
    print(line)
except Exception as e:
    flags["reason"] = f"no CUDA (torch not importable: {type(e).__name__}: {e})"
    print(f"- torch: not importable ({type(e).__name__}: {e})")
try:
    import onnxruntime as ort
    providers = ort.get_available_providers()
    flags["ort_cuda"] = "1" if "CUDAExecutionProvider" in providers else "0"
    print(f"- onnxruntime: {ort.__version__}, providers: {', '.join(providers)}")
except Exception as e:
    print(f"- onnxruntime: not importable ({type(e).__name__}: {e})")
try:
    import onnx
    print(f"- onnx: {onnx.__version__}")
except Exception as e:
    print(f"- onnx: not importable ({type(e).__name__})")
try:
    import tensorrt
    flags["trt"] = "1"
    print(f"- tensorrt: {tensorrt.__version__}")
except (ImportError, OSError) as e:
    print(f"- tensorrt: not installed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
try:
    import stylegan_sdk
    print(f"- stylegan_sdk: {stylegan_sdk.__version__} from {os.path.dirname(stylegan_sdk.__file__)}")
except Exception as e:
    print(f"- stylegan_sdk: not importable ({type(e).__name__}: {e})")
for key, value in flags.items():
    with open(os.path.join(work, key), "w") as f:
        f.write(value)
EOF
probe_rc=$?
set -e
{
    echo "- wheels: $WHEELS"
    echo "- install: $INSTALL"
} >>"$MACHINE"

flag() { cat "$WORK/$1" 2>/dev/null || echo "${2:-0}"; }
HAS_CUDA=$(flag cuda)
NO_CUDA_REASON=$(flag reason "no CUDA (the machine probe failed, exit code $probe_rc: see setup.log)")
if [[ -n ${GPU_CHECK_NO_CUDA:-} && ${GPU_CHECK_NO_CUDA} != 0 ]]; then
    HAS_CUDA=0
    NO_CUDA_REASON="no CUDA (GPU_CHECK_NO_CUDA=$GPU_CHECK_NO_CUDA set)"
fi
HAS_ORT_CUDA=$(flag ort_cuda)
HAS_TRT=$(flag trt)
if [[ $probe_rc == 0 ]]; then
    row "setup" "ok" "0" "$(elapsed "$t0")" "-"
else
    row "setup" "machine probe FAILED (see setup.log)" "$probe_rc" "$(elapsed "$t0")" "-"
    FAILED=1
fi
write_summary

# ----------------------------------------------------------------------------
# Part 1: the CUDA and TensorRT tests

LOG1=$OUT_DIR/part1_tests.log
: >"$LOG1"
read -ra pytest_extra <<<"${PYTEST_ARGS:-}"
# -o addopts=: one process, as before pyproject's addopts asked for two pytest-xdist workers (one GPU; the lent
# machine need not have pytest-xdist).
CMD1=("$PY" -m pytest -q -o addopts= "${TEST_ARGS[@]}" -rs -p no:cacheprovider ${pytest_extra[@]+"${pytest_extra[@]}"})
section "## Part 1: CUDA and TensorRT tests" "" "command: \`python ${CMD1[*]:1}\`" ""
if [[ $HAS_CUDA != 1 ]]; then
    skip_part "part 1: tests" "$LOG1" "$NO_CUDA_REASON"
    section "skipped: $NO_CUDA_REASON" ""
else
    step "part 1: tests" 180 "$LOG1" "${CMD1[@]}"
    {
        echo "exit code $STEP_RC"
        echo
        echo "skips and result:"
        echo
        echo '```'
        grep -E '^(SKIPPED|FAILED|ERROR)|(passed|failed|error|skipped)( |,).* in [0-9.]+s' "$LOG1" | cut -c1-400 | tail -n 40 || true
        echo '```'
        echo
        echo "output tail:"
        echo
        fenced "$LOG1" 25
        echo
    } >>"$SECTIONS"
fi
write_summary

# ----------------------------------------------------------------------------
# Part 2: parity on the GPU

LOG2=$OUT_DIR/part2_parity.log
: >"$LOG2"
section "## Part 2: parity (TF32 off)" "" "command: \`python benchmarks/gpu_parity.py --device cuda\`" ""
if [[ $HAS_CUDA != 1 ]]; then
    skip_part "part 2: parity" "$LOG2" "$NO_CUDA_REASON"
    section "skipped: $NO_CUDA_REASON" ""
else
    step "part 2: parity" 120 "$LOG2" "$PY" benchmarks/gpu_parity.py --device cuda
    {
        echo "exit code $STEP_RC"
        echo
        grep '^parity:' "$LOG2" | sed 's/^/- /' || echo "- (no parity lines)"
        echo
        if [[ $STEP_RC != 0 && $STEP_RC != skipped ]]; then
            echo "output tail:"
            echo
            fenced "$LOG2" 25
            echo
        fi
    } >>"$SECTIONS"
fi
write_summary

# ----------------------------------------------------------------------------
# Part 3: the GPU benchmarks

LOG3=$OUT_DIR/part3_bench.log
: >"$LOG3"
read -ra bench_extra <<<"${BENCH_EXTRA_ARGS:-}"
# One bench_backends.py call per backend row; the flags are those of `bench_backends.py --help` today.
bench() {  # bench BACKEND SIZES CAP
    local steplog=$WORK/bench_$1.log
    : >"$steplog"
    step "part 3: bench $1 ($2 px)" "$3" "$steplog" "$PY" benchmarks/bench_backends.py --device cuda \
        --backends "$1" --sizes "$2" --batches "$BENCH_BATCHES" --iters "$BENCH_ITERS" \
        --throughput-iters "$BENCH_TP_ITERS" --cache "$WORK/bench-cache" ${bench_extra[@]+"${bench_extra[@]}"}
    cat "$steplog" >>"$LOG3"
    if [[ $STEP_RC != 0 && $STEP_RC != skipped ]]; then
        {
            echo "bench $1: exit code $STEP_RC, output tail:"
            echo
            fenced "$steplog" 12
            echo
        } >>"$WORK/bench_failures.md"
    fi
}

section "## Part 3: benchmarks" "" \
    "command per row: \`python benchmarks/bench_backends.py --device cuda --backends ROW --sizes SIZES --batches $BENCH_BATCHES --iters $BENCH_ITERS --throughput-iters $BENCH_TP_ITERS ${BENCH_EXTRA_ARGS:-}\`; figures include copying the float32 images to the host. The speed lines keep them on the GPU." \
    "" "targets: >= 1,400 img/s at 1024 px fp16, batch-1 latency < 3 ms" ""
if [[ $HAS_CUDA != 1 ]]; then
    skip_part "part 3: benchmarks" "$LOG3" "$NO_CUDA_REASON"
    section "skipped: $NO_CUDA_REASON" ""
else
    : >"$WORK/bench_failures.md"
    bench torch-fp16 "$BENCH_SIZES" 75
    bench torch "$BENCH_SIZES" 75
    if [[ -n $BENCH_COMPILE_SIZES ]]; then
        bench torch-fp16-compile "$BENCH_COMPILE_SIZES" 150
    else
        row "part 3: bench torch-fp16-compile" "skipped: --quick (no compile row)" "-" "0" "-"
    fi
    step "part 3: speed (GPU-resident)" 90 "$LOG3" "$PY" benchmarks/gpu_parity.py --speed "${SPEED_ARGS[@]}"
    if [[ $HAS_ORT_CUDA == 1 ]]; then
        bench onnxruntime "$BENCH_SIZES" 90
    else
        row "part 3: bench onnxruntime (CUDA)" "skipped: onnxruntime has no CUDAExecutionProvider" "-" "0" "-"
    fi
    if [[ $HAS_TRT == 1 ]]; then
        bench tensorrt-fp16 "$BENCH_TRT_SIZES" 150
        bench tensorrt "$BENCH_TRT_SIZES" 150
    else
        row "part 3: bench tensorrt, tensorrt-fp16" "skipped: tensorrt not installed" "-" "0" "-"
    fi
    set +e
    timeout 20 "$PY" benchmarks/gpu_parity.py --targets "$LOG3" >"$WORK/targets.txt" 2>&1
    set -e
    {
        grep -m1 '^machine:' "$LOG3" || true
        echo
        # the tables of all rows, headers once
        grep '^|' "$LOG3" | awk '/^\| *(model|---)/ { if (seen[$0]++) next } { print }' || true
        echo
        grep -E '^# .*skipped' "$LOG3" | sed 's/^# /- bench: /' || true
        grep '^speed:' "$LOG3" | sed 's/^/- /' || true
        grep '^target:' "$WORK/targets.txt" | sed 's/^/- /' || true
        echo
        cat "$WORK/bench_failures.md"
    } >>"$SECTIONS"
fi
write_summary

total=$(( $(date +%s) - START ))
echo "gpu_check: done in ${total} s, $([[ $FAILED == 0 ]] && echo 'no step failed' || echo 'some step FAILED'): $SUMMARY"
echo
cat "$SUMMARY"
exit $FAILED
