// Tokenising image preference pairs as LLaMA-Factory's pairwise processor does with its qwen2_vl
// template: each image is first bounded in size (image_max_pixels / image_min_pixels, at least 28
// a side), each <image> in the prompt becomes <|vision_start|>, one <|image_pad|> a merged patch,
// <|vision_end|>; the prompt and each answer are encoded turn by turn, cut to cutoff_len (the
// answer kept first), and only answer tokens carry labels. Batches carry the pixel values.
import {
  IMAGE_PAD,
  loadImage,
  resizeBicubic,
  VISION_END,
  VISION_START,
  type Qwen2VLImageProcessor,
  type Qwen2VLProcessor,
} from "../text/index.js";
import type { RgbImage } from "../util/images.js";
import { IMAGE_PLACEHOLDER, loadRecordImages, type ImagePreferenceRecord } from "./image-records.js";
import { DataError, mapRecords, where, type Message } from "./records.js";
import { concatenatedBatch, LABEL_PAD, type PaddedBatch, type TokenizedPair } from "./tokenize.js";

/** LLaMA-Factory's qwen2_vl template: how each turn is written (replace_eos: <|im_end|> ends answers). */
export const QWEN2_VL_CHAT = {
  name: "qwen2_vl",
  defaultSystem: "You are a helpful assistant.",
  system: (s: string) => `<|im_start|>system\n${s}<|im_end|>\n`,
  user: (s: string) => `<|im_start|>user\n${s}<|im_end|>\n<|im_start|>assistant\n`,
  assistant: (s: string) => `${s}<|im_end|>\n`,
} as const;

export interface ImageTokenizeOptions {
  /** The most tokens of prompt + answer (LLaMA-Factory's cutoff_len; default 2048, its default). */
  cutoffLen?: number;
  /** Images above this many pixels are scaled down first (LLaMA-Factory's image_max_pixels, default 768*768). */
  imageMaxPixels?: number;
  /** Images below this many pixels are scaled up first (image_min_pixels, default 32*32). */
  imageMinPixels?: number;
}

export const IMAGE_TOKENIZE_DEFAULTS = { cutoffLen: 2048, imageMaxPixels: 768 * 768, imageMinPixels: 32 * 32 };

export interface ImageTokenizedPair extends TokenizedPair {
  /** The image files, in the order their pads appear (the same for chosen and rejected). */
  images: string[];
  /** Each image's [t, h, w] patch grid. */
  imageGridThw: [number, number, number][];
  /** <|image_pad|> tokens in the prompt (all images). */
  imageTokens: number;
}

/**
 * The [width, height] LLaMA-Factory gives an image before the processor sees it: scaled (aspect
 * kept, sides truncated) into [imageMinPixels, imageMaxPixels], then each side at least 28, and an
 * aspect ratio past 200 clamped to 180.
 */
export function regularizedSize(width: number, height: number, options: ImageTokenizeOptions = {}): [number, number] {
  const max = options.imageMaxPixels ?? IMAGE_TOKENIZE_DEFAULTS.imageMaxPixels;
  const min = options.imageMinPixels ?? IMAGE_TOKENIZE_DEFAULTS.imageMinPixels;
  let [w, h] = [width, height];
  if (w * h > max) {
    const f = Math.sqrt(max / (w * h));
    [w, h] = [Math.trunc(w * f), Math.trunc(h * f)];
  }
  if (w * h < min) {
    const f = Math.sqrt(min / (w * h));
    [w, h] = [Math.trunc(w * f), Math.trunc(h * f)];
  }
  if (Math.min(w, h) < 28) [w, h] = [Math.max(w, 28), Math.max(h, 28)];
  if (w / h > 200) w = h * 180;
  if (h / w > 200) h = w * 180;
  return [w, h];
}

