// Qwen2-VL's processor (transformers' Qwen2VLProcessor + AutoProcessor): a tokenizer, the image
// processor and the chat template of one model directory. encode() expands each image's
// <|image_pad|> to as many pads as the image has merged patches, tokenises, and returns tensors
// in the layout the model reads.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { tensor } from "../torch/creation.js";
import type { Tensor } from "../torch/tensor.js";
import { checkRgb, ImageError, readImage, type RgbImage } from "../util/images.js";
import type { ChatMessage } from "./chat-template.js";
import { TokenizerError } from "./errors.js";
import { Qwen2VLImageProcessor, parseImageProcessorConfig, type ProcessedImages } from "./image-processor.js";
import { readJsonObject, readJsonObjectIfExists } from "./json-files.js";
import { Tokenizer, type ApplyChatTemplateOptions } from "./tokenizer.js";

export const PREPROCESSOR_CONFIG = "preprocessor_config.json";
/** The processor's own chat template, as transformers saves it ({"chat_template": "..."}). */
const PROCESSOR_CHAT_TEMPLATE = "chat_template.json";

export const IMAGE_PAD = "<|image_pad|>";
export const VISION_START = "<|vision_start|>";
export const VISION_END = "<|vision_end|>";

/** An image: a PNG or JPEG file, or decoded RGB pixels. */
export type ImageInput = string | RgbImage;

export interface ProcessorInput {
  /** One text or a batch; each <|image_pad|> in it stands for the next image. */
  text: string | readonly string[];
  images?: readonly ImageInput[];
}

/**
 * What the model reads: inputIds and attentionMask int64 [B, T]; pixelValues float32
 * [patches, 1176]; imageGridThw int64 [images, 3].
 */
export interface ProcessorOutput {
  inputIds: Tensor;
  attentionMask: Tensor;
  pixelValues?: Tensor;
  imageGridThw?: Tensor;
}

/** The same as plain arrays (for data building, which keeps ids as numbers). */
export interface ExpandedText {
  /** The text with every image's pad run expanded. */
  text: string;
  images: ProcessedImages;
}

/** Decodes an image input; files are read, raw pixels checked. */
export function loadImage(image: ImageInput, name?: string): RgbImage {
  if (typeof image === "string") return readImage(image);
  if (typeof image !== "object" || image === null) {
    throw new ImageError(`${name ?? "image"}: expected a file path or {width, height, data}, got ${typeof image}`);
  }
  return checkRgb(image, name);
}

export class Qwen2VLProcessor {
  constructor(
    readonly tokenizer: Tokenizer,
    readonly imageProcessor: Qwen2VLImageProcessor,
    /** The processor's chat template (chat_template.json), else the tokenizer's. */
    readonly chatTemplate?: string,
  ) {
    for (const token of [IMAGE_PAD, VISION_START, VISION_END]) {
      if (tokenizer.tokenToId(token) === undefined) {
        throw new TokenizerError(`the tokenizer has no ${token} token: a Qwen2-VL tokenizer has it as an added token`);
      }
    }
  }

  static fromPretrained(dir: string): Qwen2VLProcessor {
    const configFile = join(dir, PREPROCESSOR_CONFIG);
    const json = readJsonObject(configFile, "a Qwen2-VL processor directory needs it");
    const kind = json.image_processor_type;
    if (kind !== undefined && typeof kind === "string" && !/^Qwen2VLImageProcessor(Fast)?$/.test(kind)) {
      throw new TokenizerError(
        `${configFile}: field 'image_processor_type': only Qwen2VLImageProcessor is supported, got "${kind}"`,
      );
    }
    const imageProcessor = new Qwen2VLImageProcessor(parseImageProcessorConfig(json, configFile));
    const tokenizer = Tokenizer.fromPretrainedSync(dir);
    const templateFile = join(dir, PROCESSOR_CHAT_TEMPLATE);
    const templateJson = existsSync(templateFile) ? readJsonObjectIfExists(templateFile) : undefined;
    const template = templateJson?.chat_template;
    if (template !== undefined && typeof template !== "string") {
      throw new TokenizerError(`${templateFile}: field 'chat_template': expected a string`);
    }
    return new Qwen2VLProcessor(tokenizer, imageProcessor, template);
  }

