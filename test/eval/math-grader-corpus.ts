// The math grader's test corpus: model outputs and benchmark answers, each with the verdict the
// reference grader gives (Uni-DPO Math/evaluation: parser.py's extract_answer and strip_string,
// parse_ground_truth, grader.py's math_equal, chained as math_eval.py and evaluate.py chain them,
// with sympy 1.14 and antlr4 4.11 as its requirements ask) and, in the comment, the reference rule
// that decides it. String answers sit in the field the data set's parser reads, as gradeMath puts them.
export interface GraderCase {
  output: string;
  answer: string | Record<string, unknown>;
  dataset: string;
  extracted: string;
  gold: string;
  correct: boolean;
}

/** A typical chain-of-thought ending with the answer in a box. */
const boxed = (answer: string) => `Let me work it out step by step.\n\nSo the result is $\\boxed{${answer}}$.`;

export const GRADER_CASES: GraderCase[] = [
  // boxed fraction vs decimal gold: numbers differ in form, symbolic step evaluates both to 0.5
  {
    output: boxed("\\frac{1}{2}"),
    answer: "0.5",
    dataset: "math500",
    extracted: "\\frac{1}{2}",
    gold: "0.5",
    correct: true,
  },
  // strip_string: dfrac->frac and _fix_fracs \frac34 -> \frac{3}{4}; equal as text
  {
    output: boxed("\\dfrac{3}{4}"),
    answer: "\\frac34",
    dataset: "math500",
    extracted: "\\frac{3}{4}",
    gold: "\\frac{3}{4}",
    correct: true,
  },
  // decimal vs fraction: symbolic numeric value within rel 1e-4
  {
    output: boxed("0.75"),
    answer: "\\frac{3}{4}",
    dataset: "math500",
    extracted: "0.75",
    gold: "\\frac{3}{4}",
    correct: true,
  },
  // 0.33 vs 1/3: relative error 1e-2 > 1e-4, different
  {
    output: boxed("0.33"),
    answer: "\\frac{1}{3}",
    dataset: "math500",
    extracted: "0.33",
    gold: "\\frac{1}{3}",
    correct: false,
  },
  // 0.3333 vs 1/3: relative error 1e-4 within math.isclose rel_tol=1e-4
  {
    output: boxed("0.3333"),
    answer: "\\frac{1}{3}",
    dataset: "math500",
    extracted: "0.3333",
    gold: "\\frac{1}{3}",
    correct: true,
  },
  // _fix_a_slash_b turns 3/4 into \frac{3}{4}; text equality
  {
    output: boxed("3/4"),
    answer: "\\frac{3}{4}",
    dataset: "math500",
    extracted: "\\frac{3}{4}",
    gold: "\\frac{3}{4}",
    correct: true,
  },
  // percent sign removed by strip_string
  { output: boxed("10\\%"), answer: "10", dataset: "math500", extracted: "10", gold: "10", correct: true },
  // numeric step: gold/100 = 0.1 (include_percentage)
  { output: boxed("0.1"), answer: "10", dataset: "math500", extracted: "0.1", gold: "10", correct: true },
  // numeric step: gold*100 = 1000 (include_percentage)
  { output: boxed("1000"), answer: "10", dataset: "math500", extracted: "1000", gold: "10", correct: true },
  // thousands separator: _parse_digits drops commas
  { output: boxed("1,000"), answer: "1000", dataset: "math500", extracted: "1,000", gold: "1000", correct: true },
  // trailing \text{...} unit removed by strip_string
  { output: boxed("5\\text{ cm}"), answer: "5", dataset: "math500", extracted: "5", gold: "5", correct: true },
  // unit removal needs \text{} at the very end; the leftover ^2 stays, so 5^2 vs 5 after text unwrapping -> different
  { output: boxed("5 \\text{ cm}^2"), answer: "5", dataset: "math500", extracted: "5^2", gold: "5", correct: false },
  // ^\circ removed
  { output: boxed("30^\\circ"), answer: "30", dataset: "math500", extracted: "30", gold: "30", correct: true },
  // ^{\circ} removed
  { output: boxed("30^{\\circ}"), answer: "30", dataset: "math500", extracted: "30", gold: "30", correct: true },
  // dollar sign removed; text equality
  { output: boxed("\\$18.90"), answer: "18.90", dataset: "math500", extracted: "18.90", gold: "18.90", correct: true },
  // x= prefix removed by strip_string
  { output: boxed("x = 5"), answer: "5", dataset: "math500", extracted: "5", gold: "5", correct: true },
  // short left side of a single = removed
  { output: boxed("k = 7"), answer: "7", dataset: "math500", extracted: "7", gold: "7", correct: true },
  // symbolic: simplify(a-b)==0 (here: equal at random points)
  {
    output: boxed("x^2+2x+1"),
    answer: "(x+1)^2",
    dataset: "math500",
    extracted: "x^2+2x+1",
    gold: "(x+1)^2",
    correct: true,
  },
  // symbolic radicals
  {
    output: boxed("2\\sqrt{2}"),
    answer: "\\sqrt{8}",
    dataset: "math500",
    extracted: "2\\sqrt{2}",
    gold: "\\sqrt{8}",
    correct: true,
  },
  // _fix_sqrt: \sqrt2 -> \sqrt{2}
  {
    output: boxed("\\sqrt2"),
    answer: "\\sqrt{2}",
    dataset: "math500",
    extracted: "\\sqrt{2}",
    gold: "\\sqrt{2}",
    correct: true,
  },
  // symbolic: rationalised denominator
  {
    output: boxed("\\frac{\\sqrt{3}}{3}"),
    answer: "\\frac{1}{\\sqrt{3}}",
    dataset: "math500",
    extracted: "\\frac{\\sqrt{3}}{3}",
    gold: "\\frac{1}{\\sqrt{3}}",
    correct: true,
  },
  // text equality
  { output: boxed("(1,2)"), answer: "(1,2)", dataset: "math500", extracted: "(1,2)", gold: "(1,2)", correct: true },
  // tuple elementwise: 4.5 vs 9/2 (\left/\right removed)
  {
    output: boxed("(1, 4.5)"),
    answer: "\\left(1,\\frac{9}{2}\\right)",
    dataset: "math500",
    extracted: "(1,4.5)",
    gold: "(1,\\frac{9}{2})",
    correct: true,
  },
  // interval, text equality
  { output: boxed("[2,5)"), answer: "[2,5)", dataset: "math500", extracted: "[2,5)", gold: "[2,5)", correct: true },
  // interval elementwise with rel 1e-4
  {
    output: boxed("(0.6,2.6667]"),
    answer: "(\\frac{3}{5},\\frac{8}{3}]",
    dataset: "math500",
    extracted: "(0.6,2.6667]",
    gold: "(\\frac{3}{5},\\frac{8}{3}]",
    correct: true,
  },
  // brackets: a (..) prediction against a [..] gold is not unwrapped; tuple rule splits both and compares elementwise: equal (the reference ignores bracket kind here)
  { output: boxed("(2,5)"), answer: "[2,5]", dataset: "math500", extracted: "(2,5)", gold: "[2,5]", correct: true },
  // tuple elementwise: order matters
  { output: boxed("(3,4)"), answer: "(4,3)", dataset: "math500", extracted: "(3,4)", gold: "(4,3)", correct: false },
  // sets: strip_string makes {1,2}; Python parse_expr reads a set, unordered
  {
    output: boxed("\\{1,2\\}"),
    answer: "\\{2,1\\}",
    dataset: "math500",
    extracted: "{1,2}",
    gold: "{2,1}",
    correct: true,
  },
  // spaces removed; text equality
  { output: boxed("2, 5"), answer: "2,5", dataset: "math500", extracted: "2,5", gold: "2,5", correct: true },
  // 52 vs 25 as numbers (commas dropped): different
  { output: boxed("5, 2"), answer: "2, 5", dataset: "math500", extracted: "5,2", gold: "2,5", correct: false },
  // matrix: spaces removed; text equality
  {
    output: boxed("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"),
    answer: "\\begin{pmatrix}1\\\\2\\end{pmatrix}",
    dataset: "math500",
    extracted: "\\begin{pmatrix}1\\2\\end{pmatrix}",
    gold: "\\begin{pmatrix}1\\2\\end{pmatrix}",
    correct: true,
  },
  // strip_string turns the row separator \\ into \, so rows stay unsplit: cells 0.5\0 vs \frac{1}{2}\0 differ
  {
    output: boxed("\\begin{pmatrix} 1 & 0.5 \\\\ 0 & 1 \\end{pmatrix}"),
    answer: "\\begin{pmatrix}1&\\frac{1}{2}\\\\0&1\\end{pmatrix}",
    dataset: "math500",
    extracted: "\\begin{pmatrix}1&0.5\\0&1\\end{pmatrix}",
    gold: "\\begin{pmatrix}1&\\frac{1}{2}\\0&1\\end{pmatrix}",
    correct: false,
  },
  // matrix elementwise: 3 vs 2
  {
    output: boxed("\\begin{bmatrix} 1 \\\\ 3 \\end{bmatrix}"),
    answer: "\\begin{pmatrix}1\\\\2\\end{pmatrix}",
    dataset: "math500",
    extracted: "\\begin{pmatrix}1\\3\\end{pmatrix}",
    gold: "\\begin{pmatrix}1\\2\\end{pmatrix}",
    correct: false,
  },
  // text equality after x=/y= removal on both
  { output: boxed("y = 2x + 1"), answer: "y=2x+1", dataset: "math500", extracted: "2x+1", gold: "2x+1", correct: true },
  // equation: gold loses its y= prefix; prediction side after = is 0: different
  {
    output: boxed("2x - y + 1 = 0"),
    answer: "y=2x+1",
    dataset: "math500",
    extracted: "2x-y+1=0",
    gold: "2x+1",
    correct: false,
  },
  // symbolic: same rational function
  {
    output: boxed("\\frac{x}{7}+\\frac{2}{7}"),
    answer: "\\frac{x+2}{7}",
    dataset: "math500",
    extracted: "\\frac{x}{7}+\\frac{2}{7}",
    gold: "\\frac{x+2}{7}",
    correct: true,
  },
  // the unit word sec is deleted from \sec by strip_string: \^2y vs \tan^2y+1, different
  {
    output: boxed("\\sec^2 y"),
    answer: "\\tan^2 y+1",
    dataset: "math500",
    extracted: "\\^2y",
    gold: "\\tan^2y+1",
    correct: false,
  },
  // sympy's LaTeX parser reads \pi as a symbol: no numeric value, different
  { output: boxed("\\pi"), answer: "3.1416", dataset: "math500", extracted: "\\pi", gold: "3.1416", correct: false },
  // symbolic: 2*pi - (pi+pi) simplifies to 0
  {
    output: boxed("2\\pi"),
    answer: "\\pi+\\pi",
    dataset: "math500",
    extracted: "2\\pi",
    gold: "\\pi+\\pi",
    correct: true,
  },
  // symbolic with pi as a symbol
  {
    output: boxed("\\frac{\\pi}{3}"),
    answer: "\\frac{1}{3}\\pi",
    dataset: "math500",
    extracted: "\\frac{\\pi}{3}",
    gold: "\\frac{1}{3}\\pi",
    correct: true,
  },
  // e is a symbol for sympy's LaTeX parser: different
  { output: boxed("e^2"), answer: "7.389", dataset: "math500", extracted: "e^2", gold: "7.389", correct: false },
  // i is a symbol; 4i != 0
  { output: boxed("3+2i"), answer: "3-2i", dataset: "math500", extracted: "3+2i", gold: "3-2i", correct: false },
  // symbolic: commutative sum
  { output: boxed("2i+1"), answer: "1+2i", dataset: "math500", extracted: "2i+1", gold: "1+2i", correct: true },
  // juxtaposition multiplies: 1*(1/2), not a mixed number
  {
    output: boxed("1\\frac{1}{2}"),
    answer: "\\frac{3}{2}",
    dataset: "math500",
    extracted: "1\\frac{1}{2}",
    gold: "\\frac{3}{2}",
    correct: false,
  },
  // text equality
  {
    output: boxed("\\infty"),
    answer: "\\infty",
    dataset: "math500",
    extracted: "\\infty",
    gold: "\\infty",
    correct: true,
  },
  // spaces removed; text equality
  {
    output: boxed("(-\\infty, 3]"),
    answer: "(-\\infty,3]",
    dataset: "math500",
    extracted: "(-\\infty,3]",
    gold: "(-\\infty,3]",
    correct: true,
  },
  // x\in removed
  {
    output: boxed("x \\in [1, 2]"),
    answer: "[1,2]",
    dataset: "math500",
    extracted: "[1,2]",
    gold: "[1,2]",
    correct: true,
  },
  // both unwrap to (C); text equality
  {
    output: boxed("\\text{(C)}"),
    answer: "\\text{(C)}",
    dataset: "math500",
    extracted: "(C)",
    gold: "(C)",
    correct: true,
  },
  // gold (C) vs C: brackets stripped when comparing ( ) - removed: equal
  { output: boxed("C"), answer: "\\text{(C)}", dataset: "math500", extracted: "C", gold: "(C)", correct: true },
  // names: text equality
  {
    output: boxed("\\text{Evelyn}"),
    answer: "\\text{Evelyn}",
    dataset: "math500",
    extracted: "Evelyn",
    gold: "Evelyn",
    correct: true,
  },
  // text unwrapped; equality
  {
    output: boxed("Tuesday"),
    answer: "\\text{Tuesday}",
    dataset: "math500",
    extracted: "Tuesday",
    gold: "Tuesday",
    correct: true,
  },
  // symbolic: same power
  { output: boxed("x^{2}"), answer: "x^2", dataset: "math500", extracted: "x^{2}", gold: "x^2", correct: true },
  // polar coordinates, text equality
  {
    output: boxed("\\left( 3, \\frac{\\pi}{2} \\right)"),
    answer: "\\left( 3, \\frac{\\pi}{2} \\right)",
    dataset: "math500",
    extracted: "(3,\\frac{\\pi}{2})",
    gold: "(3,\\frac{\\pi}{2})",
    correct: true,
  },
  // _fix_sqrt
  {
    output: boxed("11\\sqrt2"),
    answer: "11\\sqrt{2}",
    dataset: "math500",
    extracted: "11\\sqrt{2}",
    gold: "11\\sqrt{2}",
    correct: true,
  },
  // symbolic: sign placement
  {
    output: boxed("-\\frac{1}{2}"),
    answer: "\\frac{-1}{2}",
    dataset: "math500",
    extracted: "-\\frac{1}{2}",
    gold: "\\frac{-1}{2}",
    correct: true,
  },
  // unit word a deleted in both; with braces removed both read \fracb: equal (a reference quirk)
  {
    output: boxed("\\frac{a}{b}"),
    answer: "\\frac{b}{a}",
    dataset: "math500",
    extracted: "\\frac{}{b}",
    gold: "\\frac{b}{}",
    correct: true,
  },
  // the unit word pm is deleted from \pm: \2 vs 2, different
  { output: boxed("\\pm 2"), answer: "2", dataset: "math500", extracted: "\\2", gold: "2", correct: false },
  // symbolic: factorial evaluates
  { output: boxed("5!"), answer: "120", dataset: "math500", extracted: "5!", gold: "120", correct: true },
  // symbolic: binomial evaluates
  {
    output: boxed("\\binom{5}{2}"),
    answer: "10",
    dataset: "math500",
    extracted: "\\binom{5}{2}",
    gold: "10",
    correct: true,
  },
  // symbolic: power evaluates
  { output: boxed("2^{10}"), answer: "1024", dataset: "math500", extracted: "2^{10}", gold: "1024", correct: true },
  // numbers differ
  { output: boxed("316"), answer: "317", dataset: "math500", extracted: "316", gold: "317", correct: false },
  // the last box counts
  {
    output: "The answer is \\boxed{5} or maybe \\boxed{6}.",
    answer: "6",
    dataset: "math500",
    extracted: "6",
    gold: "6",
    correct: true,
  },
  // the last box counts: 5 vs 6
  {
    output: "First \\boxed{6}, finally \\boxed{5}",
    answer: "6",
    dataset: "math500",
    extracted: "5",
    gold: "6",
    correct: false,
  },
  // nested braces in the box are matched
  {
    output: "\\boxed{\\frac{1}{\\sqrt{2}}}",
    answer: "\\frac{\\sqrt{2}}{2}",
    dataset: "math500",
    extracted: "\\frac{1}{\\sqrt{2}}",
    gold: "\\frac{\\sqrt{2}}{2}",
    correct: true,
  },
  // brace-less boxed: up to the next $
  { output: "Therefore \\boxed 5$ is it", answer: "5", dataset: "math500", extracted: "5", gold: "5", correct: true },
  // truncated output: unclosed box keeps the rest, \frac{3}{ vs \frac{3}{4}: different
  {
    output: "We get \\boxed{\\frac{3}{",
    answer: "\\frac{3}{4}",
    dataset: "math500",
    extracted: "\\frac{3}{",
    gold: "\\frac{3}{4}",
    correct: false,
  },
  // no box, no trigger, no number: empty prediction
  {
    output: "The computation is long and I ran out of",
    answer: "4",
    dataset: "math500",
    extracted: "",
    gold: "4",
    correct: false,
  },
  // no box: the last number
  {
    output: "Adding 3 and 4 we get 7 apples in total",
    answer: "7",
    dataset: "math500",
    extracted: "7",
    gold: "7",
    correct: true,
  },
  // no box: the last number is 12
  {
    output: "Adding 3 and 4 we get 7 apples, then 12 more",
    answer: "7",
    dataset: "math500",
    extracted: "12",
    gold: "7",
    correct: false,
  },
  // Minerva phrasing: text between 'final answer is $' and '$. I hope'
  {
    output: "Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.",
    answer: "\\frac{1}{2}",
    dataset: "minerva_math",
    extracted: "\\frac{1}{2}",
    gold: "\\frac{1}{2}",
    correct: true,
  },
  // Minerva skips unit-word removal but the trailing \text{} unit still goes
  {
    output: "Final Answer: The final answer is $5\\text{ m}$. I hope it is correct.",
    answer: "5",
    dataset: "minerva_math",
    extracted: "5",
    gold: "5",
    correct: true,
  },
  // 'he answer is' trigger with trailing period
  { output: "so the answer is 42.", answer: "42", dataset: "math500", extracted: "42", gold: "42", correct: true },
  // 'final answer is' trigger; 3/4 -> frac; numeric symbolic
  {
    output: "Thus the final answer is 3/4",
    answer: "0.75",
    dataset: "math500",
    extracted: "\\frac{3}{4}",
    gold: "0.75",
    correct: true,
  },
  // Chinese trigger
  { output: "所以答案是 5", answer: "5", dataset: "math500", extracted: "5", gold: "5", correct: true },
  // word2number: five -> 5
  { output: boxed("five"), answer: "5", dataset: "math500", extracted: "5", gold: "5", correct: true },
  // trailing .0 removed
  { output: boxed("2.0"), answer: "2", dataset: "math500", extracted: "2", gold: "2", correct: true },
  // numeric: 2.50 vs 2.5
  { output: boxed("2.50"), answer: "2.5", dataset: "math500", extracted: "2.50", gold: "2.5", correct: true },
  // leading dot gets a 0
  {
    output: boxed(".5"),
    answer: "\\frac{1}{2}",
    dataset: "math500",
    extracted: "0.5",
    gold: "\\frac{1}{2}",
    correct: true,
  },
  // symbolic numeric
  { output: boxed("10^{-2}"), answer: "0.01", dataset: "math500", extracted: "10^{-2}", gold: "0.01", correct: true },
  // dfrac -> frac; numeric symbolic
  {
    output: boxed("\\dfrac{9}{2}"),
    answer: "4.5",
    dataset: "math500",
    extracted: "\\frac{9}{2}",
    gold: "4.5",
    correct: true,
  },
  // symbolic radicals
  {
    output: boxed("3\\sqrt{2}"),
    answer: "\\sqrt{18}",
    dataset: "math500",
    extracted: "3\\sqrt{2}",
    gold: "\\sqrt{18}",
    correct: true,
  },
  // cube root evaluates
  {
    output: boxed("\\sqrt[3]{8}"),
    answer: "2",
    dataset: "math500",
    extracted: "\\sqrt[3]{8}",
    gold: "2",
    correct: true,
  },
  // logarithm evaluates
  { output: boxed("\\log_2 8"), answer: "3", dataset: "math500", extracted: "\\log_28", gold: "3", correct: true },
  // different values
  {
    output: boxed("\\frac{34}{16}+\\frac{\\sqrt{1358}}{16}"),
    answer: "4",
    dataset: "math500",
    extracted: "\\frac{34}{16}+\\frac{\\sqrt{1358}}{16}",
    gold: "4",
    correct: false,
  },
  // symbolic: different expressions
  { output: boxed("x+2n+1"), answer: "x+1", dataset: "math500", extracted: "x+2n+1", gold: "x+1", correct: false },
  // multiple-choice gold: letter cleaned out of the prediction
  { output: boxed("\\text{A}"), answer: "A", dataset: "math500", extracted: "A", gold: "A", correct: true },
  // choice data set: the letter after 'answer is'
  { output: "The answer is (B).", answer: "B", dataset: "aqua", extracted: "B", gold: "B", correct: true },
  // choice data set: the first letter after the last trigger
  {
    output: "I think C is right, but the answer is D",
    answer: "D",
    dataset: "sat_math",
    extracted: "D",
    gold: "D",
    correct: true,
  },
  // choice data set without trigger: the last standalone letter
  { output: "Among A and B, B wins", answer: "B", dataset: "mmlu_stem", extracted: "B", gold: "B", correct: true },
  // GSM8K gold after ####
  {
    output: "Natalia sold 48/2 = 24 clips in May.\nShe sold 48+24 = 72 clips.\n\\boxed{72}",
    answer: "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72",
    dataset: "gsm8k",
    extracted: "72",
    gold: "72",
    correct: true,
  },
  // no box: the last number 72
  {
    output: "She sold 48+24 = 72 clips altogether.",
    answer: "#### 72",
    dataset: "gsm8k",
    extracted: "72",
    gold: "72",
    correct: true,
  },
  // dollar and thousands separator
  {
    output: "The total is \\boxed{\\$1,080}.",
    answer: "#### 1080",
    dataset: "gsm8k",
    extracted: "1,080",
    gold: "1080",
    correct: true,
  },
  // math: gold from the solution's box
  {
    output: "\\boxed{18}",
    answer: { problem: "p", solution: "So the answer is $\\boxed{18}$.", answer: "18" },
    dataset: "math",
    extracted: "18",
    gold: "18",
    correct: true,
  },
  // gold from the solution: dfrac72 -> \frac{7}{2}
  {
    output: "\\boxed{\\frac{7}{2}}",
    answer: { problem: "p", solution: "We find $x=\\boxed{\\dfrac72}$." },
    dataset: "math500",
    extracted: "\\frac{7}{2}",
    gold: "\\frac{7}{2}",
    correct: true,
  },
  // AIME: answer field
  {
    output: "\\boxed{204}",
    answer: { question: "q", answer: "204" },
    dataset: "aime24",
    extracted: "204",
    gold: "204",
    correct: true,
  },
  // AMC: numeric answer field 23.0 -> '23'
  {
    output: "\\boxed{23}",
    answer: { question: "q", answer: 23.0 },
    dataset: "amc23",
    extracted: "23",
    gold: "23",
    correct: true,
  },
  // OlympiadBench: first final_answer without $
  {
    output: "\\boxed{\\frac{\\sqrt{3}}{2}}",
    answer: { question: "q", final_answer: ["$\\frac{\\sqrt{3}}{2}$"] },
    dataset: "olympiadbench",
    extracted: "\\frac{\\sqrt{3}}{2}",
    gold: "\\frac{\\sqrt{3}}{2}",
    correct: true,
  },
  // college_math: $ removed from the answer
  {
    output: "\\boxed{2}",
    answer: { question: "q", answer: "$2$" },
    dataset: "college_math",
    extracted: "2",
    gold: "2",
    correct: true,
  },
  // generation cut at the stop word <|im_end|>: no number left
  {
    output: "The answer is <|im_end|> \\boxed{9}",
    answer: "5",
    dataset: "math500",
    extracted: "",
    gold: "5",
    correct: false,
  },
  // trailing \text{} unit removed
  { output: "\\boxed{3 \\text{ apples}}", answer: "3", dataset: "math500", extracted: "3", gold: "3", correct: true },
  // \mbox removed
  {
    output: "\\boxed{12 \\mbox{ inches}}",
    answer: "12",
    dataset: "math500",
    extracted: "12",
    gold: "12",
    correct: true,
  },
  // single letters are unit words too but the empty result is kept out: text equality
  { output: "\\boxed{a}", answer: "a", dataset: "math500", extracted: "a", gold: "a", correct: true },
  // unit word 'a' deleted in both, then equal
  {
    output: "\\boxed{\\frac{a}{2}}",
    answer: "\\frac{a}{2}",
    dataset: "math500",
    extracted: "\\frac{}{2}",
    gold: "\\frac{}{2}",
    correct: true,
  },
  // unit: \text{} not at the end
  { output: "\\boxed{6\\text{ m}^2}", answer: "6", dataset: "math500", extracted: "6^2", gold: "6", correct: false },
  // percent removed; gold*100 = 12
  { output: "\\boxed{12\\%}", answer: "0.12", dataset: "math500", extracted: "12", gold: "0.12", correct: true },
  // inequality text equality after spaces
  {
    output: "\\boxed{x \\le 3}",
    answer: "x\\le3",
    dataset: "math500",
    extracted: "x\\le3",
    gold: "x\\le3",
    correct: true,
  },
  // the reference compares |lhs-rhs| of relations: flipped inequality counts as equal
  { output: "\\boxed{x < 3}", answer: "x > 3", dataset: "math500", extracted: "x<3", gold: "x>3", correct: true },
  // emptyset -> {}
  {
    output: "\\boxed{\\emptyset}",
    answer: "\\emptyset",
    dataset: "math500",
    extracted: "{}",
    gold: "{}",
    correct: true,
  },
  // all reals written as an interval
  {
    output: "\\boxed{(-\\infty,\\infty)}",
    answer: "\\mathbb{R}",
    dataset: "math500",
    extracted: "\\mathbb{R}",
    gold: "\\mathbb{R}",
    correct: true,
  },
  // text equality
  {
    output: "\\boxed{\\text{no solution}}",
    answer: "\\text{no solution}",
    dataset: "math500",
    extracted: "nosolution",
    gold: "nosolution",
    correct: true,
  },
  // strip_string's 2.000x -> 2x rule drops the point: 0\overline{3}, different
  {
    output: "\\boxed{0.\\overline{3}}",
    answer: "\\frac{1}{3}",
    dataset: "math500",
    extracted: "0\\overline{3}",
    gold: "\\frac{1}{3}",
    correct: false,
  },
  // pi is a symbol: different
  { output: "\\boxed{3.14}", answer: "\\pi", dataset: "math500", extracted: "3.14", gold: "\\pi", correct: false },
  // division by zero is not infinity: different
  {
    output: "\\boxed{\\frac{1}{0}}",
    answer: "\\infty",
    dataset: "math500",
    extracted: "\\frac{1}{0}",
    gold: "\\infty",
    correct: false,
  },
  // symbolic: |x| = |-x|
  { output: "\\boxed{|x|}", answer: "|-x|", dataset: "math500", extracted: "|x|", gold: "|-x|", correct: true },
  // decimal vs fraction
  {
    output: "\\boxed{1.5}",
    answer: "\\frac{3}{2}",
    dataset: "math500",
    extracted: "1.5",
    gold: "\\frac{3}{2}",
    correct: true,
  },
  // sign matters
  { output: "\\boxed{-3}", answer: "3", dataset: "math500", extracted: "-3", gold: "3", correct: false },
  // within relative 1e-4
  { output: "\\boxed{6.0001}", answer: "6", dataset: "math500", extracted: "6.0001", gold: "6", correct: true },
  // outside relative 1e-4
  { output: "\\boxed{6.01}", answer: "6", dataset: "math500", extracted: "6.01", gold: "6", correct: false },
  // Python float syntax 1e3
  { output: "\\boxed{1e3}", answer: "1000", dataset: "math500", extracted: "1e3", gold: "1000", correct: true },
  // \ removed; (A)5 vs 5: different
  { output: "\\boxed{\\text{(A)}\\ 5}", answer: "5", dataset: "math500", extracted: "(A)5", gold: "5", correct: false },
  // tuple rule splits at commas; sympy reads -2]\cup[3 and -2)\cup(3 only up to the unmatched bracket: -2 = -2, so equal
  {
    output: "\\boxed{(-\\infty,-2]\\cup[3,\\infty)}",
    answer: "(-\\infty,-2)\\cup(3,\\infty)",
    dataset: "math500",
    extracted: "(-\\infty,-2]\\cup[3,\\infty)",
    gold: "(-\\infty,-2)\\cup(3,\\infty)",
    correct: true,
  },
  // sympy's LaTeX grammar divides at a colon: 3:2 = 1.5
  { output: "\\boxed{1.5}", answer: "3:2", dataset: "math500", extracted: "1.5", gold: "3:2", correct: true },
  // 1,000,000 is one NUMBER token for sympy's parser: equal to 10^6
  {
    output: "The answer is: 1,000,000",
    answer: "10^{6}",
    dataset: "math500",
    extracted: "1,000,000",
    gold: "10^{6}",
    correct: true,
  },
  // 27 vs 25 as numbers (commas dropped): different
  { output: "\\boxed{2,7}", answer: "2,5", dataset: "math500", extracted: "2,7", gold: "2,5", correct: false },
  // x= removed, then 27 vs 25 as numbers: different
  { output: "\\boxed{x=2, 7}", answer: "2, 5", dataset: "math500", extracted: "2,7", gold: "2,5", correct: false },
  // fraction vs decimal
  {
    output: "\\boxed{\\frac{3}{2}}",
    answer: { question: "q", answer: "1.5" },
    dataset: "aime24",
    extracted: "\\frac{3}{2}",
    gold: "1.5",
    correct: true,
  },
];
