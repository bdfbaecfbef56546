"""Benchmarks that print a table: run one as `python -m bench.bench_NAME`, all of them with `make bench`."""
