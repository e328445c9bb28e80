#!/usr/bin/env bash
# The GPU check of l1reg.torch, one prepared script for a machine with a CUDA GPU.
#
# It runs the torch tests (every test on "cpu" and "cuda", inductor compiles included) and the
# torch benchmarks on the GPU, and writes everything to one Markdown file:
#
#     bash benchmarks/gpu_check.sh [OUTPUT_DIR]        # default: $OUT, else ./gpu_check_out
#
# l1reg is taken from src/ (PYTHONPATH), so nothing is installed; torch with CUDA, numpy, scipy,
# scikit-learn, array-api-compat, pytest and hypothesis must be importable by $PYTHON (default
# python3). Each part has its own time limit, so one slow part cannot eat the others' time; the
# whole script stays under 8 minutes (limits 240 + 75 + 75 + 30 + 45 s); expect about 4.
set -u
cd "$(dirname "$0")/.."
DIR=${1:-${OUT:-gpu_check_out}}
mkdir -p "$DIR"
REPORT="$DIR/gpu_check.md"
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export L1REG_TEST_INDUCTOR=1

section() { printf '\n## %s\n\n```\n' "$1" >> "$REPORT"; }
end_section() { printf '```\n' >> "$REPORT"; }

{
  echo "# l1reg.torch GPU check"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- host: $(hostname), $(nproc) CPU cores"
  echo "- commit/tree: $(git rev-parse --short HEAD 2>/dev/null || echo 'no commit')"
} > "$REPORT"

section "environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> "$REPORT" 2>&1
"$PYTHON" - >> "$REPORT" 2>&1 <<'PY'
import importlib
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(0))
for name in ("numpy", "scipy", "sklearn", "array_api_compat", "pytest", "hypothesis", "triton"):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "?"))
    except ImportError as error:
        print(name, "MISSING:", error)
PY
end_section

section "tests: pytest tests/test_torch.py tests/test_torch_fused_step.py (cpu and cuda, inductor included)"
timeout 240 "$PYTHON" -m pytest tests/test_torch.py tests/test_torch_fused_step.py -q -p no:cacheprovider -rs --durations=10 \
  >> "$REPORT" 2>&1
echo "exit status: $?" >> "$REPORT"
end_section

section "benchmark: python benchmarks/penalty_torch.py --device cuda"
timeout 75 "$PYTHON" benchmarks/penalty_torch.py --device cuda >> "$REPORT" 2>&1
echo "exit status: $?" >> "$REPORT"
end_section

section "benchmark: python benchmarks/prox_torch.py --device cuda"
timeout 75 "$PYTHON" benchmarks/prox_torch.py --device cuda >> "$REPORT" 2>&1
echo "exit status: $?" >> "$REPORT"
end_section

section "profile: where the time of the prox step in Adam's metric goes on the GPU"
timeout 30 "$PYTHON" - >> "$REPORT" 2>&1 <<'PY'
import cProfile
import pstats
import time

import torch

from l1reg.torch import L1Regularizer, ProximalL1

model = torch.nn.Sequential(*[torch.nn.Linear(447, 447) for _ in range(50)]).cuda()
for p in model.parameters():
    p.grad = torch.randn_like(p) * 1e-3
opt = ProximalL1(torch.optim.Adam(model.parameters(), lr=1e-3, fused=True), L1Regularizer(model, 1e-2))
opt.optimizer.step()
for _ in range(5):
    opt.prox_step()
torch.cuda.synchronize()
start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
calls = 50
t0 = time.perf_counter()
start.record()
for _ in range(calls):
    opt.prox_step()
end.record()
host = (time.perf_counter() - t0) / calls
torch.cuda.synchronize()
wall = (time.perf_counter() - t0) / calls
print(f"prox_step: host {1e3 * host:.3f} ms/call to queue, wall {1e3 * wall:.3f} ms/call, "
      f"GPU {start.elapsed_time(end) / calls:.3f} ms/call")
profile = cProfile.Profile()
profile.enable()
for _ in range(calls):
    opt.prox_step()
torch.cuda.synchronize()
profile.disable()
pstats.Stats(profile).sort_stats("tottime").print_stats(15)
PY
echo "exit status: $?" >> "$REPORT"
end_section

section "benchmark (CPU of the GPU machine): python benchmarks/penalty_torch.py --quick"
timeout 45 "$PYTHON" benchmarks/penalty_torch.py --quick >> "$REPORT" 2>&1
echo "exit status: $?" >> "$REPORT"
end_section

echo "wrote $REPORT"
cat "$REPORT"
