// Parity tests run scripts in a Python with PyTorch. Whether they run here at all is decided in
// requirements.ts (skipUnless("torch")), not here. CI installs Debian's python3-torch.
import { runPythonJson, torchPython } from "../../src/util/python.js";

export { torchPython };

/** Runs `script` with `input` serialised as JSON on stdin; returns the JSON it prints last. */
export function runPython<T = unknown>(script: string, input: unknown = null): T {
  return runPythonJson<T>(script, input);
}

/**
 * `build` run at most once, on first call: a test file's one python reference run, shared by
 * its tests; a failure is remembered and rethrown, so python is not run again for each test.
 */
export function once<T>(build: () => T): () => T {
  let done: { value: T } | undefined;
  let failure: { error: unknown } | undefined;
  return () => {
    if (failure) throw failure.error;
    if (!done) {
      try {
        done = { value: build() };
      } catch (error) {
        failure = { error };
        throw error;
      }
    }
    return done.value;
  };
}
