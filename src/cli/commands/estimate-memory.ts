// `omni-dpo estimate-memory`: per-device memory of a training run from the model's config alone.
import { parseArgs } from "node:util";
import { UsageError, type Command } from "../args.js";

const DTYPES = ["float32", "bfloat16", "float16", "float64"] as const;

export const estimateMemoryCommand: Command = {
  help: `Usage: omni-dpo estimate-memory --model DIR|CONFIG [--zero-stage N] [--world-size W] [options] [--json]

Prints what one device holds at its peak when training the model on W ranks: the weights, the
gradients, AdamW's state and (estimated) the activations, from config.json alone (nothing is
allocated, so a 9B model is sized on a laptop). Without --zero-stage, every stage side by side.

  --model DIR|CONFIG        a model directory (its config.json) or a config.json file
  --zero-stage N            0 (DDP), 1 (optimizer state sharded), 2 (gradients too) or 3
                            (weights too)
  --world-size W            ranks (devices) in the run (default 1)
  --dtype D                 torch_dtype: float32 (default), bfloat16, float16, float64
  --bf16                    bf16 autocast (bf16: true): bf16 activations, the weights stay --dtype
  --lora R                  LoRA adapters of rank R (float32) on a frozen base instead of full
                            fine-tuning
  --lora-targets LIST       comma-separated layer names or all-linear (default q_proj,v_proj;
                            GPT-2 c_attn, Phi-3 qkv_proj)
  --gradient-checkpointing  only each layer's input is kept; layers are recomputed in backward
  --seq L                   tokens per sequence (default 1024)
  --batch B                 pairs per device and micro-batch (default 1; each pair is 2 sequences)
  --json                    { "per_device_bytes": { "weights", "gradients", "optimizer",
                            "activations", "total" }, ... } (one object per stage without
                            --zero-stage)

Gradients include DDP's buckets at stages 0 and 1 (with several ranks the all-reduce runs on
flat copies kept from step to step: the gradients' size again). Stage 2 reduces each bucket to
its owner as backward makes it final, so a rank holds its 1/W share plus what is not final yet
(about one decoder layer's gradients and the embeddings'); "gradients after reduce" is the
share alone, what stays until the step. Stage 3 keeps 1/W of the trainable weights ("weights
between steps") and gathers the rest of one layer and of the embeddings and head at its peak
with --gradient-checkpointing (all of them without it). A checkpoint also gathers the whole
optimizer state (and at stage 3 the weights) on rank 0 while it is written. Activations are an
estimate (the saved tensors of each layer, one chunk of logits).
`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        model: { type: "string" },
        "zero-stage": { type: "string" },
        "world-size": { type: "string" },
        dtype: { type: "string" },
        bf16: { type: "boolean" },
        lora: { type: "string" },
        "lora-targets": { type: "string" },
        "gradient-checkpointing": { type: "boolean" },
        seq: { type: "string" },
        batch: { type: "string" },
        json: { type: "boolean" },
      },
    });
    if (positionals.length) throw new UsageError(`estimate-memory: unexpected argument '${positionals[0]}'`);
    if (!values.model) throw new UsageError("estimate-memory: --model DIR|CONFIG is required");
    const int = (flag: string, text: string | undefined, fallback: number, min: number): number => {
      if (text === undefined) return fallback;
      const v = Number(text);
      if (!Number.isInteger(v) || v < min)
        throw new UsageError(`--${flag} must be an integer of at least ${min}, got '${text}'`);
      return v;
    };
    const dtype = (values.dtype ?? "float32") as (typeof DTYPES)[number];
    if (!DTYPES.includes(dtype))
      throw new UsageError(`--dtype must be one of ${DTYPES.join(", ")}, got '${values.dtype}'`);
    const { estimateMemory, gib, modelShape, readModelConfig, ZERO_STAGES } =
      await import("../../train/memory-estimate.js");
    const stage = values["zero-stage"] === undefined ? null : int("zero-stage", values["zero-stage"], 0, 0);
    if (stage !== null && !(ZERO_STAGES as readonly number[]).includes(stage)) {
      throw new UsageError(
        `--zero-stage must be one of ${ZERO_STAGES.join(", ")} (the stages this trainer has), got ${stage}`,
      );
    }
    const loraR = values.lora === undefined ? null : int("lora", values.lora, 0, 1);
    if (values["lora-targets"] !== undefined && loraR === null) throw new UsageError("--lora-targets needs --lora R");
    const shape = modelShape(readModelConfig(values.model), values.model);
    const defaultTargets =
      shape.architecture === "gpt2" ? ["c_attn"] : shape.architecture === "phi3" ? ["qkv_proj"] : ["q_proj", "v_proj"];
    const targetText = values["lora-targets"];
    const targets =
      targetText === "all-linear"
        ? ("all-linear" as const)
        : targetText !== undefined
          ? targetText
              .split(",")
              .map((t) => t.trim())
              .filter(Boolean)
          : defaultTargets;
    const options = {
      worldSize: int("world-size", values["world-size"], 1, 1),
      dtype,
      bf16: values.bf16 === true,
      lora: loraR === null ? null : { r: loraR, targets },
      gradientCheckpointing: values["gradient-checkpointing"] === true,
      seq: int("seq", values.seq, 1024, 1),
      batch: int("batch", values.batch, 1, 1),
    };
    const stages = stage === null ? [...ZERO_STAGES] : [stage];
    const estimates = stages.map((s) => ({ zero_stage: s, ...estimateMemory(shape, { ...options, zeroStage: s }) }));
    if (values.json) {
      const out = estimates.map((e) => ({ ...e, world_size: options.worldSize, model: values.model }));
      console.log(JSON.stringify(stage === null ? out : out[0], null, 2));
      return 0;
    }
    const first = estimates[0];
    const what = options.lora
      ? `LoRA r=${loraR} (${first.trainableParameters.toLocaleString("en")} trainable)`
      : "full fine-tuning";
    console.log(
      `${values.model}: ${shape.architecture}, ${first.parameters.toLocaleString("en")} parameters, ${what}, ` +
        `${dtype}${options.bf16 ? " + bf16 autocast" : ""}, ${options.worldSize} rank${options.worldSize === 1 ? "" : "s"}, ` +
        `${options.batch} pair(s) x ${options.seq} tokens${options.gradientCheckpointing ? ", gradient checkpointing" : ""}`,
    );
    const rows: [string, (e: (typeof estimates)[number]) => number][] = [
      ["weights", (e) => e.per_device_bytes.weights],
      ["gradients", (e) => e.per_device_bytes.gradients],
      ["optimizer (AdamW)", (e) => e.per_device_bytes.optimizer],
      ["activations (est.)", (e) => e.per_device_bytes.activations],
      ["total per device", (e) => e.per_device_bytes.total],
      ["gradients after reduce", (e) => e.gradients_after_reduce_bytes],
      ["weights between steps", (e) => e.weights_between_steps_bytes],
    ];
    console.log(["".padEnd(24), ...estimates.map((e) => `zero_stage ${e.zero_stage}`.padStart(14))].join(""));
    for (const [label, get] of rows)
      console.log([label.padEnd(24), ...estimates.map((e) => gib(get(e)).padStart(14))].join(""));
    return 0;
  },
};
