# Held-out set (written after the grader was tuned): other answers, other phrasings.
import json, random, sys
random.seed(11)
golds = [
 ("\\frac{5}{12}", ["5/12", "0.4167", "0.41667", "\\frac{10}{24}", "0.42", "\\dfrac{5}{12}\\text{ hours}"]),
 ("\\frac{9\\sqrt{2}}{2}", ["\\frac{9}{2}\\sqrt{2}", "6.3640", "4.5\\sqrt{2}", "\\frac{9}{\\sqrt{2}}", "9\\sqrt{2}"]),
 ("8\\pi", ["8 \\pi", "25.13", "\\pi \\cdot 8", "16\\pi/2", "8"]),
 ("\\$42.50", ["42.5", "\\$42.5", "42.50\\text{ dollars}", "4250\\text{ cents}", "42"]),
 ("(3,-1)", ["(3, -1)", "\\left(3,-1\\right)", "(-1,3)", "x=3, y=-1", "(3,1)"]),
 ("(-\\infty,-2)\\cup(3,\\infty)", ["(-\\infty, -2) \\cup (3, \\infty)", "(-\\infty,-2]\\cup[3,\\infty)", "x<-2 \\text{ or } x>3"]),
 ("-2,1", ["1,-2", "-2, 1", "x=-2,1", "-2 \\text{ and } 1", "-2"]),
 ("\\begin{pmatrix} -1 & 2 \\\\ 3 & 0 \\end{pmatrix}", ["\\begin{pmatrix}-1&2\\\\3&0\\end{pmatrix}", "\\begin{bmatrix}-1 & 2\\\\ 3 & 0\\end{bmatrix}", "\\begin{pmatrix}-1&2\\\\0&3\\end{pmatrix}"]),
 ("2x^3-3x+1", ["1-3x+2x^3", "2x^3 - 3x + 1", "(x-1)(2x^2+2x-1)", "2x^3-3x-1"]),
 ("\\frac{1}{x+1}", ["(x+1)^{-1}", "1/(x+1)", "\\frac{1}{1+x}", "\\frac{1}{x-1}"]),
 ("45^\\circ", ["45", "45 degrees", "\\frac{\\pi}{4}", "45^{\\circ}", "135^\\circ"]),
 ("1.5", ["\\frac{3}{2}", "1\\frac{1}{2}", "3/2", "1.50", "1.05"]),
 ("\\text{Monday}", ["Monday", "\\text{monday}", "\\textbf{Monday}", "Sunday"]),
 ("\\sqrt{13}", ["13^{1/2}", "\\sqrt{13}", "3.6056", "3.61", "13"]),
 ("6\\sqrt{6}", ["\\sqrt{216}", "6 \\sqrt{6}", "14.697", "36"]),
 ("-1", ["-1.0", "- 1", "negative one", "1", "-\\frac{2}{2}"]),
 ("25\\%", ["25", "0.25", "25 \\%", "\\frac{1}{4}", "2500"]),
 ("11", ["11", "eleven", "\\boxed{11}", "11.", "1 1", "010"]),
 ("\\frac{\\sqrt{5}-1}{2}", ["\\frac{-1+\\sqrt{5}}{2}", "0.618", "0.6180", "\\frac{\\sqrt{5}+1}{2}"]),
 ("\\{-1, 0, 1\\}", ["\\{0, -1, 1\\}", "-1,0,1", "\\{-1,1\\}"]),
 ("x=4", ["4", "x = 4", "x=4.0", "x=-4"]),
 ("3:2", ["3:2", "\\frac{3}{2}", "1.5", "2:3"]),
 ("10^{6}", ["1000000", "1,000,000", "10^6", "1e6", "10^5"]),
 ("\\text{odd}", ["odd", "\\text{Odd}", "even"]),
]
wraps = [
 lambda x: f"Putting it together, we obtain $\\boxed{{{x}}}$.",
 lambda x: f"Step 1: ...\nStep 2: ...\nThe answer is: {x}",
 lambda x: f"Final Answer: The final answer is ${x}$. I hope it is correct.",
 lambda x: f"Hence the value is \\boxed{{{x}}}. Check: it satisfies the equation.",
 lambda x: f"We get ${x}$.",
 lambda x: f"\\[\\boxed{{{x}}}\\]<|im_end|>",
]
out = []
for gold, preds in golds:
    for p in [gold] + preds:
        for w in random.sample(wraps, 3):
            out.append({"output": w(p), "answer": gold, "dataset": random.choice(["math500", "math500", "minerva_math", "aime24"])})
out.append({"output": "No idea.", "answer": "3", "dataset": "math500"})
print(len(out), file=__import__('sys').stderr)
open(sys.argv[1], 'w').write('\n'.join(json.dumps(o) for o in out) + '\n')
