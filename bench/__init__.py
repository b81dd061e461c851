"""Benchmarks: backproplab's engine against its peers (micrograd, NumPy, torch), as ratios.

Run ``python -m bench`` (all rows), ``python -m bench --quick`` (fewer repeats) or
``python -m bench NAME...`` for chosen rows; every row is appended to bench/results.jsonl.
"""
