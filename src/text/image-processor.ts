// Qwen2-VL's image processor (transformers' Qwen2VLImageProcessor): each image is resized so both
// sides are multiples of patch_size * merge_size (smart resize), rescaled to [0, 1], normalised
// with the CLIP mean and std, repeated over the temporal patch, and cut into flattened patches in
// the order the vision tower reads them (2x2 merge blocks together).
import { ImageError, type RgbImage } from "../util/images.js";
import { TokenizerError } from "./errors.js";
import type { JsonObject } from "./json-files.js";

/** The settings of a preprocessor_config.json, with transformers' defaults. */
export interface ImageProcessorConfig {
  doResize: boolean;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
  minPixels: number;
  maxPixels: number;
  patchSize: number;
  temporalPatchSize: number;
  mergeSize: number;
}

export const OPENAI_CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

export const QWEN2_VL_IMAGE_DEFAULTS: ImageProcessorConfig = {
  doResize: true,
  doRescale: true,
  rescaleFactor: 1 / 255,
  doNormalize: true,
  imageMean: OPENAI_CLIP_MEAN,
  imageStd: OPENAI_CLIP_STD,
  minPixels: 56 * 56,
  maxPixels: 28 * 28 * 1280,
  patchSize: 14,
  temporalPatchSize: 2,
  mergeSize: 2,
};

/** PIL's resampling filter numbers; only bicubic (3), Qwen2-VL's, is implemented. */
const PIL_BICUBIC = 3;

/** Reads preprocessor_config.json's fields (`file` names it in errors); unknown fields are ignored. */
export function parseImageProcessorConfig(json: JsonObject, file: string): ImageProcessorConfig {
  const out: ImageProcessorConfig = { ...QWEN2_VL_IMAGE_DEFAULTS };
  const bad = (key: string, expected: string) =>
    new TokenizerError(`${file}: field '${key}': expected ${expected}, got ${JSON.stringify(json[key])}`);
  const bool = (key: string, fallback: boolean) => {
    const v = json[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "boolean") throw bad(key, "true or false");
    return v;
  };
  const positive = (key: string, fallback: number, integer: boolean, value = json[key]) => {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value) || (integer && !Number.isInteger(value)))
      throw bad(key, integer ? "a positive integer" : "a positive number");
    return value;
  };
  const triple = (key: string, fallback: [number, number, number]) => {
    const v = json[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v === "number") return [v, v, v] as [number, number, number];
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === "number" && Number.isFinite(x)))
      throw bad(key, "three numbers (one a channel)");
    return v as [number, number, number];
  };
  const resample = json.resample;
  if (resample !== undefined && resample !== null && resample !== PIL_BICUBIC) {
    throw new TokenizerError(
      `${file}: field 'resample': only bicubic (3) is supported, got ${JSON.stringify(resample)}`,
    );
  }
  if (json.do_convert_rgb === false) {
    throw new TokenizerError(`${file}: field 'do_convert_rgb': false is not supported (images are always RGB here)`);
  }
  out.doResize = bool("do_resize", out.doResize);
  out.doRescale = bool("do_rescale", out.doRescale);
  out.doNormalize = bool("do_normalize", out.doNormalize);
  out.rescaleFactor = positive("rescale_factor", out.rescaleFactor, false);
  out.imageMean = triple("image_mean", out.imageMean);
  out.imageStd = triple("image_std", out.imageStd);
  if (out.imageStd.some((s) => s === 0)) throw bad("image_std", "non-zero numbers");
  // Newer files keep the pixel bounds in `size` (shortest_edge / longest_edge hold min / max pixels).
  const size = (json.size ?? {}) as Record<string, unknown>;
  out.minPixels = positive("min_pixels", out.minPixels, true, json.min_pixels ?? size.min_pixels ?? size.shortest_edge);
  out.maxPixels = positive("max_pixels", out.maxPixels, true, json.max_pixels ?? size.max_pixels ?? size.longest_edge);
  out.patchSize = positive("patch_size", out.patchSize, true);
  out.temporalPatchSize = positive("temporal_patch_size", out.temporalPatchSize, true);
  out.mergeSize = positive("merge_size", out.mergeSize, true);
  if (out.minPixels > out.maxPixels) {
    throw new TokenizerError(`${file}: min_pixels (${out.minPixels}) is above max_pixels (${out.maxPixels})`);
  }
  return out;
}

/**
 * The size an image is resized to: both sides multiples of `factor`, the pixel count within
 * [minPixels, maxPixels], the aspect ratio kept as closely as that allows (transformers' smart_resize).
 * Returns [height, width].
 */
