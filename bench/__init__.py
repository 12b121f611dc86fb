"""`make bench`: the speed and memory figures of docs/performance.md (see `bench/__main__.py`).

Importing this package imports neither TensorFlow nor dm_control: the env figures run in
TF-free subprocesses (`bench.env_probe`), the model figures in fresh ones where needed.
"""
