"""Wall time of one evaluation (5 episodes of condition `none`, walker_stand, MuMMI small,
untrained weights: the same graph and episode length as a trained agent's) with the episodes
run one after another (Evaluator.parallel = 1) and side by side (= 5).

Run from the repository root: python docs/results/scripts/time_eval.py 1 5
"""
import pathlib
import sys
import tempfile
import time

import gin

sys.path.insert(0, '.')
from mummi_tf.cli import train
from mummi_tf.run import trainer as trainer_lib

for parallel in map(int, sys.argv[1:]):
  gin.clear_config()
  with tempfile.TemporaryDirectory() as logdir:
    args = train.parse_args([
        '--task', 'walker_stand', '--logdir', logdir, '--gin_file', 'mummi', '--gin_file', 'small',
        '--gin_binding', "mummi_tf.evaluation.conditions.levels = ('none',)", '--gin_binding',
        f'Evaluator.parallel = {parallel}'
    ])
    train.configure(args)
    trainer = trainer_lib.Trainer(pathlib.Path(logdir), 'walker_stand', 0)
    trainer._setup()
    try:
      trainer._evaluate(1)  # traces the policy and starts one worker
      start = time.perf_counter()
      returns = trainer._evaluate(5)
      print(
          f'parallel={parallel}: {time.perf_counter() - start:.1f} s for 5 episodes '
          f'(returns {[round(r) for r in returns["none"]]})', flush=True)
    finally:
      trainer._close()
