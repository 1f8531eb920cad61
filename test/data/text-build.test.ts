// The text pipeline of `omni-dpo data build` (src/data/text-build.ts) on a tiny random policy:
//   - per-row sampling: a row's draws follow its distribution exactly (inverse CDF on an even
//     grid of uniforms gives each token its share; top-p's dropped tokens never come), and a
//     row's response does not depend on the rows beside it;
//   - binarisation as the reference: first argmax / argmin, all-tied dropped, identical
//     responses dropped before scoring, the margin filter, z-normalised margins;
//   - the command line with a scorer module: rows as the reference stores them (messages for
//     chat prompts), all K responses and scores, a summary beside the output;
//   - SIGKILL mid-build, then the same command: the output equals an uninterrupted build's;
//   - another build's journal is refused; a torn journal line is dropped and its prompt redone;
//   - bad input names file and line (empty prompts, chat prompts without a chat template,
//     prompts longer than the context).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { torch } from "../../src/index.js";
import { loadModel } from "../../src/models/auto.js";
import { generate, pickTokens } from "../../src/models/generate.js";
import { Tokenizer } from "../../src/text/index.js";
import { readPreferenceFile, readPromptRows, type PromptRow } from "../../src/data/readers.js";
import { formatRecord } from "../../src/data/tokenize.js";
import { histogram } from "../../src/data/inspect.js";
import type { DataError } from "../../src/data/records.js";
import {
  bestAndWorst,
  buildTextPairs,
  moduleScorer,
  normalizeMargins,
  preparePrompts,
  rowSeed,
  sampleSeeds,
  type TextPair,
} from "../../src/data/text-build.js";
import { packageRoot } from "../../src/util/package-root.js";
import { tempDir, writeJsonl, writeToyModel } from "../helpers/toy.js";

torch.setNumThreads(1);

const CLI = join(packageRoot(), "dist", "src", "cli", "main.js");
const root = tempDir("omni-dpo-textdata-");
const CHAT_POLICY = writeToyModel(join(root, "policy-chat"), { chatTemplate: "chatml", seed: 3 });
const PLAIN_POLICY = writeToyModel(join(root, "policy-plain"), { seed: 4 });
// A scorer module: a deterministic function of the response alone, with many distinct values.
const SCORER = join(root, "scorer.mjs");
writeFileSync(
  SCORER,
  `export function score(prompt, response) {
  let h = 0; for (const c of response) h = (h * 31 + c.codePointAt(0)) % 1000;
  return h / 100;
}\n`,
);

function cli(args: string[], timeout = 60_000) {
  return spawnSync(process.execPath, [CLI, "data", "build", ...args], {
    encoding: "utf8",
    timeout,
    env: { ...process.env, OMP_NUM_THREADS: "1" },
  });
}
const readJsonl = (file: string) =>
  readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as TextPair);

test("a per-row uniform picks each token with its probability (inverse CDF), top-p's dropped tokens never", () => {
  const logits = torch.tensor([[2.0, 0.5, -1.0, 1.0, 0.0]]);
  const probs = Array.from(logits.softmax(-1).data() as Float32Array);
  const n = 500;
  const counts = (topP: number) => {
    const c = new Array(5).fill(0);
    for (let i = 0; i < n; i++) c[pickTokens(logits, { temperature: 1, topP }, [(i + 0.5) / n])[0]]++;
    return c;
  };
  // An even grid of uniforms gives token t the share probs[t], up to one grid step.
  counts(1).forEach((c, t) => assert.ok(Math.abs(c - probs[t] * n) <= 1, `token ${t}: ${c} vs ${probs[t] * n}`));
  // top-p 0.8 keeps tokens 0 and 3 (0.51 + 0.19 < 0.8, so the next one, 1 with 0.12, stays too); 2 and 4 go.
  const kept = [0, 3, 1];
  const mass = kept.reduce((s, t) => s + probs[t], 0);
  const c = counts(0.8);
  assert.equal(c[2] + c[4], 0);
  for (const t of kept) assert.ok(Math.abs(c[t] - (probs[t] / mass) * n) <= 1, `top-p token ${t}: ${c[t]}`);
  logits.dispose();
});

