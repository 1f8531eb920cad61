// Scoring responses with a reward model (a sequence-classification checkpoint) as the reference's
// reward_model_annotate.py does: the (prompt, response) conversation rendered with the reward
// model's own chat template (tokenized, without added special tokens: apply_chat_template's
// way), the score read at the last token by the head, here in batches of similar length.
import { join } from "node:path";
import { loadSequenceClassifier } from "../models/sequence-classification.js";
import type { Device } from "../torch/index.js";
import { Tokenizer } from "../text/index.js";
import { DataError, type Message } from "./records.js";
import type { BatchScorer, ResponseToScore } from "./text-build.js";

export interface RewardModelOptions {
  device?: Device;
  /** Responses per forward pass (default 16). */
  batchSize?: number;
}

/** The token ids the reward model scores for one response. */
export function rewardInput(tokenizer: Tokenizer, item: ResponseToScore): number[] {
  if (tokenizer.chatTemplate !== undefined) {
    const messages: Message[] = typeof item.prompt === "string" ? [{ role: "user", content: item.prompt }] : item.prompt.map((m) => ({ ...m }));
    messages.push({ role: "assistant", content: item.response });
    return tokenizer.applyChatTemplate(messages.map((m) => ({ ...m })), { tokenize: true }).ids;
  }
  // No template: the text the policy continued, then the response. A chat render already holds
  // its special tokens; plain text gets the tokenizer's (Llama's BOS).
  return tokenizer.encode(item.promptText + item.response, { addSpecialTokens: !item.chat });
}

/**
 * A BatchScorer over the reward model in `dir` (config.json naming a *ForSequenceClassification
 * class, score.weight in the weights, a tokenizer). One score per response: num_labels must be 1.
 */
export function rewardModelScorer(dir: string, options: RewardModelOptions = {}): BatchScorer & { dispose(): void } {
  const model = loadSequenceClassifier(dir, { device: options.device });
  try {
    if (model.numLabels !== 1) {
      throw new Error(`${join(dir, "config.json")}: field num_labels: the reward model has ${model.numLabels} labels; a reward model for data build gives one score (num_labels 1)`);
    }
  } catch (e) {
    model.dispose();
    throw e;
  }
  const tokenizer = Tokenizer.fromPretrainedSync(dir);
  const context = model.body.maxPositions;
  return {
    name: `reward model ${dir}`,
    score(items) {
      const problems: string[] = [];
      const rows = items.map((item) => {
        const ids = rewardInput(tokenizer, item);
        if (ids.length > context) problems.push(`${item.at}: prompt + response is ${ids.length} tokens for the reward model, above its context of ${context} (${join(dir, "config.json")})`);
        return ids;
      });
      if (problems.length) throw new DataError(problems);
      return model.scoreTokenLists(rows, { batchSize: options.batchSize ?? 16 }).map((s) => s[0]);
    },
    dispose: () => model.dispose(),
  };
}
