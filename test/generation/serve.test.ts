// `omni-dpo serve` through the official openai client, on a free loopback port:
//   - completions and chat completions answer as the in-process sampler does (greedy: token for
//     token; seeded sampling: the same per-row streams), n and seed as documented;
//   - concurrent requests share decoding steps, rows joining a running batch, with the same
//     answers as alone (continuous batching);
//   - streaming chunks join to the non-streamed answer; stop strings cut the answer;
//   - bad requests get OpenAI-style errors naming the field, and the server goes on serving;
//   - the CLI binds loopback unless --allow-remote, and is stopped by SIGTERM.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import OpenAI from "openai";
import { torch } from "../../src/index.js";
import { loadModel } from "../../src/models/auto.js";
import { generate } from "../../src/models/generate.js";
import { stopTokenIds } from "../../src/models/generation-config.js";
import type { CausalLM } from "../../src/models/causal-lm.js";
import { startServer, type RunningServer } from "../../src/generation/server.js";
import { Tokenizer } from "../../src/text/index.js";
import { packageRoot } from "../../src/util/package-root.js";
import { startServeProcess, writeSharpChatModel } from "../helpers/serving.js";
import { tempDir } from "../helpers/toy.js";

torch.setNumThreads(1);
const root = tempDir("omni-dpo-serve-");
const MODEL = writeSharpChatModel(join(root, "policy"));
let model: CausalLM;
let tokenizer: Tokenizer;
let server: RunningServer;
let client: OpenAI;
let eos: number[];

before(async () => {
  model = loadModel(MODEL);
  tokenizer = Tokenizer.fromPretrainedSync(MODEL);
  eos = stopTokenIds(model.generationConfig, tokenizer.eosTokenId);
  server = await startServer(model, tokenizer, { name: "toy", port: 0, maxBatch: 8 });
  client = new OpenAI({ baseURL: server.url, apiKey: "unused", maxRetries: 0 });
});
after(async () => {
  await server?.close();
  model?.dispose();
  rmSync(root, { recursive: true, force: true });
});

/** What the in-process sampler generates for `ids`, as the answer's text and token count. */
function local(ids: number[][], options: Parameters<typeof generate>[2]) {
  const out = generate(model, ids, { eosTokenIds: eos, padTokenId: tokenizer.padTokenId, ...options });
  return out.tokens.map((t) => ({
    text: tokenizer.decode(
      t.filter((x) => !eos.includes(x)),
      { skipSpecialTokens: true },
    ),
    tokens: t.length,
  }));
}

const PROMPTS = ["say apple", "the river runs", "x"];

test("serve: /v1/models and greedy completions equal the in-process sampler token for token", async () => {
  const models = await client.models.list();
  assert.deepEqual(
    models.data.map((m) => m.id),
    ["toy"],
  );
  const expected = local(
    PROMPTS.map((p) => tokenizer.encode(p)),
    { maxNewTokens: 12 },
  );
  assert.ok(
    expected.every((e) => e.tokens > 3),
    "answers long enough to compare",
  );
  for (const [i, prompt] of PROMPTS.entries()) {
    const r = await client.completions.create({ model: "toy", prompt, max_tokens: 12, temperature: 0 });
    assert.equal(r.choices[0].text, expected[i].text, prompt);
    assert.equal(r.usage?.completion_tokens, expected[i].tokens);
    assert.equal(r.usage?.prompt_tokens, tokenizer.encode(prompt).length);
  }
  // A list of prompts in one request: one choice each, in order.
  const r = await client.completions.create({ model: "toy", prompt: PROMPTS, max_tokens: 12, temperature: 0 });
  assert.deepEqual(
    r.choices.map((c) => c.text),
    expected.map((e) => e.text),
  );
});