test("with row seeds, a prompt's sample is the same alone, in a batch, and in another order; finished rows leave the batch", () => {
  const model = loadModel(PLAIN_POLICY);
  const tok = Tokenizer.fromPretrainedSync(PLAIN_POLICY);
  const prompts = ["say apple:", "a much longer prompt about rivers and stones", "x"].map((p) => tok.encode(p));
  const seeds = [11, 22, 33];
  const opts = { maxNewTokens: [12, 5, 9], temperature: 1, eosTokenIds: [tok.eosTokenId!] };
  const batch = generate(model, prompts, { ...opts, rowSeeds: seeds });
  const reversed = generate(model, [...prompts].reverse(), {
    ...opts,
    maxNewTokens: [...opts.maxNewTokens].reverse(),
    rowSeeds: [...seeds].reverse(),
  });
  prompts.forEach((p, i) => {
    const alone = generate(model, [p], { ...opts, maxNewTokens: opts.maxNewTokens[i], rowSeeds: [seeds[i]] });
    assert.deepEqual(batch.tokens[i], alone.tokens[0], `prompt ${i} alone`);
    assert.deepEqual(reversed.tokens[2 - i], alone.tokens[0], `prompt ${i} reversed`);
    // Per-prompt limits hold (or EOS came first).
    assert.ok(batch.tokens[i].length <= opts.maxNewTokens[i]);
    if (batch.finishReasons[i] === "length") assert.equal(batch.tokens[i].length, opts.maxNewTokens[i]);
  });
  // The cache changes nothing with rows leaving the batch.
  assert.deepEqual(generate(model, prompts, { ...opts, rowSeeds: seeds, useCache: false }).tokens, batch.tokens);
  model.dispose();
});

test("sample seeds: the reference's five, then 1000, 1001...; a response's seed mixes in its prompt", () => {
  assert.deepEqual(sampleSeeds(5), [13, 21, 42, 79, 100]);
  assert.deepEqual(sampleSeeds(7), [13, 21, 42, 79, 100, 1000, 1001]);
  assert.deepEqual(sampleSeeds(2, [5, 6, 7]), [5, 6]);
  assert.notEqual(rowSeed(13, "a"), rowSeed(13, "b"));
  assert.notEqual(rowSeed(13, "a"), rowSeed(21, "a"));
  assert.equal(rowSeed(13, "a"), rowSeed(13, "a"));
});

test("best and worst as numpy's argmax / argmin (first of equals); all tied is no pair", () => {
  assert.deepEqual(bestAndWorst([1, 3, 3, 0, 0]), { chosen: 1, rejected: 3 });
  assert.deepEqual(bestAndWorst([-2, 5, -2]), { chosen: 1, rejected: 0 });
  assert.equal(bestAndWorst([0.5, 0.5, 0.5]), null);
});

test("z-normalised margins as the reference's normalize_score_margin (population std + 1e-6)", () => {
  const pairs = [
    [3, 1],
    [5, 0],
    [2, 1.5],
  ].map(([c, r]) => ({ score_chosen: c, score_rejected: r }) as TextPair);
  normalizeMargins(pairs);
  const m = [2, 5, 0.5];
  const mean = (2 + 5 + 0.5) / 3;
  const std = Math.sqrt(m.reduce((a, x) => a + (x - mean) ** 2, 0) / 3) + 1e-6;
  pairs.forEach((p, i) => {
    assert.equal(p.score_margin, m[i]);
    assert.ok(Math.abs(p.score_margin_normalized! - (m[i] - mean) / std) < 1e-12);
  });
});

test("data build (text, scorer module): chat rows as the reference stores them, all K scores, the summary beside the output", async () => {
  const prompts = writeJsonl(join(root, "chat-prompts.jsonl"), [
    { prompt: "say apple" },
    {
      prompt: [
        { role: "system", content: "be brief" },
        { role: "user", content: "say river" },
      ],
    },
    { messages: [{ role: "user", content: "say stone" }] },
    { prompt: "say cloud" },
  ]);
  const out = join(root, "chat-pairs.jsonl");
  const r = cli([
    "--model",
    CHAT_POLICY,
    "--prompts",
    prompts,
    "--scorer",
    SCORER,
    "--task",
    "text",
    "--out",
    out,
    "--max-new-tokens",
    "10",
    "--batch-size",
    "3",
    "--json",
  ]);
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as {
    prompts: number;
    pairs: number;
    responses: number;
    dropped: Record<string, number>;
    scores: { histogram: unknown[] };
  };
  assert.equal(summary.prompts, 4);
  assert.equal(summary.responses, 20);
  assert.equal(
    summary.pairs + summary.dropped.identical_responses + summary.dropped.tied_scores + summary.dropped.below_margin,
    4,
  );
  assert.ok(summary.pairs >= 1, r.stdout);
  assert.deepEqual(JSON.parse(readFileSync(`${out}.summary.json`, "utf8")).pairs, summary.pairs);
  assert.ok(!existsSync(`${out}.progress.jsonl`), "the journal is removed once the output is written");
  const rows = readJsonl(out);
  const scorer = (await import(SCORER)) as { score: (p: unknown, r: string) => number };
  for (const row of rows) {
    assert.equal(row.all_generated_responses.length, 5);
    assert.deepEqual(
      row.all_rm_scores,
      row.all_generated_responses.map((x) => scorer.score(row.prompt, x)),
    );
    assert.equal(row.score_chosen, Math.max(...row.all_rm_scores));
    assert.equal(row.score_rejected, Math.min(...row.all_rm_scores));
    // Messages: the prompt's conversation, then the assistant's response.
    const convo = typeof row.prompt === "string" ? [{ role: "user", content: row.prompt }] : row.prompt;
    const chosen = row.chosen as { role: string; content: string }[];
    assert.deepEqual(chosen.slice(0, -1), convo);
    assert.deepEqual(chosen.at(-1), {
      role: "assistant",
      content: row.all_generated_responses[row.all_rm_scores.indexOf(row.score_chosen)],
    });
  }
  // The trainer's reader takes the file as it is.
  assert.equal((await readPreferenceFile(out)).length, rows.length);
});

