#!/usr/bin/env bash
# GPU check of vae-search on the device machine (H200, Python 3.12, torch 2.11.0+cu130, no
# network, no optuna & co.): run from the repo root as `bash benchmarks/gpu_check.sh`.
#
# Before, here in the repo root (a machine with network), fill .whl/ with the pure wheels the
# GPU image lacks, at the versions of /work/main/.venv (`pip list`); about 19 MB:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl optuna==5.0.0 optuna-dashboard==0.21.0 alembic==1.20.1 sqlalchemy==2.1.9 \
#     plotly==7.1.0 colorlog==6.12.0 Mako==1.4.3 bottle==0.13.4
# Their other needs (numpy, packaging, PyYAML, tqdm, typing-extensions, MarkupSafe, narwhals) and
# the package's own (torch, torchvision, click, pillow) are in the image; psycopg is needed only
# for PostgreSQL URLs. Then call the device tool's run with
#   command "bash benchmarks/gpu_check.sh", carry [".whl"], timeout_s 600.
#
# Each step runs under its own `timeout` (limits add up to 590 s) and logs to $OUT/<step>.log;
# $OUT/summary has one line per step (rc, seconds, the result). At most 9 files land in $OUT.
#
# Dry run on a CPU machine (tiny sizes; the pip step is skipped when .whl/ holds no wheels):
#   DEV=cpu OUT=/tmp/gpu_check_out bash benchmarks/gpu_check.sh
set -u
DEV=${DEV:-cuda}                     # cuda on the GPU machine; cpu for a dry run
PY=${PY:-python3}
WHL=${WHL:-.whl}
SITE=${SITE:-/tmp/site}
OUT=${OUT:-/tmp/gpu_check_out}
WORK=$(mktemp -d /tmp/gpu_check.XXXXXX)
mkdir -p "$OUT"
: >"$OUT/summary"
export PYTHONPATH="$SITE:$PWD" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export VAE_SEARCH_ARTIFACTS="$WORK/art"
if [ "$DEV" = cuda ]; then
  TINY=0; ENGINE_N=60000; GPU_ARGS="--gpu-trials ${GPU_TRIALS:-32}"
else
  TINY=1; ENGINE_N=2000; GPU_ARGS="--gpu-device cpu --gpu-trials 2 --gpu-epochs 1 --gpu-size 500"
fi
T0=$SECONDS

# step NAME LIMIT RESULT_PATTERN COMMAND...: run COMMAND under timeout into $OUT/NAME.log and
# add its rc, its seconds and the log's last line matching RESULT_PATTERN to $OUT/summary
step() {
  local name=$1 limit=$2 pattern=$3 t=$SECONDS rc
  shift 3
  timeout -k 5 "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  local result
  result=$(grep -E -e "$pattern" "$OUT/$name.log" | tail -n 1 | cut -c1-600)
  [ $rc -eq 0 ] || result="$result | $(tail -n 3 "$OUT/$name.log" | tr '\n' ' ' | cut -c1-400)"
  printf '%-13s rc=%-3s %4ss (limit %ss)  %s\n' "$name" "$rc" $((SECONDS - t)) "$limit" \
    "$result" >>"$OUT/summary"
}

