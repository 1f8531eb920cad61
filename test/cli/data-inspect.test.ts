// `omni-dpo data inspect` and its library (src/data/inspect.ts): counts, token lengths and
// truncation counts with a tiny tokenizer, the margin histogram, duplicate prompts, --json,
// and bad files failing with the same file:line:field errors as training.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Tokenizer } from "../../src/text/index.js";
import { readPreferenceFile } from "../../src/data/readers.js";
import { LABEL_PAD, tokenizeRecords } from "../../src/data/tokenize.js";
import { histogram, inspectFile, percentiles, type DataInspection } from "../../src/data/inspect.js";
import { tempDir, writeJsonl } from "../helpers/toy.js";
import { writeByteLevelTokenizer } from "../helpers/tokenizers.js";
import { solidImage, writePng, writeQwen2VLProcessor } from "../helpers/qwen2-vl.js";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const dir = tempDir("omni-dpo-inspect-");
after(() => rmSync(dir, { recursive: true, force: true }));
const tokDir = join(dir, "tok");
writeByteLevelTokenizer(tokDir, { chatTemplate: "chatml" });
const long = "The quick brown fox jumps over the lazy dog. ".repeat(4);
// Margins of the scored rows: 0.1, 0.3, 1.5, 2.5, 4.0, -0.4, 0, 2 (two rows unscored, two conversational).
const rows = [
  { prompt: "What is 12 plus 30?", chosen: " It is 42.", rejected: " It is 41.", score_chosen: 5.1, score_rejected: 5 },
  { prompt: "What is 12 plus 30?", chosen: " 42", rejected: " 43", score_chosen: 5.3, score_rejected: 5 },
  { prompt: "Hello world!", chosen: " Hello there.", rejected: " Go away.", score_chosen: 8, score_rejected: 6.5 },
  {
    prompt: long,
    chosen: " The fox runs.",
    rejected: " The dog sleeps, the fox runs, the world is large.",
    score_chosen: 9,
    score_rejected: 6.5,
  },
  { prompt: "What is 12 plus 30?", chosen: " Forty-two.", rejected: " No idea.", score_chosen: 9, score_rejected: 5 },
  { prompt: "Hello world!", chosen: " Hi.", rejected: " Hi!", score_chosen: 4.6, score_rejected: 5 },
  { prompt: "Is this answer correct?", chosen: " Yes.", rejected: " No." },
  {
    chosen: [
      { role: "user", content: "Hello world!" },
      { role: "assistant", content: "Hello!" },
    ],
    rejected: [
      { role: "user", content: "Hello world!" },
      { role: "assistant", content: "Bye." },
    ],
    score_chosen: 7,
    score_rejected: 7,
  },
  {
    prompt: [{ role: "user", content: "What is 7 times 6?" }],
    chosen: [{ role: "assistant", content: long }],
    rejected: [{ role: "assistant", content: "It is 42." }],
    score_chosen: 3,
    score_rejected: 1,
  },
  { prompt: "Yes?", chosen: long, rejected: " No." },
];
const file = writeJsonl(join(dir, "pairs.jsonl"), rows);

