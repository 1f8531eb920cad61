// Image preference data: TRL's and LLaMA-Factory's formats read into one shape, images resolved
// and decoded before training (errors name record and file), LLaMA-Factory's qwen2_vl pair
// tokenisation (expanded pads, answer-only labels, cutoff_len), batches with pixel values, and
// `data inspect` counting images and image tokens.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  readDatasetInfoEntry,
  readImagePreferenceData,
  readImagePreferenceFile,
} from "../../src/data/image-records.js";
import {
  imagePairBatch,
  inferSeqlen,
  regularizedSize,
  tokenizeImagePair,
  tokenizeImageRecords,
} from "../../src/data/image-tokenize.js";
import { formatInspection, inspectFile } from "../../src/data/inspect.js";
import { LABEL_PAD } from "../../src/data/tokenize.js";
import { AutoProcessor } from "../../src/text/index.js";
import { patternImage, solidImage, writeJpeg, writePng, writeQwen2VLProcessor } from "../helpers/qwen2-vl.js";

const tmp = mkdtempSync(join(tmpdir(), "omni-dpo-image-pairs-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const written = writeQwen2VLProcessor();
const processor = AutoProcessor.fromPretrained(written.dir);
const PAD = written.specialTokens["<|image_pad|>"]!;

// Two images in a subfolder: 56x56 (4 pads) and 112x84 (12 pads).
mkdirSync(join(tmp, "img"));
writePng(join(tmp, "img", "red.png"), solidImage(56, 56, [220, 20, 30]));
writeJpeg(join(tmp, "img", "scene.jpg"), patternImage(112, 84, 3));

const trlRows = [
  {
    images: ["img/red.png"],
    prompt: [{ role: "user", content: [{ type: "image" }, { type: "text", text: "What colour is this?" }] }],
    chosen: [{ role: "assistant", content: [{ type: "text", text: "Red." }] }],
    rejected: [{ role: "assistant", content: [{ type: "text", text: "Blue." }] }],
  },
  {
    images: ["img/red.png", "img/scene.jpg"],
    prompt: [
      { role: "system", content: "Be brief." },
      {
        role: "user",
        content: [
          { type: "text", text: "Compare " },
          { type: "image" },
          { type: "text", text: " and " },
          { type: "image" },
        ],
      },
    ],
    chosen: "The first is red.",
    rejected: "They are the same.",
    score_chosen: 8,
    score_rejected: 3,
  },
];
// The same two pairs in LLaMA-Factory's ranking format.
const lfRows = [
  { instruction: "<image>What colour is this?", chosen: "Red.", rejected: "Blue.", images: ["img/red.png"] },
  {
    instruction: "Compare <image> and <image>",
    system: "Be brief.",
    chosen: "The first is red.",
    rejected: "They are the same.",
    images: ["img/red.png", "img/scene.jpg"],
    score_chosen: 8,
    score_rejected: 3,
  },
];

function writeJsonl(name: string, rows: unknown[]): string {
  const file = join(tmp, name);
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  return file;
}

describe("image preference records", () => {
  test("TRL's and LLaMA-Factory's formats read into the same records, paths from the data file's folder", async () => {
    const trl = await readImagePreferenceFile(writeJsonl("trl.jsonl", trlRows));
    const lf = await readImagePreferenceFile(writeJsonl("lf.jsonl", lfRows));
    const strip = (rs: typeof trl) => rs.map(({ source: _source, ...r }) => r);
    assert.deepEqual(strip(trl), strip(lf));
    assert.deepEqual(trl[1], {
      system: "Be brief.",
      prompt: [{ role: "user", content: "Compare <image> and <image>" }],
      chosen: "The first is red.",
      rejected: "They are the same.",
      images: [join(tmp, "img", "red.png"), join(tmp, "img", "scene.jpg")],
      scoreChosen: 8,
      scoreRejected: 3,
      source: { file: join(tmp, "trl.jsonl"), index: 2, unit: "line" },
    });
  });

  test("a dataset_info.json entry renames the columns; a given folder holds the images", async () => {
    const renamed = lfRows.map((r) => ({
      question: r.instruction,
      sys: r.system,
      good: r.chosen,
      bad: r.rejected,
      pictures: r.images.map((p) => p.replace("img/", "")),
      ...(r.score_chosen === undefined ? {} : { sc: r.score_chosen, sr: r.score_rejected }),
    }));
    mkdirSync(join(tmp, "data"), { recursive: true });
    writeFileSync(join(tmp, "data", "pairs.json"), JSON.stringify(renamed));
    const info = join(tmp, "data", "dataset_info.json");
    writeFileSync(
      info,
      JSON.stringify({
        mm_pairs: {
          file_name: "pairs.json",
          ranking: true,
          formatting: "alpaca",
          columns: {
            prompt: "question",
            system: "sys",
            chosen: "good",
            rejected: "bad",
            images: "pictures",
            score_chosen: "sc",
            score_rejected: "sr",
          },
        },
        remote: { hf_hub_url: "someone/data", ranking: true },
      }),
    );
    const entry = readDatasetInfoEntry(info, "mm_pairs");
    const records = await readImagePreferenceFile(entry.file, { columns: entry.columns, mediaDir: join(tmp, "img") });
    const lf = await readImagePreferenceFile(writeJsonl("lf2.jsonl", lfRows));
    assert.deepEqual(
      records.map(({ source: _s, ...r }) => r),
      lf.map(({ source: _s, ...r }) => r),
    );
    assert.throws(() => readDatasetInfoEntry(info, "remote"), /'remote': field 'hf_hub_url': remote data sets/);
    assert.throws(() => readDatasetInfoEntry(info, "nope"), /no data set named 'nope' \(it has: mm_pairs, remote\)/);
  });

  test("bad fields, missing or undecodable images and placeholder counts name the record (and file)", async () => {
    writeFileSync(join(tmp, "img", "broken.png"), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 3]));
    const file = writeJsonl("bad.jsonl", [
      lfRows[0],
      { ...lfRows[0], images: ["img/missing.png"] },
      { ...lfRows[0], images: ["img/broken.png"] },
      { ...lfRows[0], images: ["img/red.png", "img/red.png"] },
    ]);
    const plain = writeJsonl("plain.jsonl", [{ ...trlRows[0], prompt: "<image>What colour is this?" }, { images: [] }]);
    await assert.rejects(readImagePreferenceFile(plain), (e: Error) => {
      assert.match(e.message, /plain\.jsonl:2: field 'instruction': expected a string .*, got nothing/);
      assert.doesNotMatch(e.message, /plain\.jsonl:1/);
      return true;
    });
    await assert.rejects(readImagePreferenceFile(file), (e: Error) => {
      assert.match(e.message, /bad\.jsonl:4: the prompt has 1 image placeholder .* but 'images' lists 2/);
      return true;
    });
    const onlyImages = writeJsonl("bad-images.jsonl", [
      lfRows[0],
      { ...lfRows[0], images: ["img/missing.png"] },
      { ...lfRows[0], images: ["img/broken.png"] },
    ]);
    await assert.rejects(readImagePreferenceFile(onlyImages), (e: Error) => {
      assert.match(
        e.message,
        new RegExp(
          `bad-images\\.jsonl:2: image ${join(tmp, "img", "missing.png")}: cannot read the image \\(no such file\\)`,
        ),
      );
      assert.match(
        e.message,
        new RegExp(`bad-images\\.jsonl:3: image ${join(tmp, "img", "broken.png")}: cannot decode the PNG`),
      );
      return true;
    });
  });
});

