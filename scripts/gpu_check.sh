#!/usr/bin/env bash
# The GPU check: on a machine with one GPU, in under 5 minutes, ONE markdown table of
#   (a) one training step of every few-shot method with every backbone under bf16
#       autocast, channels_last and torch.compile (benchmarks/method_steps.py);
#   (b) training images/s of the harness's pipeline against the conventional
#       PIL + DataLoader one, and the model FLOPs utilisation (benchmarks/train_step.py);
#   (c) the logistic-regression head against scikit-learn fitted per episode, time and
#       accuracy on the same episodes (benchmarks/eval_episodes.py).
# A case that fails is a row of the table; the exit status is 1 when any case failed
# (or a stage crashed or ran past its time limit), after the table.
#
#   bash scripts/gpu_check.sh          # the GPU check (cuda)
#   bash scripts/gpu_check.sh --cpu    # reduced CPU mode for CI (also HARNESS_GPU_CHECK_CPU=1):
#                                      # tiny tasks, one timed step, 50 episodes, no compile,
#                                      # bf16 autocast still exercised by (a); ~1-2 min on 2 cores
#
# Environment: PYTHON (default python), GPU_CHECK_LOGS (folder for each stage's log and
# rows; default a fresh temporary folder, named at the end).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python}
cpu=${HARNESS_GPU_CHECK_CPU:-0}
for arg in "$@"; do
    case $arg in
        --cpu) cpu=1 ;;
        *) echo "usage: bash scripts/gpu_check.sh [--cpu]" >&2; exit 2 ;;
    esac
done
logs=${GPU_CHECK_LOGS:-$(mktemp -d -t gpu_check.XXXXXX)}
mkdir -p "$logs"

if [[ $cpu == 1 ]]; then
    device=cpu
    method_args=(--device cpu --precision bf16 --channels-last on --compile off --quick --steps 1 --threads 1)
    train_args=(--device cpu --quick --workers 1 --threads 1)
    eval_args=(--device cpu --quick --threads 1)
    limits=(150 150 100)   # seconds per stage
else
    device=cuda
    method_args=(--device cuda --steps 3)
    train_args=(--device cuda --steps 20)
    eval_args=(--device cuda --episodes 2000 --threads 1)
    limits=(150 100 40)   # seconds per stage: under 5 minutes in all
fi

# stage NAME LIMIT SCRIPT ARGS...: run one stage under a time limit; its rows go to $logs/NAME.json
failed=0
stage() {
    local name=$1 limit=$2 script=$3
    shift 3
    local code=0
    timeout --kill-after=10 "$limit" "$PYTHON" "$script" "$@" --json "$logs/$name.json" >"$logs/$name.log" 2>&1 || code=$?
    echo "$code" >"$logs/$name.exit"
    [[ $code == 0 ]] || failed=1
}
stage method_steps "${limits[0]}" benchmarks/method_steps.py "${method_args[@]}"
stage train_step "${limits[1]}" benchmarks/train_step.py "${train_args[@]}"
stage eval_episodes "${limits[2]}" benchmarks/eval_episodes.py "${eval_args[@]}"

# One table: every stage's rows, and a row for a stage that ended without reporting a failure.
"$PYTHON" - "$logs" "$device" "${limits[@]}" <<'PY'
import json, sys
from pathlib import Path

logs, device, limits = Path(sys.argv[1]), sys.argv[2], dict(zip(("method_steps", "train_step", "eval_episodes"), sys.argv[3:]))
try:
    import torch
    name = torch.cuda.get_device_name(0) if device == "cuda" and torch.cuda.is_available() else "CPU"
    where = f"{device} ({name}), torch {torch.__version__}"
except Exception:  # noqa: BLE001 - the table matters more than the header
    where = device
lines = ["| check | case | status | result |", "|---|---|---|---|"]
counts = {"ok": 0, "failed": 0}
for stage, limit in limits.items():
    rows = json.loads((logs / f"{stage}.json").read_text()) if (logs / f"{stage}.json").exists() else []
    for row in rows:
        counts["ok" if row["status"] == "ok" else "failed"] += 1
        lines.append(f"| {row['check']} | {row['case']} | {row['status']} | {row['result']} |")
    code = int((logs / f"{stage}.exit").read_text())
    if code != 0 and all(row["status"] == "ok" for row in rows):
        log = (logs / f"{stage}.log").read_text().strip().splitlines()
        why = f"ran past its {limit} s limit" if code in (124, 137) else f"exited {code}: {log[-1] if log else 'no output'}"
        counts["failed"] += 1
        lines.append(f"| {stage} | (the stage) | failed | {why[:200]} |")
print(f"GPU check on {where}: {counts['ok']} ok, {counts['failed']} failed\n")
print("\n".join(lines))
PY
echo
echo "logs: $logs"
exit "$failed"
