// Recomputation in backward ("gradient checkpointing") without running JavaScript inside
// LibTorch's autograd, which the addon cannot do: a recorded segment runs forward under no-grad
// and hands on its output as a fresh leaf that requires grad, so nothing inside it is kept. The
// caller's loss.backward() stops at those leaves and fills their .grad; backward() then walks
// the segments in reverse, recomputes each one with grad from its saved input and
// backpropagates output.grad through it. That fills the input's .grad when the input is the
// previous segment's output (a leaf), or reaches the weights through the input's own graph
// (the embedding's, say), and parameters' grads accumulate across segments as usual.
//
// One tape serves every kind of segment (decoder layers, the LM head's chunks), so a training
// step calls one thing after loss.backward(). Recomputation must give the forward's values
// again: the segments it records are deterministic (dropout off, as in preference training).
import * as torch from "../torch/index.js";
import { forEachTensor } from "../torch/scope.js";

/**
 * How a backward call is made: root.backward(grad) by default. `later` is what the calls after
 * this one will backpropagate from or through (data parallelism reduces a parameter's gradient
 * early only when none of them reaches it: src/train/distributed/data-parallel.ts).
 */
export type Backprop = (root: torch.Tensor, grad: torch.Tensor | null, later: torch.Tensor[]) => void;

export const plainBackprop: Backprop = (root, grad) => root.backward(grad ?? undefined);

export interface SegmentOptions {
  /**
   * Segments of one group read the same parameters (the LM head's chunks); a segment without
   * one reads parameters no other segment reads (a decoder layer).
   */
  group?: string;
  /**
   * Called once this segment's backward is over (its recomputation and the backprop through
   * it), or when the tape is freed without reaching it: what the recomputation gathered (a
   * ZeRO-3 layer's weights) may be freed then, not before, as backprop reads it.
   */
  afterBackward?: () => void;
}

interface Segment {
  input: torch.Tensor;
  group: string | undefined;
  run: (input: torch.Tensor) => torch.Tensor;
  afterBackward: (() => void) | undefined;
  /** The forward's output as a leaf that requires grad; loss.backward() fills its .grad. */
  output: torch.Tensor;
}

export class RecomputeTape {
  readonly #segments: Segment[] = [];
  /** Tensors the tape keeps alive until it is done: segment inputs and what the segments read. */
  readonly #held = new Set<torch.Tensor>();
  #done = false;

  /** Segments recorded and not yet backpropagated. */
  get length(): number {
    return this.#segments.length;
  }

  /**
   * Runs `forward(input)` under no-grad (default: `run`) and records `run` for backward.
   * Returns the output as a leaf that requires grad, owned by the tape (freed by backward() or
   * dispose()). `input` is kept alive until then. `forward` may record values the
   * recomputation does not need (metrics), but must return what `run` returns.
   *
   * An input that is not a leaf is backpropagated through once, by this segment's backward:
   * at most one segment may read a given non-leaf input.
   */
  segment(
    input: torch.Tensor,
    run: (input: torch.Tensor) => torch.Tensor,
    forward: (input: torch.Tensor) => torch.Tensor = run,
    options: SegmentOptions = {},
  ): torch.Tensor {
    if (this.#done) throw new Error("this recompute tape has already run backward; make a new one per forward");
    this.hold(input);
    const output = torch.noGrad(() => torch.tidy(() => forward(input))).keep();
    output.requiresGrad_(true);
    this.#held.add(output);
    this.#segments.push({ input, group: options.group, run, afterBackward: options.afterBackward, output });
    return output;
  }

  /** Keeps every tensor in `value` (a tensor, or arrays and plain objects of them) alive until the tape is done; returns `value`. */
  hold<T>(value: T): T {
    forEachTensor(value, (t) => {
      const tensor = t as torch.Tensor;
      if (this.#held.has(tensor)) return;
      tensor.keep();
      this.#held.add(tensor);
    });
    return value;
  }

  /**
   * After loss.backward(): recomputes each segment with grad, last first, and backpropagates
   * its output's gradient through it. A segment whose output got no gradient (unused by the
   * loss) is skipped. Frees what the tape held, also when it throws.
   */
  backward(backprop: Backprop = plainBackprop): void {
    if (this.#done) throw new Error("this recompute tape has already run backward");
    try {
      for (let i = this.#segments.length - 1; i >= 0; i--) {
        const segment = this.#segments[i];
        const { input, group, run, output } = segment;
        const grad = output.grad;
        try {
          if (grad) {
            torch.tidy(() =>
              torch.enableGrad(() => {
                const recomputed = run(input);
                // While segments of this one's group follow, what this graph reaches is read again.
                const sameGroupNext = group !== undefined && i > 0 && this.#segments[i - 1].group === group;
                if (recomputed.requiresGrad)
                  backprop(recomputed, grad, [...this.inputsBefore(i), ...(sameGroupNext ? [recomputed] : [])]);
              }),
            );
            grad.dispose();
          }
        } finally {
          this.#after(segment);
        }
        // The output (the next segment's input) is done with: its gradient has gone down.
        this.#release(output);
      }
    } finally {
      this.dispose();
    }
  }

  /**
   * The inputs of the segments before `end` (all by default): backward() backpropagates through
   * each one's graph after segment `end`'s (loss.backward() comes before them all).
   */
  inputsBefore(end = this.#segments.length): torch.Tensor[] {
    return this.#segments.slice(0, end).map((s) => s.input);
  }

  /** Frees everything the tape holds without backpropagating (evaluation, or an error before backward). */
  dispose(): void {
    this.#done = true;
    for (const s of this.#segments) this.#after(s);
    for (const t of this.#held) t.dispose();
    this.#held.clear();
    this.#segments.length = 0;
  }

  /** Calls the segment's afterBackward once. */
  #after(segment: Segment): void {
    const after = segment.afterBackward;
    segment.afterBackward = undefined;
    after?.();
  }

  #release(t: torch.Tensor): void {
    if (this.#held.delete(t)) t.dispose();
  }
}