/** The image as LLaMA-Factory hands it to the processor (bicubic, PIL's default for resize). */
export function regularizeImage(image: RgbImage, options: ImageTokenizeOptions = {}): RgbImage {
  const [w, h] = regularizedSize(image.width, image.height, options);
  return w === image.width && h === image.height ? image : resizeBicubic(image, w, h);
}

/** Pads an image of this (original) size becomes, after regularisation and smart resize. */
export function imageTokenCount(
  imageProcessor: Qwen2VLImageProcessor,
  width: number,
  height: number,
  options: ImageTokenizeOptions = {},
): number {
  const [w, h] = regularizedSize(width, height, options);
  return imageProcessor.imageTokenCount(h, w);
}

/** LLaMA-Factory's infer_seqlen: how many prompt and answer tokens survive cutoff_len. */
export function inferSeqlen(sourceLen: number, targetLen: number, cutoffLen: number): [number, number] {
  let maxTarget: number;
  if (targetLen * 2 < cutoffLen) maxTarget = cutoffLen;
  else if (sourceLen * 2 < cutoffLen) maxTarget = cutoffLen - sourceLen;
  else maxTarget = Math.trunc(cutoffLen * (targetLen / (sourceLen + targetLen)));
  const newTarget = Math.min(maxTarget, targetLen);
  const newSource = Math.min(Math.max(cutoffLen - newTarget, 0), sourceLen);
  return [newSource, newTarget];
}

function checkTurns(prompt: readonly Message[], at: string): void {
  prompt.forEach((m, i) => {
    const want = i % 2 === 0 ? "user" : "assistant";
    if (m.role !== want) {
      throw new DataError([`${at}: field 'prompt[${i}]': turns must alternate user/assistant, got '${m.role}'`]);
    }
  });
}

/**
 * One record's chosen and rejected ids and labels. `imageSizes` are the images' original
 * [width, height] (decoded already, e.g. by checkImages); omitted, the images are read.
 */
export function tokenizeImagePair(
  record: ImagePreferenceRecord,
  processor: Qwen2VLProcessor,
  options: ImageTokenizeOptions = {},
  imageSizes?: readonly [number, number][],
): ImageTokenizedPair {
  const at = where(record.source);
  const cutoffLen = options.cutoffLen ?? IMAGE_TOKENIZE_DEFAULTS.cutoffLen;
  checkTurns(record.prompt, at);
  const sizes = imageSizes ?? loadRecordImages(record).map((i) => [i.width, i.height] as [number, number]);
  const { mergeSize } = processor.imageProcessor.config;
  const grids = sizes.map(([width, height]) => {
    const [w, h] = regularizedSize(width, height, options);
    const [rh, rw] = processor.imageProcessor.resizedSize(h, w);
    const p = processor.imageProcessor.config.patchSize;
    return [1, rh / p, rw / p] as [number, number, number];
  });
  const counts = grids.map(([t, h, w]) => (t * h * w) / (mergeSize * mergeSize));
  let next = 0;
  const expand = (content: string) =>
    content
      .split(IMAGE_PLACEHOLDER)
      .reduce(
        (acc, piece, i) =>
          i === 0 ? piece : acc + VISION_START + IMAGE_PAD.repeat(counts[next++]!) + VISION_END + piece,
        "",
      );
  const prompt = record.prompt.map((m) => ({ role: m.role, content: expand(m.content) }));

  const tok = processor.tokenizer;
  const encode = (s: string) => tok.encode(s, { addSpecialTokens: false });
  // The prompt, turn by turn (each formatted turn encoded on its own, as LLaMA-Factory does).
  const promptIds: number[] = encode(QWEN2_VL_CHAT.system(record.system ?? QWEN2_VL_CHAT.defaultSystem));
  for (const m of prompt)
    promptIds.push(...encode(m.role === "user" ? QWEN2_VL_CHAT.user(m.content) : QWEN2_VL_CHAT.assistant(m.content)));
  const chosenIds = encode(QWEN2_VL_CHAT.assistant(record.chosen));
  const rejectedIds = encode(QWEN2_VL_CHAT.assistant(record.rejected));

  const [sourceLen, targetLen] = inferSeqlen(
    promptIds.length,
    Math.max(chosenIds.length, rejectedIds.length),
    cutoffLen,
  );
  const padId = processor.imagePadId;
  const imageTokens = promptIds.filter((id) => id === padId).length;
  if (sourceLen < promptIds.length && promptIds.slice(sourceLen).some((id) => id === padId)) {
    throw new DataError([
      `${at}: cutoff_len ${cutoffLen} would cut into the prompt's ${imageTokens} image tokens ` +
        `(the prompt has ${promptIds.length} tokens): raise cutoff_len or lower image_max_pixels`,
    ]);
  }
  const kept = promptIds.slice(0, sourceLen);
  const side = (ids: number[]) => {
    const answer = ids.slice(0, targetLen);
    return { ids: [...kept, ...answer], labels: [...new Array<number>(sourceLen).fill(LABEL_PAD), ...answer] };
  };
  const c = side(chosenIds);
  const r = side(rejectedIds);
  return {
    chosenInputIds: c.ids,
    chosenLabels: c.labels,
    rejectedInputIds: r.ids,
    rejectedLabels: r.labels,
    promptLength: sourceLen,
    truncated: sourceLen < promptIds.length || targetLen < Math.max(chosenIds.length, rejectedIds.length),
    scoreChosen: record.scoreChosen,
    scoreRejected: record.scoreRejected,
    images: record.images,
    imageGridThw: grids,
    imageTokens,
  };
}

