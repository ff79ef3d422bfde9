"""Benchmarks: side-by-side measurements in one run, reported as tables or one JSON object."""
