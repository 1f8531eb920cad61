// What training a vision-language policy (Qwen2-VL) adds to a text run: whether the run is one
// (the model's architecture takes images), the processor and image bounds its pairs are
// tokenised and batched with, and LLaMA-Factory's freezing of the vision tower and the
// projector (requires_grad off, so the optimizer never holds them and they save unchanged).
import { copyFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { AutoProcessor, PREPROCESSOR_CONFIG, type Tokenizer } from "../text/index.js";
import { directoryTakesImages, takesImages } from "../models/registry.js";
import { tokenizerDirectory } from "../models/peft.js";
import type { CausalLM } from "../models/causal-lm.js";
import { readImagePreferenceData, type ImagePreferenceRecord } from "../data/image-records.js";
import { IMAGE_TOKENIZE_DEFAULTS } from "../data/image-tokenize.js";
import type { PairVision } from "../logprobs/pairs.js";
import type { TrainConfig } from "./config.js";

/** The vision tower's parameters (Qwen2-VL's `visual.*`) and, among them, the projector's (the patch merger). */
const VISION_TOWER = "visual.";
const PROJECTOR = "visual.merger.";

/** The run's vision settings: the model directory's processor, and image pairs cut at max_length; null for a text model. */
export function visionOf(config: TrainConfig): PairVision | null {
  if (!directoryTakesImages(config.modelNameOrPath)) return null;
  return {
    processor: AutoProcessor.fromPretrained(tokenizerDirectory(config.modelNameOrPath)),
    options: {
      ...IMAGE_TOKENIZE_DEFAULTS,
      cutoffLen: config.maxLength,
      imageMaxPixels: config.imageMaxPixels,
      imageMinPixels: config.imageMinPixels,
    },
  };
}

/**
 * How a vision-language run cuts its pairs, said when it starts: max_prompt_length and
 * truncation_mode (TRL's text rule, which could split an image's pads) do not apply.
 */
export function imagePairCutting(config: Pick<TrainConfig, "maxLength">): string {
  return (
    `image pairs are cut at max_length (${config.maxLength} tokens) by LLaMA-Factory's rule, the answer kept ` +
    "first; max_prompt_length and truncation_mode apply to text pairs only"
  );
}

/**
 * A reader of image preference files that also collects each image's size (so tokenising decodes
 * nothing again): images under media_dir when set, a dataset_info.json entry's file with its columns.
 */
export function imageRecordReader(
  sizes: Map<string, { width: number; height: number }>,
  config: Pick<TrainConfig, "mediaDir" | "datasetColumns">,
) {
  return async (file: string): Promise<ImagePreferenceRecord[]> => {
    const columns = config.datasetColumns?.[file];
    const data = await readImagePreferenceData(file, {
      ...(config.mediaDir !== null ? { mediaDir: config.mediaDir } : {}),
      ...(columns ? { columns } : {}),
    });
    for (const [k, v] of data.imageSizes) sizes.set(k, v);
    return data.records;
  };
}

/**
 * freeze_vision_tower and freeze_multi_modal_projector, as LLaMA-Factory applies them: the
 * tower without its merger, and the merger, lose requires_grad. Returns the parameters frozen
 * (none for a model that takes no images).
 */
export function freezeVisionParts(
  model: CausalLM,
  config: Pick<TrainConfig, "freezeVisionTower" | "freezeMultiModalProjector">,
): string[] {
  if (!takesImages(model)) return [];
  const frozen: string[] = [];
  for (const [name, p] of model.namedParameters()) {
    if (!name.startsWith(VISION_TOWER)) continue;
    const projector = name.startsWith(PROJECTOR);
    if (projector ? config.freezeMultiModalProjector : config.freezeVisionTower) {
      p.requiresGrad_(false);
      frozen.push(name);
    }
  }
  return frozen;
}

/** The processor's files beside the tokenizer's: a trained vision-language model is used as it came (generate --image, eval). */
const PROCESSOR_FILES = [PREPROCESSOR_CONFIG, "chat_template.json"];

/** What saves a run's tokenizer, and with `vision` the model directory's processor files too. */
export function tokenizerSaver(
  tokenizer: Tokenizer,
  vision: PairVision | null,
  modelDir: string,
): Pick<Tokenizer, "save"> {
  return {
    async save(dir: string) {
      await tokenizer.save(dir);
      if (!vision) return;
      const from = tokenizerDirectory(modelDir);
      for (const name of PROCESSOR_FILES)
        if (existsSync(join(from, name))) copyFileSync(join(from, name), join(dir, name));
    },
  };
}