test("serve: chat completions through the chat template; seeded samples follow row streams (seed + j)", async () => {
  const messages = [{ role: "user" as const, content: "say river" }];
  const rendered = { addGenerationPrompt: true, tokenize: true } as const;
  const ids = tokenizer.applyChatTemplate(
    messages.map((m) => ({ ...m })),
    rendered,
  ).ids;
  const greedy = local([ids], { maxNewTokens: 10 })[0];
  const g = await client.chat.completions.create({ model: "toy", messages, max_tokens: 10, temperature: 0 });
  assert.equal(g.choices[0].message.content, greedy.text);
  assert.equal(g.choices[0].message.role, "assistant");
  const sampled = local([ids, ids, ids], { maxNewTokens: 10, temperature: 0.9, topP: 0.95, rowSeeds: [7, 8, 9] });
  const s = await client.chat.completions.create({
    model: "toy",
    messages,
    max_tokens: 10,
    temperature: 0.9,
    top_p: 0.95,
    n: 3,
    seed: 7,
  });
  assert.deepEqual(
    s.choices.map((c) => c.message.content),
    sampled.map((x) => x.text),
  );
  assert.ok(new Set(sampled.map((x) => x.text)).size > 1, "three seeds give different samples");
});

test("serve: concurrent requests share decoding steps and answer as they would alone", async () => {
  const asks = [
    { prompt: "say apple", max_tokens: 60, temperature: 0 },
    { prompt: "a much longer prompt than the others here", max_tokens: 4, temperature: 0 },
    { prompt: "cloud", max_tokens: 12, temperature: 0.8, seed: 3 },
    { prompt: "tiger tiger", max_tokens: 9, temperature: 1.1, top_p: 0.9, seed: 4 },
  ];
  const alone = [];
  for (const a of asks) alone.push((await client.completions.create({ model: "toy", ...a })).choices[0].text);
  const stepsBefore = server.batcher.steps;
  const joinsBefore = server.batcher.joins;
  server.batcher.widest = 0;
  // The last two join while the first (60 tokens) is decoding.
  const first = asks.slice(0, 2).map((a) => client.completions.create({ model: "toy", ...a }));
  await new Promise((r) => setTimeout(r, 5));
  const later = asks.slice(2).map((a) => client.completions.create({ model: "toy", ...a }));
  const together = (await Promise.all([...first, ...later])).map((r) => r.choices[0].text);
  assert.deepEqual(together, alone);
  assert.ok(server.batcher.widest >= 3, `rows decoded in one batch (at most ${server.batcher.widest})`);
  assert.ok(server.batcher.joins > joinsBefore, "rows joined a batch that was decoding");
  const stepsTogether = server.batcher.steps - stepsBefore;
  assert.ok(stepsTogether < 60 + 4 + 12 + 9, `shared steps: ${stepsTogether}`);
});

