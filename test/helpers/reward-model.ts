// A tiny reward model on disk: a LlamaForSequenceClassification checkpoint (one label, every
// weight random so that scores spread) with a byte-level tokenizer.
import { torch } from "../../src/index.js";
import { createSequenceClassifier, saveSequenceClassifier } from "../../src/models/sequence-classification.js";
import { writeByteLevelTokenizer } from "./tokenizers.js";

export function writeToyRewardModel(dir: string, options: { chatTemplate?: "chatml"; seed?: number } = {}): string {
  const tok = writeByteLevelTokenizer(dir, options.chatTemplate ? { chatTemplate: options.chatTemplate } : {});
  torch.manualSeed(options.seed ?? 5);
  const model = createSequenceClassifier({
    architectures: ["LlamaForSequenceClassification"],
    model_type: "llama",
    vocab_size: tok.vocabSize,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 256,
    rms_norm_eps: 1e-6,
    num_labels: 1,
    pad_token_id: tok.eosTokenId,
    bos_token_id: tok.bosTokenId,
    eos_token_id: tok.eosTokenId,
  });
  torch.noGrad(() =>
    torch.tidy(() => {
      for (const [name, p] of model.namedParameters()) {
        const v = torch.randn(p.shape).mul(0.3);
        model.setParameter(name, /norm/.test(name) ? v.add(1) : v);
      }
    }),
  );
  saveSequenceClassifier(model, dir);
  model.dispose();
  return dir;
}
