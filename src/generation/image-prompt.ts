// A question about images as a vision-language model reads it: one user turn whose content is
// the images (as {type: "image"} parts, which the chat template writes as vision placeholders)
// then the text, rendered with the processor's chat template and a generation prompt, and
// encoded by the processor (each image's pads expanded, its pixels and grid made).
import type * as torch from "../torch/index.js";
import type { ImageInputs } from "../models/qwen2-vl.js";
import type { ImageInput, Qwen2VLProcessor } from "../text/index.js";

export interface ImagePrompt {
  /** The prompt's token ids, image pads expanded. */
  ids: number[];
  /** Pixel values [patches, 1176] and grids [images, 3], on `device`, for generate's prefill. */
  images: ImageInputs;
}

export function imagePrompt(
  processor: Qwen2VLProcessor,
  question: string,
  images: readonly ImageInput[],
  device: torch.Device = "cpu",
): ImagePrompt {
  const content = [...images.map(() => ({ type: "image" })), { type: "text", text: question }];
  const text = processor.applyChatTemplate([{ role: "user", content }], { addGenerationPrompt: true });
  const out = processor.encode({ text, images });
  const ids = (out.inputIds.toArray() as number[][])[0]!; // [T]
  out.inputIds.dispose();
  out.attentionMask.dispose();
  return {
    ids,
    images: { pixelValues: out.pixelValues!.to({ device }), imageGridThw: out.imageGridThw!.to({ device }) },
  };
}
