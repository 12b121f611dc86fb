"""The run machinery around the model: collection (driver), replay, logging, timing,
checkpoints, preemption, the training loop (trainer), evaluation, sweeps and export. It imports
nothing of ``cli/`` (tests/test_layout.py)."""
