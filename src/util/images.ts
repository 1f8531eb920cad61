// Images as 8-bit RGB pixels: decoding PNG and JPEG files (pure JavaScript: pngjs, jpeg-js) and
// checking raw pixels handed in by a caller. Vision processors start from this one layout.
import { readFileSync } from "node:fs";
import * as jpeg from "jpeg-js";
import { PNG } from "pngjs";

/** 8-bit RGB pixels, row-major, 3 bytes a pixel: data.length === width * height * 3. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** An image that cannot be read or decoded, naming the file (or what was passed). */
export class ImageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ImageError";
  }
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47];
const JPEG_MAGIC = [0xff, 0xd8, 0xff];

function startsWith(bytes: Uint8Array, magic: number[]): boolean {
  return magic.every((b, i) => bytes[i] === b);
}

/**
 * Decodes PNG or JPEG bytes (told apart by their signature, not the name) to RGB. Transparent
 * pixels are laid over white, as transformers' convert_to_rgb does; grey and palette images
 * become RGB; 16-bit PNGs are scaled to 8 bits. `name` goes into the errors.
 */
export function decodeImage(bytes: Uint8Array, name = "image"): RgbImage {
  if (startsWith(bytes, PNG_MAGIC)) return decodePng(bytes, name);
  if (startsWith(bytes, JPEG_MAGIC)) return decodeJpeg(bytes, name);
  throw new ImageError(`${name}: not a PNG or JPEG image (its first bytes are neither signature)`);
}

/** Reads and decodes an image file; a missing, unreadable or undecodable file is an ImageError naming it. */
export function readImage(file: string): RgbImage {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === "ENOENT" ? "no such file" : err.code === "EISDIR" ? "a directory" : err.message;
    throw new ImageError(`${file}: cannot read the image (${why})`, { cause: e });
  }
  return decodeImage(bytes, file);
}

function decodePng(bytes: Uint8Array, name: string): RgbImage {
  let png: { width: number; height: number; data: Uint8Array };
  try {
    // pngjs gives RGBA at 8 bits whatever the colour type and depth.
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    throw new ImageError(`${name}: cannot decode the PNG image (${(e as Error).message})`, { cause: e });
  }
  return rgbaOverWhite(png.width, png.height, png.data);
}

function decodeJpeg(bytes: Uint8Array, name: string): RgbImage {
  try {
    const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false });
    return checkRgb(img, name);
  } catch (e) {
    if (e instanceof ImageError) throw e;
    throw new ImageError(`${name}: cannot decode the JPEG image (${(e as Error).message})`, { cause: e });
  }
}

/** RGBA to RGB, alpha-composited over white: c' = round(c * a / 255 + 255 * (1 - a / 255)). */
function rgbaOverWhite(width: number, height: number, rgba: Uint8Array): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    const a = rgba[p * 4 + 3]!;
    for (let c = 0; c < 3; c++) {
      const v = rgba[p * 4 + c]!;
      // PIL's alpha_composite over an opaque white background, in its integer arithmetic.
      data[p * 3 + c] = a === 255 ? v : blendOverWhite(v, a);
    }
  }
  return { width, height, data };
}

/** PIL's Image.alpha_composite of (v, a) over opaque white, in its 7-bit fixed point (AlphaComposite.c). */
function blendOverWhite(v: number, a: number): number {
  // Over an opaque destination the weights are a/255 and (255-a)/255, scaled by 2^7; the sum is
  // divided by 255 with PIL's rounding shift ((x >> 8) + x) >> 8 before dropping the 7 bits.
  const x = (v * a + 255 * (255 - a)) * 128 + (0x80 << 7);
  return (((x >> 8) + x) >> 8) >> 7;
}

/** Checks that `image` is well-formed RGB: positive integer sizes, 3 bytes a pixel. `name` goes into the errors. */
export function checkRgb(image: { width: number; height: number; data: ArrayLike<number> }, name = "image"): RgbImage {
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new ImageError(`${name}: width and height must be positive integers, got ${width}x${height}`);
  }
  if (!(data instanceof Uint8Array) && !(data instanceof Uint8ClampedArray)) {
    throw new ImageError(`${name}: data must be a Uint8Array of RGB bytes`);
  }
  if (data.length !== width * height * 3) {
    throw new ImageError(
      `${name}: data holds ${data.length} bytes, a ${width}x${height} RGB image needs ${width * height * 3}`,
    );
  }
  return { width, height, data: data instanceof Uint8Array ? data : new Uint8Array(data.buffer) };
}
