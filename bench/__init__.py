"""Benchmarks of pgsse, each reported as ratios against baselines measured in the same run.

Run ``python -m bench [--quick]`` from the repository root; see docs/performance.md.
"""
