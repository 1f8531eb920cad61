// Scoring responses with a reward model (a sequence-classification checkpoint) as the reference's
// reward_model_annotate.py does: the (prompt, response) conversation rendered with the reward
// model's own chat template (tokenized, without added special tokens: apply_chat_template's
// way), the score read at the last token by the head, here in batches of similar length.
import { join } from "node:path";
import { loadSequenceClassifier } from "../models/sequence-classification.js";
import type { Device } from "../torch/index.js";
import { Tokenizer } from "../text/index.js";
import { checkTokenIds } from "../models/vocab.js";
import type { Message } from "./records.js";
import type { BatchScorer, ResponseToScore } from "./text-build.js";

export interface RewardModelOptions {
  device?: Device;
  /** Responses per forward pass (default 16). */
  batchSize?: number;
}

/** The token ids the reward model scores for one response. */
export function rewardInput(tokenizer: Tokenizer, item: ResponseToScore): number[] {
  if (tokenizer.chatTemplate !== undefined) {
    const messages: Message[] =
      typeof item.prompt === "string" ? [{ role: "user", content: item.prompt }] : item.prompt.map((m) => ({ ...m }));
    messages.push({ role: "assistant", content: item.response });
    return tokenizer.applyChatTemplate(
      messages.map((m) => ({ ...m })),
      { tokenize: true },
    ).ids;
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
      throw new Error(
        `${join(dir, "config.json")}: field num_labels: the reward model has ${model.numLabels} labels; a reward model for data build gives one score (num_labels 1)`,
      );
    }
  } catch (e) {
    model.dispose();
    throw e;
  }
  const tokenizer = Tokenizer.fromPretrainedSync(dir);
  const context = model.body.maxPositions;
  const vocab = { size: model.vocabSize, file: join(dir, "config.json") };
  return {
    name: `reward model ${dir}`,
    context: {
      tokens: context,
      file: join(dir, "config.json"),
      promptTokens(item) {
        // Called for each prompt before sampling, so a tokenizer that does not fit the model fails first.
        const ids = rewardInput(tokenizer, item);
        checkTokenIds([{ at: `${item.at}: the prompt`, ids }], vocab, dir);
        return ids.length;
      },
    },
    score(items) {
      const rows = items.map((item) => rewardInput(tokenizer, item));
      checkTokenIds(
        rows.map((ids, i) => ({ at: `${items[i].at} (response to score)`, ids })),
        vocab,
        dir,
      );
      // Sampling is capped to fit (text-build.ts), but the reward model's tokenizer may count a
      // response longer than the policy's did: such a row is cut at the context and counted,
      // rather than losing the build's samples. A cut keeps the start, as TRL's truncation does.
      return model
        .scoreTokenLists(
          rows.map((ids, i) => {
            if (ids.length <= context) return ids;
            items[i].truncatedTo = context;
            return ids.slice(0, context);
          }),
          { batchSize: options.batchSize ?? 16 },
        )
        .map((s) => s[0]);
    },
    dispose: () => model.dispose(),
  };
}
