// gradeMath against the reference's verdicts (reference_verdicts.py) on the same cases:
//   node scripts/math-grader/compare.mjs cases.jsonl verdicts.jsonl
// prints each disagreement and the agreement of verdicts and of extracted/gold answers.
import { readFileSync } from "node:fs";
import { gradeMath } from "../../dist/src/index.js";

const read = (f) =>
  readFileSync(f, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
const [cases, verdicts] = [read(process.argv[2]), read(process.argv[3])];
if (cases.length !== verdicts.length) throw new Error(`${cases.length} cases but ${verdicts.length} verdicts`);
let verdictsAgree = 0;
let answersAgree = 0;
const t0 = Date.now();
cases.forEach((c, i) => {
  const ours = gradeMath(c.output, c.example ?? c.answer, { dataset: c.dataset });
  const ref = verdicts[i];
  if (ours.correct === ref.correct) verdictsAgree++;
  if (ours.extracted === ref.extracted && ours.gold === ref.gold) answersAgree++;
  if (ours.correct !== ref.correct || ours.extracted !== ref.extracted || ours.gold !== ref.gold) {
    console.log(
      `#${i} ${JSON.stringify(c.output).slice(0, 80)}\n  ours ${JSON.stringify(ours)}\n  ref  ${JSON.stringify(ref)}`,
    );
  }
});
const pct = (k) => `${k}/${cases.length} (${((100 * k) / cases.length).toFixed(1)}%)`;
console.log(
  `verdicts agree ${pct(verdictsAgree)}; extracted and gold answers agree ${pct(answersAgree)}; ${Date.now() - t0} ms`,
);
