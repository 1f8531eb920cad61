// tokenizer_config.json and special_tokens_map.json: string and object forms, chat template
// forms, pad fallback, add_bos_token / add_eos_token, clean_up_tokenization_spaces.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  Tokenizer,
  TokenizerError,
  parseTokenizerConfig,
  tokenContent,
  parseChatTemplates,
} from "../../src/text/index.js";
import { tempTokenizerDir, writeByteLevelTokenizer, writeLlama2Tokenizer } from "../helpers/tokenizers.js";

let root: string;
before(() => {
  root = tempTokenizerDir();
});
after(() => rmSync(root, { recursive: true, force: true }));

describe("special tokens from tokenizer_config.json", () => {
  it("reads string forms (GPT-2) and falls back to EOS for padding", async () => {
    const w = writeByteLevelTokenizer(join(root, "gpt2"));
    const tok = await Tokenizer.fromPretrained(w.dir);
    assert.equal(tok.bosToken, "<|endoftext|>");
    assert.equal(tok.eosToken, "<|endoftext|>");
    assert.equal(tok.unkToken, "<|endoftext|>");
    assert.equal(tok.bosTokenId, w.specialTokens["<|endoftext|>"]);
    assert.equal(tok.hasOwnPadToken, false);
    assert.equal(tok.padToken, "<|endoftext|>");
    assert.equal(tok.padTokenId, tok.eosTokenId);
    assert.equal(tok.modelMaxLength, 1024);
    assert.equal(tok.addBosToken, false);
  });

  it("reads AddedToken object forms (Llama 2) and a null pad_token", async () => {
    const w = writeLlama2Tokenizer(join(root, "llama2"));
    const config = JSON.parse(readFileSync(join(w.dir, "tokenizer_config.json"), "utf8"));
    assert.deepEqual(config.bos_token, {
      __type: "AddedToken",
      content: "<s>",
      lstrip: false,
      normalized: false,
      rstrip: false,
      single_word: false,
    });
    assert.equal(config.pad_token, null);
    const tok = await Tokenizer.fromPretrained(w.dir);
    assert.equal(tok.bosToken, "<s>");
    assert.equal(tok.bosTokenId, 1);
    assert.equal(tok.eosToken, "</s>");
    assert.equal(tok.eosTokenId, 2);
    assert.equal(tok.unkTokenId, 0);
    assert.equal(tok.padTokenId, 2);
    assert.equal(tok.modelMaxLength, Infinity);
    assert.deepEqual(tok.specialTokensMap, { bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>" });
  });

  it("reads Qwen2's null bos_token, own pad_token and additional_special_tokens", async () => {
    const tok = await Tokenizer.fromPretrained(
      writeByteLevelTokenizer(join(root, "qwen"), { chatTemplate: "chatml" }).dir,
    );
    assert.equal(tok.bosToken, undefined);
    assert.equal(tok.bosTokenId, undefined);
    assert.equal(tok.eosToken, "<|im_end|>");
    assert.equal(tok.hasOwnPadToken, true);
    assert.equal(tok.padToken, "<|endoftext|>");
    assert.equal(tok.padTokenId, tok.tokenToId("<|endoftext|>"));
    assert.deepEqual(tok.specialTokensMap, {
      eos_token: "<|im_end|>",
      pad_token: "<|endoftext|>",
      additional_special_tokens: ["<|im_start|>", "<|im_end|>"],
    });
    assert.equal(tok.modelMaxLength, 32768);
  });

  it("lets special_tokens_map.json win over tokenizer_config.json", async () => {
    const w = writeByteLevelTokenizer(join(root, "map"), { chatTemplate: "chatml" });
    writeFileSync(
      join(w.dir, "special_tokens_map.json"),
      JSON.stringify({
        eos_token: { content: "<|endoftext|>", lstrip: false, normalized: false, rstrip: false, single_word: false },
        pad_token: "<|im_start|>",
        additional_special_tokens: ["<|im_start|>"],
      }),
    );
    const tok = await Tokenizer.fromPretrained(w.dir);
    assert.equal(tok.eosToken, "<|endoftext|>");
    assert.equal(tok.padToken, "<|im_start|>");
    assert.deepEqual(tok.specialTokensMap.additional_special_tokens, ["<|im_start|>"]);
  });

  it("works from tokenizer.json alone", async () => {
    const w = writeByteLevelTokenizer(join(root, "bare"));
    rmSync(join(w.dir, "tokenizer_config.json"));
    const tok = await Tokenizer.fromPretrained(w.dir);
    assert.equal(tok.eosToken, undefined);
    assert.equal(tok.padTokenId, undefined);
    assert.equal(tok.chatTemplate, undefined);
    assert.equal(tok.decode(tok.encode("still works")), "still works");
    // Added tokens marked special in tokenizer.json are special without any config.
    assert.ok(tok.isSpecialId(w.specialTokens["<|endoftext|>"]!));
  });

  it("builds from JSON in memory", () => {
    const w = writeLlama2Tokenizer(join(root, "memory"));
    const json = JSON.parse(readFileSync(join(w.dir, "tokenizer.json"), "utf8"));
    const tok = Tokenizer.fromJSON(json, { bos_token: "<s>", eos_token: "</s>" });
    assert.equal(tok.dir, undefined);
    assert.deepEqual(tok.encode("Hello").slice(0, 1), [1]);
    assert.equal(tok.eosTokenId, 2);
  });
});

describe("chat templates in the config", () => {
  it("reads a single template string as the default", async () => {
    const tok = await Tokenizer.fromPretrained(
      writeLlama2Tokenizer(join(root, "t1"), { chatTemplate: "{{ 'x' }}" }).dir,
    );
    assert.equal(tok.chatTemplate, "{{ 'x' }}");
    assert.deepEqual(tok.chatTemplates, { default: "{{ 'x' }}" });
  });

  it("reads a list of {name, template}", async () => {
    const tok = await Tokenizer.fromPretrained(
      writeLlama2Tokenizer(join(root, "t2"), {
        config: {
          chat_template: [
            { name: "default", template: "A" },
            { name: "rag", template: "B" },
          ],
        },
      }).dir,
    );
    assert.deepEqual(tok.chatTemplates, { default: "A", rag: "B" });
  });

  it("lets chat_template.jinja win over the config's template", async () => {
    const w = writeLlama2Tokenizer(join(root, "t3"), { chatTemplate: "from config" });
    writeFileSync(join(w.dir, "chat_template.jinja"), "from file");
    const tok = await Tokenizer.fromPretrained(w.dir);
    assert.equal(tok.chatTemplate, "from file");
    assert.equal(tok.applyChatTemplate([]), "from file");
  });
});

describe("encoding flags in the config", () => {
  it("honours add_bos_token / add_eos_token for Llama tokenizers, as LlamaTokenizerFast", async () => {
    const both = await Tokenizer.fromPretrained(
      writeLlama2Tokenizer(join(root, "eos"), { config: { add_eos_token: true } }).dir,
    );
    const plain = both.encode("Hello", { addSpecialTokens: false });
    assert.deepEqual(both.encode("Hello"), [1, ...plain, 2]);
    assert.equal(both.addBosToken, true);
    assert.equal(both.addEosToken, true);
    const none = await Tokenizer.fromPretrained(
      writeLlama2Tokenizer(join(root, "nobos"), { config: { add_bos_token: false } }).dir,
    );
    assert.deepEqual(none.encode("Hello"), plain);
    assert.equal(none.addBosToken, false);
  });

  it("leaves the post-processor alone for other tokenizer classes", async () => {
    // GPT-2 configs often say add_bos_token: false, and their post-processor adds nothing either way.
    const tok = await Tokenizer.fromPretrained(
      writeByteLevelTokenizer(join(root, "gpt2-flag"), { config: { add_bos_token: true } }).dir,
    );
    assert.equal(tok.addBosToken, false);
  });

  it("tidies spaces before punctuation only when clean_up_tokenization_spaces is set", async () => {
    const text = "Hello , world . It 's ok";
    const off = await Tokenizer.fromPretrained(writeByteLevelTokenizer(join(root, "clean-off")).dir);
    assert.equal(off.decode(off.encode(text)), text);
    const on = await Tokenizer.fromPretrained(
      writeByteLevelTokenizer(join(root, "clean-on"), { config: { clean_up_tokenization_spaces: true } }).dir,
    );
    assert.equal(on.decode(on.encode(text)), "Hello, world. It's ok");
    assert.equal(on.decode(on.encode(text), { cleanUpTokenizationSpaces: false }), text);
  });
});

describe("parseTokenizerConfig", () => {
  it("accepts strings, AddedToken objects and null", () => {
    assert.equal(tokenContent("<s>", "x"), "<s>");
    assert.equal(tokenContent({ content: "<s>", special: true }, "x"), "<s>");
    assert.equal(tokenContent(null, "x"), undefined);
    assert.equal(tokenContent(undefined, "x"), undefined);
    const p = parseTokenizerConfig(
      {
        bos_token: { __type: "AddedToken", content: "<s>" },
        eos_token: "</s>",
        pad_token: null,
        additional_special_tokens: ["<a>", { content: "<b>" }],
        model_max_length: 2048,
        add_bos_token: true,
        tokenizer_class: "LlamaTokenizer",
      },
      undefined,
    );
    assert.deepEqual(p.specialTokens, { bos_token: "<s>", eos_token: "</s>" });
    assert.deepEqual(p.additionalSpecialTokens, ["<a>", "<b>"]);
    assert.equal(p.modelMaxLength, 2048);
    assert.equal(p.addBosToken, true);
    assert.equal(p.addEosToken, undefined);
    assert.equal(p.cleanUpTokenizationSpaces, false);
    assert.equal(p.tokenizerClass, "LlamaTokenizer");
  });

  it("rejects other forms with the file and field named", () => {
    assert.throws(
      () => parseTokenizerConfig({ eos_token: 5 }, undefined, { config: "/m/tokenizer_config.json" }),
      (e: unknown) =>
        e instanceof TokenizerError &&
        e.message.includes("/m/tokenizer_config.json") &&
        e.message.includes("eos_token"),
    );
    assert.throws(
      () => parseTokenizerConfig({ bos_token: { id: 1 } }, undefined),
      /bos_token: expected a string or \{"content": string\}/,
    );
    assert.throws(() => parseChatTemplates(7, "cfg"), /chat_template must be a string or a list/);
    assert.throws(() => parseChatTemplates([{ name: "a" }], "cfg"), /chat_template\[0\]/);
    assert.throws(
      () => parseTokenizerConfig({ add_eos_token: "yes" }, undefined),
      /add_eos_token must be true or false/,
    );
  });
});
