"""``scripts/bench_epoch.py``'s modules (see its docstring): common settings and helpers,
the two pipelines, the measurements, and the printed/saved output."""
