#!/usr/bin/env bash
# One prepared check for a machine with an NVIDIA GPU and a CUDA build of PyTorch (used as
# LibTorch): builds the addon against it, runs the CUDA checks, trains a Qwen2.5-0.5B-shaped
# model (its real vocabulary, 151936) on CUDA in bf16 with gradient checkpointing (tokens/s),
# runs the trainer as 1 NCCL process, and `bench generate` on CUDA. Prints one table and writes
# it as JSON.
#   bash scripts/gpu-check.sh [OUT.json]        (default gpu-check.json; PYTHON=python3)
# Where no GPU is present it says so and exits 3 before changing anything. GPU_CHECK_CPU=1 runs
# the training, NCCL-less (Gloo) and generate steps on the CPU at toy sizes instead, to check
# the script itself on a machine without one (nothing is rebuilt then; GPU_CHECK_SKIP_TSC=1 also
# skips compiling). Not here yet: PyTorch's training step beside ours on CUDA (bench train has
# no CUDA mode), so the tokens/s row is omni-dpo's alone.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gpu-check.json}
PY=${PYTHON:-python3}
CPU=${GPU_CHECK_CPU:-0}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/omni-dpo-gpu-check-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROWS="$WORK/rows.jsonl"
: > "$ROWS"

# row NAME STATUS SECONDS DETAIL: one line of the table (JSON, written by node for the quoting).
row() {
  node -e 'const [n, s, t, d] = process.argv.slice(1); console.log(JSON.stringify({ step: n, status: s, seconds: Number(t), detail: d }))' \
    "$1" "$2" "$3" "$4" >> "$ROWS"
}
# run NAME LOG COMMAND...: runs it, times it, records ok or failed (the log's last line as the detail).
run() {
  local name=$1 log=$2; shift 2
  local start=$SECONDS
  if "$@" > "$log" 2>&1; then row "$name" ok $((SECONDS - start)) "$(tail -n 1 "$log")"; return 0; fi
  row "$name" failed $((SECONDS - start)) "$(tail -n 3 "$log" | tr '\n' ' ')"
  return 1
}

if [ "$CPU" = 1 ]; then
  DEVICE=cpu; GPU="none (GPU_CHECK_CPU=1: the script's own check on the CPU, toy sizes)"; BACKEND=gloo
else
  if ! command -v nvidia-smi > /dev/null 2>&1 || ! nvidia-smi -L > /dev/null 2>&1; then
    echo "gpu-check: no NVIDIA GPU present (nvidia-smi is missing or lists no device); nothing was built or measured" >&2
    exit 3
  fi
  GPU=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -n 1)
  DEVICE=cuda; BACKEND=nccl
  TORCH_DIR=$("$PY" -c 'import os, torch; assert torch.cuda.is_available(), "torch.cuda.is_available() is False"; print(os.path.dirname(torch.__file__))' 2> "$WORK/torch.err")
  if [ -z "$TORCH_DIR" ]; then
    echo "gpu-check: $PY has no CUDA PyTorch ($(tail -n 1 "$WORK/torch.err")); install one (pip install torch) or set PYTHON" >&2
    exit 3
  fi
  run "build the addon against $TORCH_DIR" "$WORK/build.log" env LIBTORCH="$TORCH_DIR" npm run build:native || { cat "$WORK/build.log" >&2; exit 1; }
fi
[ "${GPU_CHECK_SKIP_TSC:-0}" = 1 ] || run "compile (tsc)" "$WORK/tsc.log" npx tsc -p tsconfig.json || { cat "$WORK/tsc.log" >&2; exit 1; }

if [ "$DEVICE" = cuda ]; then
  run "CUDA tensors, gradients, AdamW vs CPU" "$WORK/cuda-check.log" node scripts/cuda-check.mjs
  run "CUDA models and trainer vs CPU" "$WORK/cuda-train.log" node scripts/cuda-check-training.mjs
fi