# --- the small programs the steps run -----------------------------------------------------------
cat >"$WORK/a_versions.sh" <<EOF
$PY - <<'PY'
import importlib, platform, sys
import torch
out = {"python": platform.python_version(), "torch": torch.__version__,
       "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available()}
for m in ("triton", "optuna", "optuna_dashboard", "sqlalchemy", "alembic", "plotly", "numpy",
          "torchvision", "click", "yaml", "PIL"):
    try:
        out[m] = getattr(importlib.import_module(m), "__version__", "?")
    except Exception as e:
        out[m] = f"MISSING ({type(e).__name__})"
if torch.cuda.is_available():
    out["gpu"] = torch.cuda.get_device_name(0)
    out["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
import vae_search.cli  # every command's imports resolve
print("versions", out)
sys.exit(1 if "${DEV}" == "cuda" and not out["cuda_available"] else 0)
PY
rc=\$?
nvidia-smi || echo "nvidia-smi: not here"
exit \$rc
EOF

cat >"$WORK/b_train.yaml" <<EOF
data: {name: shapes, size: $([ $TINY = 1 ] && echo 600 || echo 2000), image_size: 16, binarize: dynamic}
model: {hidden: [64], latent_dim: 4}
prior: {kind: vamp, components: 5}
eval: {iwae_samples: 10, iwae_max_examples: 100}
epochs: 2
batch_size: 64
device: $DEV
amp: true
compile: true
images: true
EOF

cat >"$WORK/c_resume.py" <<'EOF'
"""Resume on the device: a run killed after epoch 1 and resumed from its checkpoint (kept in
memory, through torch.save/torch.load as the artifact store does) equals an uninterrupted run."""
import io
import json
import math
import sys

import torch

from vae_search.config import RunConfig
from vae_search.data import load_data
from vae_search.train import train

cfg = RunConfig.from_dict({
    "data": {"name": "shapes", "size": 1500, "image_size": 16, "binarize": "dynamic"},
    "model": {"hidden": [64], "latent_dim": 4}, "prior": {"kind": "vamp", "components": 5},
    "eval": {"iwae_samples": 10, "iwae_max_examples": 100},
    "epochs": 2, "batch_size": 64, "device": sys.argv[1], "images": False,
})
data = load_data(cfg.data)


class MemoryCheckpoint:
    blob = None

    def load(self):
        if self.blob is None:
            return None
        return torch.load(io.BytesIO(self.blob), map_location="cpu", weights_only=True)

    def save(self, state):
        buf = io.BytesIO()
        torch.save(state, buf)
        self.blob = buf.getvalue()


class Killed(Exception):
    pass


def die_after_one(m):
    if m.epoch == 1:
        raise Killed


straight = train(cfg, data=data)
ckpt = MemoryCheckpoint()
try:
    train(cfg, data=data, checkpoint=ckpt, on_epoch=die_after_one)
    sys.exit("the run was not killed")
except Killed:
    pass
seen = []
resumed = train(cfg, data=data, checkpoint=ckpt, on_epoch=seen.append)


def numbers(d, skip=("seconds", "train_seconds")):
    out = {}
    for k, v in d.items():
        if k in skip:
            continue
        for i, x in enumerate(v if isinstance(v, list) else [v]):
            if isinstance(x, (int, float)) and not isinstance(x, bool) and x is not None:
                out[f"{k}[{i}]"] = float(x)
    return out


a = {**numbers(straight.final), **numbers(straight.history[-1].to_dict())}
b = {**numbers(resumed.final), **numbers(resumed.history[-1].to_dict())}
common = [k for k in a if k in b and not math.isnan(a[k])]
rel = max((abs(a[k] - b[k]) / max(abs(a[k]), 1e-6) for k in common), default=math.inf)
ok = (resumed.resumed_from == 1 and [m.epoch for m in seen] == [1, 2] and set(a) == set(b)
      and rel <= 1e-4)
print("resume", json.dumps({"device": sys.argv[1], "resumed_from": resumed.resumed_from,
                            "replayed": [m.epoch for m in seen], "exact": a == b,
                            "max_rel_diff": rel, "ok": ok}))
sys.exit(0 if ok else 1)
EOF

cat >"$WORK/d_spec.yaml" <<EOF
study: gpu-check-worker
objective: nll_iwae
n_trials: 2
sampler: {kind: random, seed: 0}
run:
  data: {name: shapes, size: 1000, image_size: 16}
  model: {hidden: [64]}
  eval: {iwae_samples: 10, iwae_max_examples: 100}
  epochs: 2
  batch_size: 64
  device: $DEV
  threads: 1
  prior: {kind: vamp}
space:
  model.latent_dim: {type: int, low: 2, high: 8}
  prior.components: {type: int, low: 2, high: 6}
EOF
cat >"$WORK/d_worker.sh" <<EOF
set -e
url=sqlite:///$WORK/d.db
$PY -m vae_search worker $WORK/d_spec.yaml --storage \$url --artifact-dir $WORK/art --device $DEV --index 0
$PY -m vae_search status gpu-check-worker --storage \$url --json
$PY - \$url <<'PY'
import sys
import optuna
t = optuna.load_study(study_name="gpu-check-worker", storage=sys.argv[1]).trials
states = [x.state.name for x in t]
print("worker trials", states, [x.params for x in t])
sys.exit(0 if sum(s in ("COMPLETE", "PRUNED") for s in states) == 2 else 1)
PY
EOF

cat >"$WORK/g_population.py" <<'EOF'
"""Population training on the device: 4 members (other β, schedules, learning rates, seeds)
against their single runs, then the stacked step against single steps (bench_population)."""
import json
import sys

from vae_search.config import RunConfig
from vae_search.data import load_data
from vae_search.train import train
from vae_search.train.population import train_population

base = {"data": {"name": "shapes", "size": 1500, "image_size": 16, "binarize": "dynamic"},
        "model": {"hidden": [64], "latent_dim": 4}, "eval": {"iwae_samples": 10, "iwae_max_examples": 100},
        "epochs": 2, "batch_size": 64, "device": sys.argv[1], "images": False}
cfgs = [RunConfig.from_dict({**base, "seed": i, "optim": {"lr": 1e-3 * (i + 1)},
                             "schedule": {"kind": k, "beta": 0.5 + i}})
        for i, k in enumerate(["linear", "constant", "cyclical", "sigmoid"])]
data = load_data(cfgs[0].data)
outs = train_population(cfgs, data=data)
rel = 0.0
for c, o in zip(cfgs, outs):
    single = train(c, data=data)
    for a, b in zip(o.result.history, single.history):
        rel = max(rel, abs(a.elbo - b.elbo) / abs(b.elbo))
print("population", json.dumps({"device": sys.argv[1], "max_rel_elbo_diff": rel, "ok": rel < 1e-3}))
sys.exit(0 if rel < 1e-3 else 1)
EOF

# --- the steps ----------------------------------------------------------------------------------
if ls "$WHL"/*.whl >/dev/null 2>&1; then
  step pip 40 "Successfully|ERROR" $PY -m pip install --no-index --no-deps --no-compile \
    --no-cache-dir --upgrade --target "$SITE" "$WHL"/*.whl
else
  echo "pip           skipped: no $WHL/*.whl (the packages must be importable already)" >>"$OUT/summary"
fi
step a_versions 25 "^versions" bash "$WORK/a_versions.sh"
step b_train 100 "-elbo|Error|error" env TORCH_LOGS=recompiles,graph_breaks \
  $PY -m vae_search train "$WORK/b_train.yaml" --out "$WORK/b_out"
echo "              b_train: $(grep -ciE 'graph break' "$OUT/b_train.log") graph-break and" \
  "$(grep -ciE 'recompil' "$OUT/b_train.log") recompile log lines" >>"$OUT/summary"
step c_resume 45 "^resume" $PY "$WORK/c_resume.py" "$DEV"
step d_worker 45 "^worker trials" bash "$WORK/d_worker.sh"
step e_engine 70 "faster than" $PY benchmarks/bench_engine.py --epochs 2 --device "$DEV" \
  --n "$ENGINE_N"
# 1 and 4 workers first: the goal's rows come back even if the step runs out of time
step f_throughput 210 '"summary"' $PY -m benchmarks.bench_throughput --gpu-only \
  --gpu-workers 1 4 2 --storage "sqlite:///$WORK/throughput.db" $GPU_ARGS
step g_population 55 "^population|speedup" bash -c "$PY $WORK/g_population.py $DEV && \
  $PY -m benchmarks.bench_population --device $DEV --models mnist --sizes $([ $TINY = 1 ] && echo 2 || echo 8,32) --sequential 1 --epochs 1 \
  --mnist-n $([ $TINY = 1 ] && echo 1000 || echo 12000)"
echo "total ${SECONDS}s (steps $((SECONDS - T0))s), device $DEV" >>"$OUT/summary"
cat "$OUT/summary"
rm -rf "$WORK"
! grep -qE ' rc=[1-9]' "$OUT/summary"
