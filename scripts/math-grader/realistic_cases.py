# A larger set of realistic outputs: gold answers in MATH/GSM8K style, predictions in equivalent,
# near-miss and wrong forms, wrapped the ways models write them.
import json, random, sys
random.seed(7)
golds = [
 ("\\frac{1}{2}", ["0.5", "\\dfrac{1}{2}", "1/2", "\\frac12", "0.50", "\\frac{2}{4}", "0.49", "2"]),
 ("\\frac{3}{4}", ["0.75", "3/4", "\\tfrac{3}{4}", "\\frac{6}{8}", "0.7", "\\frac{4}{3}"]),
 ("12", ["12.0", "12.00", "\\$12", "12\\text{ dollars}", "12 cm", "twelve", "13", "1.2", "-12"]),
 ("1080", ["1,080", "1080.", "\\$1,080", "1,080\\text{ dollars}", "1008", "1.08\\times10^3"]),
 ("2\\sqrt{2}", ["\\sqrt{8}", "2\\sqrt2", "2 \\sqrt{2}", "\\sqrt{2}\\cdot 2", "2.8284", "2.83", "\\sqrt{2}"]),
 ("\\frac{\\sqrt{3}}{2}", ["\\frac{1}{2}\\sqrt{3}", "\\sqrt{3}/2", "0.8660", "0.866", "\\frac{\\sqrt{3}}{3}", "\\frac{3}{2\\sqrt{3}}"]),
 ("(1,2)", ["(1, 2)", "\\left(1,2\\right)", "(2,1)", "(1,2,3)", "[1,2]", "(1.0, 2.0)"]),
 ("[-2,5)", ["[-2, 5)", "-2\\le x<5", "[-2,5]", "x \\in [-2,5)", "(-2,5)"]),
 ("(-\\infty,3]", ["(-\\infty, 3]", "x\\le 3", "(-\\infty,3)", "(-inf, 3]"]),
 ("\\begin{pmatrix} 1 \\\\ -2 \\end{pmatrix}", ["\\begin{pmatrix}1\\\\-2\\end{pmatrix}", "\\begin{bmatrix} 1 \\\\ -2 \\end{bmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "(1,-2)"]),
 ("\\begin{pmatrix} 2 & 0 \\\\ 0 & 2 \\end{pmatrix}", ["\\begin{pmatrix}2&0\\\\0&2\\end{pmatrix}", "\\begin{pmatrix} 2.0 & 0 \\\\ 0 & 2.0 \\end{pmatrix}", "\\begin{pmatrix} 2 & 1 \\\\ 0 & 2 \\end{pmatrix}"]),
 ("x^2+2x+1", ["(x+1)^2", "x^2 + 2x + 1", "1+2x+x^2", "x^2+2x", "(x-1)^2"]),
 ("\\frac{x+2}{7}", ["\\frac{x}{7}+\\frac{2}{7}", "(x+2)/7", "\\frac{x+2}{8}"]),
 ("y=2x+1", ["y = 2x + 1", "2x+1", "y=2x-1", "2x-y+1=0"]),
 ("5", ["x=5", "x = 5", "5.0", "five", "\\boxed{5}", "05", "6", "5\\%", "500\\%"]),
 ("30^\\circ", ["30", "30^{\\circ}", "30 degrees", "\\frac{\\pi}{6}", "60^\\circ"]),
 ("\\pi", ["\\pi", "3.14159", "180^\\circ", "2\\pi"]),
 ("2\\pi", ["\\pi+\\pi", "2 \\pi", "6.2832", "\\pi"]),
 ("\\frac{\\pi}{3}", ["\\frac{1}{3}\\pi", "\\pi/3", "60^\\circ", "\\frac{\\pi}{6}"]),
 ("\\text{(C)}", ["C", "(C)", "\\text{C}", "\\text{(D)}", "D"]),
 ("\\text{Tuesday}", ["Tuesday", "\\text{tuesday}", "Wednesday"]),
 ("-\\frac{1}{3}", ["\\frac{-1}{3}", "-1/3", "-0.3333", "\\frac{1}{3}", "-0.33"]),
 ("10\\%", ["10", "0.1", "10 percent", "1000", "11\\%"]),
 ("3+2i", ["2i+3", "3 + 2i", "3-2i", "3+2j"]),
 ("\\{1,2\\}", ["\\{2,1\\}", "1,2", "\\{1,3\\}"]),
 ("2, 5", ["2,5", "5, 2", "2 and 5", "x=2, 5"]),
 ("100", ["10^2", "1e2", "100.0001", "99.99", "99"]),
 ("0", ["0.0", "-0", "zero", "\\emptyset"]),
 ("\\infty", ["\\infty", "infinity", "inf", "\\infty \\text{ units}"]),
 ("\\sqrt{5}", ["5^{1/2}", "\\sqrt5", "2.236", "2.2361", "\\sqrt{6}"]),
 ("4\\sqrt{3}", ["\\sqrt{48}", "4 \\sqrt 3", "6.9282", "3\\sqrt{4}"]),
 ("\\frac{7}{2}", ["3.5", "3\\frac{1}{2}", "7/2", "\\dfrac72"]),
 ("a+b", ["b+a", "a + b", "ab"]),
 ("\\text{no}", ["no", "No", "\\text{No}", "yes"]),
]
wraps = [
 lambda x: f"We compute step by step.\n\nTherefore, the final answer is $\\boxed{{{x}}}$.",
 lambda x: f"... so the answer is {x}.",
 lambda x: f"Final Answer: The final answer is ${x}$. I hope it is correct.",
 lambda x: f"The area is \\boxed{{{x}}}",
 lambda x: f"First guess \\boxed{{0}}; correcting it, \\boxed{{{x}}}.",
 lambda x: f"The total is {x}",
]
out = []
for gold, preds in golds:
    for p in [gold] + preds:
        for w in random.sample(wraps, 3):
            out.append({"output": w(p), "answer": gold, "dataset": "math500"})
# truncated outputs
for gold, preds in golds[:15]:
    out.append({"output": f"Let us solve. We have $x = {preds[0]}$ and then \\boxed{{{preds[0][:max(1, len(preds[0])//2)]}", "answer": gold, "dataset": "math500"})
    out.append({"output": f"Let us solve. We have 3 cases and", "answer": gold, "dataset": "math500"})
# GSM8K style
for n in [72, 1080, 5, 0.5, 18, 1200, 3.75]:
    s = str(n)
    for p in [s, f"{n:,}", f"\\${s}", f"{s} dollars", str(n + 1), f"{n}.00"]:
        out.append({"output": f"She earns 3 per hour... In total {p}.", "answer": f"Some steps 3*4=12\n#### {s}", "dataset": "gsm8k"})
        out.append({"output": f"The answer is $\\boxed{{{p}}}$", "answer": f"Some steps\n#### {s}", "dataset": "gsm8k"})
print(len(out), file=__import__('sys').stderr)
open(sys.argv[1], 'w').write('\n'.join(json.dumps(o) for o in out) + '\n')
