// The endpoint engine (--endpoint) against our own `omni-dpo serve`, started here on a free
// loopback port:
//   - `generate --endpoint` gives the local greedy generation token for token (plain and chat);
//   - `data build --endpoint` with a reward model writes the same pairs as the local build, and
//     resumes after kill -9 from its journal;
//   - the math task's build asks for its K samples with n in one request per prompt;
//   - a build scored by an LLM judge (the tiny model itself, through serve) counts its
//     unparseable verdicts, asks again, and leaves those responses unscored without failing;
//   - 503 and 429 answers are retried; the API key comes from the named environment variable,
//     reaches the server, and is never printed; a dead endpoint is an error naming it and the status.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { torch } from "../../src/index.js";
import { packageRoot } from "../../src/util/package-root.js";
import { runCli, startProxy, startServeProcess, writeSharpChatModel, type ServeProcess } from "../helpers/serving.js";
import { writeToyRewardModel } from "../helpers/reward-model.js";
import { tempDir, writeJsonl } from "../helpers/toy.js";

torch.setNumThreads(1);
const root = tempDir("omni-dpo-endpoint-");
const MODEL = writeSharpChatModel(join(root, "policy"));
const RM = writeToyRewardModel(join(root, "rm"), { chatTemplate: "chatml" });
const WORDS = ["apple", "river", "stone", "cloud", "green", "tiger"];
const PROMPTS = writeJsonl(join(root, "prompts.jsonl"), [
  ...WORDS.map((w) => ({ prompt: `say ${w}` })),
  {
    prompt: [
      { role: "system", content: "one word" },
      { role: "user", content: "say north" },
    ],
  },
]);
let serve: ServeProcess;

before(async () => {
  serve = await startServeProcess(["--model", MODEL, "--name", "toy"]);
});
after(async () => {
  await serve?.stop();
  rmSync(root, { recursive: true, force: true });
});

const jsonLines = (text: string) =>
  text
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test("generate --endpoint: greedy answers equal local greedy generation token for token (plain and chat)", async () => {
  for (const chat of [[], ["--chat"]]) {
    const prompts = WORDS.flatMap((w) => ["--prompt", `say ${w}`]);
    const args = ["generate", ...prompts, "--max-new-tokens", "12", "--json", ...chat];
    const local = await runCli([...args, "--model", MODEL]);
    const remote = await runCli([...args, "--endpoint", serve.url, "--endpoint-model", "toy"]);
    assert.equal(local.status, 0, local.stderr);
    assert.equal(remote.status, 0, remote.stderr);
    const [a, b] = [jsonLines(local.stdout), jsonLines(remote.stdout)];
    assert.equal(b.length, WORDS.length);
    const answers = (xs: Record<string, unknown>[]) => xs.map((x) => [x.completion, x.tokens]);
    assert.deepEqual(answers(b), answers(a), `chat: ${chat.length > 0}`);
    assert.ok(a.some((x) => (x.tokens as number) > 3));
  }
});

test("data build --endpoint with a reward model: the local build's pairs; resumes after kill -9", async () => {
  const common = [
    "data",
    "build",
    "--model",
    MODEL,
    "--prompts",
    PROMPTS,
    "--reward-model",
    RM,
    "--samples",
    "3",
    "--max-new-tokens",
    "10",
    "--batch-size",
    "1",
    "--json",
  ];
  const localOut = join(root, "local.jsonl");
  const local = await runCli([...common, "--out", localOut]);
  assert.equal(local.status, 0, local.stderr);
  const remoteOut = join(root, "remote.jsonl");
  const remote = await runCli([...common, "--out", remoteOut, "--endpoint", serve.url, "--endpoint-model", "toy"]);
  assert.equal(remote.status, 0, remote.stderr);
  const pairs = readFileSync(localOut, "utf8");
  assert.ok(jsonLines(pairs).length >= 3, "enough pairs to compare");
  assert.equal(readFileSync(remoteOut, "utf8"), pairs);

  // Killed mid-build (a slow network: one request at a time, 60 ms each), then run again.
  const proxy = await startProxy(serve.url, { delayMs: 60 });
  try {
    const out = join(root, "resumed.jsonl");
    const args = [
      ...common,
      "--out",
      out,
      "--endpoint",
      proxy.url,
      "--endpoint-model",
      "toy",
      "--endpoint-concurrency",
      "1",
    ];
    const cli = join(packageRoot(), "dist", "src", "cli", "main.js");
    const child = spawn(process.execPath, [cli, ...args], { stdio: "ignore" });
    const journal = `${out}.progress.jsonl`;
    await new Promise<void>((resolve, reject) => {
      const poll = setInterval(() => {
        if (existsSync(journal) && readFileSync(journal, "utf8").split("\n").filter(Boolean).length >= 3) {
          clearInterval(poll);
          child.kill("SIGKILL");
          resolve();
        }
      }, 10);
      child.once("exit", (code) => {
        clearInterval(poll);
        if (code !== null) reject(new Error(`the build finished (${code}) before it was killed`));
      });
    });
    await new Promise((r) => child.once("close", r));
    const again = await runCli(args);
    assert.equal(again.status, 0, again.stderr);
    const summary = JSON.parse(again.stdout) as { resumed: number };
    assert.ok(summary.resumed >= 2, `resumed ${summary.resumed}`);
    assert.equal(readFileSync(out, "utf8"), pairs);
  } finally {
    await proxy.close();
  }
});

