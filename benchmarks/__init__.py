"""The benchmark suite behind ``scripts/bench``: the DESIGN's performance aims, each measured side by side.

Not a package of the project (not installed, not type-checked with it): plain modules run with the venv's
python from the repository root, ``python -m benchmarks [--quick] [NAME ...]``. See ``docs/benchmarks.md``.
"""