test("data build: greedy decoding makes every prompt's responses identical, and they are dropped before scoring", () => {
  // Plain text, a blank line between prompts (skipped).
  const prompts = join(root, "plain-prompts.txt");
  writeFileSync(prompts, ["say one:", "", "say two:", "say three:"].join("\n"));
  const out = join(root, "greedy.jsonl");
  // A scorer that throws: never called, since no prompt has two different responses.
  const never = join(root, "never.mjs");
  writeFileSync(never, "export function score() { throw new Error('scored an identical prompt'); }\n");
  const r = cli([
    "--model",
    PLAIN_POLICY,
    "--prompts",
    prompts,
    "--scorer",
    never,
    "--task",
    "text",
    "--out",
    out,
    "--temperature",
    "0",
    "--max-new-tokens",
    "6",
    "--json",
  ]);
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout) as { pairs: number; dropped: { identical_responses: number } };
  assert.equal(s.pairs, 0);
  assert.equal(s.dropped.identical_responses, 3);
  assert.equal(readFileSync(out, "utf8"), "");
});

test("SIGKILL mid-build, then the same command: it resumes without redoing finished prompts, and the output equals an uninterrupted build's", async () => {
  const prompts = join(root, "many.txt");
  writeFileSync(
    prompts,
    Array.from({ length: 16 }, (_, i) => `prompt number ${i} ${"x".repeat(i % 7)}`).join("\n") + "\n",
  );
  const args = (out: string) => [
    "--model",
    PLAIN_POLICY,
    "--prompts",
    prompts,
    "--scorer",
    SCORER,
    "--task",
    "text",
    "--out",
    out,
    "--max-new-tokens",
    "16",
    "--batch-size",
    "1",
    "--min-margin",
    "0.5",
    "--normalize-margin",
    "--json",
  ];
  const whole = join(root, "whole.jsonl");
  assert.equal(cli(args(whole), 120_000).status, 0);

  const cut = join(root, "cut.jsonl");
  const journal = `${cut}.progress.jsonl`;
  const child = spawn(process.execPath, [CLI, "data", "build", ...args(cut)], {
    stdio: "ignore",
    env: { ...process.env, OMP_NUM_THREADS: "1" },
  });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  const finishedLines = () =>
    existsSync(journal) ? readFileSync(journal, "utf8").split("\n").filter(Boolean).length - 1 : 0;
  const started = Date.now();
  while (finishedLines() < 2 && Date.now() - started < 60_000) await sleep(2);
  child.kill("SIGKILL");
  await exited;
  const before = finishedLines();
  assert.ok(before >= 2 && before < 16, `killed after ${before} of 16 prompts`);
  assert.ok(!existsSync(cut), "no output before the build finishes");

  const resumed = cli(args(cut), 120_000);
  assert.equal(resumed.status, 0, resumed.stderr);
  const s = JSON.parse(resumed.stdout) as { resumed: number; prompts: number };
  assert.equal(s.resumed, before);
  assert.equal(s.prompts, 16);
  assert.equal(readFileSync(cut, "utf8"), readFileSync(whole, "utf8"));
  assert.ok(
    readJsonl(cut).every(
      (p) => p.score_chosen - p.score_rejected >= 0.5 && typeof p.score_margin_normalized === "number",
    ),
  );
});