  get imagePadId(): number {
    return this.tokenizer.tokenToId(IMAGE_PAD)!;
  }

  /** Renders messages (content as a string or a list of {type: "text" | "image"} parts) with the chat template. */
  applyChatTemplate(
    messages: readonly ChatMessage[],
    options: Omit<ApplyChatTemplateOptions, "tokenize"> = {},
  ): string {
    const chatTemplate = options.chatTemplate ?? this.chatTemplate;
    return this.tokenizer.applyChatTemplate(messages, { ...options, ...(chatTemplate ? { chatTemplate } : {}) });
  }

  /**
   * Processes the images and expands each <|image_pad|> of `text` to the image's count, in order.
   * A count of pads that differs from the count of images is an error.
   */
  expand(texts: readonly string[], images: readonly ImageInput[]): { texts: string[]; images: ProcessedImages } {
    const pads = texts.reduce((n, t) => n + t.split(IMAGE_PAD).length - 1, 0);
    if (pads !== images.length) {
      throw new TokenizerError(
        `the text has ${pads} ${IMAGE_PAD} placeholder${pads === 1 ? "" : "s"} but ${images.length} ` +
          `image${images.length === 1 ? " was" : "s were"} given: one placeholder stands for one image`,
      );
    }
    const names = images.map((img, i) => (typeof img === "string" ? img : `image ${i}`));
    const decoded = images.map((img, i) => loadImage(img, names[i]));
    const processed = this.imageProcessor.preprocess(decoded, names);
    const merge = this.imageProcessor.config.mergeSize ** 2;
    let next = 0;
    const out = texts.map((text) =>
      text.split(IMAGE_PAD).reduce((acc, piece, i) => {
        if (i === 0) return piece;
        const grid = processed.gridThw[next++]!;
        return acc + IMAGE_PAD.repeat((grid[0] * grid[1] * grid[2]) / merge) + piece;
      }, ""),
    );
    return { texts: out, images: processed };
  }

  /** transformers' processor(text=..., images=..., padding=True, return_tensors="pt"). Batches pad on the right. */
  encode(input: ProcessorInput): ProcessorOutput {
    const texts = typeof input.text === "string" ? [input.text] : [...input.text];
    if (texts.length === 0) throw new TokenizerError("encode: text is empty (give one text or a batch)");
    const { texts: expanded, images } = this.expand(texts, input.images ?? []);
    const ids = expanded.map((t) => this.tokenizer.encode(t));
    const length = Math.max(...ids.map((r) => r.length));
    const pad = this.tokenizer.padTokenId ?? this.tokenizer.eosTokenId ?? 0;
    const flatIds = new BigInt64Array(ids.length * length);
    const mask = new BigInt64Array(ids.length * length);
    ids.forEach((row, b) => {
      for (let i = 0; i < length; i++) {
        flatIds[b * length + i] = BigInt(i < row.length ? row[i]! : pad);
        mask[b * length + i] = i < row.length ? 1n : 0n;
      }
    });
    const out: ProcessorOutput = {
      inputIds: tensor(flatIds, { shape: [ids.length, length] }),
      attentionMask: tensor(mask, { shape: [ids.length, length] }),
    };
    if (images.gridThw.length > 0) {
      out.pixelValues = tensor(images.pixelValues, {
        shape: [images.pixelValues.length / images.patchDim, images.patchDim],
      });
      out.imageGridThw = tensor(BigInt64Array.from(images.gridThw.flat(), BigInt), {
        shape: [images.gridThw.length, 3],
      });
    }
    return out;
  }
}

/** AutoProcessor, as in transformers: the processor a model directory's preprocessor_config.json names. */
export const AutoProcessor = {
  fromPretrained(dir: string): Qwen2VLProcessor {
    const json = readJsonObject(join(dir, PREPROCESSOR_CONFIG), "a vision-language processor directory needs it");
    const kind = json.processor_class;
    if (kind !== undefined && kind !== "Qwen2VLProcessor") {
      throw new TokenizerError(
        `${join(dir, PREPROCESSOR_CONFIG)}: field 'processor_class': only Qwen2VLProcessor is supported, ` +
          `got ${JSON.stringify(kind)}`,
      );
    }
    return Qwen2VLProcessor.fromPretrained(dir);
  },
} as const;
