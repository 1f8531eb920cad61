// A tiny, real preference-training setup on disk: a random Llama-style (or GPT-2) checkpoint
// with a byte-level tokenizer, and preference pairs with a pattern a model can learn (the
// chosen answer repeats the prompt's word, the rejected one does not).
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { torch, createModel, saveModel, type CausalLM } from "../../src/index.js";
import type { RawConfig } from "../../src/models/config.js";
import { writeByteLevelTokenizer } from "./tokenizers.js";

/** A tiny random Llama (2 layers of width 32, grouped-query attention, 97 tokens, 64 positions). */
export const TINY_LLAMA: RawConfig = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  vocab_size: 97,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 64,
};

export function tempDir(prefix = "omni-dpo-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * Writes a tiny model directory (config, weights, tokenizer) and returns its path. `vocabSize`
 * below the tokenizer's makes a model whose embedding lacks some of its tokenizer's ids.
 */
export function writeToyModel(
  dir: string,
  options: {
    architecture?: "llama" | "gpt2";
    seed?: number;
    chatTemplate?: "chatml";
    tieWordEmbeddings?: boolean;
    vocabSize?: number;
  } = {},
): string {
  mkdirSync(dir, { recursive: true });
  const tok = writeByteLevelTokenizer(dir, options.chatTemplate ? { chatTemplate: options.chatTemplate } : {});
  torch.manualSeed(options.seed ?? 0);
  const vocabSize = options.vocabSize ?? tok.vocabSize;
  const config =
    options.architecture === "gpt2"
      ? {
          architectures: ["GPT2LMHeadModel"],
          model_type: "gpt2",
          vocab_size: vocabSize,
          n_embd: 32,
          n_layer: 2,
          n_head: 4,
          n_positions: 128,
          bos_token_id: tok.bosTokenId,
          eos_token_id: tok.eosTokenId,
        }
      : {
          architectures: ["LlamaForCausalLM"],
          model_type: "llama",
          vocab_size: vocabSize,
          hidden_size: 32,
          intermediate_size: 64,
          num_hidden_layers: 2,
          num_attention_heads: 4,
          num_key_value_heads: 2,
          max_position_embeddings: 128,
          rms_norm_eps: 1e-6,
          tie_word_embeddings: options.tieWordEmbeddings ?? false,
          bos_token_id: tok.bosTokenId,
          eos_token_id: tok.eosTokenId,
        };
  const model = createModel(config);
  saveModel(model, dir);
  model.dispose();
  return dir;
}

const WORDS = [
  "apple",
  "river",
  "stone",
  "cloud",
  "green",
  "tiger",
  "piano",
  "lemon",
  "north",
  "candle",
  "mirror",
  "garden",
];

export interface ToyPair {
  prompt: string;
  chosen: string;
  rejected: string;
  score_chosen: number;
  score_rejected: number;
}

/** n pairs: "say W" -> chosen " W W", rejected " X" (another word); scores favour chosen. */
export function toyPairs(n: number, seed = 1): ToyPair[] {
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  return Array.from({ length: n }, (_, i) => {
    const w = WORDS[i % WORDS.length];
    const other = WORDS[(i + 1 + Math.floor(next() * (WORDS.length - 1))) % WORDS.length];
    return {
      prompt: `say ${w}:`,
      chosen: ` ${w} ${w}`,
      rejected: ` ${other === w ? "x" : other}`,
      score_chosen: 8 + next(),
      score_rejected: 2 + next(),
    };
  });
}

export function writeJsonl(file: string, rows: unknown[]): string {
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  return file;
}

/** Two rows of token ids for logits checks: one full, one left-padded (ids below every toy vocabulary's size). */
export const PROBE_IDS = [
  [5, 17, 3, 88, 42, 9, 61],
  [0, 0, 0, 12, 7, 33, 2],
];
const PROBE_MASK = [
  [1, 1, 1, 1, 1, 1, 1],
  [0, 0, 0, 1, 1, 1, 1],
];

/** The model's logits [2, 7, V] on the probe batch, as float32 values. */
export function probeLogits(model: CausalLM): Float32Array {
  return torch.noGrad(() =>
    torch.tidy(() => {
      const out = model.forward(torch.tensor(PROBE_IDS, { dtype: "int64" }), {
        attentionMask: torch.tensor(PROBE_MASK, { dtype: "int64" }),
      });
      return out.to("float32").data() as Float32Array;
    }),
  );
}

/** The largest elementwise difference of two equally long arrays. */
export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`maxAbsDiff: lengths ${a.length} and ${b.length} differ`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
