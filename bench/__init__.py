"""Benchmarks. Every figure is measured side by side with its baseline in the same run, or
labelled absolute. ``python -m bench`` (``make bench``) runs them all; each module also runs on
its own (``python -m bench.throughput --help``)."""

from pathlib import Path

RESULTS = Path(__file__).parent / "results"
"""Where each benchmark writes its JSON."""
