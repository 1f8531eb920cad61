// Records far longer than max_length: the text beyond what truncation keeps is cut before
// tokenising (boundPair), and that gives the same ids as tokenising the whole text and
// truncating as TRL's tokenize_row does (checked here against an independent truncation of the
// untruncated ids). A 50 MB field goes through reading, tokenisation and `omni-dpo data
// inspect` in a child process with a 1 GiB heap, so a regression that tokenises it whole fails
// as an exit status, not as a dead test runner.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Tokenizer } from "../../src/text/index.js";
import { formatInspection, inspectFile } from "../../src/data/inspect.js";
import {
  boundPair,
  CHARS_PER_TOKEN_BOUND,
  LABEL_PAD,
  tokenizePair,
  type FormattedPair,
  type TokenizeOptions,
  type TokenizedPair,
} from "../../src/data/tokenize.js";
import {
  tempTokenizerDir,
  writeByteLevelTokenizer,
  writeLlama2Tokenizer,
  writeLlama3Tokenizer,
} from "../helpers/tokenizers.js";
import { writeJsonl } from "../helpers/toy.js";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const SRC = new URL("../../src/", import.meta.url).href;
/** A token of 100 characters, far above CHARS_PER_TOKEN_BOUND: text made of it holds few tokens for its length. */
const LONG_TOKEN = `<|${"long".repeat(24)}|>`;

