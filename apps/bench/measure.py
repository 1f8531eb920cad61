# Timing for the PyTorch side of benchmarks; the same procedure as apps/bench/measure.ts.
import time


def measure(fn, trials=5, trial_seconds=0.25, warmup=2):
    for _ in range(warmup):
        fn()
    iterations = 1
    while True:
        t = _time(fn, iterations)
        if t >= trial_seconds / 4 or iterations > 1e7:
            iterations = max(1, int(-(-iterations * trial_seconds // max(t, 1e-9))))
            break
        iterations *= 4
    results = sorted(_time(fn, iterations) / iterations for _ in range(trials))
    return results[len(results) // 2]


def _time(fn, n):
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - start