test("another build's journal (other settings) is refused, naming it; a journal's torn last line is dropped", async () => {
  const policy = loadModel(PLAIN_POLICY);
  const tok = Tokenizer.fromPretrainedSync(PLAIN_POLICY);
  const prepared = preparePrompts(
    [
      { prompt: "say a:", at: "p:1" },
      { prompt: "say b:", at: "p:2" },
    ],
    policy,
    tok,
    "auto",
    PLAIN_POLICY,
  );
  const journal = join(root, "other.progress.jsonl");
  const scorer = moduleScorer((_p, r) => r.length, "length");
  const build = () => buildTextPairs(policy, tok, prepared, scorer, { journal, maxNewTokens: 4, samples: 2 });
  writeFileSync(journal, JSON.stringify({ journal: "omni-dpo data build", identity: "another build" }) + "\n");
  await assert.rejects(build, (e: Error) => e.message.startsWith(`${journal}: this journal belongs to another build`));
  rmSync(journal);
  const first = await build();
  // A kill in the middle of an append leaves half a line: it is cut off, and that prompt redone.
  const text = readFileSync(`${journal}`, "utf8");
  assert.equal(text.split("\n").filter(Boolean).length, 3);
  const lines = text.split("\n").filter(Boolean);
  writeFileSync(journal, `${lines[0]}\n${lines[1]}\n${lines[2].slice(0, 10)}`);
  const again = await build();
  assert.equal(again.summary.resumed, 1);
  assert.deepEqual(again.pairs, first.pairs);
  // Killed before the first prompt finished: only the header is there, and the build starts clean.
  writeFileSync(journal, `${lines[0]}\n`);
  const fresh = await build();
  assert.equal(fresh.summary.resumed, 0);
  assert.deepEqual(fresh.pairs, first.pairs);
  assert.equal(readFileSync(journal, "utf8").split("\n").filter(Boolean).length, 3);
  policy.dispose();
});

test("a foreign line in a build's journal names file, line and field; a foreign header names the file", async () => {
  const policy = loadModel(PLAIN_POLICY);
  const tok = Tokenizer.fromPretrainedSync(PLAIN_POLICY);
  const rows = [
    { prompt: "say a:", at: "p:1" },
    { prompt: "say b:", at: "p:2" },
  ];
  const prepared = preparePrompts(rows, policy, tok, "auto", PLAIN_POLICY);
  const journal = join(root, "foreign.progress.jsonl");
  const scorer = moduleScorer((_p, r) => r.length, "length");
  const build = () => buildTextPairs(policy, tok, prepared, scorer, { journal, maxNewTokens: 4, samples: 2 });
  await build();
  const [header, entry] = readFileSync(journal, "utf8").split("\n");
  const cases: [string, RegExp][] = [
    ['{"hello": 1}', /:3: field 'i' must be a prompt index below 2, got undefined/],
    ["42", /:3: expected a JSON object/],
    [JSON.stringify({ ...JSON.parse(entry), i: 7 }), /:3: field 'i' must be a prompt index below 2, got 7/],
    [JSON.stringify({ ...JSON.parse(entry), scores: [1, "x"] }), /:3: field 'scores' must be a list of 2 finite/],
    [JSON.stringify({ ...JSON.parse(entry), responses: ["one"] }), /:3: field 'responses' must be a list of 2 strings/],
  ];
  for (const [line, message] of cases) {
    writeFileSync(journal, `${header}\n${entry}\n${line}\n`);
    await assert.rejects(build, (e: Error) => e.message.startsWith(`${journal}:3: `) && message.test(e.message), line);
  }
  writeFileSync(journal, "not a journal\n");
  await assert.rejects(
    build,
    (e: Error) =>
      e.message.startsWith(`${journal}: this journal belongs to another build`) &&
      /not a data build journal/.test(e.message),
  );
  policy.dispose();
});

