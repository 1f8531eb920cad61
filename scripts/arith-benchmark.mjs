#!/usr/bin/env node
// Writes a math benchmark file of N sums and products (JSONL: problem, answer) for the shipped
// arithmetic model (assets/arith-sft), to time `eval --task math` without downloads:
//   node scripts/arith-benchmark.mjs 96 [--latex] > arith.jsonl
// --latex writes each answer as a fraction (\frac{2x}{2}), which the grader compares
// symbolically, as it does many MATH answers, so grading costs about what it does there.
const [count = "96", ...flags] = process.argv.slice(2);
const n = Number(count);
if (!Number.isInteger(n) || n < 1 || flags.some((f) => f !== "--latex")) {
  console.error("usage: node scripts/arith-benchmark.mjs N [--latex] > FILE (N: problems, a whole number)");
  process.exit(2);
}
const latex = flags.includes("--latex");
// a fixed linear congruential stream, so every run writes the same problems
let state = 12345;
const next = (m) => ((state = (state * 1103515245 + 12345) % 2 ** 31), state % m);
for (let i = 0; i < n; i++) {
  const [a, b] = [1 + next(99), 1 + next(99)];
  const times = next(3) === 0;
  const answer = times ? a * b : a + b;
  console.log(
    JSON.stringify({
      problem: `${a}${times ? "*" : "+"}${b}`,
      answer: latex ? `\\frac{${2 * answer}}{2}` : String(answer),
    }),
  );
}
