// Fixtures for Qwen2-VL processing: a processor directory (a small Qwen2-layout tokenizer with the
// vision tokens, Qwen2-VL-Instruct's chat template, a preprocessor_config.json) and images written
// as PNG and JPEG files, all made by the tests.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as jpeg from "jpeg-js";
import { PNG } from "pngjs";
import { createModel, saveModel, torch } from "../../src/index.js";
import type { RgbImage } from "../../src/util/images.js";
import { tempTokenizerDir, writeByteLevelTokenizer, type WrittenTokenizer } from "./tokenizers.js";

/** Qwen2-VL-Instruct's chat template: string content, or parts of type image / text. */
export const QWEN2_VL_TEMPLATE =
  "{% set image_count = namespace(value=0) %}{% for message in messages %}" +
  "{% if loop.first and message['role'] != 'system' %}" +
  "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}" +
  "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n" +
  "{% else %}{% for content in message['content'] %}" +
  "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}" +
  "{% set image_count.value = image_count.value + 1 %}" +
  "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}" +
  "<|vision_start|><|image_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}" +
  "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

export const VISION_TOKENS = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>"];

/** A processor directory; `preprocessor` fields override the written preprocessor_config.json. */
export function writeQwen2VLProcessor(preprocessor: Record<string, unknown> = {}): WrittenTokenizer {
  const dir = tempTokenizerDir("omni-dpo-vlproc-");
  const tok = writeByteLevelTokenizer(dir, {
    chatTemplate: "chatml",
    extraSpecialTokens: VISION_TOKENS,
    config: { chat_template: QWEN2_VL_TEMPLATE },
  });
  const config = {
    do_convert_rgb: true,
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    image_mean: [0.48145466, 0.4578275, 0.40821073],
    image_processor_type: "Qwen2VLImageProcessor",
    image_std: [0.26862954, 0.26130258, 0.27577711],
    max_pixels: 12845056,
    merge_size: 2,
    min_pixels: 3136,
    patch_size: 14,
    processor_class: "Qwen2VLProcessor",
    resample: 3,
    rescale_factor: 0.00392156862745098,
    temporal_patch_size: 2,
    ...preprocessor,
  };
  writeFileSync(join(dir, "preprocessor_config.json"), JSON.stringify(config, null, 2));
  return { ...tok, chatTemplate: QWEN2_VL_TEMPLATE };
}

/** Deterministic RGB pixels with structure (gradients plus a pattern), so resizing has work to do. */
export function patternImage(width: number, height: number, seed = 1): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = (x * 7 + y * 3 + seed * 11) % 256;
      data[i + 1] = ((x ^ y) * 5 + seed * 29) % 256;
      data[i + 2] = (Math.floor((x * y) / 7) + seed * 53) % 256;
    }
  }
  return { width, height, data };
}

/** One colour throughout. */
export function solidImage(width: number, height: number, rgb: [number, number, number]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(rgb, i * 3);
  return { width, height, data };
}

/** Writes `image` as a PNG; `alpha` (per pixel, 0..255) makes it RGBA. */
export function writePng(file: string, image: RgbImage, alpha?: (x: number, y: number) => number): string {
  const png = new PNG({ width: image.width, height: image.height });
  for (let p = 0; p < image.width * image.height; p++) {
    png.data[p * 4] = image.data[p * 3]!;
    png.data[p * 4 + 1] = image.data[p * 3 + 1]!;
    png.data[p * 4 + 2] = image.data[p * 3 + 2]!;
    png.data[p * 4 + 3] = alpha ? alpha(p % image.width, Math.floor(p / image.width)) : 255;
  }
  writeFileSync(file, PNG.sync.write(png));
  return file;
}

