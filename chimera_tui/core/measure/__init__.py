"""Measurement maths: per-call metrics, statistics, concurrency figures, comparisons."""
