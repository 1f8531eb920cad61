// The verifier: the final answer decides, malformed responses are wrong, nothing throws.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ARITH_ALPHABET,
  extractAnswer,
  makeProblem,
  seededRandom,
  verify,
  workedSolution,
} from "../../../../apps/tasks/arith/index.js";

const p = makeProblem(47, "+", 85);

describe("arith verifier", () => {
  it("accepts the right final answer and rejects a wrong one", () => {
    assert.equal(verify(p, " 7+5+0=12 4+8+1=13 A=132."), true);
    assert.equal(verify(p, " 7+5+0=12 4+8+0=12 A=122."), false);
    // Only the answer counts: wrong steps with the right answer still verify (the judge sees the steps).
    assert.equal(verify(p, " 7+5+0=11 4+8+1=13 A=132."), true);
    assert.equal(verify(p, " A=132."), true);
    assert.equal(verify(p, "A=132."), true);
  });

  it("handles negative answers", () => {
    const neg = makeProblem(17, "-", 52);
    assert.equal(verify(neg, workedSolution(neg)), true);
    assert.equal(verify(neg, " 12-7-0=5 5-1-1=3 A=35."), false);
    assert.equal(extractAnswer(" A=-35."), -35);
    assert.equal(extractAnswer(" A=-0."), 0);
  });

  it("treats malformed responses as wrong: no answer, garbage, truncated", () => {
    const malformed = [
      "",
      " ",
      ".",
      "garbage",
      "Q:47+85=",
      " 7+5+0=12 4+8+1=13",
      " 7+5+0=12 4+8+1=13 ",
      " 7+5+0=12 4+8+1=13 A=",
      " 7+5+0=12 4+8+1=13 A=132",
      " 7+5+0=12 4+8+1=13 A=13",
      " 7+5+0=12 4+8+1=13 A=1",
      " 7+5+0=12 4+8+1=13 A",
      " 7+5+0=12 4+8+1=13 A=.",
      " xA=132.",
      " A=1.32e2.",
      " A=+132.",
      " A=--132.",
      " A= 132.",
      " A=132 .",
      "132.",
      " a=132.",
      " P=132.",
      ` A=${"9".repeat(40)}.`,
      "A".repeat(500),
      "=".repeat(100),
      "\u0000A=132",
      "<unk><unk>",
    ];
    for (const text of malformed) assert.equal(verify(p, text), false, JSON.stringify(text));
  });

  it("never throws, whatever it is given", () => {
    for (const junk of [undefined, null, 132, {}, [], Symbol.iterator] as unknown[]) {
      assert.equal(verify(p, junk as string), false);
      assert.equal(extractAnswer(junk as string), undefined);
    }
    const random = seededRandom(1);
    const chars = [...ARITH_ALPHABET, "<s>", "</s>", "\n", "é"];
    for (let i = 0; i < 2000; i++) {
      const len = Math.floor(random() * 60);
      const text = Array.from({ length: len }, () => chars[Math.floor(random() * chars.length)]).join("");
      assert.doesNotThrow(() => verify(p, text));
    }
  });

  it("takes the first complete answer, and ignores special tokens around it", () => {
    assert.equal(verify(p, " A=132. A=5."), true);
    assert.equal(verify(p, " A=5. A=132."), false);
    assert.equal(verify(p, "<s> 7+5+0=12 4+8+1=13 A=132.</s>"), true);
    assert.equal(verify(p, " 7+5+0=12 4+8+1=13 A=132.</s><pad><pad>"), true);
    assert.equal(verify(p, " 7+5+0=12 4+8+1=13 A=132. 1+1"), true);
    assert.equal(verify(p, " A=0132."), true, "leading zeros: the number is what counts");
  });
});
