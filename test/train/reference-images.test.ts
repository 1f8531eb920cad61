// The precomputed reference cache is keyed by the images too: an image pair whose token ids stay
// the same but whose pixels change (the same size, another picture) must not reuse cached log-probs.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { readImagePreferenceFile } from "../../src/data/image-records.js";
import { tokenizeImagePair } from "../../src/data/image-tokenize.js";
import { AutoProcessor } from "../../src/text/index.js";
import { cacheKey } from "../../src/train/reference.js";
import { solidImage, writePng, writeQwen2VLProcessor } from "../helpers/qwen2-vl.js";

const tmp = mkdtempSync(join(tmpdir(), "omni-dpo-ref-images-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

test("the reference cache key changes with an image's pixels, not only with the token ids", async () => {
  const processor = AutoProcessor.fromPretrained(writeQwen2VLProcessor().dir);
  const image = join(tmp, "a.png");
  const data = join(tmp, "d.jsonl");
  writeFileSync(
    data,
    JSON.stringify({ instruction: "<image>Colour?", chosen: "Red.", rejected: "Blue.", images: ["a.png"] }),
  );
  const keyOf = async () => {
    const [record] = await readImagePreferenceFile(data);
    const pair = tokenizeImagePair(record!, processor);
    return { key: cacheKey([pair], "model", true), ids: pair.chosenInputIds };
  };
  writePng(image, solidImage(56, 56, [220, 20, 30]));
  const red = await keyOf();
  writePng(image, solidImage(56, 56, [20, 20, 220]));
  const blue = await keyOf();
  assert.deepEqual(red.ids, blue.ids);
  assert.notEqual(red.key, blue.key);
  writePng(image, solidImage(56, 56, [220, 20, 30]));
  assert.equal((await keyOf()).key, red.key);
});
