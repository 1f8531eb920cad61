// Tokenizer.save + fromPretrained round trip, and AutoTokenizer.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AutoTokenizer, Tokenizer } from "../../src/text/index.js";
import {
  CHATML_TEMPLATE,
  tempTokenizerDir,
  writeByteLevelTokenizer,
  writeLlama2Tokenizer,
  writeLlama3Tokenizer,
  type WrittenTokenizer,
} from "../helpers/tokenizers.js";

const TEXTS = ["Hello world", "Café 🤖 中文\n\n  x", "a<|im_end|>b<s>c<|eot_id|>"];
const CHAT = [
  { role: "user", content: "Hi" },
  { role: "assistant", content: "Hello." },
];

let root: string;
before(() => {
  root = tempTokenizerDir();
});
after(() => rmSync(root, { recursive: true, force: true }));

function sameBehaviour(a: Tokenizer, b: Tokenizer) {
  for (const t of TEXTS) {
    assert.deepEqual(b.encode(t), a.encode(t));
    assert.equal(
      b.decode(b.encode(t), { skipSpecialTokens: true }),
      a.decode(a.encode(t), { skipSpecialTokens: true }),
    );
  }
  assert.equal(b.vocabSize, a.vocabSize);
  assert.equal(b.bosTokenId, a.bosTokenId);
  assert.equal(b.eosTokenId, a.eosTokenId);
  assert.equal(b.padTokenId, a.padTokenId);
  assert.equal(b.addBosToken, a.addBosToken);
  assert.deepEqual(b.specialTokensMap, a.specialTokensMap);
  assert.deepEqual(b.chatTemplates, a.chatTemplates);
  assert.deepEqual(b.allSpecialIds, a.allSpecialIds);
}

const KINDS: [string, (d: string) => WrittenTokenizer][] = [
  ["gpt2", (d) => writeByteLevelTokenizer(d)],
  ["chatml", (d) => writeByteLevelTokenizer(d, { chatTemplate: "chatml" })],
  ["llama3", (d) => writeLlama3Tokenizer(d)],
  ["llama2", (d) => writeLlama2Tokenizer(d, { chatTemplate: "llama2", config: { add_eos_token: true } })],
];

describe("save + fromPretrained", () => {
  for (const [name, write] of KINDS) {
    it(`round-trips the ${name} tokenizer`, async () => {
      const original = await Tokenizer.fromPretrained(write(join(root, name)).dir);
      const out = join(root, `${name}-saved`, "nested");
      await original.save(out);
      for (const f of ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"])
        assert.ok(existsSync(join(out, f)), f);
      const reloaded = await Tokenizer.fromPretrained(out);
      assert.equal(reloaded.dir, out);
      sameBehaviour(original, reloaded);
      if (original.chatTemplate) assert.equal(reloaded.applyChatTemplate(CHAT), original.applyChatTemplate(CHAT));
    });
  }

  it("keeps the config's own fields and forms", async () => {
    const original = await Tokenizer.fromPretrained(writeLlama2Tokenizer(join(root, "forms")).dir);
    const out = join(root, "forms-saved");
    original.saveSync(out);
    const config = JSON.parse(readFileSync(join(out, "tokenizer_config.json"), "utf8"));
    assert.equal(config.tokenizer_class, "LlamaTokenizer");
    assert.equal(config.bos_token.content, "<s>");
    assert.equal(config.legacy, true);
    const map = JSON.parse(readFileSync(join(out, "special_tokens_map.json"), "utf8"));
    assert.deepEqual(map, { bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>" });
  });

  it("writes a template set with setChatTemplate, and named templates as a list", async () => {
    const tok = await Tokenizer.fromPretrained(writeByteLevelTokenizer(join(root, "set")).dir);
    tok.setChatTemplate(CHATML_TEMPLATE);
    await tok.save(join(root, "set-saved"));
    const one = await Tokenizer.fromPretrained(join(root, "set-saved"));
    assert.equal(one.chatTemplate, CHATML_TEMPLATE);
    assert.equal(
      JSON.parse(readFileSync(join(root, "set-saved", "tokenizer_config.json"), "utf8")).chat_template,
      CHATML_TEMPLATE,
    );
    tok.setChatTemplate("T{{ tools | length }}", "tool_use");
    await tok.save(join(root, "set-saved-2"));
    const config = JSON.parse(readFileSync(join(root, "set-saved-2", "tokenizer_config.json"), "utf8"));
    assert.deepEqual(config.chat_template, [
      { name: "default", template: CHATML_TEMPLATE },
      { name: "tool_use", template: "T{{ tools | length }}" },
    ]);
    const two = await Tokenizer.fromPretrained(join(root, "set-saved-2"));
    assert.deepEqual(two.chatTemplates, tok.chatTemplates);
  });

  it("updates a chat_template.jinja already in the target directory", async () => {
    const out = join(root, "jinja-target");
    const tok = await Tokenizer.fromPretrained(writeByteLevelTokenizer(out, { chatTemplate: "chatml" }).dir);
    writeFileSync(join(out, "chat_template.jinja"), "stale");
    tok.setChatTemplate("fresh");
    await tok.save(out);
    assert.equal(readFileSync(join(out, "chat_template.jinja"), "utf8"), "fresh");
    assert.equal((await Tokenizer.fromPretrained(out)).chatTemplate, "fresh");
  });
});

describe("AutoTokenizer", () => {
  it("loads as Tokenizer.fromPretrained does, with and without a promise", async () => {
    const dir = writeLlama3Tokenizer(join(root, "auto")).dir;
    const a = await AutoTokenizer.fromPretrained(dir);
    assert.ok(a instanceof Tokenizer);
    sameBehaviour(await Tokenizer.fromPretrained(dir), a);
    sameBehaviour(a, AutoTokenizer.fromPretrainedSync(dir));
  });
});