# A Qwen2.5-0.5B-shaped model (toy-sized with GPU_CHECK_CPU=1), a byte-level tokenizer, preference pairs.
if [ "$DEVICE" = cuda ]; then SHAPE='{"w":896,"i":4864,"l":24,"h":14,"kv":2,"v":151936,"seq":1024,"steps":8}'
else SHAPE='{"w":64,"i":128,"l":2,"h":4,"kv":2,"v":151936,"seq":64,"steps":2}'; fi
node --input-type=module -e '
  const [dir, shapeText] = process.argv.slice(1);
  const shape = JSON.parse(shapeText);
  const { createModel, saveModel, torch } = await import(process.cwd() + "/dist/src/index.js");
  const { writeByteLevelTokenizer } = await import(process.cwd() + "/dist/test/helpers/tokenizers.js");
  const { toyPairs, writeJsonl } = await import(process.cwd() + "/dist/test/helpers/toy.js");
  const tok = writeByteLevelTokenizer(dir + "/model");
  torch.manualSeed(0);
  const model = createModel({ architectures: ["Qwen2ForCausalLM"], model_type: "qwen2", vocab_size: shape.v, hidden_size: shape.w,
    intermediate_size: shape.i, num_hidden_layers: shape.l, num_attention_heads: shape.h, num_key_value_heads: shape.kv,
    max_position_embeddings: 32768, rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true,
    bos_token_id: tok.bosTokenId, eos_token_id: tok.eosTokenId });
  saveModel(model, dir + "/model");
  // Long answers, so each row fills its max_length.
  const pairs = toyPairs(64, 7).map((p) => ({ ...p, chosen: p.chosen.repeat(400), rejected: p.rejected.repeat(400) }));
  writeJsonl(dir + "/pairs.jsonl", pairs);
' "$WORK" "$SHAPE" || { echo "gpu-check: could not write the test model" >&2; exit 1; }
field() { node -e 'console.log(JSON.parse(process.argv[1])[process.argv[2]])' "$SHAPE" "$1"; }
recipe() {  # recipe FILE OUTDIR EXTRA-YAML
  cat > "$1" <<EOF
model_name_or_path: $WORK/model
dataset_mixer: { "$WORK/pairs.jsonl": 1.0 }
output_dir: $2
device: $DEVICE
pref_loss: simpo
beta: 2.0
learning_rate: 1.0e-6
per_device_train_batch_size: 1
max_length: $(field seq)
max_prompt_length: $(( $(field seq) / 4 ))
max_steps: $(field steps)
logging_steps: 1
save_strategy: "no"
pair_log_samples: 0
seed: 1
$3
EOF
}
# The mean tokens/s of the logged rows after the first (warm-up) one.
tokens_per_second() {
  node -e 'const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse).filter((r) => "loss" in r).slice(1);
    console.log(rows.length ? (rows.reduce((s, r) => s + r.tokens_per_second, 0) / rows.length).toFixed(0) : "n/a")' "$1/metrics.jsonl"
}

recipe "$WORK/bf16.yaml" "$WORK/out-bf16" $'bf16: true\ngradient_checkpointing: true'
# The device's memory in use (nvidia-smi, MiB, the CUDA context included), sampled while it trains.
if [ "$DEVICE" = cuda ]; then
  ( while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -n 1; sleep 0.5; done ) > "$WORK/gpu-mem.log" 2>&1 &
  SAMPLER=$!
fi
if run "train, bf16 autocast + gradient checkpointing ($DEVICE)" "$WORK/bf16.log" node dist/src/cli/main.js train "$WORK/bf16.yaml"; then
  row "  tokens/s (omni-dpo; PyTorch beside it: bench train has no CUDA mode yet)" ok 0 "$(tokens_per_second "$WORK/out-bf16")"
fi
if [ -n "${SAMPLER:-}" ]; then
  kill "$SAMPLER" 2> /dev/null
  row "  peak device memory in use (nvidia-smi)" ok 0 "$(sort -n "$WORK/gpu-mem.log" | tail -n 1) MiB"
fi
recipe "$WORK/ddp.yaml" "$WORK/out-ddp" ""
run "trainer as 1 $BACKEND process" "$WORK/ddp.log" \
  node dist/src/cli/main.js train "$WORK/ddp.yaml" --nproc-per-node 1 --backend "$BACKEND" --master-port 29517
if [ "$DEVICE" = cuda ]; then SIZE=--quick; else SIZE=--tiny; fi
run "bench generate ($DEVICE, beside PyTorch)" "$WORK/generate.log" node dist/src/cli/main.js bench generate --device "$DEVICE" "$SIZE"

node -e '
  const fs = require("fs");
  const [rowsFile, out, gpu] = process.argv.slice(1);
  const rows = fs.readFileSync(rowsFile, "utf8").trim().split("\n").filter(Boolean).map(JSON.parse);
  const report = { gpu, date: new Date().toISOString(), rows };
  fs.writeFileSync(out, JSON.stringify(report, null, 2) + "\n");
  console.log(`GPU: ${gpu}`);
  const w = Math.max(...rows.map((r) => r.step.length));
  for (const r of rows) console.log(`${r.step.padEnd(w)}  ${r.status.padEnd(6)}  ${String(r.seconds).padStart(5)} s  ${r.detail}`);
  console.log(`written to ${out}`);
  process.exitCode = rows.some((r) => r.status !== "ok") ? 1 : 0;
' "$ROWS" "$OUT" "$GPU"
