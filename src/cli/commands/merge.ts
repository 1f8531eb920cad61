// `omni-dpo merge`: a LoRA adapter folded into its base model, written as a plain Hugging Face checkpoint.
import { parseArgs } from "node:util";
import { UsageError, type Command } from "../args.js";

const DTYPES = ["float32", "bfloat16", "float16"] as const;

export const mergeCommand: Command = {
  help: `Usage: omni-dpo merge --adapter DIR --out DIR [--dtype D] [--force]

Merges a LoRA adapter in PEFT's layout (adapter_config.json, adapter_model.safetensors) into
the base model its base_model_name_or_path names: each adapted weight becomes
W + scaling * B A (scaling = lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora), and
modules_to_save take their trained weights. Writes config.json, generation_config.json, the
safetensors weights and the tokenizer (the adapter directory's, else the base model's) to --out,
as PEFT's merge_and_unload() then save_pretrained() do; the result loads without the adapter.

  --adapter DIR    the adapter directory (a LoRA run's output_dir or checkpoint)
  --out DIR        where the merged model goes (not the base model's or the adapter's directory)
  --dtype D        store the weights as float32 (default), bfloat16 or float16
  --force          replace the model a non-empty --out already holds (never the base model's
                   or the adapter's directory)
`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        adapter: { type: "string" },
        out: { type: "string" },
        dtype: { type: "string" },
        force: { type: "boolean" },
      },
    });
    if (positionals.length) throw new UsageError(`merge: unexpected argument '${positionals[0]}'`);
    if (!values.adapter) throw new UsageError("merge: --adapter DIR is required");
    if (!values.out) throw new UsageError("merge: --out DIR is required");
    const dtype = values.dtype as (typeof DTYPES)[number] | undefined;
    if (dtype !== undefined && !DTYPES.includes(dtype))
      throw new UsageError(`--dtype must be one of ${DTYPES.join(", ")}, got '${values.dtype}'`);
    const { isAdapterDirectory, tokenizerDirectory } = await import("../../models/peft.js");
    const { mergeAdapterDirectory } = await import("../../models/auto.js");
    if (!isAdapterDirectory(values.adapter))
      throw new UsageError(`merge: ${values.adapter} is not an adapter directory (no adapter_config.json)`);
    const { Tokenizer } = await import("../../text/index.js");
    const tokenizer = Tokenizer.fromPretrainedSync(tokenizerDirectory(values.adapter));
    const r = mergeAdapterDirectory(values.adapter, values.out, { dtype, force: values.force });
    await tokenizer.save(values.out);
    console.log(
      `wrote ${values.out}: the base model ${r.baseDir} (left unchanged) with the adapter ${values.adapter} merged into its ${r.layers} adapted layers`,
    );
    return 0;
  },
};
