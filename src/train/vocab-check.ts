// The training data's token ids against the models they meet: the policy's embedding and the
// reference's (ref_model, which may have been given with another vocabulary). Checked from the
// models' config.json before anything is loaded or written (src/models/vocab.ts).
import type { TokenizedPair } from "../data/tokenize.js";
import { REFERENCE_LOSSES } from "../objectives/index.js";
import { checkTokenIds, modelVocab, pairTokenRows, type TokenRow } from "../models/vocab.js";
import type { TrainConfig } from "./config.js";

export function checkTrainingVocab(
  config: TrainConfig,
  data: { train: TokenizedPair[]; eval: TokenizedPair[] },
  padTokenId: number,
): void {
  function* rows(): Generator<TokenRow> {
    yield* pairTokenRows(data.train, (i) => `pair ${i + 1} of the training split`);
    yield* pairTokenRows(data.eval, (i) => `pair ${i + 1} of the evaluation split`);
    yield { at: config.paddingValue !== null ? "padding_value" : "the pad token", ids: [padTokenId] };
  }
  checkTokenIds(rows(), modelVocab(config.modelNameOrPath), config.modelNameOrPath);
  // A loss without a reference (SimPO) never reads ref_model.
  if (config.refModel !== null && REFERENCE_LOSSES.has(config.objective.lossType)) {
    checkTokenIds(rows(), modelVocab(config.refModel), config.modelNameOrPath);
  }
}
