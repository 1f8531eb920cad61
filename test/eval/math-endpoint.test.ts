// `eval --task math --endpoint URL --endpoint-model NAME` against our own `omni-dpo serve`, started
// here on a free loopback port: greedy outputs and verdicts equal the local run's on the same tiny
// model (plain prompts with --model for the tokenizer, chat prompts without it), and an interrupted
// endpoint run resumes from its journal to the same records.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, startServeProcess, writeSharpChatModel, type ServeProcess } from "../helpers/serving.js";
import { tempDir, writeJsonl } from "../helpers/toy.js";

const root = tempDir("omni-dpo-math-endpoint-");
const MODEL = writeSharpChatModel(join(root, "policy"));
const BENCH = writeJsonl(join(root, "math500.jsonl"), [
  { problem: "say 1+1", answer: "2", level: 1 },
  { problem: "say apple", answer: "\\frac{1}{2}", level: 2 },
  { problem: "a longer question: what is 7 times 6?", answer: "42", level: 1 },
  { problem: "say river", answer: "3", level: 3 },
  { problem: "say north", answer: "x+1", level: 2 },
]);
let serve: ServeProcess;

before(async () => {
  serve = await startServeProcess(["--model", MODEL, "--name", "toy"]);
});
after(async () => {
  await serve?.stop();
  rmSync(root, { recursive: true, force: true });
});

const common = (out: string, template: string) => [
  "eval",
  "--task",
  "math",
  "--data",
  BENCH,
  "--max-new-tokens",
  "12",
  "--prompt-template",
  template,
  "--batch-size",
  "2",
  "--out",
  out,
  "--json",
];
const records = (file: string) =>
  readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .slice(1)
    .map((l) => JSON.parse(l))
    .sort((a, b) => a.idx - b.idx);
const verdicts = (file: string) =>
  records(file).map((r) => ({ idx: r.idx, outputs: r.outputs, extracted: r.extracted, correct: r.correct }));

const ENDPOINT = () => ["--endpoint", serve.url, "--endpoint-model", "toy"];

test("eval --task math --endpoint: greedy outputs and verdicts equal the local run's (plain, chat)", async () => {
  // plain prompts with --model read for the tokenizer; chat prompts without it (the server's template)
  for (const [template, tokenizer] of [
    ["Q: {input}\nA:", ["--model", MODEL]],
    ["chat", []],
  ]) {
    const tag = template === "chat" ? "chat" : "plain";
    const localOut = join(root, `local-${tag}.jsonl`);
    const local = await runCli([...common(localOut, template as string), "--model", MODEL, "--device", "cpu"]);
    assert.equal(local.status, 0, local.stderr);
    const remoteOut = join(root, `remote-${tag}.jsonl`);
    const remote = await runCli([...common(remoteOut, template as string), ...ENDPOINT(), ...tokenizer]);
    assert.equal(remote.status, 0, remote.stderr);
    assert.deepEqual(verdicts(remoteOut), verdicts(localOut), tag);
    const [a, b] = [JSON.parse(local.stdout), JSON.parse(remote.stdout)];
    assert.deepEqual([b.n, b.accuracy, b.groups], [a.n, a.accuracy, a.groups]);
    assert.ok(
      records(localOut).some((r) => r.outputs[0].length > 3),
      "the model says something",
    );
  }
});

test("an interrupted eval --endpoint run resumes from its journal to the same records", async () => {
  const out = join(root, "resumed.jsonl");
  const args = [...common(out, "Q: {input}\nA:"), ...ENDPOINT()];
  const first = await runCli(args);
  assert.equal(first.status, 0, first.stderr);
  const whole = records(out);
  const lines = readFileSync(out, "utf8").trim().split("\n");
  writeFileSync(out, lines.slice(0, 3).join("\n") + "\n");
  const again = await runCli(args);
  assert.equal(again.status, 0, again.stderr);
  assert.equal(JSON.parse(again.stdout).resumed, 2);
  assert.deepEqual(records(out), whole);
});

test("eval --task math: --endpoint-model without --endpoint, or no sampler at all, is a usage error", async () => {
  const stray = await runCli(["eval", "--task", "math", "--data", BENCH, "--model", MODEL, "--endpoint-model", "toy"]);
  assert.equal(stray.status, 2);
  assert.match(stray.stderr, /--endpoint-model needs --endpoint URL/);
  const none = await runCli(["eval", "--task", "math", "--data", BENCH, "--endpoint", serve.url]);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /--endpoint needs --endpoint-model NAME/);
});
