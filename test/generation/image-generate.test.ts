// `omni-dpo generate --image`: a question about an image goes through Qwen2-VL's chat template and
// processor and is answered greedily; the answer equals an uncached greedy loop over the model's
// full forward, with the prompt written out by hand from the template. Misuse is refused by name.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { torch } from "../../src/index.js";
import { loadModel } from "../../src/models/auto.js";
import type { CausalLM } from "../../src/models/causal-lm.js";
import { AutoProcessor, loadImage } from "../../src/text/index.js";
import { runCli } from "../helpers/serving.js";
import { tempDir, writeToyModel } from "../helpers/toy.js";
import { solidImage, writePng, writeTinyQwen2VL } from "../helpers/qwen2-vl.js";

torch.setNumThreads(1);
const root = tempDir("omni-dpo-image-generate-");
after(() => rmSync(root, { recursive: true, force: true }));
const vl = writeTinyQwen2VL(9);
const image = writePng(join(root, "red.png"), solidImage(56, 84, [220, 20, 30]));
const QUESTION = "What colour is this?";
const MAX_NEW = 6;

/** Greedy decoding by full forwards (no cache): the oracle for the CLI's cached generation. */
function greedyUncached(model: CausalLM, prompt: number[], pixels: torch.Tensor, grid: torch.Tensor, eos: number) {
  const ids = [...prompt];
  for (let step = 0; step < MAX_NEW; step++) {
    const next = torch.tidy(() => {
      const logits = model.forward(torch.tensor([ids], { dtype: "int64" }), {
        pixelValues: pixels,
        imageGridThw: grid,
      } as never); // [1, T, V]
      return logits
        .select(1, ids.length - 1)
        .argmax(-1)
        .item() as number;
    });
    ids.push(next);
    if (next === eos) break;
  }
  return ids.slice(prompt.length);
}

test("generate --image answers through the chat template and processor, as an uncached greedy loop does", async () => {
  const r = await runCli([
    "generate",
    "--model",
    vl.dir,
    "--image",
    image,
    "--prompt",
    QUESTION,
    "--max-new-tokens",
    String(MAX_NEW),
    "--json",
  ]);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim()) as { completion: string; tokens: number; images: string[] };

  const processor = AutoProcessor.fromPretrained(vl.dir);
  const processed = processor.imageProcessor.preprocess([loadImage(image)], [image]);
  // 56 wide, 84 high -> 6 rows of 4 patches -> 6 merged pads.
  assert.deepEqual(processed.gridThw, [[1, 6, 4]]);
  const prompt =
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n" +
    `<|vision_start|>${"<|image_pad|>".repeat(6)}<|vision_end|>${QUESTION}<|im_end|>\n<|im_start|>assistant\n`;
  const ids = processor.tokenizer.encode(prompt, { addSpecialTokens: false });
  const model = loadModel(vl.dir) as CausalLM;
  const patches = processed.pixelValues.length / processed.patchDim;
  const pixels = torch.tensor(processed.pixelValues, { shape: [patches, processed.patchDim] }); // [24, 1176]
  const grid = torch.tensor(processed.gridThw, { dtype: "int64" });
  const expected = greedyUncached(model, ids, pixels, grid, vl.written.eosTokenId!);
  model.dispose();
  assert.equal(out.tokens, expected.length, `expected ids ${expected}`);
  assert.equal(out.completion, processor.tokenizer.decode(expected, { skipSpecialTokens: true }));
  assert.deepEqual(out.images, [image]);
});

test("generate --image refuses a text-only model, a missing image, and --endpoint, by name", async () => {
  const text = writeToyModel(join(root, "text-model"));
  const refused = await runCli(["generate", "--model", text, "--image", image, "--prompt", "hi"]);
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /--image: .*takes no images/);
  const missing = await runCli(["generate", "--model", vl.dir, "--image", join(root, "nope.png"), "--prompt", "hi"]);
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /nope\.png/);
  const endpoint = await runCli([
    "generate",
    "--endpoint",
    "http://127.0.0.1:9",
    "--endpoint-model",
    "m",
    "--image",
    image,
    "--prompt",
    "hi",
  ]);
  assert.equal(endpoint.status, 2);
  assert.match(endpoint.stderr, /--image works with --model, not --endpoint/);
});