describe("qwen2_vl pair tokenisation (LLaMA-Factory's pairwise processor)", () => {
  test("the prompt carries the expanded pads; only the answer (with <|im_end|>\\n) has labels", async () => {
    const [record] = await readImagePreferenceFile(writeJsonl("one.jsonl", [lfRows[0]]));
    const pair = tokenizeImagePair(record!, processor);
    // Written out by hand from the template: system, user turn with 4 pads (56x56 -> 2x2 merged patches).
    const prompt =
      "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n" +
      `<|vision_start|>${"<|image_pad|>".repeat(4)}<|vision_end|>What colour is this?<|im_end|>\n` +
      "<|im_start|>assistant\n";
    const tok = processor.tokenizer;
    const promptIds = tok.encode(prompt, { addSpecialTokens: false });
    const chosen = tok.encode("Red.<|im_end|>\n", { addSpecialTokens: false });
    const rejected = tok.encode("Blue.<|im_end|>\n", { addSpecialTokens: false });
    assert.deepEqual(pair.chosenInputIds, [...promptIds, ...chosen]);
    assert.deepEqual(pair.rejectedInputIds, [...promptIds, ...rejected]);
    assert.deepEqual(pair.chosenLabels, [...promptIds.map(() => LABEL_PAD), ...chosen]);
    assert.deepEqual(pair.rejectedLabels, [...promptIds.map(() => LABEL_PAD), ...rejected]);
    assert.equal(pair.imageTokens, 4);
    assert.deepEqual(pair.imageGridThw, [[1, 4, 4]]);
    assert.equal(pair.promptLength, promptIds.length);
  });

  test("two images: pads in order, the record's system prompt; batches carry both copies of the pixels", async () => {
    const { records, imageSizes } = await readImagePreferenceData(writeJsonl("two.jsonl", lfRows));
    const pairs = tokenizeImageRecords(records, processor, {}, imageSizes);
    const p = pairs[1]!;
    const text = processor.tokenizer.decode(p.chosenInputIds, { skipSpecialTokens: false });
    assert.ok(text.startsWith("<|im_start|>system\nBe brief.<|im_end|>\n"), text.slice(0, 60));
    assert.equal(p.chosenInputIds.filter((id) => id === PAD).length, 4 + 12);
    assert.deepEqual(p.imageGridThw, [
      [1, 4, 4],
      [1, 6, 8],
    ]);
    assert.equal(p.scoreChosen, 8);
    const batch = imagePairBatch(pairs, processor, written.padTokenId!);
    // Images a side: 1 + 2; patches a side: 16 + 16 + 48; the rejected rows repeat the chosen rows' images.
    assert.deepEqual(batch.imageGridThw, [
      [1, 4, 4],
      [1, 4, 4],
      [1, 6, 8],
      [1, 4, 4],
      [1, 4, 4],
      [1, 6, 8],
    ]);
    assert.equal(batch.patchDim, 1176);
    assert.equal(batch.pixelValues.length, 2 * 80 * 1176);
    const half = 80 * 1176;
    assert.deepEqual(batch.pixelValues.subarray(0, half), batch.pixelValues.subarray(half));
    // The pads of all 2B rows match the patches: one pad a 4 patches.
    const pads = batch.inputIds.flat().filter((id) => id === PAD).length;
    assert.equal(pads * 4, batch.pixelValues.length / 1176);
  });

  test("cutoff_len keeps the answer first (infer_seqlen) and refuses to cut image tokens", async () => {
    assert.deepEqual(inferSeqlen(100, 10, 2048), [100, 10]);
    assert.deepEqual(inferSeqlen(300, 1200, 1024), [300, 724]);
    assert.deepEqual(inferSeqlen(1000, 1000, 1024), [512, 512]);
    const long = { ...lfRows[0], chosen: "Red. ".repeat(200) };
    const [record] = await readImagePreferenceFile(writeJsonl("long.jsonl", [long]));
    const whole = tokenizeImagePair(record!, processor);
    const prompt = whole.promptLength;
    // The prompt is under half of cutoff_len: it stays whole and the answer gets the rest.
    const cut = tokenizeImagePair(record!, processor, { cutoffLen: 2 * prompt + 1 });
    assert.ok(cut.truncated);
    assert.equal(cut.promptLength, prompt);
    assert.equal(cut.chosenInputIds.length, 2 * prompt + 1);
    assert.deepEqual(cut.chosenInputIds, whole.chosenInputIds.slice(0, 2 * prompt + 1));
    assert.deepEqual(cut.rejectedInputIds, whole.rejectedInputIds); // shorter than its share
    assert.throws(
      () => tokenizeImagePair(record!, processor, { cutoffLen: 12 }),
      /long\.jsonl:1: cutoff_len 12 would cut into the prompt's 4 image tokens/,
    );
  });

  test("images are bounded first, as LLaMA-Factory (image_max_pixels 768*768, image_min_pixels 32*32)", () => {
    assert.deepEqual(regularizedSize(1000, 1000), [768, 768]);
    assert.deepEqual(regularizedSize(2000, 1000), [1086, 543]);
    assert.deepEqual(regularizedSize(20, 20), [32, 32]);
    assert.deepEqual(regularizedSize(20, 500), [28, 500]);
  });
});

describe("data inspect on image records", () => {
  test("counts images, distinct files and image tokens; a bad image fails it by name", async () => {
    const file = writeJsonl("inspect.jsonl", lfRows);
    const r = await inspectFile(file, { imageProcessor: processor.imageProcessor });
    assert.equal(r.counts.records, 2);
    assert.equal(r.images!.images, 3);
    assert.equal(r.images!.distinctFiles, 2);
    assert.equal(r.images!.tokens!.total, 4 + 4 + 12);
    assert.equal(r.images!.tokens!.perRecord.max, 16);
    assert.equal(r.margins!.count, 1);
    const text = formatInspection(r);
    assert.match(text, /Images: 3 in 2 records \(2 distinct files\)/);
    assert.match(text, /image tokens: 20 in all/);
    const bad = writeJsonl("inspect-bad.jsonl", [{ ...lfRows[0], images: ["img/gone.png"] }]);
    await assert.rejects(inspectFile(bad), /inspect-bad\.jsonl:1: image .*gone\.png: cannot read the image/);
  });
});
