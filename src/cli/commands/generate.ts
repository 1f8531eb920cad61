// `omni-dpo generate`: text from a model directory, greedy or sampled.
import { parseArgs } from "node:util";
import { ENDPOINT_HELP, ENDPOINT_OPTIONS, endpointFromFlags } from "../endpoint-flags.js";
import { UsageError, positiveInt, nonNegative, probability, resolveDevice, seedInt, type Command } from "../args.js";

export const generateCommand: Command = {
  help: `Usage: omni-dpo generate --model DIR (--prompt TEXT | --prompts FILE) [options]

Generates text with a causal LM in Hugging Face layout (config.json, safetensors, tokenizer).

  --model DIR            model directory, or a LoRA adapter directory (adapter_config.json: its
                         base model with the adapter; the tokenizer is the adapter's, else the base's)
  --prompt TEXT          one prompt (repeatable)
  --prompts FILE         a file with one prompt per line (or JSONL with a "prompt" field)
  --chat                 wrap each prompt as a user message in the model's chat template
  --image FILE           a vision-language model (Qwen2-VL): ask each prompt about this image
                         (PNG or JPEG; repeatable: several images, in order). The prompt becomes a
                         user turn of the images and the text, through the processor and the
                         chat template (--chat implied); one prompt at a time
  --max-new-tokens N     tokens to generate (default 128)
  --temperature T        0 decodes greedily (default); above 0 samples
  --top-k K              sample among the K most likely tokens
  --top-p P              sample from the smallest set reaching probability P
  --do-sample            sample (temperature 1 unless given), as transformers' do_sample
  --repetition-penalty R divide a seen token's positive logit by R, multiply a negative one
                         (transformers' repetition_penalty; default 1: none)
  --num-return-sequences N
                         N sampled completions per prompt (needs sampling; default 1)
  --stop TEXT            stop when the text appears (repeatable); generation also stops on the
                         EOS ids of the model's generation_config.json (else the tokenizer's EOS)
  --seed N               seed for sampling (default 0)
  --batch-size N         prompts per batch (default 8; left-padded)
  --device D             auto (default: CUDA when LibTorch has it), cpu, cuda or cuda:N; on CPU
                         the float32 linear weights are packed for oneDNN while a batch generates
                         (about 1.5x faster, as much memory again; OMNI_DPO_PACKED_LINEAR=0: off)
  --json                 print JSON lines {prompt, completion, finish_reason}
${ENDPOINT_HELP}  With --endpoint, --model is not needed; prompt i samples with seed N + i, and a stop string
  is cut from the answer (the protocol's way).
`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        model: { type: "string" },
        prompt: { type: "string", multiple: true },
        prompts: { type: "string" },
        chat: { type: "boolean" },
        image: { type: "string", multiple: true },
        "max-new-tokens": { type: "string" },
        temperature: { type: "string" },
        "top-k": { type: "string" },
        "top-p": { type: "string" },
        "do-sample": { type: "boolean" },
        "repetition-penalty": { type: "string" },
        "num-return-sequences": { type: "string" },
        stop: { type: "string", multiple: true },
        seed: { type: "string" },
        "batch-size": { type: "string" },
        json: { type: "boolean" },
        device: { type: "string" },
        ...ENDPOINT_OPTIONS,
      },
    });
    const endpoint = await endpointFromFlags(values, "generate");
    if (!values.model && !endpoint) throw new UsageError("generate: --model DIR (or --endpoint URL) is required");
    const prompts = [...(values.prompt ?? [])];
    if (values.prompts) prompts.push(...(await import("../../data/readers.js")).readPromptFile(values.prompts));
    if (prompts.length === 0) throw new UsageError("generate: give --prompt TEXT or --prompts FILE");
    const maxNew = positiveInt(values["max-new-tokens"], "--max-new-tokens", 128);
    const temperature = nonNegative(values.temperature, "--temperature", 0);
    const topK = positiveInt(values["top-k"], "--top-k", 0, true);
    const topP = probability(values["top-p"], "--top-p", 1);
    const seed = seedInt(values.seed, "--seed", 0);
    const repetitionPenalty = nonNegative(values["repetition-penalty"], "--repetition-penalty", 1);
    if (!(repetitionPenalty > 0)) throw new UsageError("generate: --repetition-penalty must be above 0");
    const n = positiveInt(values["num-return-sequences"], "--num-return-sequences", 1);
    const doSample = values["do-sample"] ?? undefined;
    if (n > 1 && !doSample && !(temperature > 0))
      throw new UsageError("generate: --num-return-sequences above 1 needs --do-sample or --temperature > 0");
    const batchSize = positiveInt(values["batch-size"], "--batch-size", 8);
    const imageFiles = values.image ?? [];
    if (endpoint && imageFiles.length) throw new UsageError("generate: --image works with --model, not --endpoint");
    if (endpoint) {
      const out = await endpoint.generate(
        prompts.map((p, i) => ({
          prompt: values.chat ? [{ role: "user", content: p }] : p,
          seeds: [seed + i],
          maxTokens: maxNew,
          temperature,
          topP,
          topK,
          stop: values.stop,
        })),
      );
      out.forEach(([sample], i) => {
        if (values.json)
          console.log(
            JSON.stringify({
              prompt: prompts[i],
              completion: sample.text,
              finish_reason: sample.finishReason,
              tokens: sample.tokens,
            }),
          );
        else console.log(`${prompts[i]}${values.chat ? "\n" : ""}${sample.text}\n---`);
      });
      return 0;
    }
    if (!values.model) throw new UsageError("generate: --model DIR is required");
    const { loadModel } = await import("../../models/auto.js");
    const { generate } = await import("../../models/generate.js");
    const { stopTokenIds } = await import("../../models/generation-config.js");
    const { Tokenizer } = await import("../../text/index.js");
    const { Progress } = await import("../../util/progress.js");
    const { tokenizerDirectory } = await import("../../models/peft.js");
    if (imageFiles.length) return generateAboutImages(values.model, imageFiles, prompts, values, { maxNew, n, seed });
    const tokenizer = Tokenizer.fromPretrainedSync(tokenizerDirectory(values.model));
    const model = loadModel(values.model, { device: await resolveDevice(values.device) });
    const texts = prompts.map((p) =>
      values.chat ? tokenizer.applyChatTemplate([{ role: "user", content: p }], { addGenerationPrompt: true }) : p,
    );
    // A chat render writes its own special tokens; plain prompts get what the tokenizer adds (Llama's BOS).
    const ids = texts.map((t) => tokenizer.encode(t, { addSpecialTokens: !values.chat }));
    const { checkTokenIds, modelVocab } = await import("../../models/vocab.js");
    const pad = { at: "the pad token", ids: [tokenizer.padTokenId ?? 0] };
    const rows = [...ids.map((x, i) => ({ at: `prompt ${i + 1}`, ids: x })), pad];
    checkTokenIds(rows, modelVocab(values.model), tokenizerDirectory(values.model));
    // The model's generation_config.json names its EOS ids (chat models list the end-of-turn token there).
    const eos = stopTokenIds(model.generationConfig, tokenizer.eosTokenId);
    const bar = new Progress("generating", prompts.length * n * maxNew, !values.json && prompts.length * maxNew > 64);
    for (let start = 0; start < ids.length; start += batchSize) {
      const chunk = ids.slice(start, start + batchSize);
      const r = generate(model, chunk, {
        maxNewTokens: maxNew,
        temperature,
        topK,
        topP,
        seed: seed + start,
        doSample,
        repetitionPenalty,
        numReturnSequences: n,
        eosTokenIds: eos,
        padTokenId: tokenizer.padTokenId,
        stopStrings: values.stop,
        decode: (t) => tokenizer.decode(t, { skipSpecialTokens: true }),
        onStep: (s) => bar.update((start * maxNew + s * chunk.length) * n),
      });
      r.tokens.forEach((tokens, i) => {
        const completion = tokenizer.decode(tokens, { skipSpecialTokens: true });
        const prompt = prompts[start + Math.floor(i / n)];
        if (values.json)
          console.log(JSON.stringify({ prompt, completion, finish_reason: r.finishReasons[i], tokens: tokens.length }));
        else console.log(`${prompt}${values.chat ? "\n" : ""}${completion}\n---`);
      });
    }
    bar.finish();
    model.dispose();
    return 0;
  },
};