test("counts, margins, ambiguous share and duplicate prompts", async () => {
  const r = await inspectFile(file, { ambiguousMargin: 0.5 });
  assert.deepEqual(r.counts, { records: 10, withScores: 8, conversational: 2, plain: 8, identicalAnswers: 0 });
  assert.equal(r.tokens, null);
  assert.equal(r.truncation, null);
  const m = r.margins!;
  assert.equal(m.count, 8);
  assert.ok(Math.abs(m.min - -0.4) < 1e-9 && Math.abs(m.max - 4) < 1e-9);
  // |margin| < 0.5: 0.1, 0.3, -0.4, and the conversational tie 0.
  assert.equal(m.ambiguous, 4);
  assert.equal(m.ambiguousShare, 0.5);
  assert.equal(m.negative, 1);
  assert.equal(m.zero, 1);
  // Range 4.4 over ~10 buckets: width 0.5, edges at multiples of 0.5, max in the last bucket.
  assert.deepEqual(
    m.histogram.map((b) => [b.from, b.to]),
    [
      [-0.5, 0],
      [0, 0.5],
      [0.5, 1],
      [1, 1.5],
      [1.5, 2],
      [2, 2.5],
      [2.5, 3],
      [3, 3.5],
      [3.5, 4],
    ],
  );
  assert.deepEqual(
    m.histogram.map((b) => b.count),
    [1, 3, 0, 0, 1, 1, 1, 0, 1],
  );
  // "What is 12 plus 30?" three times, "Hello world!" twice as a plain prompt (the conversational
  // one renders as "user: Hello world!", another prompt).
  assert.equal(r.duplicates.prompts, 2);
  assert.equal(r.duplicates.rows, 5);
  assert.deepEqual(r.duplicates.examples[0], {
    prompt: "What is 12 plus 30?",
    count: 3,
    at: [`${file}:1`, `${file}:2`, `${file}:5`],
  });
  assert.deepEqual(r.duplicates.examples[1].at, [`${file}:3`, `${file}:6`]);
});

test("token lengths and truncation counts agree with the training tokenisation", async () => {
  const tokenizer = Tokenizer.fromPretrainedSync(tokDir);
  const options = { maxLength: 24, maxPromptLength: 8 };
  const r = await inspectFile(file, { tokenizer, ...options });
  const records = await readPreferenceFile(file);
  const full = tokenizeRecords(records, tokenizer, {
    maxLength: 1e9,
    maxPromptLength: 1e9 - 1,
    truncationMode: "keep_end",
  });
  const cut = tokenizeRecords(records, tokenizer, { ...options, truncationMode: "keep_end" });
  const promptLen = (labels: number[]) => labels.filter((x) => x === LABEL_PAD).length;
  const prompts = full.map((p) => promptLen(p.chosenLabels));
  const chosen = full.map((p) => p.chosenInputIds.length - promptLen(p.chosenLabels));
  const rejected = full.map((p) => p.rejectedInputIds.length - promptLen(p.rejectedLabels));
  assert.equal(r.tokens!.prompt.max, Math.max(...prompts));
  assert.equal(r.tokens!.chosen.max, Math.max(...chosen));
  assert.equal(r.tokens!.rejected.max, Math.max(...rejected));
  assert.equal(
    r.tokens!.promptPlusLonger.max,
    Math.max(...prompts.map((p, i) => p + Math.max(chosen[i], rejected[i]))),
  );
  assert.deepEqual(r.tokens!.prompt, percentiles(prompts));

  const t = r.truncation!;
  assert.equal(t.maxLength, 24);
  assert.equal(t.maxPromptLength, 8);
  assert.equal(t.truncated, cut.filter((p) => p.truncated).length);
  assert.ok(t.truncated >= 2, `the long prompt and the long answer rows are cut (got ${t.truncated})`);
  assert.ok(t.truncated < 10);
  const promptCut = cut.filter((p, i) => promptLen(p.chosenLabels) < prompts[i]).length;
  const answersCut = cut.filter(
    (p, i) =>
      p.chosenInputIds.length - promptLen(p.chosenLabels) < chosen[i] ||
      p.rejectedInputIds.length - promptLen(p.rejectedLabels) < rejected[i],
  ).length;
  assert.equal(t.promptCut, promptCut);
  assert.equal(t.answersCut, answersCut);
  assert.ok(answersCut >= 1);
  // The last row's prompt fits in max_prompt_length: truncation cuts only its answers.
  assert.ok(t.promptCut < t.truncated, `prompt cut ${t.promptCut} of ${t.truncated}`);

  // The defaults (512 / 128) cut nothing here.
  const d = await inspectFile(file, { tokenizer });
  assert.deepEqual([d.truncation!.maxLength, d.truncation!.maxPromptLength, d.truncation!.truncated], [512, 128, 0]);
});

