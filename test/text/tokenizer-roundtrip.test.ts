// Encode/decode over every tokenizer layout the helpers write: round trips, special tokens,
// BOS behaviour.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "../../src/text/index.js";
import {
  tempTokenizerDir,
  writeByteLevelTokenizer,
  writeLlama2Tokenizer,
  writeLlama3Tokenizer,
  type WrittenTokenizer,
} from "../helpers/tokenizers.js";

const TEXTS: Record<string, string> = {
  ascii: "Hello world, how are you? The answer is 42.",
  accents: "Café naïve résumé, Ångström, façade, São Paulo, Zürich.",
  emoji: "emoji 🤖👍🏽 and a family 👨‍👩‍👧 ✨",
  cjk: "中文字符测试 日本語のテキスト 한국어 텍스트",
  whitespace: "a  b   c\t\td    e",
  newlines: "line one\nline two\r\n\n\nline three\n",
  edges: "  leading and trailing spaces  ",
  mixed: "x=1; y = 2 * (x + 3)  # comment\n\tdef f(): return 'ok'",
};

interface Kind {
  name: string;
  write: (dir: string) => WrittenTokenizer;
  specials: string[];
  addsBos: boolean;
  /** What decode(encode(text)) gives, where it is not `text` itself (as in Hugging Face's own library). */
  expected?: (text: string) => string;
}

const KINDS: Kind[] = [
  { name: "gpt2", write: (d) => writeByteLevelTokenizer(d), specials: ["<|endoftext|>"], addsBos: false },
  {
    name: "chatml",
    write: (d) => writeByteLevelTokenizer(d, { chatTemplate: "chatml" }),
    specials: ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
    addsBos: false,
  },
  {
    name: "llama3",
    write: (d) => writeLlama3Tokenizer(d),
    specials: ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    addsBos: true,
  },
  { name: "llama2", write: (d) => writeLlama2Tokenizer(d), specials: ["<s>", "</s>"], addsBos: true },
  // Metaspace (prepend_scheme "first") prepends no "▁" to text that starts with a space, and the
  // decoder still strips one: the Rust library loses that leading space too.
  {
    name: "llama2-metaspace",
    write: (d) => writeLlama2Tokenizer(d, { layout: "metaspace" }),
    specials: ["<s>", "</s>"],
    addsBos: true,
    expected: (t) => (t.startsWith(" ") ? t.slice(1) : t),
  },
];

let root: string;
before(() => {
  root = tempTokenizerDir();
});
after(() => rmSync(root, { recursive: true, force: true }));

for (const kind of KINDS) {
  describe(`${kind.name} tokenizer`, () => {
    let tok: Tokenizer;
    let written: WrittenTokenizer;
    before(async () => {
      written = kind.write(join(root, kind.name));
      tok = await Tokenizer.fromPretrained(written.dir);
    });

    for (const [label, text] of Object.entries(TEXTS)) {
      it(`round-trips ${label} text`, () => {
        const ids = tok.encode(text, { addSpecialTokens: false });
        assert.ok(ids.length > 0);
        assert.ok(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize));
        const expected = kind.expected ? kind.expected(text) : text;
        assert.equal(tok.decode(ids), expected);
        // With the special tokens added, skipping them on decode gives the text back too.
        assert.equal(tok.decode(tok.encode(text), { skipSpecialTokens: true }), expected);
      });
    }

    it("merges common words into few tokens", () => {
      const ids = tok.encode("Hello world", { addSpecialTokens: false });
      assert.ok(ids.length <= 3, `"Hello world" took ${ids.length} tokens`);
    });

    it("recognises special tokens in text as single ids, and skips them on decode", () => {
      for (const special of kind.specials) {
        const id = tok.tokenToId(special);
        assert.equal(id, written.specialTokens[special]);
        const ids = tok.encode(`Hi${special}there`, { addSpecialTokens: false });
        assert.equal(ids.filter((x) => x === id).length, 1, `${special} should be one id in ${JSON.stringify(ids)}`);
        assert.ok(tok.isSpecialId(id!));
        assert.ok(tok.allSpecialIds.includes(id!));
        assert.equal(tok.idToToken(id!), special);
        const kept = tok.decode(ids);
        assert.ok(kept.includes(special), `decode keeps ${special}: ${JSON.stringify(kept)}`);
        assert.ok(!tok.decode(ids, { skipSpecialTokens: true }).includes(special));
      }
    });

    it(kind.addsBos ? "adds BOS when encoding with special tokens" : "adds no BOS", () => {
      const withSpecial = tok.encode("Hello");
      const without = tok.encode("Hello", { addSpecialTokens: false });
      assert.equal(tok.addBosToken, kind.addsBos);
      assert.equal(tok.addEosToken, false);
      if (kind.addsBos) {
        assert.deepEqual(withSpecial, [tok.bosTokenId, ...without]);
      } else {
        assert.deepEqual(withSpecial, without);
      }
    });

    it("batch-encodes and batch-decodes", () => {
      const texts = [TEXTS.ascii!, TEXTS.cjk!, ""];
      const batch = tok.batchEncode(texts, { addSpecialTokens: false });
      assert.deepEqual(
        batch,
        texts.map((t) => tok.encode(t, { addSpecialTokens: false })),
      );
      assert.deepEqual(batch[2], []);
      assert.deepEqual(tok.batchDecode(batch), texts);
    });

    it("decodes empty input, typed arrays and bigints; skips ids outside the vocabulary", () => {
      assert.equal(tok.decode([]), "");
      const ids = tok.encode("Hello world", { addSpecialTokens: false });
      assert.equal(tok.decode(Int32Array.from(ids)), "Hello world");
      assert.equal(tok.decode(BigInt64Array.from(ids.map(BigInt))), "Hello world");
      assert.equal(tok.decode([...ids, tok.vocabSize + 5]), "Hello world");
      assert.throws(() => tok.decode([1.5]), /integer ids/);
    });

    it("reports the vocabulary size the helper wrote", () => {
      assert.equal(tok.vocabSize, written.vocabSize);
      assert.equal(tok.bosTokenId ?? null, written.bosTokenId);
      assert.equal(tok.eosTokenId, written.eosTokenId);
      assert.equal(tok.padTokenId, written.padTokenId ?? written.eosTokenId);
    });
  });
}

