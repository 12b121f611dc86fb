#!/usr/bin/env python
"""The toy 2-D world experiment of the paper's Fig. 1, 19 and 20.

For each sensor pair (position + ceiling camera, front + back camera, x + y sensors) a
non-sequential product-of-experts latent model is trained on the same random-action data
with the reconstruction ELBO, the ELBO with random modality dropping, and MuMMI; each is
scored for cross-modal consistency, the experts' shares of the fused precision and linear
probes of the true position. Prints a markdown table and writes ``OUT/results.json`` and
``OUT/latents_<pair>.png``::

    mummi-toy --out toy_results

Defaults (1200 steps, batch 64, 4000 + 1000 samples per pair) take about 15 minutes
on a 2-core CPU shared with other jobs (load average 8).
"""
import argparse
import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

PAIRS = ('position_camera', 'front_back', 'x_y')
METHODS = ('elbo', 'elbo_drop', 'mummi')


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--out', required=True, help='output folder')
  parser.add_argument('--steps', type=int, default=1200, help='gradient steps per model')
  parser.add_argument('--pairs', nargs='+', default=list(PAIRS), choices=PAIRS)
  parser.add_argument('--methods', nargs='+', default=list(METHODS), choices=METHODS)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--samples', type=int, default=4000, help='training observations')
  parser.add_argument('--test_samples', '--test-samples', type=int, default=1000,
                      help='held-out observations for the metrics and figures')
  parser.add_argument('--batch', type=int, default=64,
                      help='batch size (MuMMI: batch - 1 InfoNCE negatives)')
  parser.add_argument('--latent', type=int, default=2, help='size of the latent s')
  parser.add_argument('--lr', type=float, default=3e-3, help='Adam learning rate (all methods)')
  args = parser.parse_args(argv)
  for name in ('steps', 'samples', 'test_samples', 'latent'):
    if getattr(args, name) < 1:
      parser.error(f'--{name.replace("_", "-")} must be >= 1')
  if args.batch < 2:
    parser.error('--batch must be >= 2')

  from mummi_tf.cli import import_tensorflow_quietly
  import_tensorflow_quietly()  # no C++ start-up banner
  from mummi_tf.toy import experiment
  start = time.time()
  report = experiment.run(args.pairs, args.methods, args.out, steps=args.steps,
                          samples=args.samples, test_samples=args.test_samples, batch=args.batch,
                          seed=args.seed, latent=args.latent, lr=args.lr,
                          log=lambda s: print(s, flush=True))
  print()
  print(experiment.table(report))
  print(f'\nwrote {os.path.join(args.out, "results.json")} and '
        f'{len(report["figures"])} figure(s) in {time.time() - start:.0f}s')
  return 0


if __name__ == '__main__':
  sys.exit(main())
