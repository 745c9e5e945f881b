"""Coverage-guided fuzzing of the sans-I/O protocol (atheris); see README "Fuzzing".

This package must not import p2pmsg at import time: each harness imports the
protocol inside `atheris.instrument_imports()`, which only instruments modules
that are not loaded yet.
"""