export function smartResize(
  height: number,
  width: number,
  factor = 28,
  minPixels = QWEN2_VL_IMAGE_DEFAULTS.minPixels,
  maxPixels = QWEN2_VL_IMAGE_DEFAULTS.maxPixels,
): [number, number] {
  if (height < 10 || width < 10) {
    throw new ImageError(`the image is ${width}x${height}: both sides must be at least 10 pixels`);
  }
  if (Math.max(height, width) / Math.min(height, width) > 200) {
    throw new ImageError(`the image is ${width}x${height}: its aspect ratio must not exceed 200`);
  }
  // Python's round() rounds halves to even; the ratios here are rarely exact halves, but match it.
  let h = roundHalfEven(height / factor) * factor;
  let w = roundHalfEven(width / factor) * factor;
  if (h * w > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    h = Math.floor(height / beta / factor) * factor;
    w = Math.floor(width / beta / factor) * factor;
  } else if (h * w < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    h = Math.ceil((height * beta) / factor) * factor;
    w = Math.ceil((width * beta) / factor) * factor;
  }
  return [h, w];
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// ---------------------------------------------------------------------------------------------
// Bicubic resampling as PIL does it for 8-bit images (Image.resize(..., BICUBIC)): a separable
// filter, horizontal pass first, Keys' cubic with a = -0.5 widened by the scale when shrinking
// (antialiasing), weights in 22-bit fixed point, and each pass rounded and clipped to 8 bits.

const PRECISION_BITS = 32 - 8 - 2;

function cubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Per output index: the first input index, the count, and fixed-point weights (ksize a row). */
interface Taps {
  first: Int32Array;
  count: Int32Array;
  weights: Int32Array;
  ksize: number;
}

function taps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const n = Math.min(Math.trunc(center + support + 0.5), inSize) - lo;
    let sum = 0;
    for (let x = 0; x < n; x++) {
      k[x] = cubic((x + lo - center + 0.5) / filterScale);
      sum += k[x]!;
    }
    for (let x = 0; x < n; x++) {
      const w = sum !== 0 ? k[x]! / sum : k[x]!;
      weights[xx * ksize + x] = Math.trunc(w < 0 ? -0.5 + w * (1 << PRECISION_BITS) : 0.5 + w * (1 << PRECISION_BITS));
    }
    first[xx] = lo;
    count[xx] = n;
  }
  return { first, count, weights, ksize };
}

function clip8(sum: number): number {
  const v = sum >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** One pass along an axis: `stride` steps between taps, `lines` lines of `outSize` pixels. */
function resamplePass(
  src: Uint8Array,
  srcWidth: number,
  dstWidth: number,
  height: number,
  t: Taps,
  horizontal: boolean,
): Uint8Array {
  const dst = new Uint8Array(dstWidth * height * 3);
  const half = 1 << (PRECISION_BITS - 1);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < dstWidth; x++) {
      const o = horizontal ? x : y; // the output index along the resampled axis
      const lo = t.first[o]!;
      const n = t.count[o]!;
      const base = o * t.ksize;
      let r = half;
      let g = half;
      let b = half;
      for (let i = 0; i < n; i++) {
        const w = t.weights[base + i]!;
        const p = horizontal ? (y * srcWidth + lo + i) * 3 : ((lo + i) * srcWidth + x) * 3;
        r += src[p]! * w;
        g += src[p + 1]! * w;
        b += src[p + 2]! * w;
      }
      const q = (y * dstWidth + x) * 3;
      dst[q] = clip8(r);
      dst[q + 1] = clip8(g);
      dst[q + 2] = clip8(b);
    }
  }
  return dst;
}

/** Resizes RGB pixels to width x height with PIL's 8-bit bicubic filter. */
export function resizeBicubic(image: RgbImage, width: number, height: number): RgbImage {
  let data = image.data;
  let w = image.width;
  if (width !== image.width) {
    data = resamplePass(data, w, width, image.height, taps(image.width, width), true);
    w = width;
  }
  if (height !== image.height) {
    data = resamplePass(data, w, w, height, taps(image.height, height), false);
  }
  return { width, height, data };
}

// ---------------------------------------------------------------------------------------------

/** The processor's output for a list of images: flattened patches and each image's grid. */
export interface ProcessedImages {
  /** [sum(t*h*w), 3 * temporalPatchSize * patchSize^2], row-major: one row a patch. */
  pixelValues: Float32Array;
  /** Patch columns: 3 * temporalPatchSize * patchSize^2 (1176 for Qwen2-VL). */
  patchDim: number;
  /** [t, h, w] in patches, one a image. */
  gridThw: [number, number, number][];
}