/** Writes `image` as a baseline JPEG at `quality`. */
export function writeJpeg(file: string, image: RgbImage, quality = 90): string {
  const rgba = new Uint8Array(image.width * image.height * 4);
  for (let p = 0; p < image.width * image.height; p++) {
    rgba.set(image.data.subarray(p * 3, p * 3 + 3), p * 4);
    rgba[p * 4 + 3] = 255;
  }
  writeFileSync(file, jpeg.encode({ width: image.width, height: image.height, data: rgba }, quality).data);
  return file;
}

/**
 * A tiny Qwen2-VL model directory the trainer can load: the processor files above, a config with
 * the tokenizer's vision token ids and the processor's patch sizes (14, temporal 2, merge 2), and
 * seeded random weights. Small enough that a training step on a few 56x56 images takes well
 * under a second.
 */
export function writeTinyQwen2VL(seed = 3): { dir: string; written: WrittenTokenizer } {
  const written = writeQwen2VLProcessor();
  const ids = written.specialTokens;
  const config = {
    architectures: ["Qwen2VLForConditionalGeneration"],
    model_type: "qwen2_vl",
    vocab_size: written.vocabSize,
    hidden_size: 64,
    intermediate_size: 96,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    max_position_embeddings: 512,
    tie_word_embeddings: false,
    rope_scaling: { type: "mrope", mrope_section: [2, 3, 3] },
    vision_start_token_id: ids["<|vision_start|>"],
    vision_end_token_id: ids["<|vision_end|>"],
    image_token_id: ids["<|image_pad|>"],
    video_token_id: ids["<|image_pad|>"]! + 100,
    eos_token_id: written.eosTokenId,
    vision_config: {
      depth: 1,
      embed_dim: 32,
      num_heads: 2,
      mlp_ratio: 2,
      in_chans: 3,
      patch_size: 14,
      temporal_patch_size: 2,
      spatial_merge_size: 2,
      hidden_size: 64,
      hidden_act: "quick_gelu",
    },
  };
  torch.manualSeed(seed);
  const model = createModel(config);
  saveModel(model, written.dir);
  model.dispose();
  return { dir: written.dir, written };
}

const COLOURS: Record<string, [number, number, number]> = {
  red: [220, 20, 30],
  green: [20, 200, 40],
  blue: [30, 40, 220],
};

/**
 * A toy image preference only the image decides, in `dir`: a 56x56 PNG of each of three colours
 * and, for each image against each other colour, a pair whose chosen answer names the image's
 * colour (6 pairs; every answer is chosen twice and rejected twice). Written in LLaMA-Factory's
 * ranking format and in TRL's, with scores (Omni-DPO's quality weight reads them).
 */
export function writeColourPairs(dir: string): { lfFile: string; trlFile: string } {
  for (const [name, rgb] of Object.entries(COLOURS)) writePng(join(dir, `${name}.png`), solidImage(56, 56, rgb));
  const names = Object.keys(COLOURS);
  const pairs = names.flatMap((colour) =>
    names
      .filter((other) => other !== colour)
      .map((other) => ({ image: `${colour}.png`, chosen: `It is ${colour}.`, rejected: `It is ${other}.` })),
  );
  const question = "What colour is this?";
  const jsonl = (file: string, rows: unknown[]) => {
    writeFileSync(file, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
    return file;
  };
  const lfFile = jsonl(
    join(dir, "lf.jsonl"),
    pairs.map((p) => ({
      instruction: `<image>${question}`,
      chosen: p.chosen,
      rejected: p.rejected,
      images: [p.image],
      score_chosen: 9,
      score_rejected: 2,
    })),
  );
  const trlFile = jsonl(
    join(dir, "trl.jsonl"),
    pairs.map((p) => ({
      images: [p.image],
      prompt: [{ role: "user", content: [{ type: "image" }, { type: "text", text: question }] }],
      chosen: [{ role: "assistant", content: [{ type: "text", text: p.chosen }] }],
      rejected: [{ role: "assistant", content: [{ type: "text", text: p.rejected }] }],
      score_chosen: 9,
      score_rejected: 2,
    })),
  );
  return { lfFile, trlFile };
}
