// Errors name the directory and the file at fault, and say what to do.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AutoTokenizer, Tokenizer, TokenizerError } from "../../src/text/index.js";
import { tempTokenizerDir, writeByteLevelTokenizer, writeLlama2Tokenizer } from "../helpers/tokenizers.js";

let root: string;
before(() => {
  root = tempTokenizerDir();
});
after(() => rmSync(root, { recursive: true, force: true }));

function rejectsWith(p: Promise<unknown>, ...parts: string[]) {
  return assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof TokenizerError, `expected a TokenizerError, got ${String(e)}`);
    for (const part of parts) assert.ok(e.message.includes(part), `"${e.message}" should mention "${part}"`);
    return true;
  });
}

describe("loading errors", () => {
  it("names the directory and tokenizer.json when the file is missing", async () => {
    const dir = join(root, "empty");
    mkdirSync(dir);
    await rejectsWith(Tokenizer.fromPretrained(dir), "no tokenizer.json in", dir);
    await rejectsWith(
      AutoTokenizer.fromPretrained(join(root, "nowhere")),
      "tokenizer.json",
      join(root, "nowhere"),
      "does not exist",
    );
  });

  it("says how to convert a SentencePiece-only or vocab.json/merges.txt directory", async () => {
    const sp = join(root, "sp");
    mkdirSync(sp);
    writeFileSync(join(sp, "tokenizer.model"), "");
    await rejectsWith(Tokenizer.fromPretrained(sp), "tokenizer.json", "tokenizer.model", "save_pretrained");
    const bpe = join(root, "bpe");
    mkdirSync(bpe);
    writeFileSync(join(bpe, "vocab.json"), "{}");
    writeFileSync(join(bpe, "merges.txt"), "");
    await rejectsWith(Tokenizer.fromPretrained(bpe), "vocab.json + merges.txt");
  });

  it("names the file holding malformed JSON", async () => {
    const w = writeByteLevelTokenizer(join(root, "bad-json"));
    writeFileSync(join(w.dir, "tokenizer.json"), '{"model": {');
    await rejectsWith(Tokenizer.fromPretrained(w.dir), join(w.dir, "tokenizer.json"), "not valid JSON");
    const c = writeByteLevelTokenizer(join(root, "bad-config"));
    writeFileSync(join(c.dir, "tokenizer_config.json"), "{ bos_token: <s> }");
    await rejectsWith(Tokenizer.fromPretrained(c.dir), join(c.dir, "tokenizer_config.json"), "not valid JSON");
    const m = writeByteLevelTokenizer(join(root, "bad-map"));
    writeFileSync(join(m.dir, "special_tokens_map.json"), "[1,");
    await rejectsWith(Tokenizer.fromPretrained(m.dir), join(m.dir, "special_tokens_map.json"));
  });

  it("rejects JSON that is not a tokenizer", async () => {
    const w = writeByteLevelTokenizer(join(root, "array"));
    writeFileSync(join(w.dir, "tokenizer.json"), "[]");
    await rejectsWith(Tokenizer.fromPretrained(w.dir), "tokenizer.json", "must hold a JSON object");
    writeFileSync(join(w.dir, "tokenizer.json"), '{"version": "1.0"}');
    await rejectsWith(Tokenizer.fromPretrained(w.dir), join(w.dir, "tokenizer.json"), '"model"');
    writeFileSync(join(w.dir, "tokenizer.json"), '{"model": {"type": "Mystery"}, "added_tokens": []}');
    await rejectsWith(
      Tokenizer.fromPretrained(w.dir),
      join(w.dir, "tokenizer.json"),
      "cannot build the tokenizer",
      "Mystery",
    );
  });

  it("names the config file and field for a bad special token", async () => {
    const w = writeLlama2Tokenizer(join(root, "bad-token"), { config: { eos_token: 2 } });
    await rejectsWith(Tokenizer.fromPretrained(w.dir), join(w.dir, "tokenizer_config.json"), "eos_token");
  });

  it("refuses add_bos_token without a BOS in the vocabulary", async () => {
    const w = writeLlama2Tokenizer(join(root, "no-bos"), { config: { bos_token: "<nope>" } });
    await rejectsWith(Tokenizer.fromPretrained(w.dir), "add_bos_token", "bos_token");
  });

  it("rejects non-string input to encode", async () => {
    const tok = await Tokenizer.fromPretrained(writeByteLevelTokenizer(join(root, "ok")).dir);
    assert.throws(() => tok.encode(42 as unknown as string), TokenizerError);
    // The directory is still usable afterwards, and its files are untouched by loading.
    assert.ok(readFileSync(join(tok.dir!, "tokenizer.json"), "utf8").includes('"BPE"'));
  });
});