/** Qwen2VLImageProcessor over RGB images (decoded already). */
export class Qwen2VLImageProcessor {
  readonly config: ImageProcessorConfig;

  constructor(config: Partial<ImageProcessorConfig> = {}) {
    this.config = { ...QWEN2_VL_IMAGE_DEFAULTS, ...config };
  }

  /** The [height, width] an image of this size is resized to. */
  resizedSize(height: number, width: number): [number, number] {
    const c = this.config;
    if (!c.doResize) return [height, width];
    return smartResize(height, width, c.patchSize * c.mergeSize, c.minPixels, c.maxPixels);
  }

  /** How many <|image_pad|> tokens an image of this size stands for: (h * w) / mergeSize^2 patches. */
  imageTokenCount(height: number, width: number): number {
    const [h, w] = this.resizedSize(height, width);
    const c = this.config;
    return ((h / c.patchSize) * (w / c.patchSize)) / (c.mergeSize * c.mergeSize);
  }

  /** Patches and grids of `images`, in order (`names` label errors, e.g. the file of each image). */
  preprocess(images: readonly RgbImage[], names: readonly string[] = []): ProcessedImages {
    const c = this.config;
    const patchDim = 3 * c.temporalPatchSize * c.patchSize * c.patchSize;
    const parts: Float32Array[] = [];
    const gridThw: [number, number, number][] = [];
    images.forEach((image, i) => {
      const name = names[i] ?? `image ${i}`;
      let resized: RgbImage;
      try {
        const [h, w] = this.resizedSize(image.height, image.width);
        const unit = c.patchSize * c.mergeSize;
        if (h % unit !== 0 || w % unit !== 0) {
          throw new ImageError(`${h}x${w} is not a multiple of ${unit} (do_resize is off)`);
        }
        resized = h === image.height && w === image.width ? image : resizeBicubic(image, w, h);
      } catch (e) {
        if (e instanceof ImageError) throw new ImageError(`${name}: ${e.message}`, { cause: e });
        throw e;
      }
      const { patches, grid } = this.patchify(this.normalise(resized), resized.height, resized.width);
      parts.push(patches);
      gridThw.push(grid);
    });
    const total = parts.reduce((n, p) => n + p.length, 0);
    const pixelValues = new Float32Array(total);
    let at = 0;
    for (const p of parts) {
      pixelValues.set(p, at);
      at += p.length;
    }
    return { pixelValues, patchDim, gridThw };
  }

  /**
   * Channel-first float32 planes [3, H, W]: rescale (in float64, then float32, as transformers'
   * rescale) and (x - mean) / std in float32, as its normalize.
   */
  private normalise(image: RgbImage): Float32Array {
    const c = this.config;
    const n = image.width * image.height;
    const out = new Float32Array(3 * n);
    const mean = c.imageMean.map(Math.fround);
    const std = c.imageStd.map(Math.fround);
    for (let p = 0; p < n; p++) {
      for (let ch = 0; ch < 3; ch++) {
        let v = image.data[p * 3 + ch]!;
        if (c.doRescale) v = Math.fround(v * c.rescaleFactor);
        if (c.doNormalize) v = Math.fround(Math.fround(v - mean[ch]!) / std[ch]!);
        out[ch * n + p] = v;
      }
    }
    return out;
  }

  /**
   * [3, H, W] planes to patch rows. Row order: merge blocks row by row, within a block its
   * mergeSize x mergeSize patches row by row; columns: (channel, temporal, patch row, patch col).
   * A still image fills every temporal slot with itself.
   */
  private patchify(
    planes: Float32Array,
    height: number,
    width: number,
  ): { patches: Float32Array; grid: [number, number, number] } {
    const { patchSize: p, mergeSize: m, temporalPatchSize: tps } = this.config;
    const gh = height / p;
    const gw = width / p;
    const patchDim = 3 * tps * p * p;
    const patches = new Float32Array(gh * gw * patchDim);
    const plane = height * width;
    let row = 0;
    for (let bh = 0; bh < gh / m; bh++) {
      for (let bw = 0; bw < gw / m; bw++) {
        for (let mh = 0; mh < m; mh++) {
          for (let mw = 0; mw < m; mw++) {
            const y0 = (bh * m + mh) * p;
            const x0 = (bw * m + mw) * p;
            let col = row * patchDim;
            for (let ch = 0; ch < 3; ch++) {
              for (let t = 0; t < tps; t++) {
                for (let py = 0; py < p; py++) {
                  const src = ch * plane + (y0 + py) * width + x0;
                  patches.set(planes.subarray(src, src + p), col);
                  col += p;
                }
              }
            }
            row++;
          }
        }
      }
    }
    return { patches, grid: [1, gh, gw] };
  }
}
