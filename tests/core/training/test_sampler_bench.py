"""bench/bench_sampler.py measures the sampler with the worker's own alert hook, as a real run wires it."""

from __future__ import annotations


def test_the_sampler_benchmark_runs_the_workers_alert_hook() -> None:
    from bench.bench_sampler import measure

    got = measure(0.2, 1.0, children=0)
    assert got["samples"] >= 1 and got["pct"] >= 0.0
