"""Identical concurrent computations are shared; sequential ones are not; errors propagate."""

from __future__ import annotations

import threading
import time

import pytest

from cachewatch.singleflight import SingleFlight


def test_concurrent_identical_calls_share_one_computation() -> None:
    flight: SingleFlight[int] = SingleFlight()
    started = threading.Event()
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        started.set()
        time.sleep(0.3)
        return len(calls)

    results: list[int] = []
    leader = threading.Thread(target=lambda: results.append(flight.do("k", compute)))
    leader.start()
    assert started.wait(5)
    followers = [
        threading.Thread(target=lambda: results.append(flight.do("k", compute))) for _ in range(8)
    ]
    for thread in followers:
        thread.start()
    for thread in [leader, *followers]:
        thread.join(10)
    assert results == [1] * 9
    assert len(calls) == 1
    assert flight.shared == 8
    assert flight.do("k", compute) == 2  # nothing is cached once the computation finished
    assert flight.do("other", lambda: 42) == 42


def test_a_failing_computation_fails_its_followers_too() -> None:
    flight: SingleFlight[int] = SingleFlight()
    started = threading.Event()

    def boom() -> int:
        started.set()
        time.sleep(0.2)
        raise ValueError("broken collector")

    errors: list[BaseException] = []

    def call() -> None:
        try:
            flight.do("k", boom)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=call)]
    threads[0].start()
    assert started.wait(5)
    threads += [threading.Thread(target=call) for _ in range(3)]
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(errors) == 4
    assert sum(isinstance(e, ValueError) for e in errors) == 1
    assert all(isinstance(e.__cause__, ValueError) for e in errors if isinstance(e, RuntimeError))
    with pytest.raises(ValueError):
        flight.do("k", boom)  # the failure is not remembered either
