// `omni-dpo bench engine|model|train`: speed (and memory) beside PyTorch in the same run.
import { parseArgs } from "node:util";
import { UsageError, type Command } from "../../src/cli/args.js";

export const benchCommand: Command = {
  help: `Usage: omni-dpo bench <engine|model|train|generate> [--json] [--quick]

engine   matmul GFLOP/s at 1024 and 2048, linear forward+backward GFLOP/s and per-op
         overhead on tiny tensors, each beside PyTorch (Python) measured in the same run.
model    forward tokens/s of a GPT-2-small-shaped (124M) random model at sequence 512,
         batch 2, beside the same forward in PyTorch (Python) in the same run.
train    one Omni-DPO training step (policy forward+backward over chosen+rejected, live
         frozen reference, Omni-DPO loss, AdamW), one pair (2 rows) per step: tokens/s and
         peak memory (peak RSS), beside the same step in PyTorch; each side in its own
         process. Cases (--case picks; the first three run by default):
           gpt2   the same 124M model at sequence 256 and 512, full logits on both sides
                  (2 to 3 minutes on 2 cores)
           qwen2  a Qwen2-shaped model with Qwen2.5's vocabulary (151936) and width (896),
                  tied embeddings, 2 layers; one pair of 768 prompt + 256 response tokens,
                  gradient checkpointing: the trainer's path (log-probs on response positions,
                  the LM head in chunks) beside TRL's (full logits, torch.utils.checkpoint)
                  (about 2 minutes on 2 cores; about 8 GB of memory)
           lora   the qwen2 case with LoRA (r 16, alpha 32, every linear layer but the
                  head) on frozen weights, the reference being the adapters switched off;
                  with qwen2 in the same run, a LoRA-vs-full-fine-tune row (about 1 minute)
           qwen2vl  (only when named) a Qwen2-VL-2B-shaped model (2 decoder layers, 2 vision
                  blocks), one 448x448 image per row (1024 patches, 256 tokens) in a 282-token
                  prompt and a 256-token answer, vision tower frozen, checkpointed as qwen2

generate sampled decoding with the KV cache (temperature 0.8, top-p 0.95, as data build
         samples) on a Llama-shaped random model, 16 prompts of 64 tokens, 64 new tokens each:
         generated tokens/s beside transformers' generate() loop written in PyTorch, same shape,
         same run. Cases (--case picks one):
           llama  8 layers x 512, vocabulary 32000 (the default; a minute or two on 2 cores)
           qwen2  Qwen2.5-0.5B's decoder: 24 layers x 896, 14 heads over 2 key/value heads,
                  vocabulary 151936 (about 5 minutes on 2 cores, 6 GB of memory)

  --json        print the results as JSON
  --quick       shorter timing trials (noisier); train: gpt2 at sequence 256 only, two timed
                steps; qwen2 one timed step
  --case NAMES  train: gpt2, qwen2, lora or qwen2vl, or several joined by commas (default:
                gpt2, qwen2 and lora); generate: llama (default) or qwen2
  --seq N       train, qwen2 and lora: tokens per row (default 1024; three quarters prompt);
                PyTorch's full logits grow with it (2048: about 14 GB)
  --device D    generate: auto (default), cpu, cuda or cuda:N (PyTorch runs on the same device)
  --serve       generate: also send the same prompts at once to \`omni-dpo serve\` (started on a free
                loopback port) through the official openai client, one request per prompt
`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: "boolean" },
        quick: { type: "boolean" },
        tiny: { type: "boolean" },
        case: { type: "string" },
        seq: { type: "string" },
        device: { type: "string" },
        serve: { type: "boolean" },
      },
    });
    const which = positionals[0];
    if (which === "train") {
      // --tiny (undocumented): a tiny model, so tests can run the whole command in seconds.
      const { benchTrain, formatTrainBench, TRAIN_BENCH_CASES, DEFAULT_TRAIN_BENCH_CASES } = await import("./train.js");
      const chosen = values.case?.split(",");
      const unknown = chosen?.find((c) => !(TRAIN_BENCH_CASES as readonly string[]).includes(c));
      if (unknown !== undefined)
        throw new UsageError(`bench train: unknown --case '${unknown}'; available: ${TRAIN_BENCH_CASES.join(", ")}`);
      const cases =
        chosen === undefined ? DEFAULT_TRAIN_BENCH_CASES : TRAIN_BENCH_CASES.filter((c) => chosen.includes(c));
      const seq = values.seq === undefined ? undefined : Number(values.seq);
      if (seq !== undefined && !(Number.isInteger(seq) && seq >= 8))
        throw new UsageError(`bench train: --seq must be a whole number of tokens >= 8, got '${values.seq}'`);
      if (!values.json)
        console.error(
          `benchmarking one Omni-DPO training step here and in PyTorch (${values.tiny ? "seconds" : values.quick ? "a minute or two" : "4 to 5 minutes"})...`,
        );
      const r = benchTrain({
        quick: values.quick,
        tiny: values.tiny,
        cases,
        seq,
        onStatus: values.json ? undefined : (m) => console.error(`  ${m}`),
      });
      console.log(values.json ? JSON.stringify(r, null, 2) : formatTrainBench(r));
      return 0;
    }
    if (which === "engine") {
      const { benchEngine, formatEngineBench } = await import("./engine.js");
      if (!values.json) console.error("benchmarking the engine and PyTorch (under a minute)...");
      const r = benchEngine({ quick: values.quick });
      console.log(values.json ? JSON.stringify(r, null, 2) : formatEngineBench(r));
      return 0;
    }
    if (which === "model") {
      const { benchModel, formatModelBench } = await import("./model.js");
      if (!values.json) console.error("benchmarking a 124M GPT-2 forward here and in PyTorch (about a minute)...");
      const r = benchModel({ quick: values.quick });
      console.log(values.json ? JSON.stringify(r, null, 2) : formatModelBench(r));
      return 0;
    }
    if (which === "generate") {
      const { benchGenerate, formatGenerateBench, GENERATE_CASES } = await import("./generate.js");
      const device = await (await import("../../src/cli/args.js")).resolveDevice(values.device);
      const benchCase = values.case ?? "llama";
      if (!(GENERATE_CASES as readonly string[]).includes(benchCase))
        throw new UsageError(`bench generate: --case must be one of ${GENERATE_CASES.join(", ")}, got '${benchCase}'`);
      if (!values.json)
        console.error(
          `benchmarking sampled decoding here and in PyTorch on ${device} (${values.tiny ? "seconds" : "a minute or two"})...`,
        );
      const r = await benchGenerate({
        quick: values.quick,
        tiny: values.tiny,
        device,
        serve: values.serve,
        case: benchCase as (typeof GENERATE_CASES)[number],
      });
      console.log(values.json ? JSON.stringify(r, null, 2) : formatGenerateBench(r));
      return 0;
    }
    throw new UsageError(`bench: unknown benchmark '${which ?? ""}'; available: engine, model, train, generate`);
  },
};
