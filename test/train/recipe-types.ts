import type { Recipe } from "../../src/index.js";
const ok: Recipe = {
  model_name_or_path: "m",
  output_dir: "o",
  use_peft: true,
  lora_r: 8,
  loss_type: "sigmoid",
  beta: 0.1,
  uni_dpo_qual_eta: 0.5,
  torch_dtype: "bfloat16",
  dataset_mixer: { "a.jsonl": 1 },
  lora_target_modules: "all-linear",
};
// @ts-expect-error misspelt key
const typo: Recipe = { model_name_or_path: "m", output_dir: "o", learnig_rate: 1e-5 };
// @ts-expect-error wrong type
const wrong: Recipe = { model_name_or_path: "m", output_dir: "o", learning_rate: "fast" };
// @ts-expect-error enum value
const badDtype: Recipe = { model_name_or_path: "m", output_dir: "o", torch_dtype: "fp8" };
// @ts-expect-error misspelt objective key
const badOpt: Recipe = { model_name_or_path: "m", output_dir: "o", uni_dpo_qual_etaa: 1 };
// @ts-expect-error required key missing
const missing: Recipe = { model_name_or_path: "m" };
export { ok, typo, wrong, badDtype, badOpt, missing };
