// Tokenisation against hand-worked examples: every expected id below is written out from the
// test tokenizers' vocabularies (token string -> id), following TRL's DPO tokenize_row step by
// step: BOS, EOS, the prompt/answer boundary (and its merge case), truncation, label masking,
// the concatenated batch, and conversational records through chat templates.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "../../src/text/index.js";
import type { PreferenceRecord } from "../../src/data/records.js";
import { DataError } from "../../src/data/records.js";
import {
  concatenatedBatch,
  formatRecord,
  LABEL_PAD,
  tokenizePair,
  tokenizeRecords,
  type TokenizeOptions,
  type TokenizedPair,
} from "../../src/data/tokenize.js";
import {
  tempTokenizerDir,
  writeByteLevelTokenizer,
  writeLlama2Tokenizer,
  writeLlama3Tokenizer,
} from "../helpers/tokenizers.js";

let root: string;
let gpt2: Tokenizer; // byte-level BPE; bos = eos = <|endoftext|>
let llama2: Tokenizer; // SentencePiece-style; bos <s>, eos </s>
let qwen: Tokenizer; // ChatML (Qwen2 template); no bos, eos <|im_end|>, pad <|endoftext|>
let llama3: Tokenizer; // bos <|begin_of_text|>, eos <|eot_id|>