test("percentiles interpolate linearly and histograms cover every value", () => {
  assert.deepEqual(percentiles([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), { p50: 5.5, p90: 9.1, p99: 9.91, max: 10, mean: 5.5 });
  assert.deepEqual(percentiles([]), { p50: 0, p90: 0, p99: 0, max: 0, mean: 0 });
  assert.deepEqual(histogram([2, 2, 2]), [{ from: 2, to: 2, count: 3 }]);
  const values = Array.from({ length: 200 }, (_, i) => Math.sin(i) * 3.7 + 0.2);
  const h = histogram(values, 8);
  assert.equal(
    h.reduce((n, b) => n + b.count, 0),
    values.length,
  );
  assert.ok(h.length >= 4 && h.length <= 10, `bucket count ${h.length}`);
  for (const v of values) {
    const i = h.findIndex((b, k) => v >= b.from && (v < b.to || (k === h.length - 1 && v <= b.to)));
    assert.ok(i >= 0, `value ${v} in no bucket`);
  }
  for (let i = 1; i < h.length; i++) assert.equal(h[i].from, h[i - 1].to);
});

test("CLI: text report with a tokenizer (truncation and histogram bars)", () => {
  const r = cli(
    "data",
    "inspect",
    file,
    "--tokenizer",
    tokDir,
    "--max-length",
    "24",
    "--max-prompt-length",
    "8",
    "--ambiguous-margin",
    "0.25",
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /10 records \(8 plain, 2 conversational\), 8 with scores/);
  assert.match(r.stdout, /prompt\+longer/);
  assert.match(r.stdout, /Truncation at max_length 24, max_prompt_length 8: \d+ of 10 rows/);
  assert.match(r.stdout, /\[-0\.5, 0\) +1 █+/);
  assert.match(r.stdout, /\[3\.5, 4\] +1 █+/);
  // |margin| < 0.25: 0.1 and the tie.
  assert.match(r.stdout, /near-ambiguous \(\|margin\| < 0\.25\): 2 \(25\.0%\)/);
  assert.match(r.stdout, /Duplicate prompts: 2 prompts repeated, in 5 rows/);
  assert.match(r.stdout, /3x "What is 12 plus 30\?"/);
});

test("CLI: --json prints one object of the library's shape", () => {
  const r = cli("data", "inspect", file, "--tokenizer", tokDir, "--json");
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines.length, 1);
  const j = JSON.parse(lines[0]) as DataInspection;
  assert.deepEqual(Object.keys(j).sort(), [
    "counts",
    "duplicates",
    "file",
    "images",
    "margins",
    "tokens",
    "truncation",
  ]);
  assert.deepEqual(Object.keys(j.tokens!).sort(), ["chosen", "prompt", "promptPlusLonger", "rejected"]);
  assert.deepEqual(Object.keys(j.tokens!.prompt).sort(), ["max", "mean", "p50", "p90", "p99"]);
  assert.deepEqual(Object.keys(j.truncation!).sort(), [
    "answersCut",
    "cutBeforeTokenising",
    "maxLength",
    "maxPromptLength",
    "promptCut",
    "truncated",
  ]);
  assert.equal(j.margins!.ambiguousThreshold, 0.5);
  assert.ok(
    Array.isArray(j.margins!.histogram) && j.margins!.histogram.every((b) => "from" in b && "to" in b && "count" in b),
  );
  assert.equal(j.counts.records, 10);

  // Without a tokenizer the token fields are null.
  const bare = JSON.parse(cli("data", "inspect", file, "--json").stdout) as DataInspection;
  assert.equal(bare.tokens, null);
  assert.equal(bare.truncation, null);
});

