// Qwen2-VL's processor against an independent reference (qwen2_vl_image_reference.py: numpy, PIL
// and torch written from transformers' Qwen2VLImageProcessor): pixel values, grids, PIL's bicubic
// resize, PNG/JPEG decoding; and the processor's pad expansion, tensors and errors.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { AutoProcessor, Qwen2VLImageProcessor, resizeBicubic, smartResize } from "../../src/text/index.js";
import { decodeImage, ImageError, readImage, type RgbImage } from "../../src/util/images.js";
import { runPythonJson } from "../../src/util/python.js";
import { once } from "../helpers/python.js";
import { patternImage, writeJpeg, writePng, writeQwen2VLProcessor } from "../helpers/qwen2-vl.js";
import { skipUnless } from "../helpers/requirements.js";

const REFERENCE = fileURLToPath(new URL("../../../test/text/qwen2_vl_image_reference.py", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "omni-dpo-vlproc-test-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const CONFIG = {
  patch_size: 14,
  merge_size: 2,
  temporal_patch_size: 2,
  min_pixels: 56 * 56,
  max_pixels: 28 * 28 * 1280,
  image_mean: [0.48145466, 0.4578275, 0.40821073],
  image_std: [0.26862954, 0.26130258, 0.27577711],
};

interface Reference {
  pixel_values?: string;
  grids: [number, number, number][];
  resized: string[];
  decoded: { width: number; height: number; rgb: string }[];
}

interface Job {
  images: RgbImage[];
  config?: object;
  files?: string[];
}

/** One python run for all the jobs (importing torch is the slow part). */
function reference(jobs: Job[]): Reference[] {
  const payload = jobs.map(({ images, config = CONFIG, files = [] }) => ({
    config,
    files,
    images: images.map((i) => ({ width: i.width, height: i.height, rgb: Buffer.from(i.data).toString("base64") })),
  }));
  return runPythonJson<{ results: Reference[] }>(REFERENCE, { jobs: payload }, { file: true }).results;
}

function floats(b64: string): Float32Array {
  const bytes = Buffer.from(b64, "base64");
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "lengths differ");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const skipPil = skipUnless("pil");

describe("Qwen2-VL image processor against the PIL/torch reference", { skip: skipPil }, () => {
  // Sizes already multiples of 28 (no resize), upscaled (50x77), downscaled past max_pixels, and odd ratios.
  const exact = [patternImage(56, 56, 1), patternImage(140, 84, 2), patternImage(28 * 5, 28 * 3, 3)];
  const resized = [patternImage(77, 50, 4), patternImage(300, 200, 5), patternImage(33, 190, 6)];
  const small = { ...CONFIG, max_pixels: 28 * 28 * 16 }; // forces 300x200 down to fewer than 16 merged patches
  // Files decoded by PIL: a PNG with transparency and a JPEG.
  const decodable = patternImage(45, 31, 7);
  const png = writePng(join(tmp, "alpha.png"), decodable, (x, y) => (x * 13 + y * 7) % 256);
  const jpg = writeJpeg(join(tmp, "photo.jpg"), decodable, 95);
  const ref = once(() => {
    const [a, b, c] = reference([
      { images: exact },
      { images: resized, config: small },
      { images: [], files: [png, jpg] },
    ]);
    return { exact: a!, resized: b!, decoded: c!.decoded };
  });

  test("pixel values and grids equal the reference for images already a multiple of 28 (1e-6)", () => {
    const proc = new Qwen2VLImageProcessor();
    const out = proc.preprocess(exact);
    const r = ref().exact;
    assert.deepEqual(out.gridThw, r.grids);
    assert.equal(out.patchDim, 1176);
    const want = floats(r.pixel_values!);
    assert.equal(out.pixelValues.length, want.length);
    assert.ok(maxAbsDiff(out.pixelValues, want) <= 1e-6, `max diff ${maxAbsDiff(out.pixelValues, want)}`);
  });

  test("bicubic resizing gives PIL's pixels exactly, and the pixel values follow (1e-6)", () => {
    const proc = new Qwen2VLImageProcessor({ maxPixels: small.max_pixels });
    const r = ref().resized;
    resized.forEach((img, i) => {
      const [h, w] = proc.resizedSize(img.height, img.width);
      const mine = resizeBicubic(img, w, h);
      const pil = Buffer.from(r.resized[i]!, "base64");
      assert.equal(mine.data.length, pil.length, `image ${i}: resized size`);
      assert.equal(maxAbsDiff(mine.data, pil), 0, `image ${i} (${img.width}x${img.height} -> ${w}x${h})`);
    });
    const out = proc.preprocess(resized);
    assert.deepEqual(out.gridThw, r.grids);
    assert.ok(maxAbsDiff(out.pixelValues, floats(r.pixel_values!)) <= 1e-6);
  });

  test("PNG with transparency decodes as PIL's convert_to_rgb (over white); JPEG within 4 levels of PIL", () => {
    const decoded = ref().decoded;
    const pngMine = readImage(png);
    const pngRef = decoded[0]!;
    assert.deepEqual([pngMine.width, pngMine.height], [pngRef.width, pngRef.height]);
    assert.equal(maxAbsDiff(pngMine.data, Buffer.from(pngRef.rgb, "base64")), 0);
    // Decoders may round their inverse DCT and chroma upsampling differently: bounded, not equal.
    const jpgMine = readImage(jpg);
    const diff = maxAbsDiff(jpgMine.data, Buffer.from(decoded[1]!.rgb, "base64"));
    console.log(`# JPEG: jpeg-js and PIL differ by up to ${diff} levels`);
    assert.ok(diff <= 4, `JPEG decoders differ by up to ${diff} levels`);
  });
});

describe("smart resize", () => {
  test("keeps multiples of 28, rounds to the nearest, and bounds the pixel count", () => {
    assert.deepEqual(smartResize(448, 448), [448, 448]);
    assert.deepEqual(smartResize(50, 77), [56, 84]);
    // 20x20 is under min_pixels (56*56): scaled up to 56x56.
    assert.deepEqual(smartResize(20, 20), [56, 56]);
    // 1000x1000 over a 448*448 bound: floor(1000 / (1000/448) / 28) * 28 = 448.
    assert.deepEqual(smartResize(1000, 1000, 28, 3136, 448 * 448), [448, 448]);
    assert.throws(() => smartResize(9, 100), /at least 10 pixels/);
    assert.throws(() => smartResize(10, 2100), /aspect ratio/);
  });
});

describe("Qwen2VLProcessor", () => {
  const written = writeQwen2VLProcessor();
  const processor = AutoProcessor.fromPretrained(written.dir);
  const pad = written.specialTokens["<|image_pad|>"]!;

  test("encode expands each image to (h/14 * w/14) / 4 pads and returns the model's tensors", () => {
    const a = patternImage(56, 56, 1); // grid 1x4x4: 4 pads
    const b = patternImage(112, 84, 2); // 112 wide, 84 high: grid 1x6x8, 12 pads
    const pngB = writePng(join(tmp, "b.png"), b);
    const text = processor.applyChatTemplate(
      [
        {
          role: "user",
          content: [{ type: "image" }, { type: "text", text: "and" }, { type: "image" }, { type: "text", text: "?" }],
        },
      ],
      { addGenerationPrompt: true },
    );
    assert.match(text, /<\|vision_start\|><\|image_pad\|><\|vision_end\|>and<\|vision_start\|>/);
    const out = processor.encode({ text, images: [a, pngB] });
    const row = (out.inputIds.toArray() as number[][])[0]!;
    assert.deepEqual(out.inputIds.shape.length, 2);
    assert.equal(row.filter((id) => id === pad).length, 4 + 12);
    // The pads of one image stand together between its vision start and end.
    const start = written.specialTokens["<|vision_start|>"]!;
    const firstStart = row.indexOf(start);
    assert.deepEqual(row.slice(firstStart + 1, firstStart + 5), [pad, pad, pad, pad]);
    assert.equal(row[firstStart + 5], written.specialTokens["<|vision_end|>"]);
    assert.equal(out.inputIds.dtype, "int64");
    assert.deepEqual(out.pixelValues!.shape, [16 + 48, 1176]);
    assert.equal(out.pixelValues!.dtype, "float32");
    assert.deepEqual(out.imageGridThw!.toArray(), [
      [1, 4, 4],
      [1, 6, 8],
    ]);
    assert.equal(out.imageGridThw!.dtype, "int64");
  });

  test("a batch pads on the right and masks the padding", () => {
    const out = processor.encode({
      text: ["<|vision_start|><|image_pad|><|vision_end|>hi", "hello there, how are you today?"],
      images: [patternImage(56, 56)],
    });
    const mask = out.attentionMask.toArray() as number[][];
    assert.equal(mask.length, 2);
    assert.ok(
      mask.some((r) => r.includes(0)),
      "one row is padded",
    );
    assert.deepEqual(out.pixelValues!.shape, [16, 1176]);
  });

  test("placeholders and images must pair up; bad images and configs name the file", () => {
    assert.throws(() => processor.encode({ text: "<|image_pad|><|image_pad|>", images: [patternImage(56, 56)] }), {
      message: /2 <\|image_pad\|> placeholders but 1 image was given/,
    });
    const missing = join(tmp, "nowhere.png");
    assert.throws(() => processor.encode({ text: "<|image_pad|>", images: [missing] }), {
      name: "ImageError",
      message: new RegExp(`${missing}: cannot read the image \\(no such file\\)`),
    });
    const junk = join(tmp, "junk.jpg");
    writeFileSync(junk, Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]));
    assert.throws(() => readImage(junk), {
      name: "ImageError",
      message: new RegExp(`${junk}: cannot decode the JPEG`),
    });
    assert.throws(() => decodeImage(Buffer.from("GIF89a")), ImageError);
    assert.throws(
      () => processor.encode({ text: "<|image_pad|>", images: [{ width: 2, height: 2, data: new Uint8Array(5) }] }),
      {
        message: /image 0: data holds 5 bytes, a 2x2 RGB image needs 12/,
      },
    );
    const bad = writeQwen2VLProcessor({ resample: 2 });
    assert.throws(() => AutoProcessor.fromPretrained(bad.dir), {
      message: /preprocessor_config\.json: field 'resample': only bicubic \(3\) is supported, got 2/,
    });
    const bad2 = writeQwen2VLProcessor({ merge_size: 0 });
    assert.throws(() => AutoProcessor.fromPretrained(bad2.dir), {
      message: /field 'merge_size': expected a positive integer/,
    });
    assert.throws(() => AutoProcessor.fromPretrained(tmp), { message: /no preprocessor_config\.json in/ });
  });

  test("chat_template.json (the processor's template) wins over the tokenizer's", () => {
    const own = writeQwen2VLProcessor();
    const template = "{% for m in messages %}[{{ m['role'] }}]{% endfor %}";
    writeFileSync(join(own.dir, "chat_template.json"), JSON.stringify({ chat_template: template }));
    const messages = [{ role: "user", content: "hi" }];
    assert.equal(AutoProcessor.fromPretrained(own.dir).applyChatTemplate(messages), "[user]");
    assert.match(processor.applyChatTemplate(messages), /^<\|im_start\|>system\nYou are a helpful assistant/);
  });

  test("min_pixels and max_pixels from preprocessor_config.json set the pad count", () => {
    const bounded = AutoProcessor.fromPretrained(writeQwen2VLProcessor({ max_pixels: 28 * 28 * 4 }).dir);
    const out = bounded.encode({ text: "<|image_pad|>", images: [patternImage(448, 448)] });
    assert.deepEqual(out.imageGridThw!.toArray(), [[1, 4, 4]]);
    assert.equal(bounded.imageProcessor.imageTokenCount(448, 448), 4);
  });
});
