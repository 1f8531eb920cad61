// `omni-dpo bench generate --serve`: the bench's prompts sent at once, one request per prompt, to
// `omni-dpo serve` (a child process on a free loopback port) through the official openai client,
// so the figure includes HTTP, JSON and continuous batching (rows join the running batch as their
// requests arrive). The bench's model is saved with a word-level tokenizer of its vocabulary
// ("t0", "t1", ...) and no EOS token, so every answer runs to max_tokens, as the local side does.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import OpenAI from "openai";
import { saveModel, type CausalLM } from "../../src/index.js";
import { Tokenizer } from "../../src/text/index.js";
import { packageRoot } from "../../src/util/package-root.js";

export interface ServeBenchSettings {
  newTokens: number;
  temperature: number;
  topP: number;
  trials: number;
  threads: number;
  device: string;
}

const NAME = "bench";

/** Seconds per round of all prompts through `serve` (median of `trials`, after one warm-up round). */
export async function serveSecondsPerRound(
  model: CausalLM,
  prompts: number[][],
  s: ServeBenchSettings,
): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "omni-dpo-bench-serve-"));
  try {
    saveModel(model, dir);
    wordLevelTokenizer(model.vocabSize).saveSync(dir);
    const server = await startServe(dir, prompts.length, s);
    try {
      const client = new OpenAI({ baseURL: server.url, apiKey: "unused", maxRetries: 0, timeout: 30 * 60_000 });
      const round = async () => {
        const answers = await Promise.all(
          prompts.map((ids, r) =>
            client.completions.create({
              model: NAME,
              prompt: ids,
              max_tokens: s.newTokens,
              temperature: s.temperature,
              top_p: s.topP,
              seed: r,
            }),
          ),
        );
        const short = answers.findIndex((a) => a.usage?.completion_tokens !== s.newTokens);
        if (short >= 0) {
          throw new Error(
            `bench generate --serve: request ${short} got ${answers[short].usage?.completion_tokens} tokens, ` +
              `not the ${s.newTokens} asked for`,
          );
        }
      };
      await round();
      const seconds: number[] = [];
      for (let t = 0; t < s.trials; t++) {
        const start = process.hrtime.bigint();
        await round();
        seconds.push(Number(process.hrtime.bigint() - start) / 1e9);
      }
      seconds.sort((a, b) => a - b);
      return seconds[Math.floor(seconds.length / 2)];
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A tokenizer whose token i is the word "t<i>": any id the model samples decodes, nothing is EOS. */
function wordLevelTokenizer(vocabSize: number): Tokenizer {
  const vocab = Object.fromEntries(Array.from({ length: vocabSize }, (_, i) => [`t${i}`, i]));
  return Tokenizer.fromJSON({
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: { type: "WhitespaceSplit" },
    post_processor: null,
    decoder: null,
    model: { type: "WordLevel", vocab, unk_token: "t0" },
  });
}

/** `omni-dpo serve` on port 0, with the bench's threads; resolves once it says where it listens. */
function startServe(
  dir: string,
  maxBatch: number,
  s: ServeBenchSettings,
): Promise<{ url: string; stop: () => Promise<void> }> {
  const cli = join(packageRoot(), "dist", "src", "cli", "main.js");
  const args = ["serve", "--model", dir, "--name", NAME, "--port", "0", "--quiet", "--max-batch", `${maxBatch}`];
  const child = spawn(process.execPath, [cli, ...args, "--device", s.device], {
    env: { ...process.env, OMP_NUM_THREADS: `${s.threads}` },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log: string[] = [];
  child.stderr.on("data", (d: Buffer) => log.push(d.toString()));
  const stop = () =>
    new Promise<void>((done) => {
      if (child.exitCode !== null || child.signalCode !== null) return done();
      child.once("exit", () => done());
      child.kill("SIGTERM");
    });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      const m = /at (http:\/\/\S+)/.exec(line);
      if (m) resolve({ url: m[1], stop });
    });
    child.once("exit", (code) =>
      reject(new Error(`bench generate --serve: serve exited with ${code}: ${log.join("")}`)),
    );
  });
}
