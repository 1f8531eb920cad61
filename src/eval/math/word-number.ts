// English number words to digits, as the `word2number` package (w2n.word_to_num, 1.1) that the
// reference grader's strip_string calls on every answer: any whitespace-separated token that is a
// number word makes the whole string that number ("two cars" -> "2"). Null when w2n would raise,
// in which case the caller keeps the string unchanged.
const VALUES: Record<string, number> = {
  zero: 0,
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  eleven: 11,
  twelve: 12,
  thirteen: 13,
  fourteen: 14,
  fifteen: 15,
  sixteen: 16,
  seventeen: 17,
  eighteen: 18,
  nineteen: 19,
  twenty: 20,
  thirty: 30,
  forty: 40,
  fifty: 50,
  sixty: 60,
  seventy: 70,
  eighty: 80,
  ninety: 90,
  hundred: 100,
  thousand: 1000,
  million: 1_000_000,
  billion: 1_000_000_000,
};
const DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];

/** w2n's number_formation: at most four words, read as a*b + c + d and its shorter forms. */
function formation(words: string[]): number {
  if (words.length === 0) throw new Error("no words"); // IndexError in w2n
  const n = words.map((w) => VALUES[w]);
  if (n.length === 4) return n[0] * n[1] + n[2] + n[3];
  if (n.length === 3) return n[0] * n[1] + n[2];
  if (n.length === 2) return n.includes(100) ? n[0] * n[1] : n[0] + n[1];
  return n[0];
}

/** The value and whether Python holds it as a float (printed "3.0", not "3"). */
interface W2nValue {
  value: number;
  float: boolean;
}

function wordToNumber(sentence: string): W2nValue {
  const text = sentence.replaceAll("-", " ").toLowerCase();
  // str.isdigit(): only ASCII digits matter here, the others make int() raise
  if (/^\p{Nd}+$/u.test(text)) {
    if (!/^[0-9]+$/.test(text)) throw new Error("not an int");
    return { value: Number(text), float: false };
  }
  let words = text
    .trim()
    .split(/\s+/)
    .filter((w) => Object.hasOwn(VALUES, w) || w === "point");
  if (words.length === 0) throw new Error("no number words");
  const count = (w: string) => words.filter((x) => x === w).length;
  if (count("thousand") > 1 || count("million") > 1 || count("billion") > 1 || count("point") > 1) {
    throw new Error("redundant number word");
  }
  let decimals: string[] = [];
  if (count("point") === 1) {
    const at = words.indexOf("point");
    decimals = words.slice(at + 1);
    words = words.slice(0, at);
  }
  const b = words.indexOf("billion"),
    m = words.indexOf("million"),
    t = words.indexOf("thousand");
  if ((t > -1 && (t < m || t < b)) || (m > -1 && m < b)) throw new Error("malformed number");
  let total = 0;
  if (words.length === 1) total += VALUES[words[0]];
  else if (words.length > 1) {
    if (b > -1) total += formation(words.slice(0, b)) * 1e9;
    if (m > -1) total += formation(b > -1 ? words.slice(b + 1, m) : words.slice(0, m)) * 1e6;
    if (t > -1)
      total += formation(m > -1 ? words.slice(m + 1, t) : b > -1 ? words.slice(b + 1, t) : words.slice(0, t)) * 1e3;
    const last = words.length - 1;
    if (t > -1 && t !== last) total += formation(words.slice(t + 1));
    else if (m > -1 && m !== last) total += formation(words.slice(m + 1));
    else if (b > -1 && b !== last) total += formation(words.slice(b + 1));
    else if (t === -1 && m === -1 && b === -1) total += formation(words);
  }
  // get_decimal_sum: a float from digit words only, else the int 0
  if (decimals.length > 0 && decimals.every((w) => DIGIT_WORDS.includes(w))) {
    return { value: total + Number("0." + decimals.map((w) => VALUES[w]).join("")), float: true };
  }
  return { value: total, float: false };
}

/** convert_word_number: the number the words spell, as Python prints it, or the text unchanged. */
export function convertWordNumber(text: string): string {
  try {
    const { value, float } = wordToNumber(text);
    return float && Number.isInteger(value) ? `${value}.0` : String(value);
  } catch {
    return text;
  }
}
