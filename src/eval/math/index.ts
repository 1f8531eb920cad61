// The math grader: the reference harness's answer extraction, normalisation and equality.
export { gradeMath, type GradeOptions, type MathGrade } from "./grade.js";
export { extractAnswer, choiceAnswerClean, predictedAnswer } from "./extract.js";
export { stripString } from "./normalize.js";
export { goldAnswer, GoldAnswerError, MATH_DATASETS } from "./ground-truth.js";
export { mathEqual } from "./equal.js";
export { symbolicEqual } from "./symbolic.js";
