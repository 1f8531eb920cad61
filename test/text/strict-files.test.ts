// A tokenizer directory's files are strict UTF-8: a BOM at the start (as some Windows editors
// write one) is accepted, and invalid bytes are an error naming the file, line and byte rather
// than tokens or a chat template holding replacement characters.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer, TokenizerError } from "../../src/text/index.js";
import { tempTokenizerDir, writeByteLevelTokenizer } from "../helpers/tokenizers.js";

let root: string;
before(() => {
  root = tempTokenizerDir("omni-dpo-strict-files-");
});
after(() => rmSync(root, { recursive: true, force: true }));

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}";

describe("tokenizer files", () => {
  it("tokenizer.json, tokenizer_config.json and chat_template.jinja with a BOM load as without one", () => {
    const plain = writeByteLevelTokenizer(join(root, "plain")).dir;
    writeFileSync(join(plain, "chat_template.jinja"), TEMPLATE);
    const bom = writeByteLevelTokenizer(join(root, "bom")).dir;
    for (const name of ["tokenizer.json", "tokenizer_config.json"])
      writeFileSync(join(bom, name), Buffer.concat([BOM, readFileSync(join(bom, name))]));
    writeFileSync(join(bom, "chat_template.jinja"), Buffer.concat([BOM, Buffer.from(TEMPLATE)]));
    const a = Tokenizer.fromPretrainedSync(plain);
    const b = Tokenizer.fromPretrainedSync(bom);
    assert.equal(b.chatTemplate, TEMPLATE);
    assert.equal(b.eosTokenId, a.eosTokenId);
    assert.deepEqual(b.encode("Hello world! The answer is 42."), a.encode("Hello world! The answer is 42."));
    const messages = [{ role: "user", content: "Hi" }];
    assert.equal(b.applyChatTemplate(messages), a.applyChatTemplate(messages));
  });

  it("invalid UTF-8 names the file, its line and the byte", () => {
    const cases: [string, (dir: string) => { bytes: Buffer; offset: number; line: number }][] = [
      [
        "tokenizer_config.json",
        (dir) => {
          // The EOS token's name with a byte cut from a two-byte character.
          const text = readFileSync(join(dir, "tokenizer_config.json"), "utf8").replace(
            '"eos_token": "<|endoftext|>"',
            '"eos_token": "<|end\u00e9|>"',
          );
          const bytes = Buffer.from(text);
          const at = bytes.indexOf(Buffer.from("\u00e9"));
          const cut = Buffer.concat([bytes.subarray(0, at + 1), bytes.subarray(at + 2)]);
          return { bytes: cut, offset: at, line: text.slice(0, text.indexOf("\u00e9")).split("\n").length };
        },
      ],
      [
        "tokenizer.json",
        (dir) => {
          const bytes = readFileSync(join(dir, "tokenizer.json"));
          const at = bytes.indexOf(Buffer.from('"model"'));
          return {
            bytes: Buffer.concat([bytes.subarray(0, at), Buffer.from([0xff]), bytes.subarray(at)]),
            offset: at,
            line: bytes.subarray(0, at).toString().split("\n").length,
          };
        },
      ],
      [
        "chat_template.jinja",
        () => {
          const bytes = Buffer.concat([
            Buffer.from("{# line one #}\n{{ messages[0]['content'] }} "),
            Buffer.from([0xe2, 0x82]),
            Buffer.from("\n"),
          ]);
          return { bytes, offset: bytes.indexOf(0xe2), line: 2 };
        },
      ],
    ];
    for (const [name, corrupt] of cases) {
      const dir = writeByteLevelTokenizer(join(root, `bad-${name}`)).dir;
      const { bytes, offset, line } = corrupt(dir);
      writeFileSync(join(dir, name), bytes);
      assert.throws(
        () => Tokenizer.fromPretrainedSync(dir),
        (e: unknown) => {
          assert.ok(e instanceof TokenizerError, `${name}: expected a TokenizerError, got ${String(e)}`);
          assert.equal(
            e.message,
            `${join(dir, name)}:${line}: invalid UTF-8 at byte ${offset}; the file must be UTF-8`,
          );
          return true;
        },
      );
    }
  });
});