/**
 * generate --image: each prompt, with the images, through the model directory's processor and
 * chat template; generated one prompt at a time (the images feed the prefill).
 */
async function generateAboutImages(
  modelDir: string,
  files: string[],
  prompts: string[],
  values: {
    temperature?: string;
    "top-k"?: string;
    "top-p"?: string;
    "do-sample"?: boolean;
    "repetition-penalty"?: string;
    stop?: string[];
    json?: boolean;
    device?: string;
  },
  settings: { maxNew: number; n: number; seed: number },
): Promise<number> {
  if (settings.n > 1) throw new UsageError("generate: --image with --num-return-sequences above 1: repeat the prompt");
  const { loadModel } = await import("../../models/auto.js");
  const { generate } = await import("../../models/generate.js");
  const { stopTokenIds } = await import("../../models/generation-config.js");
  const { takesImages } = await import("../../models/registry.js");
  const { AutoProcessor } = await import("../../text/index.js");
  const { imagePrompt } = await import("../../generation/image-prompt.js");
  const { tokenizerDirectory } = await import("../../models/peft.js");
  const model = loadModel(modelDir, { device: await resolveDevice(values.device) });
  try {
    if (!takesImages(model)) {
      throw new UsageError(`generate: --image: ${modelDir} is a '${model.architecture}' model, which takes no images`);
    }
    const processor = AutoProcessor.fromPretrained(tokenizerDirectory(modelDir));
    const tokenizer = processor.tokenizer;
    const eos = stopTokenIds(model.generationConfig, tokenizer.eosTokenId);
    for (const [i, prompt] of prompts.entries()) {
      const asked = imagePrompt(processor, prompt, files, model.device);
      try {
        const r = generate(model, [asked.ids], {
          maxNewTokens: settings.maxNew,
          temperature: nonNegative(values.temperature, "--temperature", 0),
          topK: positiveInt(values["top-k"], "--top-k", 0, true),
          topP: probability(values["top-p"], "--top-p", 1),
          seed: settings.seed + i,
          doSample: values["do-sample"] ?? undefined,
          repetitionPenalty: nonNegative(values["repetition-penalty"], "--repetition-penalty", 1),
          eosTokenIds: eos,
          padTokenId: tokenizer.padTokenId,
          stopStrings: values.stop,
          decode: (t) => tokenizer.decode(t, { skipSpecialTokens: true }),
          images: asked.images,
        });
        const tokens = r.tokens[0]!;
        const completion = tokenizer.decode(tokens, { skipSpecialTokens: true });
        if (values.json)
          console.log(
            JSON.stringify({
              prompt,
              images: files,
              completion,
              finish_reason: r.finishReasons[0],
              tokens: tokens.length,
            }),
          );
        else console.log(`${prompt}\n${completion}\n---`);
      } finally {
        asked.images.pixelValues?.dispose();
        asked.images.imageGridThw?.dispose();
      }
    }
  } finally {
    model.dispose();
  }
  return 0;
}
