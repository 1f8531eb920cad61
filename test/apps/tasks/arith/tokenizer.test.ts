// The task's character-level tokenizer: exact round trips of every task text, one token per
// character, BOS added and no EOS, written and read back as a Hugging Face directory.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tokenizer } from "../../../../src/text/index.js";
import {
  ARITH_ALPHABET,
  arithTokenizer,
  arithTokenizerFiles,
  corruptSolution,
  formatPrompt,
  generateProblems,
  makeProblem,
  workedSolution,
  writeArithTokenizer,
} from "../../../../apps/tasks/arith/index.js";

function taskTexts(): string[] {
  const texts: string[] = [];
  for (const difficulty of ["easy", "medium", "hard"] as const) {
    for (const [i, p] of generateProblems(300, { difficulty, seed: 31 }).entries()) {
      texts.push(formatPrompt(p), workedSolution(p), formatPrompt(p) + workedSolution(p));
      texts.push(corruptSolution(p, { seed: i }).text, corruptSolution(p, { seed: i, kind: "truncate" }).text);
    }
  }
  texts.push(
    formatPrompt(makeProblem(17, "-", 52)) + workedSolution(makeProblem(17, "-", 52)),
    "  ",
    " ",
    "A=1.  .",
    "",
  );
  return texts;
}

describe("arith tokenizer", () => {
  const tok = arithTokenizer();
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it("has a small vocabulary: four special tokens and the task's characters", () => {
    assert.equal(tok.vocabSize, 4 + ARITH_ALPHABET.length);
    assert.ok(tok.vocabSize <= 32, `vocab ${tok.vocabSize}`);
    assert.equal(tok.padToken, "<pad>");
    assert.equal(tok.bosToken, "<s>");
    assert.equal(tok.eosToken, "</s>");
    assert.equal(tok.unkToken, "<unk>");
    assert.deepEqual([tok.padTokenId, tok.bosTokenId, tok.eosTokenId, tok.unkTokenId], [0, 1, 2, 3]);
    assert.equal(tok.hasOwnPadToken, true);
    assert.deepEqual(tok.allSpecialIds, [0, 1, 2, 3]);
    for (const c of ARITH_ALPHABET) {
      const ids = tok.encode(c, { addSpecialTokens: false });
      assert.equal(ids.length, 1, c);
      assert.ok(ids[0]! >= 4, c);
    }
  });

  it("adds BOS and no EOS, as its config says", () => {
    assert.equal(tok.addBosToken, true);
    assert.equal(tok.addEosToken, false);
    const ids = tok.encode("Q:1+2=");
    assert.equal(ids[0], tok.bosTokenId);
    assert.equal(ids.length, 7);
    assert.deepEqual(tok.encode("</s>", { addSpecialTokens: false }), [tok.eosTokenId]);
    assert.deepEqual(tok.encode("<s>Q", { addSpecialTokens: false }), [
      tok.bosTokenId,
      tok.encode("Q", { addSpecialTokens: false })[0],
    ]);
  });

  it("round-trips every problem, solution and corrupted text exactly, one token per character", () => {
    for (const text of taskTexts()) {
      const ids = tok.encode(text, { addSpecialTokens: false });
      assert.equal(ids.length, text.length, JSON.stringify(text));
      assert.ok(!ids.includes(tok.unkTokenId!), JSON.stringify(text));
      assert.equal(tok.decode(ids), text, JSON.stringify(text));
      const withBos = tok.encode(text);
      assert.equal(tok.decode(withBos, { skipSpecialTokens: true }), text);
      assert.equal(tok.decode(withBos), "<s>" + text);
      assert.equal(tok.decode([...withBos, tok.eosTokenId!, tok.padTokenId!], { skipSpecialTokens: true }), text);
    }
  });

  it("tokenizes prompt and response independently: prompt + response ids are the joint ids", () => {
    for (const p of generateProblems(200, { difficulty: "medium", seed: 32 })) {
      const prompt = formatPrompt(p),
        response = workedSolution(p);
      assert.deepEqual(tok.encode(prompt + response), [
        ...tok.encode(prompt),
        ...tok.encode(response, { addSpecialTokens: false }),
      ]);
    }
  });

  it("maps characters outside the alphabet to <unk> without failing", () => {
    const ids = tok.encode("Q:1/2=é", { addSpecialTokens: false });
    assert.equal(ids.length, 7);
    assert.equal(ids.filter((id) => id === tok.unkTokenId).length, 2);
  });

  it("writes a tokenizer directory that loads back the same", async () => {
    const dir = mkdtempSync(join(tmpdir(), "omni-dpo-arith-tok-"));
    dirs.push(dir);
    const written = writeArithTokenizer(dir);
    for (const f of ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"])
      assert.ok(existsSync(join(dir, f)), f);
    const config = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8"));
    assert.equal(config.bos_token, "<s>");
    assert.equal(config.eos_token, "</s>");
    assert.equal(config.pad_token, "<pad>");
    assert.equal(config.add_bos_token, true);
    assert.equal(config.add_eos_token, false);
    const json = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
    assert.equal(json.model.type, "BPE");
    assert.deepEqual(json.model.merges, []);
    const loaded = await Tokenizer.fromPretrained(dir);
    assert.equal(loaded.vocabSize, written.vocabSize);
    assert.equal(loaded.addBosToken, true);
    assert.equal(loaded.addEosToken, false);
    assert.deepEqual([loaded.padTokenId, loaded.bosTokenId, loaded.eosTokenId], [0, 1, 2]);
    for (const text of taskTexts().slice(0, 300)) {
      assert.deepEqual(loaded.encode(text), tok.encode(text));
      assert.equal(loaded.decode(loaded.encode(text, { addSpecialTokens: false })), text);
    }
    // The in-memory files and the tokenizer built from them agree.
    const { tokenizerJson, tokenizerConfig } = arithTokenizerFiles();
    assert.deepEqual(
      Tokenizer.fromJSON(tokenizerJson, tokenizerConfig).encode("Q:9*9= A=81."),
      tok.encode("Q:9*9= A=81."),
    );
  });
});