/** Every record's pair; problems name the record (file:line). `sizes` maps files to their [width, height]. */
export function tokenizeImageRecords(
  records: ImagePreferenceRecord[],
  processor: Qwen2VLProcessor,
  options: ImageTokenizeOptions = {},
  sizes?: ReadonlyMap<string, { width: number; height: number }>,
): ImageTokenizedPair[] {
  return mapRecords(records, (record) => {
    const known = sizes && record.images.every((f) => sizes.has(f));
    const imageSizes = known
      ? record.images.map((f) => [sizes.get(f)!.width, sizes.get(f)!.height] as [number, number])
      : undefined;
    return tokenizeImagePair(record, processor, options, imageSizes);
  });
}

export interface ImageBatch extends PaddedBatch {
  /** [patches, 3 * 2 * 14 * 14] float32: the chosen rows' images, then the rejected rows', in pad order. */
  pixelValues: Float32Array;
  patchDim: number;
  /** [images, 3]: one grid a image of pixelValues. */
  imageGridThw: [number, number, number][];
}

/**
 * concatenatedBatch plus the images: each sequence reads its own copy, so the B chosen rows'
 * images come first, then the same for the B rejected rows (the order of the pads in [2B, T]).
 */
export function imagePairBatch(
  pairs: ImageTokenizedPair[],
  processor: Qwen2VLProcessor,
  padTokenId: number,
  options: ImageTokenizeOptions = {},
): ImageBatch {
  const batch = concatenatedBatch(pairs, padTokenId);
  const files = pairs.flatMap((p) => p.images);
  const images = files.map((f) => regularizeImage(loadImage(f), options));
  const once = processor.imageProcessor.preprocess(images, files);
  const pixelValues = new Float32Array(once.pixelValues.length * 2);
  pixelValues.set(once.pixelValues, 0);
  pixelValues.set(once.pixelValues, once.pixelValues.length);
  const expected = pairs.flatMap((p) => p.imageGridThw);
  if (JSON.stringify(expected) !== JSON.stringify(once.gridThw)) {
    throw new DataError([`the images' grids changed since tokenising (were the files replaced?)`]);
  }
  return { ...batch, pixelValues, patchDim: once.patchDim, imageGridThw: [...once.gridThw, ...once.gridThw] };
}