test("CLI: a bad file fails with file:line:field, as training does", () => {
  const bad = join(dir, "bad.jsonl");
  writeFileSync(
    bad,
    [
      JSON.stringify({ prompt: "a", chosen: "b", rejected: "c" }),
      "",
      JSON.stringify({ prompt: "a", chosen: "b" }),
      JSON.stringify({ prompt: "a", chosen: "b", rejected: "c", score_chosen: "high", score_rejected: 1 }),
    ].join("\n") + "\n",
  );
  const r = cli("data", "inspect", bad);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:3: field 'rejected': missing`));
  assert.match(r.stderr, /bad\.jsonl:4: field 'score_chosen': expected a number, got a string/);
  assert.equal(r.stdout, "");

  const usage = cli("data", "inspect");
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /expected one FILE/);
  assert.equal(cli("data", "inspect", file, "--max-length", "8", "--max-prompt-length", "8").code, 2);
  assert.equal(cli("data", "frobnicate", file).code, 2);
});

test("CLI: a tokenizer's chat template that loops without end fails within seconds, naming its file", () => {
  const loopDir = join(dir, "tok-loop");
  writeByteLevelTokenizer(loopDir, { chatTemplate: "{% for i in range(100000000) %}x{% endfor %}" });
  const chats = join(dir, "chats.jsonl");
  writeJsonl(chats, [
    {
      prompt: [{ role: "user", content: "Hi" }],
      chosen: [{ role: "assistant", content: "Hello" }],
      rejected: [{ role: "assistant", content: "Bye" }],
    },
  ]);
  const started = Date.now();
  const r = cli("data", "inspect", chats, "--tokenizer", loopDir);
  assert.equal(r.code, 1, r.stderr);
  assert.ok(
    r.stderr.includes(
      `chats.jsonl:1: cannot render the conversation with the chat template: chat template from ${join(
        loopDir,
        "tokenizer_config.json",
      )} stopped: it asked for range() of 100000000 items`,
    ),
    r.stderr,
  );
  assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
});

test("CLI: a data file that is a device (a link to /dev/zero or /dev/urandom) fails at once, naming it", () => {
  for (const [name, device] of [
    ["zero.jsonl", "/dev/zero"],
    ["random.json", "/dev/urandom"],
  ]) {
    const link = join(dir, name);
    symlinkSync(device, link);
    const started = Date.now();
    const r = cli("data", "inspect", link);
    assert.equal(r.code, 1, r.stderr);
    assert.ok(r.stderr.includes(`${link}: is a character device, not a data file`), r.stderr);
    assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
  }
});

test("data inspect --help prints inspect's help; data build --help build's", () => {
  const help = (sub: string) => spawnSync(process.execPath, [CLI, "data", sub, "--help"], { encoding: "utf8" }).stdout;
  const inspect = help("inspect");
  assert.match(inspect, /^Usage: omni-dpo data inspect FILE/);
  assert.ok(!inspect.includes("data build"), inspect);
  const build = help("build");
  assert.match(build, /^Usage: omni-dpo data build/);
  assert.ok(!build.includes("--ambiguous-margin"));
});

test("CLI: image records: images decoded and counted, image tokens with a Qwen2-VL --tokenizer, --images DIR", () => {
  const model = writeQwen2VLProcessor().dir;
  const images = join(dir, "pictures");
  mkdirSync(images);
  writePng(join(images, "red.png"), solidImage(300, 200, [200, 10, 10]));
  const data = join(dir, "image-pairs.jsonl");
  const row = { instruction: "<image>Colour?", chosen: "Red.", rejected: "Blue.", images: ["red.png"] };
  writeFileSync(data, [row, { ...row, chosen: "It is red." }].map((r) => JSON.stringify(r)).join("\n") + "\n");
  const r = cli("data", "inspect", data, "--tokenizer", model, "--images", images);
  assert.equal(r.code, 0, r.stderr);
  // 300x200 -> 308x196 (smart resize): 22 x 14 patches, 77 merged tokens.
  assert.match(r.stdout, /Images: 2 in 2 records \(1 distinct files\)/);
  assert.match(r.stdout, /image tokens: 154 in all; per image p50 77/);
  const missing = cli("data", "inspect", data);
  assert.equal(missing.code, 1);
  assert.match(
    missing.stderr,
    new RegExp(`image-pairs\\.jsonl:1: image ${join(dir, "red.png")}: cannot read the image`),
  );
});
