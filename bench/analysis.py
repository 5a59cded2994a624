"""Cost of the analysis: a sliding least-squares update against refitting the whole window,
and one sampler round over many caches.

Prints medians measured in this run and their ratios (the machine is shared and noisy, so
only ratios within one run mean much). The O(1) update should stay flat as the window grows
while the naive refit grows with it.

    python bench/analysis.py [--rounds 7] [--caches 200]
"""

from __future__ import annotations

import argparse
import statistics
import time

from cachewatch.analysis.sampler import Sampler
from cachewatch.analysis.trends import SlidingFit
from cachewatch.config import Config
from cachewatch.snapshot import CacheSnapshot, HistogramSnapshot, SourceSnapshot
from cachewatch.sources.poller import Poller

EPOCH = 1_800_000_000.0


def naive_slope(samples: list[tuple[float, float]]) -> float:
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    cov = sum((t - mean_t) * (v - mean_v) for t, v in samples)
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    return cov / var


def per_sample_ns(window_samples: int, updates: int, rounds: int) -> tuple[float, float]:
    """(sliding update + fit, naive refit over the window) in ns per sample, medians."""
    sliding, naive = [], []
    for _ in range(rounds):
        fit = SlidingFit(window=window_samples * 15.0, capacity=window_samples + 16)
        start = time.perf_counter_ns()
        for i in range(updates):
            fit.add(EPOCH + 15.0 * i, 1e9 + 3.0 * i)
            fit.slope()
        sliding.append((time.perf_counter_ns() - start) / updates)
        samples: list[tuple[float, float]] = []
        start = time.perf_counter_ns()
        for i in range(updates):
            samples.append((EPOCH + 15.0 * i, 1e9 + 3.0 * i))
            if len(samples) > window_samples:
                del samples[0]
            if len(samples) > 1:
                naive_slope(samples)
        naive.append((time.perf_counter_ns() - start) / updates)
    return statistics.median(sliding), statistics.median(naive)


def sampler_round_ms(caches: int, rounds: int) -> float:
    """One sampler round (trackers, fits, alert evaluation) over ``caches`` caches, in ms."""
    sampler = Sampler(Poller([]), Config().analysis)
    latency = HistogramSnapshot(((0.001, 90), (0.01, 99), (float("inf"), 100)), 0.1, 100)
    times = []
    for r in range(rounds * 10):
        fields = dict(hits=90 * r, misses=10 * r, puts=10 * r, size=r, memory_bytes=1e6 + r)
        caches_now = tuple(
            CacheSnapshot(
                f"cache-{i}", "local", memory_limit_bytes=1e8, latency={"get": latency}, **fields
            )
            for i in range(caches)
        )
        snapshot = SourceSnapshot("local", True, EPOCH, 0.0, caches_now)
        start = time.perf_counter_ns()
        sampler.feed([snapshot], EPOCH + 15.0 * r)
        times.append((time.perf_counter_ns() - start) / 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--caches", type=int, default=200)
    args = parser.parse_args()
    print("window samples  sliding ns/sample  naive refit ns/sample  naive/sliding")
    for window in (120, 480, 1920):
        sliding, naive = per_sample_ns(window, 4 * window, args.rounds)
        print(f"{window:>14}  {sliding:>17,.0f}  {naive:>21,.0f}  {naive / sliding:>13.1f}")
    round_ms = sampler_round_ms(args.caches, args.rounds)
    print(
        f"sampler round over {args.caches} caches: {round_ms:.2f} ms median "
        f"({round_ms * 1000 / args.caches:.0f} us per cache)"
    )


if __name__ == "__main__":
    main()