before(() => {
  root = tempTokenizerDir("omni-dpo-tokenize-");
  const load = (name: string, write: (dir: string) => unknown) => {
    const dir = join(root, name);
    write(dir);
    return Tokenizer.fromPretrainedSync(dir);
  };
  gpt2 = load("gpt2", (d) => writeByteLevelTokenizer(d));
  llama2 = load("llama2", (d) => writeLlama2Tokenizer(d));
  qwen = load("qwen", (d) => writeByteLevelTokenizer(d, { chatTemplate: "chatml" }));
  llama3 = load("llama3", (d) => writeLlama3Tokenizer(d));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** The id of one vocabulary entry, written as the tokenizer's vocabulary spells it. */
function id(t: Tokenizer, piece: string): number {
  const v = t.tokenToId(piece);
  assert.notEqual(v, undefined, `no token '${piece}' in the vocabulary`);
  return v!;
}

const WIDE: TokenizeOptions = { maxLength: 512, maxPromptLength: 128, truncationMode: "keep_end" };
const M = LABEL_PAD;

const record = (
  prompt: PreferenceRecord["prompt"],
  chosen: PreferenceRecord["chosen"],
  rejected: PreferenceRecord["rejected"],
  extra: Partial<PreferenceRecord> = {},
): PreferenceRecord => ({
  prompt,
  chosen,
  rejected,
  source: { file: "pairs.jsonl", index: 7, unit: "line" },
  ...extra,
});

describe("BOS, EOS and labels", () => {
  it("GPT-2 style (bos = eos = <|endoftext|>): BOS prepended, EOS appended, prompt labels -100", () => {
    const eot = id(gpt2, "<|endoftext|>");
    assert.equal(gpt2.bosTokenId, eot);
    assert.equal(gpt2.eosTokenId, eot);
    const p = tokenizePair({ prompt: "The answer is", chosen: " 42", rejected: " the answer is 42" }, gpt2, WIDE);
    const [The, answer, is, n42, the] = ["The", "Ġanswer", "Ġis", "Ġ42", "Ġthe"].map((s) => id(gpt2, s));
    assert.deepEqual(p.chosenInputIds, [eot, The, answer, is, n42, eot]);
    assert.deepEqual(p.chosenLabels, [M, M, M, M, n42, eot]);
    assert.deepEqual(p.rejectedInputIds, [eot, The, answer, is, the, answer, is, n42, eot]);
    assert.deepEqual(p.rejectedLabels, [M, M, M, M, the, answer, is, n42, eot]);
    assert.equal(p.promptLength, 4);
    assert.equal(p.truncated, false);
  });

  it("GPT-2 style: a prompt that already starts with BOS and answers that already end with EOS get no second one", () => {
    const eot = id(gpt2, "<|endoftext|>");
    const p = tokenizePair(
      { prompt: "<|endoftext|>The answer is", chosen: " 42<|endoftext|>", rejected: " 42" },
      gpt2,
      WIDE,
    );
    const [The, answer, is, n42] = ["The", "Ġanswer", "Ġis", "Ġ42"].map((s) => id(gpt2, s));
    assert.deepEqual(p.chosenInputIds, [eot, The, answer, is, n42, eot]);
    assert.deepEqual(p.rejectedInputIds, [eot, The, answer, is, n42, eot]);
    assert.deepEqual(p.chosenLabels, [M, M, M, M, n42, eot]);
  });

  it("Llama-2 style: <s> prepended when missing, not doubled when the prompt has it; </s> appended once", () => {
    const [bos, eos, Hello, world, bare] = ["<s>", "</s>", "▁Hello", "▁world", "▁"].map((s) => id(llama2, s));
    assert.equal(llama2.bosTokenId, bos);
    const plain = tokenizePair({ prompt: "Hello", chosen: " world", rejected: " world</s>" }, llama2, WIDE);
    assert.deepEqual(plain.chosenInputIds, [bos, Hello, world, eos]);
    assert.deepEqual(plain.chosenLabels, [M, M, world, eos]);
    assert.deepEqual(plain.rejectedInputIds, [bos, Hello, world, eos], "an answer ending in </s> keeps one");
    const withBos = tokenizePair({ prompt: "<s>Hello", chosen: " world", rejected: " world" }, llama2, WIDE);
    assert.deepEqual(withBos.chosenInputIds, [bos, Hello, world, eos]);
    assert.deepEqual(withBos.chosenLabels, [M, M, world, eos]);
    assert.equal(withBos.promptLength, 2);
    // The answer's ids are the joint ids after the prompt's, not the answer encoded alone
    // (alone, " world" would start with an extra "▁").
    assert.deepEqual(llama2.encode(" world", { addSpecialTokens: false }), [bare, world]);
  });

  it("a tokenizer without BOS (Qwen2) gets none; EOS <|im_end|> is appended after the template's trailing newline", () => {
    assert.equal(qwen.bosTokenId, undefined);
    const [start, end, nl, Hello, a, s, sistant] = [
      "<|im_start|>",
      "<|im_end|>",
      "Ċ",
      "Hello",
      "a",
      "s",
      "sistant",
    ].map((x) => id(qwen, x));
    const prompt = "<|im_start|>user\nHi<|im_end|>\n";
    const promptIds = qwen.encode(prompt, { addSpecialTokens: false });
    const p = tokenizePair(
      {
        prompt,
        chosen: "<|im_start|>assistant\nHello<|im_end|>\n",
        rejected: "<|im_start|>assistant\nHello<|im_end|>",
      },
      qwen,
      WIDE,
    );
    const answer = [start, a, s, sistant, nl, Hello, end];
    assert.deepEqual(p.chosenInputIds, [...promptIds, ...answer, nl, end]);
    assert.deepEqual(p.chosenLabels, [...promptIds.map(() => M), ...answer, nl, end]);
    assert.deepEqual(
      p.rejectedInputIds,
      [...promptIds, ...answer],
      "an answer already ending in <|im_end|> gets no second one",
    );
  });
});

describe("the prompt/answer boundary", () => {
  it("moves back by one when the prompt's last token merges with the answer's first ('Ġwor' + 'ld' -> 'Ġworld')", () => {
    const [eot, Hello, wor, worldTok, k] = ["<|endoftext|>", "Hello", "Ġwor", "Ġworld", "k"].map((s) => id(gpt2, s));
    // Alone, the prompt is Hello|Ġwor; joined with "ld" the tokenizer writes Hello|Ġworld.
    assert.deepEqual(gpt2.encode("Hello wor", { addSpecialTokens: false }), [Hello, wor]);
    assert.deepEqual(gpt2.encode("Hello world", { addSpecialTokens: false }), [Hello, worldTok]);
    const p = tokenizePair({ prompt: "Hello wor", chosen: "ld", rejected: "k" }, gpt2, WIDE);
    // chosen: the merged token belongs to the answer, so the prompt keeps one token (plus BOS).
    assert.deepEqual(p.chosenInputIds, [eot, Hello, worldTok, eot]);
    assert.deepEqual(p.chosenLabels, [M, M, worldTok, eot]);
    // rejected: no merge ("Hello work" = Hello|Ġwor|k), the boundary stays.
    assert.deepEqual(p.rejectedInputIds, [eot, Hello, wor, k, eot]);
    assert.deepEqual(p.rejectedLabels, [M, M, M, k, eot]);
    assert.equal(p.promptLength, 2);
  });

  it("the answer text never loses characters: prompt + answer ids decode to prompt + answer", () => {
    const pair = { prompt: "Question: is it", chosen: " correct?", rejected: " it?" };
    const p = tokenizePair(pair, llama2, WIDE);
    assert.equal(llama2.decode(p.chosenInputIds, { skipSpecialTokens: true }), pair.prompt + pair.chosen);
    assert.equal(llama2.decode(p.rejectedInputIds, { skipSpecialTokens: true }), pair.prompt + pair.rejected);
  });
});

describe("truncation", () => {
  // BOS + The Ġanswer Ġis = 4 prompt tokens; chosen Ġ42 + EOS = 2; rejected Ġthe Ġanswer Ġis Ġ42 + EOS = 5.
  const pair = { prompt: "The answer is", chosen: " 42", rejected: " the answer is 42" };
  const ids = () => ["<|endoftext|>", "The", "Ġanswer", "Ġis", "Ġ42", "Ġthe"].map((s) => id(gpt2, s));

  it("nothing is cut when prompt + the longer answer fit max_length exactly", () => {
    const p = tokenizePair(pair, gpt2, { maxLength: 9, maxPromptLength: 2, truncationMode: "keep_end" });
    assert.equal(p.truncated, false);
    assert.equal(p.rejectedInputIds.length, 9);
  });

  it("keep_end keeps the prompt's last max_prompt_length tokens (BOS included in the cut)", () => {
    const [eot, The, answer, is, n42, the] = ids();
    const p = tokenizePair(pair, gpt2, { maxLength: 8, maxPromptLength: 3, truncationMode: "keep_end" });
    assert.equal(p.truncated, true);
    assert.deepEqual(p.chosenInputIds, [The, answer, is, n42, eot]);
    assert.deepEqual(p.chosenLabels, [M, M, M, n42, eot]);
    assert.deepEqual(p.rejectedInputIds, [The, answer, is, the, answer, is, n42, eot]);
    assert.equal(p.promptLength, 3);
  });

  it("keep_start keeps the prompt's first max_prompt_length tokens", () => {
    const [eot, The, answer, , n42, the] = ids();
    const p = tokenizePair(pair, gpt2, { maxLength: 8, maxPromptLength: 3, truncationMode: "keep_start" });
    assert.deepEqual(p.chosenInputIds, [eot, The, answer, n42, eot]);
    assert.deepEqual(p.rejectedInputIds, [eot, The, answer, the, answer, ids()[3], n42, eot]);
    assert.deepEqual(p.rejectedLabels, [M, M, M, the, answer, ids()[3], n42, eot]);
  });

  it("when the cut prompt is still too long, answers are cut to max_length - max_prompt_length (EOS may go)", () => {
    const [eot, , answer, is, n42, the] = ids();
    const p = tokenizePair(pair, gpt2, { maxLength: 6, maxPromptLength: 2, truncationMode: "keep_end" });
    assert.deepEqual(p.chosenInputIds, [answer, is, n42, eot], "the shorter answer fits in 4 and stays whole");
    assert.deepEqual(p.rejectedInputIds, [answer, is, the, answer, is, n42]);
    assert.deepEqual(p.rejectedLabels, [M, M, the, answer, is, n42]);
    assert.ok(p.chosenInputIds.length <= 6 && p.rejectedInputIds.length <= 6);
  });

  it("the longer answer decides for both: a short chosen still gets its prompt cut", () => {
    const [eot, , answer, is, n42] = ids();
    // chosen alone (4 + 2 = 6) would fit max_length 7; with the rejected answer (4 + 5 = 9) it does not.
    const p = tokenizePair(pair, gpt2, { maxLength: 7, maxPromptLength: 2, truncationMode: "keep_end" });
    assert.deepEqual(p.chosenInputIds, [answer, is, n42, eot]);
    assert.equal(p.rejectedInputIds.length, 7, "2 prompt tokens + the whole 5-token answer");
  });
});

describe("the concatenated batch", () => {
  it("pads right with the pad id, labels -100 and mask 0, chosen rows first", () => {
    const pairs: TokenizedPair[] = [
      {
        chosenInputIds: [1, 10, 11, 2],
        chosenLabels: [M, M, 11, 2],
        rejectedInputIds: [1, 10, 12, 13, 14, 2],
        rejectedLabels: [M, M, 12, 13, 14, 2],
        promptLength: 2,
        truncated: false,
        scoreChosen: 8,
        scoreRejected: 2,
      },
      {
        chosenInputIds: [1, 20, 21],
        chosenLabels: [M, M, 21],
        rejectedInputIds: [1, 20, 22, 2],
        rejectedLabels: [M, M, 22, 2],
        promptLength: 2,
        truncated: false,
        scoreChosen: 7.5,
        scoreRejected: 3,
      },
    ];
    const b = concatenatedBatch(pairs, 0);
    assert.deepEqual(b.inputIds, [
      [1, 10, 11, 2, 0, 0],
      [1, 20, 21, 0, 0, 0],
      [1, 10, 12, 13, 14, 2],
      [1, 20, 22, 2, 0, 0],
    ]);
    assert.deepEqual(b.attentionMask, [
      [1, 1, 1, 1, 0, 0],
      [1, 1, 1, 0, 0, 0],
      [1, 1, 1, 1, 1, 1],
      [1, 1, 1, 1, 0, 0],
    ]);
    assert.deepEqual(b.labels, [
      [M, M, 11, 2, M, M],
      [M, M, 21, M, M, M],
      [M, M, 12, 13, 14, 2],
      [M, M, 22, 2, M, M],
    ]);
    assert.deepEqual(b.scoreChosen, [8, 7.5]);
    assert.deepEqual(b.scoreRejected, [2, 3]);
    // Another pad id pads the ids only.
    assert.deepEqual(concatenatedBatch(pairs, 99).inputIds[1], [1, 20, 21, 99, 99, 99]);
    // Scores come only when every pair has them.
    const unscored = concatenatedBatch(
      [pairs[0], { ...pairs[1], scoreChosen: undefined, scoreRejected: undefined }],
      0,
    );
    assert.equal(unscored.scoreChosen, undefined);
  });

  it("tokenizeRecords keeps each record's scores and batches real records", () => {
    const records = [
      record("The answer is", " 42", " 36", { scoreChosen: 9, scoreRejected: 1 }),
      record("Hello", " world", " there, how are you today?", { scoreChosen: 6, scoreRejected: 5 }),
    ];
    const pairs = tokenizeRecords(records, gpt2, WIDE);
    assert.deepEqual(
      pairs.map((p) => [p.scoreChosen, p.scoreRejected]),
      [
        [9, 1],
        [6, 5],
      ],
    );
    const b = concatenatedBatch(pairs, gpt2.padTokenId!);
    assert.equal(b.inputIds.length, 4);
    const width = Math.max(...pairs.flatMap((p) => [p.chosenInputIds.length, p.rejectedInputIds.length]));
    for (const row of b.inputIds) assert.equal(row.length, width);
    assert.deepEqual(b.inputIds[0].slice(0, pairs[0].chosenInputIds.length), pairs[0].chosenInputIds);
    assert.deepEqual(b.inputIds[3].slice(0, pairs[1].rejectedInputIds.length), pairs[1].rejectedInputIds);
  });
});

describe("conversational records, chat_rendering: reference (the Uni-DPO reference's)", () => {
  const msg = (role: string, content: string) => ({ role, content });
  const conversation = record(
    null,
    [msg("user", "Hi"), msg("assistant", "Hello")],
    [msg("user", "Hi"), msg("assistant", "Go away")],
  );

  // ChatML with no default system prompt (as TRL's / Zephyr's chatml).
  const PLAIN_CHATML =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

  it("ChatML: the prompt gets an empty system message, and prompt + chosen is the whole conversation's render", () => {
    const f = formatRecord(conversation, qwen, PLAIN_CHATML, "reference");
    assert.equal(f.prompt, "<|im_start|>system\n<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
    assert.equal(f.chosen, "<|im_start|>assistant\nHello<|im_end|>\n");
    assert.equal(f.rejected, "<|im_start|>assistant\nGo away<|im_end|>\n");
    const whole = qwen.applyChatTemplate(
      [msg("system", ""), ...(conversation.chosen as { role: string; content: string }[])],
      { chatTemplate: PLAIN_CHATML },
    );
    assert.equal(f.prompt + f.chosen, whole);
    // Token level: prompt ids then answer ids, labels only on the answer, EOS after the newline.
    const p = tokenizePair(f, qwen, WIDE);
    const [start, end, nl, Hello, a, s, sistant] = [
      "<|im_start|>",
      "<|im_end|>",
      "Ċ",
      "Hello",
      "a",
      "s",
      "sistant",
    ].map((x) => id(qwen, x));
    const promptIds = qwen.encode(f.prompt, { addSpecialTokens: false });
    assert.deepEqual(p.chosenInputIds, [...promptIds, start, a, s, sistant, nl, Hello, end, nl, end]);
    assert.deepEqual(
      p.chosenLabels.slice(0, promptIds.length),
      promptIds.map(() => M),
    );
    assert.equal(p.promptLength, promptIds.length);
  });

  it("ChatML (Qwen2's own template): the system message is inserted in the prompt, and each answer renders alone as the reference does", () => {
    // alignment-handbook renders the answer turn alone with the tokenizer's template; Qwen2's
    // template then writes its default system prompt in front of it. This pins that parity.
    const f = formatRecord(conversation, qwen, undefined, "reference");
    assert.equal(f.prompt, "<|im_start|>system\n<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
    assert.equal(f.chosen, qwen.applyChatTemplate([msg("assistant", "Hello")]));
    assert.ok(f.chosen.endsWith("<|im_start|>assistant\nHello<|im_end|>\n"));
  });

  it("a system message already first is not doubled", () => {
    const withSystem = record(
      null,
      [msg("system", "Be brief."), msg("user", "Hi"), msg("assistant", "Hello")],
      [msg("system", "Be brief."), msg("user", "Hi"), msg("assistant", "Go away")],
    );
    const f = formatRecord(withSystem, qwen, PLAIN_CHATML, "reference");
    assert.equal(f.prompt, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
  });

  it("a multi-turn conversation: the prompt is every message before the last answer", () => {
    const turns = record(
      null,
      [msg("user", "2+2?"), msg("assistant", "4"), msg("user", "3+3?"), msg("assistant", "6")],
      [msg("user", "2+2?"), msg("assistant", "4"), msg("user", "3+3?"), msg("assistant", "7")],
    );
    const f = formatRecord(turns, qwen, PLAIN_CHATML, "reference");
    assert.equal(
      f.prompt,
      "<|im_start|>system\n<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\n3+3?<|im_end|>\n",
    );
    assert.equal(f.chosen, "<|im_start|>assistant\n6<|im_end|>\n");
    assert.equal(f.rejected, "<|im_start|>assistant\n7<|im_end|>\n");
  });

  it("Llama 3: the answer's leading BOS is stripped, prompt + chosen is the whole render, and BOS is not doubled", () => {
    const f = formatRecord(conversation, llama3, undefined, "reference");
    const whole = llama3.applyChatTemplate(conversation.chosen as { role: string; content: string }[]);
    assert.equal(f.prompt + f.chosen, whole);
    assert.ok(f.prompt.startsWith("<|begin_of_text|>"));
    assert.ok(!f.chosen.startsWith("<|begin_of_text|>"));
    const p = tokenizePair(f, llama3, WIDE);
    const bos = id(llama3, "<|begin_of_text|>");
    const eot = id(llama3, "<|eot_id|>");
    assert.equal(p.chosenInputIds[0], bos);
    assert.notEqual(p.chosenInputIds[1], bos);
    assert.equal(p.chosenInputIds.filter((x) => x === bos).length, 1);
    assert.equal(p.chosenInputIds.at(-1), eot);
    assert.equal(
      p.chosenInputIds.filter((x) => x === eot).length,
      2,
      "one after the user turn, one ending the answer (not doubled)",
    );
    assert.deepEqual(p.chosenInputIds, llama3.encode(whole, { addSpecialTokens: false }));
  });

  it("a message-list prompt with message-list answers renders the answers' messages", () => {
    const prompted = record([msg("user", "Hi")], [msg("assistant", "Hello")], [msg("assistant", "Go away")]);
    const f = formatRecord(prompted, qwen, PLAIN_CHATML, "reference");
    assert.equal(
      f.prompt + f.chosen,
      "<|im_start|>system\n<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n",
    );
  });

  it("UltraFeedback layout (string prompt, full conversations in chosen/rejected): the prompt is chosen[:-1], as alignment-handbook", () => {
    const ultra = record(
      "2+2?",
      [msg("system", "Be brief."), msg("user", "2+2?"), msg("assistant", "4")],
      [msg("system", "Be brief."), msg("user", "2+2?"), msg("assistant", "5")],
    );
    const f = formatRecord(ultra, qwen, PLAIN_CHATML, "reference");
    assert.equal(f.prompt, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n");
    assert.equal(f.chosen, "<|im_start|>assistant\n4<|im_end|>\n");
    // With only the answer turn given, the string prompt is the user's message.
    const answerOnly = record("2+2?", [msg("assistant", "4")], [msg("assistant", "5")]);
    assert.equal(
      formatRecord(answerOnly, qwen, PLAIN_CHATML, "reference").prompt,
      "<|im_start|>system\n<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n",
    );
  });

  it("a template that cannot render names the record", () => {
    const bad = record(
      null,
      [msg("assistant", "x"), msg("user", "y"), msg("assistant", "z")],
      [msg("assistant", "x"), msg("user", "y"), msg("assistant", "w")],
    );
    const llama2Chat =
      "{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('roles must alternate') }}{% endif %}{{ m['content'] }}{% endfor %}";
    assert.throws(
      () => tokenizeRecords([bad], gpt2, { ...WIDE, chatTemplate: llama2Chat }),
      (e: unknown) => {
        assert.ok(e instanceof DataError);
        assert.match(e.problems[0], /^pairs\.jsonl:7: cannot render the conversation/);
        assert.match(e.problems[0], /roles must alternate/);
        return true;
      },
    );
  });
});