test("bad prompts are named by file, line and field before any sampling", () => {
  const file = join(root, "bad.jsonl");
  const problems = (lines: string[]) => {
    writeFileSync(file, lines.join("\n") + "\n");
    try {
      readPromptRows(file);
    } catch (e) {
      return (e as DataError).problems;
    }
    return [];
  };
  assert.deepEqual(
    problems([
      '{"prompt": "ok"}',
      '{"prompt": "  "}',
      '{"messages": []}',
      '{"prompt": [{"role": "user", "content": ""}]}',
      '{"text": "x"}',
      "{bad json",
      '{"prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}',
      '{"prompt": 3}',
    ]).map((p) => p.replace(/ \(.*$/, "")),
    [
      `${file}:2: field 'prompt': empty prompt`,
      `${file}:3: field 'messages': empty message list`,
      `${file}:4: field 'prompt[0].content': empty message`,
      `${file}:5: field 'prompt': missing`,
      `${file}:6: not valid JSON`,
      `${file}:7: field 'prompt[1]': a prompt ends with the user's turn, not the assistant's`,
      `${file}:8: field 'prompt': expected a string or a list of messages`,
    ],
  );
  writeFileSync(file, "\n\n");
  assert.throws(() => readPromptRows(file), new RegExp(`${file}: no prompts`));

  const policy = loadModel(PLAIN_POLICY);
  const tok = Tokenizer.fromPretrainedSync(PLAIN_POLICY);
  const prepare = (rows: PromptRow[], format: "auto" | "chat" | "text" = "auto") => {
    try {
      preparePrompts(rows, policy, tok, format, PLAIN_POLICY);
    } catch (e) {
      return (e as DataError).problems;
    }
    return [];
  };
  assert.deepEqual(
    prepare([
      { prompt: "fine", at: "p.jsonl:1" },
      { prompt: [{ role: "user", content: "hi" }], at: "p.jsonl:2" },
    ]),
    [
      `p.jsonl:2: a chat prompt needs the policy's chat template, and ${PLAIN_POLICY} has none (chat_template in tokenizer_config.json or chat_template.jinja)`,
    ],
  );
  assert.equal(prepare([{ prompt: "fine", at: "p.jsonl:1" }], "chat").length, 1);
  const long = prepare([
    { prompt: "fine", at: "p.txt:1" },
    { prompt: "word ".repeat(200), at: "p.txt:2" },
  ]);
  assert.equal(long.length, 1);
  assert.match(
    long[0],
    new RegExp(
      `^p.txt:2: field 'prompt': \\d+ tokens, but the policy's context \\(${PLAIN_POLICY}/config.json\\) holds 128 positions: no room for a response$`,
    ),
  );
  policy.dispose();

  // On the command line: the same messages, exit 1, nothing written.
  writeFileSync(file, '{"prompt": "ok"}\n{"prompt": ""}\n');
  const r = cli([
    "--model",
    PLAIN_POLICY,
    "--prompts",
    file,
    "--scorer",
    SCORER,
    "--task",
    "text",
    "--out",
    join(root, "bad-out.jsonl"),
  ]);
  assert.equal(r.status, 1);
  assert.ok(r.stderr.includes(`${file}:2: field 'prompt': empty prompt`), r.stderr);
  assert.ok(!existsSync(join(root, "bad-out.jsonl")));
});

test("a message-list prompt with answers that repeat its conversation formats as the answer turn alone", () => {
  const tok = Tokenizer.fromPretrainedSync(CHAT_POLICY);
  const prompt = [
    { role: "system", content: "be brief" },
    { role: "user", content: "say river" },
  ];
  const source = { file: "pairs.jsonl", index: 1, unit: "line" as const };
  const record = (chosen: object[], rejected: object[]) =>
    ({ prompt, chosen, rejected, source }) as Parameters<typeof formatRecord>[0];
  const written = record(
    [...prompt, { role: "assistant", content: "river" }],
    [...prompt, { role: "assistant", content: "no" }],
  );
  const turns = record([{ role: "assistant", content: "river" }], [{ role: "assistant", content: "no" }]);
  // TRL's rendering (the default): the answer is what the whole conversation adds to the prompt with its generation prompt.
  const trl = formatRecord(written, tok);
  assert.deepEqual(trl, formatRecord(turns, tok));
  assert.equal(trl.chosen, "river<|im_end|>\n");
  assert.ok(trl.prompt.includes("say river") && trl.prompt.endsWith("<|im_start|>assistant\n"), trl.prompt);
  // The reference's: the answer turn rendered alone (this chatml template writes its default system line in front of any render).
  const reference = formatRecord(written, tok, undefined, "reference");
  assert.deepEqual(reference, formatRecord(turns, tok, undefined, "reference"));
  assert.ok(
    reference.chosen.endsWith("<|im_start|>assistant\nriver<|im_end|>\n") && !reference.chosen.includes("say river"),
    reference.chosen,
  );
  assert.ok(reference.prompt.includes("say river") && !reference.prompt.includes("<|im_start|>assistant\nriver"));
});

test("score histograms take a full-size build's scores (300,000: UltraFeedback's 60k prompts x 5)", () => {
  const buckets = histogram(
    Array.from({ length: 300_000 }, (_, i) => (i % 1000) / 100),
    10,
  );
  assert.equal(
    buckets.reduce((s, b) => s + b.count, 0),
    300_000,
  );
  assert.equal(buckets[0].from, 0);
});
