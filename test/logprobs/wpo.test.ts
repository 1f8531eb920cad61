// WPO's answer weights (TRL's use_weighting) from the trainer's chunked log-prob path equal
// TRL's formula computed by PyTorch from the full logits (float64, 1e-9), with chunks that split
// answers; the token counts it returns are the answers' lengths. Skips, with the reason
// printed, where no Python with torch exists.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { torch, loadModel, Tokenizer } from "../../src/index.js";
import { concatenatedBatch, tokenizeRecords } from "../../src/data/tokenize.js";
import { readPreferenceFile } from "../../src/data/readers.js";
import { batchTensors, concatenatedForward } from "../../src/logprobs/forward.js";
import { runPythonJson } from "../../src/util/python.js";
import { skipUnless } from "../helpers/requirements.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";

const REFERENCE = fileURLToPath(new URL("../../../test/logprobs/reference_wpo.py", import.meta.url));
const needsTorch = skipUnless("torch");

let root: string;
before(() => {
  root = tempDir("omni-dpo-wpo-");
});
after(() => rmSync(root, { recursive: true, force: true }));

test(
  "WPO weights and LD-DPO log-probs from the chunked path equal TRL's, from full logits",
  { skip: needsTorch },
  async () => {
    torch.setNumThreads(1);
    const dir = writeToyModel(join(root, "model"));
    const tokenizer = Tokenizer.fromPretrainedSync(dir);
    const records = await readPreferenceFile(writeJsonl(join(root, "pairs.jsonl"), toyPairs(4)));
    const pairs = tokenizeRecords(records, tokenizer, {
      maxLength: 64,
      maxPromptLength: 32,
      truncationMode: "keep_end",
    });
    const batch = concatenatedBatch(pairs, tokenizer.padTokenId ?? tokenizer.eosTokenId!);
    const model = loadModel(dir, { dtype: "float64" });
    try {
      torch.noGrad(() =>
        torch.tidy(() => {
          const { inputIds, attentionMask } = batchTensors(batch);
          const logits = model.forward(inputIds, { attentionMask }).toArray(); // [2B, T, V]
          const py = runPythonJson<{ weights: number[]; sums: number[]; lengths: number[]; ld_sums: number[] }>(
            REFERENCE,
            { logits, labels: batch.labels, ld_alpha: 0.3 },
            { file: true },
          );
          for (const chunkRows of [5, 1024]) {
            const out = concatenatedForward(model, batch, false, { wpoWeights: true, chunkRows });
            const got = [
              ...(out.chosenWeights!.toArray() as number[]),
              ...(out.rejectedWeights!.toArray() as number[]),
            ];
            got.forEach((w, i) =>
              assert.ok(
                Math.abs(w - py.weights[i]) <= 1e-9 * Math.max(1, py.weights[i]),
                `chunks of ${chunkRows}: weight ${i}: ${w} vs ${py.weights[i]}`,
              ),
            );
            const sums = [...(out.chosen.toArray() as number[]), ...(out.rejected.toArray() as number[])];
            sums.forEach((v, i) =>
              assert.ok(Math.abs(v - py.sums[i]) <= 1e-9 * Math.max(1, Math.abs(py.sums[i])), `summed log-prob ${i}`),
            );
            assert.deepEqual(
              [...(out.chosenLengths.toArray() as number[]), ...(out.rejectedLengths.toArray() as number[])],
              py.lengths,
            );
            // LD-DPO (ld_alpha 0.3): the tokens past the pair's shorter answer count 0.3 times.
            const ld = concatenatedForward(model, batch, false, { ldAlpha: 0.3, chunkRows });
            const ldSums = [...(ld.chosen.toArray() as number[]), ...(ld.rejected.toArray() as number[])];
            ldSums.forEach((v, i) =>
              assert.ok(
                Math.abs(v - py.ld_sums[i]) <= 1e-9 * Math.max(1, Math.abs(py.ld_sums[i])),
                `chunks of ${chunkRows}: LD-DPO log-prob ${i}: ${v} vs ${py.ld_sums[i]}`,
              ),
            );
          }
          // Not vacuous: some answers are longer than their pair's other answer, so LD-DPO changes their sums.
          assert.ok(
            py.ld_sums.some((v, i) => Math.abs(v - py.sums[i]) > 1e-3),
            "no answer has a tail past the shorter one",
          );
          // The weights are positive and differ between answers (a constant would hide a wrong formula).
          assert.ok(py.weights.every((w) => w > 0) && new Set(py.weights).size > 1);
        }),
      );
    } finally {
      model.dispose();
    }
  },
);