describe("tokenizer layouts", () => {
  it("byte-level tokens look like GPT-2's and SentencePiece tokens like Llama's", async () => {
    const gpt2 = await Tokenizer.fromPretrained(writeByteLevelTokenizer(join(root, "gpt2-shape")).dir);
    assert.deepEqual(gpt2.tokenize("Hello world"), ["Hello", "\u0120world"]);
    const llama = await Tokenizer.fromPretrained(writeLlama2Tokenizer(join(root, "llama2-shape")).dir);
    assert.deepEqual(llama.tokenize("Hello world"), ["\u2581Hello", "\u2581world"]);
    // Characters outside the vocabulary fall back to their UTF-8 bytes.
    assert.deepEqual(llama.tokenize("\u00e9"), ["\u2581", "<0xC3>", "<0xA9>"]);
    assert.deepEqual(llama.encode("\n", { addSpecialTokens: false }), [
      llama.tokenToId("\u2581")!,
      llama.tokenToId("<0x0A>")!,
    ]);
  });

  it("Llama 2 decodes BOS as '<s> ' and strips the SentencePiece prefix space", async () => {
    const llama = await Tokenizer.fromPretrained(writeLlama2Tokenizer(join(root, "llama2-bos")).dir);
    const ids = llama.encode("Hello world");
    assert.equal(ids[0], 1);
    assert.equal(llama.decode(ids), "<s> Hello world");
    assert.equal(llama.decode(ids, { skipSpecialTokens: true }), "Hello world");
  });

  it("helpers write the same files every time", () => {
    const a = writeLlama3Tokenizer(join(root, "same-a"));
    const b = writeLlama3Tokenizer(join(root, "same-b"));
    assert.deepEqual({ ...a, dir: "" }, { ...b, dir: "" });
  });

  it("numMerges sets the vocabulary size of the byte-level helper", async () => {
    const small = writeByteLevelTokenizer(join(root, "small"), { numMerges: 10 });
    assert.equal(small.vocabSize, 256 + 10 + 1);
    const tok = await Tokenizer.fromPretrained(small.dir);
    assert.equal(tok.vocabSize, 267);
    assert.equal(tok.decode(tok.encode(TEXTS.emoji!)), TEXTS.emoji);
  });

  it("extra special tokens are single ids", async () => {
    const w = writeByteLevelTokenizer(join(root, "extra"), { extraSpecialTokens: ["<|pad|>", "<think>"] });
    const tok = await Tokenizer.fromPretrained(w.dir);
    assert.deepEqual(
      tok.encode("a<think>b", { addSpecialTokens: false }).filter((x) => x === w.specialTokens["<think>"]).length,
      1,
    );
    assert.equal(tok.vocabSize, w.vocabSize);
  });
});
