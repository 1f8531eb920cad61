// `omni-dpo serve`: an OpenAI-compatible server over a model directory.
import { parseArgs } from "node:util";
import { basename, resolve } from "node:path";
import { realpathSync } from "node:fs";
import { UsageError, positiveInt, resolveDevice, type Command } from "../args.js";

export const serveCommand: Command = {
  help: `Usage: omni-dpo serve --model DIR [--adapter DIR] [--port P] [--host H [--allow-remote]] [options]

Serves a causal LM in Hugging Face layout over the OpenAI API, so any OpenAI client (the
official SDKs, curl, omni-dpo's own --endpoint) can use it:
  GET  /v1/models
  POST /v1/completions        plain prompts (a string, a list of strings, or token ids)
  POST /v1/chat/completions   messages, rendered with the model's chat template
with n, seed (sample j of a request uses seed + j), temperature (default 1), top_p, top_k,
max_tokens (default 16 for completions, the rest of the context for chat), stop, and
stream (server-sent events). A vision-language model (Qwen2-VL) answers about images: chat
content parts {"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}} (PNG or
JPEG inline; http(s) URLs are refused, the server fetches nothing). Concurrent requests are
decoded together (continuous batching: rows join and leave the running batch at every step).
A bad request gets an OpenAI-style error naming the field (HTTP 400). On CPU the float32 linear
weights are packed for oneDNN's matmul while the server runs: decoding about 1.5x faster, for as
much memory again as those weights (OMNI_DPO_PACKED_LINEAR=0 turns it off).

  --model DIR         the model directory (config.json, safetensors, tokenizer)
  --adapter DIR       a LoRA adapter trained on --model, served on top of it
  --name NAME         the model id clients send (default: the directory's name)
  --port P            port (default 8000; 0 picks a free one)
  --host H            address to bind (default 127.0.0.1, this machine only)
  --allow-remote      needed for a --host other than loopback: anyone who can reach it may use it
  --max-batch N       rows decoded together at most (default 16); more wait their turn
  --device D          auto (default: CUDA when LibTorch has it), cpu, cuda or cuda:N
  --quiet             do not log each request
`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        model: { type: "string" },
        adapter: { type: "string" },
        name: { type: "string" },
        port: { type: "string" },
        host: { type: "string" },
        "allow-remote": { type: "boolean" },
        "max-batch": { type: "string" },
        device: { type: "string" },
        quiet: { type: "boolean" },
      },
    });
    if (positionals.length) throw new UsageError(`serve: unexpected argument '${positionals[0]}'`);
    if (!values.model) throw new UsageError("serve: --model DIR is required");
    const { isLoopback } = await import("../../report/dashboard-server.js");
    const host = values.host ?? "127.0.0.1";
    if (!isLoopback(host)) {
      if (!values["allow-remote"]) {
        throw new UsageError(
          `serve: --host ${host} would serve the model beyond this machine; ` + "add --allow-remote to do so",
        );
      }
      console.error(
        `omni-dpo serve: warning: listening on ${host}: ` +
          "anyone who can reach this address can use the model (no authentication)",
      );
    }
    const port = positiveInt(values.port, "--port", 8000, true);
    const maxBatch = positiveInt(values["max-batch"], "--max-batch", 16);
    const device = await resolveDevice(values.device);
    const { loadModel } = await import("../../models/auto.js");
    const { readAdapterConfig, tokenizerDirectory } = await import("../../models/peft.js");
    const { AutoProcessor, Tokenizer } = await import("../../text/index.js");
    const { startServer } = await import("../../generation/server.js");
    if (values.adapter) {
      const base = readAdapterConfig(values.adapter).baseDir;
      if (realpathSync(base) !== realpathSync(values.model)) {
        throw new UsageError(
          `serve: the adapter ${values.adapter} was trained on ${base} ` +
            `(base_model_name_or_path in its adapter_config.json), not on --model ${values.model}`,
        );
      }
    }
    const dir = values.adapter ?? values.model;
    const { takesImages } = await import("../../models/registry.js");
    const model = loadModel(dir, { device });
    // A vision-language model's processor reads the image parts of chat messages (its tokenizer is the one).
    const processor = takesImages(model) ? AutoProcessor.fromPretrained(tokenizerDirectory(dir)) : undefined;
    const tokenizer = processor?.tokenizer ?? Tokenizer.fromPretrainedSync(tokenizerDirectory(dir));
    const name = values.name ?? basename(resolve(dir));
    const server = await startServer(model, tokenizer, {
      name,
      host,
      port,
      maxBatch,
      processor,
      onRequest: values.quiet ? undefined : (line) => console.error(line),
    });
    // The first line says where it listens (tests and scripts read it).
    console.log(`serving ${name} at ${server.url} (Ctrl-C to stop)`);
    await new Promise<void>((done) => {
      const stop = () => {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
        void server.close().then(done);
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    });
    model.dispose();
    return 0;
  },
};