test("--endpoint: 503/429 retried; the key from its variable, never printed; failures name the endpoint", async () => {
  const key = "sk-test-9f8e7d6c";
  const proxy = await startProxy(serve.url, { failures: [503, 429] });
  try {
    const args = [
      "generate",
      "--prompt",
      "say apple",
      "--max-new-tokens",
      "5",
      "--json",
      "--endpoint",
      proxy.url,
      "--endpoint-model",
      "toy",
      "--endpoint-key-env",
      "MY_KEY",
    ];
    const r = await runCli(args, { MY_KEY: key });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      proxy.requests.map((q) => q.status),
      [503, 429, 200],
    );
    assert.ok(proxy.requests.every((q) => q.authorization === `Bearer ${key}`));
    assert.ok(!r.stdout.includes(key) && !r.stderr.includes(key));
  } finally {
    await proxy.close();
  }
  const failing = await startProxy(serve.url, { failures: [500, 500, 500] });
  try {
    const r = await runCli(
      [
        "generate",
        "--prompt",
        "x",
        "--endpoint",
        failing.url,
        "--endpoint-model",
        "toy",
        "--endpoint-retries",
        "2",
        "--endpoint-key-env",
        "MY_KEY",
      ],
      { MY_KEY: key },
    );
    assert.equal(r.status, 1);
    assert.ok(r.stderr.includes(failing.url), r.stderr);
    assert.match(r.stderr, /HTTP 500: .*after 2 retries/);
    assert.ok(!r.stderr.includes(key));
    assert.equal(failing.requests.length, 3);
  } finally {
    await failing.close();
  }
  const dead = await runCli([
    "generate",
    "--prompt",
    "x",
    "--endpoint",
    "http://127.0.0.1:9/v1",
    "--endpoint-model",
    "toy",
    "--endpoint-retries",
    "0",
  ]);
  assert.equal(dead.status, 1);
  assert.match(dead.stderr, /endpoint http:\/\/127\.0\.0\.1:9\/v1 model toy: no response/);
  const usage = await runCli(["generate", "--prompt", "x", "--endpoint", serve.url]);
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /--endpoint-model/);
});

test("data build --judge-endpoint: a tiny judge's unparseable verdicts retried, counted, left unscored", async () => {
  const out = join(root, "judged.jsonl");
  // A short rubric: the shipped one is longer than the tiny model's 128 positions.
  const rubric = join(root, "rubric.txt");
  writeFileSync(rubric, "Rate 1-10.\n{{prompt}}\n{{response}}\nRating: N");
  const proxy = await startProxy(serve.url);
  try {
    const r = await runCli([
      "data",
      "build",
      "--model",
      MODEL,
      "--prompts",
      PROMPTS,
      "--samples",
      "2",
      "--max-new-tokens",
      "6",
      "--endpoint",
      serve.url,
      "--endpoint-model",
      "toy",
      "--judge-endpoint",
      proxy.url,
      "--judge-model",
      "toy",
      "--judge-retries",
      "1",
      "--judge-max-tokens",
      "8",
      "--judge-template",
      rubric,
      "--out",
      out,
      "--json",
    ]);
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as {
      responses: number;
      unscored_responses: number;
      pairs: number;
      dropped: { identical_responses: number; unscored: number };
    };
    const scored = summary.responses - 2 * summary.dropped.identical_responses;
    assert.ok(scored > 0);
    // Random weights never write "Rating: N": every verdict fails, is asked once more, and its response is dropped.
    assert.equal(summary.unscored_responses, scored);
    assert.equal(summary.pairs, 0);
    assert.equal(summary.dropped.unscored, scored / 2);
    assert.equal(proxy.requests.filter((q) => q.path === "/chat/completions").length, 2 * scored);
    const counts =
      `judge: ${2 * scored} verdicts asked, ${2 * scored} unparseable \\(asked again\\), ` +
      `${scored} responses left unscored`;
    assert.match(r.stderr, new RegExp(counts));
  } finally {
    await proxy.close();
  }
});

test("data build --task math --endpoint: K samples per prompt asked for with n, one request per prompt", async () => {
  const prompts = join(root, "math-prompts.txt");
  writeFileSync(prompts, "Q:1+2=\nQ:3+4=\nQ:5+6=\n");
  const scorer = join(root, "length-scorer.mjs");
  writeFileSync(
    scorer,
    "export function score(prompt, response) { return { score: response.length % 10, correct: true }; }\n",
  );
  const proxy = await startProxy(serve.url);
  try {
    const r = await runCli([
      "data",
      "build",
      "--model",
      MODEL,
      "--prompts",
      prompts,
      "--scorer",
      scorer,
      "--samples",
      "3",
      "--max-new-tokens",
      "6",
      "--endpoint",
      proxy.url,
      "--endpoint-model",
      "toy",
      "--out",
      join(root, "math.jsonl"),
      "--json",
    ]);
    assert.equal(r.status, 0, r.stderr);
    const stats = JSON.parse(r.stdout) as { prompts: number; responses: number };
    assert.deepEqual([stats.prompts, stats.responses], [3, 9]);
    assert.deepEqual(
      proxy.requests.map((q) => [q.path, q.status]),
      new Array(3).fill(["/completions", 200]),
    );
  } finally {
    await proxy.close();
  }
});