let root: string;
const tokenizers: Record<string, Tokenizer> = {};
before(() => {
  root = tempTokenizerDir("omni-dpo-long-");
  const load = (name: string, write: (dir: string) => unknown) => {
    const dir = join(root, name);
    write(dir);
    tokenizers[name] = Tokenizer.fromPretrainedSync(dir);
  };
  load("gpt2", (d) => writeByteLevelTokenizer(d, { extraSpecialTokens: [LONG_TOKEN] }));
  load("qwen", (d) => writeByteLevelTokenizer(d, { chatTemplate: "chatml" }));
  load("llama2", (d) => writeLlama2Tokenizer(d));
  load("llama3", (d) => writeLlama3Tokenizer(d));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** Varied text of about `chars` characters: words, digits, punctuation, accents, CJK and emoji (surrogate pairs), no two sentences alike. */
function text(chars: number, seed: number): string {
  const pieces = [
    "The quick brown fox",
    "jumps over the lazy dog.",
    "12 plus 30 is 42;",
    "Café",
    "🤖🤖",
    "中文字",
    "hello   world!",
    "\n",
    "x=7*6",
    "ünïcödé",
  ];
  let s = seed;
  let out = "";
  while (out.length < chars) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out += pieces[s % pieces.length] + (s % 3 === 0 ? "" : " ") + (s % 1000);
  }
  return out;
}

/** TRL's tokenize_row truncation applied to untruncated ids: the specification the cut must meet. */
function truncateLikeTrl(p: TokenizedPair, o: TokenizeOptions): TokenizedPair {
  const split = (ids: number[], labels: number[]) => {
    const n = labels.filter((l) => l === LABEL_PAD).length;
    return { prompt: ids.slice(0, n), answer: ids.slice(n) };
  };
  const sides = [split(p.chosenInputIds, p.chosenLabels), split(p.rejectedInputIds, p.rejectedLabels)];
  const longer = Math.max(...sides.map((s) => s.answer.length));
  let truncated = false;
  for (const s of sides) {
    if (s.prompt.length + longer > o.maxLength) {
      s.prompt =
        o.truncationMode === "keep_start" ? s.prompt.slice(0, o.maxPromptLength) : s.prompt.slice(-o.maxPromptLength);
      truncated = true;
    }
  }
  for (const s of sides) {
    if (s.prompt.length + longer > o.maxLength) {
      s.answer = s.answer.slice(0, o.maxLength - o.maxPromptLength);
      truncated = true;
    }
  }
  const [c, r] = sides.map((s) => ({
    ids: [...s.prompt, ...s.answer],
    labels: [...s.prompt.map(() => LABEL_PAD), ...s.answer],
  }));
  return {
    chosenInputIds: c.ids,
    chosenLabels: c.labels,
    rejectedInputIds: r.ids,
    rejectedLabels: r.labels,
    promptLength: sides[0].prompt.length,
    truncated,
  };
}

const UNBOUNDED: TokenizeOptions = { maxLength: Infinity, maxPromptLength: Infinity, truncationMode: "keep_end" };

/** The pair tokenised with the cut equals the whole text tokenised and truncated; the cut did happen. */
function assertCutIsExact(
  t: Tokenizer,
  pair: FormattedPair,
  options: TokenizeOptions,
  cutFields: (keyof FormattedPair)[],
) {
  const { pair: cut } = boundPair(pair, t, options.maxLength);
  for (const f of ["prompt", "chosen", "rejected"] as const) {
    if (cutFields.includes(f))
      assert.ok(cut[f].length < pair[f].length, `${f} should be cut (${pair[f].length} characters)`);
    else assert.equal(cut[f], pair[f], `${f} should be whole`);
  }
  const whole = truncateLikeTrl(tokenizePair(pair, t, UNBOUNDED), options);
  assert.deepEqual(tokenizePair(pair, t, options), whole);
}

describe("cutting long fields before tokenising keeps the ids truncation keeps", () => {
  const options = (truncationMode: TokenizeOptions["truncationMode"]): TokenizeOptions => ({
    maxLength: 40,
    maxPromptLength: 16,
    truncationMode,
  });
  // max_length 40: fields above 40 x 64 = 2560 characters are cut (prompts above twice that); these are about 3 times that.
  const long = 8_000;

  for (const name of ["gpt2", "qwen", "llama2", "llama3"]) {
    for (const mode of ["keep_end", "keep_start"] as const) {
      it(`${name}, ${mode}: a long prompt, a long chosen answer, a short rejected one`, () => {
        const t = tokenizers[name];
        assertCutIsExact(
          t,
          { prompt: text(long, 1) + " What is 6 times 7?", chosen: " It is 42. " + text(long, 2), rejected: " 41." },
          options(mode),
          ["prompt", "chosen"],
        );
      });
      it(`${name}, ${mode}: only the prompt long; both answers long`, () => {
        const t = tokenizers[name];
        assertCutIsExact(t, { prompt: text(long, 3), chosen: " Yes.", rejected: " No, it is not." }, options(mode), [
          "prompt",
        ]);
        assertCutIsExact(t, { prompt: "Count:", chosen: text(long, 4), rejected: text(long + 999, 5) }, options(mode), [
          "chosen",
          "rejected",
        ]);
      });
    }
  }

  it("a prompt or answer merging across the boundary keeps its merge", () => {
    // No space between prompt and answer: the tokenizer merges across them, and the cut keeps the prompt's real end.
    const t = tokenizers.gpt2;
    for (const mode of ["keep_end", "keep_start"] as const) {
      assertCutIsExact(
        t,
        { prompt: text(long, 6) + " The answ", chosen: "er is 42" + text(long, 7), rejected: "er is 41" },
        options(mode),
        ["prompt", "chosen"],
      );
    }
  });

  it("text whose tokens average more than 64 characters: the cut grows until enough tokens are kept", () => {
    const t = tokenizers.gpt2;
    // 100 characters a token: 2560 characters hold 25 tokens, fewer than the 36 answer tokens kept.
    const o: TokenizeOptions = { maxLength: 40, maxPromptLength: 4, truncationMode: "keep_end" };
    const pair = { prompt: "Say it:", chosen: ` ${LONG_TOKEN.repeat(400)}`, rejected: " no" };
    const { pair: cut } = boundPair(pair, t, o.maxLength);
    assert.ok(
      cut.chosen.length > 2 * o.maxLength * CHARS_PER_TOKEN_BOUND,
      `the cut should have doubled at least once (${cut.chosen.length} characters kept)`,
    );
    assertCutIsExact(t, pair, o, ["chosen"]);
    assert.equal(tokenizePair(pair, t, o).chosenInputIds.length, 40);
  });

  it("short fields and an unbounded max_length are never cut", () => {
    const t = tokenizers.llama3;
    const pair = { prompt: text(2000, 8), chosen: text(2000, 9), rejected: text(2000, 10) };
    assert.equal(boundPair(pair, t, 40).cut, false);
    const huge = { prompt: text(long, 11), chosen: text(long, 12), rejected: "x" };
    assert.equal(boundPair(huge, t, Infinity).cut, false);
    assert.equal(boundPair(huge, t, 40).cut, true);
  });

  it("data inspect counts the rows cut before tokenising and says their lengths are lower bounds", async () => {
    const file = writeJsonl(join(root, "long.jsonl"), [
      { prompt: "Short?", chosen: " Yes.", rejected: " No." },
      { prompt: "Long?", chosen: text(long, 13), rejected: " No." },
    ]);
    const r = await inspectFile(file, { tokenizer: tokenizers.gpt2, maxLength: 40, maxPromptLength: 16 });
    assert.equal(r.truncation!.cutBeforeTokenising, 1);
    assert.equal(r.truncation!.truncated, 1);
    assert.ok(
      r.tokens!.chosen.max >= 2 * 40,
      `a cut answer still counts at least 2 x max_length tokens, got ${r.tokens!.chosen.max}`,
    );
    assert.match(formatInspection(r), /1 rows have a field above 2560 characters \(max_length x 64\).*lower bounds/);
  });
});

describe("a 50 MB field in a 1 GiB heap", () => {
  const MB50 = 50 * 1000 * 1000;
  const sentence = "The answer is 42, and the question was what 6 times 7 is. ";
  const big = sentence.repeat(Math.ceil(MB50 / sentence.length));
  const options: TokenizeOptions = { maxLength: 512, maxPromptLength: 128, truncationMode: "keep_end" };

  /** Runs `node --max-old-space-size=1024 args`; a heap blow-up or a minute's work is a failure. */
  function run(args: string[]) {
    const r = spawnSync(process.execPath, ["--max-old-space-size=1024", ...args], {
      encoding: "utf8",
      timeout: 60_000,
      maxBuffer: 2 ** 26,
    });
    assert.equal(
      r.signal,
      null,
      `killed by ${r.signal} (a minute's timeout, or out of memory); stderr: ${r.stderr?.slice(-2000)}`,
    );
    assert.equal(r.status, 0, `exit status ${r.status}; stderr: ${r.stderr.slice(-2000)}`);
    return r.stdout;
  }

  /** What the cut must give: a shorter record of the same text, tokenised whole and truncated. */
  function expected(pair: FormattedPair): TokenizedPair {
    return truncateLikeTrl(tokenizePair(pair, tokenizers.gpt2, UNBOUNDED), options);
  }

  it("chosen or prompt of 50 MB: read and tokenised as the trainer does, the same ids as tokenising it whole", () => {
    const chosenFile = writeJsonl(join(root, "big-chosen.jsonl"), [
      { prompt: "What is 6 times 7?", chosen: big, rejected: " 41." },
    ]);
    const promptFile = writeJsonl(join(root, "big-prompt.jsonl"), [
      { prompt: big + "So, what is 6 times 7?", chosen: " 42.", rejected: " 41." },
    ]);
    const script = join(root, "tokenize-big.mjs");
    writeFileSync(
      script,
      `
      const { readPreferenceFile } = await import(${JSON.stringify(SRC + "data/readers.js")});
      const { tokenizeRecords } = await import(${JSON.stringify(SRC + "data/tokenize.js")});
      const { Tokenizer } = await import(${JSON.stringify(SRC + "text/index.js")});
      const tokenizer = Tokenizer.fromPretrainedSync(${JSON.stringify(join(root, "gpt2"))});
      const out = [];
      for (const file of ${JSON.stringify([chosenFile, promptFile])}) {
        const [pair] = tokenizeRecords(await readPreferenceFile(file), tokenizer, ${JSON.stringify(options)});
        out.push(pair);
      }
      console.log(JSON.stringify(out));
    `,
    );
    const [chosenPair, promptPair] = JSON.parse(run([script])) as TokenizedPair[];
    // 200,000 characters are far more than 512 tokens of this text: the same ids survive as from 50 MB.
    const part = 200_000;
    assert.deepEqual(
      chosenPair,
      expected({ prompt: "What is 6 times 7?", chosen: big.slice(0, part), rejected: " 41." }),
    );
    assert.deepEqual(
      promptPair,
      expected({ prompt: big.slice(-part) + "So, what is 6 times 7?", chosen: " 42.", rejected: " 41." }),
    );
    assert.equal(chosenPair.chosenInputIds.length, chosenPair.promptLength + 512 - 128);
    assert.equal(promptPair.promptLength, 128);
  });

  it("omni-dpo data inspect on a 50 MB chosen answer", () => {
    const file = writeJsonl(join(root, "big-inspect.jsonl"), [
      { prompt: "What is 6 times 7?", chosen: big, rejected: " 41." },
      { prompt: "What is 2 plus 2?", chosen: " 4.", rejected: " 5." },
    ]);
    const r = JSON.parse(run([CLI, "data", "inspect", file, "--tokenizer", join(root, "gpt2"), "--json"]));
    assert.equal(r.counts.records, 2);
    assert.equal(r.truncation.truncated, 1);
    assert.equal(r.truncation.cutBeforeTokenising, 1);
    assert.ok(
      r.tokens.chosen.max >= 1024,
      `the cut answer counts at least 2 x max_length tokens, got ${r.tokens.chosen.max}`,
    );
  });
});