test("serve: streamed chunks join to the non-streamed answer; stop strings cut it", async () => {
  const whole = await client.completions.create({ model: "toy", prompt: "say lemon", max_tokens: 16, temperature: 0 });
  const text = whole.choices[0].text;
  const stream = await client.completions.create({
    model: "toy",
    prompt: "say lemon",
    max_tokens: 16,
    temperature: 0,
    stream: true,
  });
  let joined = "";
  let finish: string | null = null;
  for await (const chunk of stream) {
    joined += chunk.choices[0]?.text ?? "";
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(joined, text);
  assert.equal(finish, whole.choices[0].finish_reason);
  const chat = await client.chat.completions.create({
    model: "toy",
    messages: [{ role: "user", content: "hi" }],
    max_tokens: 8,
    temperature: 0,
    stream: true,
  });
  let chatText = "";
  for await (const chunk of chat) chatText += chunk.choices[0]?.delta?.content ?? "";
  const direct = await client.chat.completions.create({
    model: "toy",
    messages: [{ role: "user", content: "hi" }],
    max_tokens: 8,
    temperature: 0,
  });
  assert.equal(chatText, direct.choices[0].message.content);
  // A stop string taken from the greedy answer: the answer ends just before it.
  const stop = [...text.slice(3, 5)].join("");
  assert.ok(stop.length > 0 && text.indexOf(stop) >= 0);
  const cut = await client.completions.create({
    model: "toy",
    prompt: "say lemon",
    max_tokens: 16,
    temperature: 0,
    stop: [stop],
  });
  assert.equal(cut.choices[0].text, text.slice(0, text.indexOf(stop)));
  assert.equal(cut.choices[0].finish_reason, "stop");
});

test("serve: a client that hangs up mid-stream takes its row out of the batch", async () => {
  const steps = server.batcher.steps;
  const controller = new AbortController();
  const r = await fetch(`${server.url}/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    signal: controller.signal,
    body: JSON.stringify({ prompt: "say apple", max_tokens: 100, temperature: 0.8, seed: 1, stream: true }),
  });
  const reader = r.body!.getReader();
  await reader.read(); // the first chunk: decoding has started
  controller.abort();
  const start = Date.now();
  while (server.batcher.pending > 0 && Date.now() - start < 5000) await new Promise((done) => setTimeout(done, 5));
  assert.equal(server.batcher.pending, 0);
  assert.ok(server.batcher.steps - steps < 100, `${server.batcher.steps - steps} steps for a row of 100 tokens`);
  const ok = await client.completions.create({ model: "toy", prompt: "after", max_tokens: 3, temperature: 0 });
  assert.equal(ok.choices.length, 1);
});

test("serve: bad requests get OpenAI-style errors naming the field, and serving goes on", async () => {
  const post = async (path: string, body: string) => {
    const headers = { "content-type": "application/json" };
    const r = await fetch(`${server.url}${path}`, { method: "POST", headers, body });
    type ErrorBody = { error: { message: string; param: string | null; type: string } };
    return { status: r.status, body: (await r.json()) as ErrorBody };
  };
  const cases: [string, unknown, number, string | null][] = [
    ["/completions", { prompt: "a", temperature: "hot" }, 400, "temperature"],
    ["/completions", { prompt: "a", n: 0 }, 400, "n"],
    ["/completions", { prompt: "a", max_tokens: -3 }, 400, "max_tokens"],
    ["/completions", { prompt: "a", max_tokens: 100000 }, 400, "max_tokens"],
    ["/completions", { prompt: 5 }, 400, "prompt"],
    ["/completions", { prompt: [[1, 2, 99999]] }, 400, "prompt"],
    ["/completions", { prompt: "a", stop: [1] }, 400, "stop"],
    ["/completions", { prompt: "a", top_p: 0 }, 400, "top_p"],
    ["/completions", { prompt: "a", logprobs: 3 }, 400, "logprobs"],
    ["/completions", { prompt: "a", model: "gpt-4" }, 404, "model"],
    ["/chat/completions", { messages: [] }, 400, "messages"],
    ["/chat/completions", { messages: [{ role: "user" }] }, 400, "messages[0]"],
    [
      "/chat/completions",
      {
        messages: [
          { role: "system", content: "Be brief." },
          {
            role: "user",
            content: [
              { type: "text", text: "What is this?" },
              { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
            ],
          },
        ],
      },
      400,
      "messages[1].content[1]",
    ],
  ];
  for (const [path, body, status, param] of cases) {
    const r = await post(path, JSON.stringify(body));
    assert.equal(r.status, status, JSON.stringify(body));
    assert.equal(r.body.error.param, param, JSON.stringify(body));
    assert.ok(r.body.error.message.length > 0);
    if (param === "messages[1].content[1]") assert.match(r.body.error.message, /takes no images/);
  }
  const broken = await post("/completions", "{not json");
  assert.equal(broken.status, 400);
  assert.match(broken.body.error.message, /not valid JSON/);
  const missing = await fetch(`${server.url}/nothing`);
  assert.equal(missing.status, 404);
  // Through the official client: an APIError with the status and the server's message.
  await assert.rejects(
    client.completions.create({ model: "toy", prompt: "a", temperature: 5 }),
    (e: unknown) => e instanceof OpenAI.APIError && e.status === 400 && /temperature/.test(e.message),
  );
  const ok = await client.completions.create({ model: "toy", prompt: "still here", max_tokens: 3, temperature: 0 });
  assert.equal(ok.choices.length, 1);
});

test("serve CLI: a remote host needs --allow-remote; serves on a free port, stops on SIGTERM", async () => {
  const cli = join(packageRoot(), "dist", "src", "cli", "main.js");
  const refused = spawnSync(process.execPath, [cli, "serve", "--model", MODEL, "--host", "0.0.0.0"], {
    encoding: "utf8",
  });
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /--allow-remote/);
  const served = await startServeProcess(["--model", MODEL, "--name", "mine"]);
  try {
    assert.match(served.url, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const c = new OpenAI({ baseURL: served.url, apiKey: "unused", maxRetries: 0 });
    const r = await c.completions.create({ model: "mine", prompt: "say apple", max_tokens: 12, temperature: 0 });
    assert.equal(r.choices[0].text, local([tokenizer.encode("say apple")], { maxNewTokens: 12 })[0].text);
  } finally {
    await served.stop();
  }
  assert.equal(served.child.exitCode, 0, served.log.join(""));
});
