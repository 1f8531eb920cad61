#!/usr/bin/env python3
"""The reference grader's verdicts, for measuring gradeMath's agreement (not used by omni-dpo).

Runs Uni-DPO's own Math/evaluation code (a checkout given as the first argument) on JSON Lines
{output, answer | example, dataset} read from stdin, chained as its math_eval.py and evaluate.py
chain it (stop words, extract_answer + strip_string, the multiple-choice fallbacks,
parse_ground_truth twice, math_equal in a process with a 10 s limit), and prints one line
{extracted, gold, correct, timeout} per case. Needs sympy, regex and antlr4-python3-runtime; the
reference pins antlr 4.11 for sympy's LaTeX parser, and a newer runtime reads 4.11's generated
parser, so sympy's version check is relaxed here. Without the word2number package, its
word_to_num is reconstructed below (word2number 1.1).

  python3 scripts/math-grader/reference_verdicts.py UNI_DPO_DIR < cases.jsonl > verdicts.jsonl
"""
import contextlib
import io
import json
import multiprocessing
import os
import sys
import types

REPO = os.path.abspath(sys.argv[1])
sys.path[:0] = [REPO, os.path.join(REPO, "Math/evaluation/latex2sympy")]

import sympy.parsing.latex._parse_latex_antlr as _antlr_parser  # noqa: E402
_antlr_parser.version = lambda name: "4.11.1"

try:
    import word2number  # noqa: F401
except ImportError:
    NUMBERS = dict(zero=0, one=1, two=2, three=3, four=4, five=5, six=6, seven=7, eight=8, nine=9, ten=10, eleven=11,
                   twelve=12, thirteen=13, fourteen=14, fifteen=15, sixteen=16, seventeen=17, eighteen=18, nineteen=19,
                   twenty=20, thirty=30, forty=40, fifty=50, sixty=60, seventy=70, eighty=80, ninety=90, hundred=100,
                   thousand=1000, million=1000000, billion=1000000000, point=".")
    DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

    def formation(words):
        n = [NUMBERS[w] for w in words]
        if len(n) == 4:
            return n[0] * n[1] + n[2] + n[3]
        if len(n) == 3:
            return n[0] * n[1] + n[2]
        if len(n) == 2:
            return n[0] * n[1] if 100 in n else n[0] + n[1]
        return n[0]

    def word_to_num(sentence):
        if type(sentence) is not str:
            raise ValueError("not a string")
        sentence = sentence.replace("-", " ").lower()
        if sentence.isdigit():
            return int(sentence)
        words = [w for w in sentence.strip().split() if w in NUMBERS]
        if not words:
            raise ValueError("no number words")
        if any(words.count(w) > 1 for w in ("thousand", "million", "billion", "point")):
            raise ValueError("redundant number word")
        decimals = []
        if "point" in words:
            decimals = words[words.index("point") + 1:]
            words = words[:words.index("point")]
        b, m, t = (words.index(w) if w in words else -1 for w in ("billion", "million", "thousand"))
        if (t > -1 and (t < m or t < b)) or (m > -1 and m < b):
            raise ValueError("malformed number")
        total = 0
        if len(words) == 1:
            total += NUMBERS[words[0]]
        elif words:
            if b > -1:
                total += formation(words[0:b]) * 1000000000
            if m > -1:
                total += formation(words[b + 1:m] if b > -1 else words[0:m]) * 1000000
            if t > -1:
                total += formation(words[m + 1:t] if m > -1 else words[b + 1:t] if b > -1 else words[0:t]) * 1000
            last = len(words) - 1
            if t > -1 and t != last:
                total += formation(words[t + 1:])
            elif m > -1 and m != last:
                total += formation(words[m + 1:])
            elif b > -1 and b != last:
                total += formation(words[b + 1:])
            elif t == m == b == -1:
                total += formation(words)
        if decimals:
            if all(w in DIGIT_WORDS for w in decimals):
                total += float("0." + "".join(str(NUMBERS[w]) for w in decimals))
        return total

    w2n = types.ModuleType("word2number.w2n")
    w2n.word_to_num = word_to_num
    package = types.ModuleType("word2number")
    package.w2n = w2n
    sys.modules["word2number"] = package
    sys.modules["word2number.w2n"] = w2n

with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    from Math.evaluation.scripts.eval_utils.grader import math_equal
    from Math.evaluation.scripts.eval_utils.parser import (STRIP_EXCEPTIONS, choice_answer_clean, extract_answer,
                                                           parse_ground_truth, strip_string)

CHOICES = ["A", "B", "C", "D", "E"]
STOP_WORDS = ["</s>", "<|im_end|>", "<|endoftext|>"]


def record_for(answer, dataset):
    """A bare answer in the field the data set's parser reads (as gradeMath places it)."""
    if dataset in ("math", "math500", "minerva_math"):
        return {"solution": answer if "boxed" in answer else "\\boxed{" + answer + "}"}
    if dataset == "gsm8k":
        return {"answer": answer if "####" in answer else "####" + answer}
    fields = {"svamp": {"Equation": "", "Answer": answer}, "asdiv": {"formula": "", "answer": answer},
              "mawps": {"target": answer}, "tabmwp": {"solution": "", "answer": answer, "ans_type": None},
              "carp_en": {"steps": "", "answer": answer}, "mmlu_stem": {"answer": "ABCD".find(answer.strip())},
              "sat_math": {"Answer": answer}, "aqua": {"correct": answer}, "gaokao_math_qa": {"label": answer},
              "gaokao2024_mix": {"choice_answer": "", "answer": answer},
              "cn_middle_school": {"choice_answer": "", "answer": answer}, "olympiadbench": {"final_answer": [answer]}}
    return fields.get(dataset, {"answer": answer})


def prediction_and_gold(case):
    dataset = case.get("dataset", "math")
    example = dict(case["example"]) if case.get("example") else record_for(case["answer"], dataset)
    gt_cot, gt = parse_ground_truth(example, dataset)             # math_eval.py
    gt_cot, gt = parse_ground_truth({**example, "gt_cot": gt_cot, "gt": gt}, dataset)   # evaluate.py
    code = case["output"].rstrip().strip()
    for stop in STOP_WORDS:
        if stop in code:
            code = code.split(stop)[0].strip()
    pred = strip_string(extract_answer(code, dataset), skip_unit=dataset in STRIP_EXCEPTIONS)
    if gt in CHOICES and pred not in CHOICES:
        pred = choice_answer_clean(code)
    elif all(c in CHOICES for c in gt) and not all(c in CHOICES for c in pred):
        pred = "".join(c for c in pred if c in CHOICES)
    return pred, gt


def judge(queue, pred, gt):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        queue.put(bool(math_equal(pred, gt)))


def main():
    for line in sys.stdin:
        pred, gt = prediction_and_gold(json.loads(line))
        queue = multiprocessing.Queue()
        process = multiprocessing.Process(target=judge, args=(queue, pred, gt))
        process.start()
        process.join(10)
        timeout = process.is_alive()
        if timeout:
            process.terminate()
            process.join()
        correct = False if timeout else queue.get()
        print(json.dumps({"extracted": pred, "gold": gt, "correct": correct, "timeout": timeout}, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
