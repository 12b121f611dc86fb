"""Does MuMMI's fused state know foot contact, and does touch put it there? (issue 32)

    python docs/results/scripts/touch_probe.py LOGDIR [--episodes 40] [--seed 0]

Restores LOGDIR's newest checkpoint and encodes its last `--episodes` training episodes twice:
as stored, and with touch's expert dropped (`touch_flag` = 0 everywhere; images as stored).
For each, a linear probe (ridge least squares on standardised features, fitted on half the
episodes, scored on the other half) predicts each foot's contact (touch > 0, read where touch
is present) from the fused s^f mean (eq. 11) and from the feature z = [s^c, h] the actor sees.
Scores: balanced accuracy (the mean of the hit rates on contact and no-contact steps; 0.5 is
chance) over all touch-present steps, and over those where both cameras are missing (there the
fused state rests on touch and the prior). The touch expert's own mean is probed as well: what
touch could give. Prints one JSON object.
"""
import argparse
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3]))


def load_agent(logdir):
  from mummi_tf.cli import import_tensorflow_quietly
  import_tensorflow_quietly()
  from mummi_tf.run import export
  agent, _, _, step = export.restored_agent(logdir)
  return agent, step


def features(agent, episode, drop_touch):
  """Per step: fused s^f mean, z = [s^c, h] and the touch expert's mean, (T, ...) arrays."""
  import tensorflow as tf
  data = {k: tf.constant(v[None]) for k, v in episode.items() if v.dtype != object}
  if drop_touch:
    data['touch_flag'] = tf.zeros_like(data['touch_flag'])
  wm = agent.world_model
  enc = wm.mssm.encode(data)
  post = wm.mssm.observe(enc.sf, data['action'], data.get('is_first'))[0]
  return {
      'sf': enc.fused_mean[0].numpy(),
      'z': wm.feat(post)[0].numpy(),
      'touch_expert': enc.means['touch'][0].numpy()
  }


def probe(train_x, train_y, test_x, test_y, ridge=1.0):
  """Balanced accuracy of a ridge least-squares probe (targets +-1, threshold 0)."""
  mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
  a = np.c_[(train_x - mu) / sd, np.ones(len(train_x))]
  w = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ (2.0 * train_y - 1.0))
  pred = np.c_[(test_x - mu) / sd, np.ones(len(test_x))] @ w > 0
  hits = [np.mean(pred[test_y == c] == c) for c in (0, 1) if np.any(test_y == c)]
  return round(float(np.mean(hits)), 4) if len(hits) == 2 else None


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('logdir', type=pathlib.Path)
  parser.add_argument('--episodes', type=int, default=40)
  args = parser.parse_args()
  from mummi_tf.run import replay
  agent, step = load_agent(args.logdir)
  files = replay.episode_files(args.logdir / 'episodes')[-args.episodes:]
  rows = {True: [], False: []}
  for i, path in enumerate(files):
    episode = replay.load_episode(path)
    present = episode['touch_flag'] > 0
    no_image = present & (episode['rgb_flag'] == 0) & (episode['depth_flag'] == 0)
    for drop in rows:
      rows[drop].append((i % 2, features(agent, episode, drop), episode['touch']
                         > 0, present, no_image))
  result = {'checkpoint_step': step, 'episodes': len(files)}
  for drop, name in ((False, 'as_stored'), (True, 'touch_dropped')):
    for key in ('sf', 'z', 'touch_expert'):
      if drop and key == 'touch_expert':
        continue
      for subset, index in (('touch_present', 3), ('no_camera', 4)):
        for foot in (0, 1):
          split = {}
          for part in (0, 1):
            x = np.concatenate([r[1][key][r[index]] for r in rows[drop] if r[0] == part])
            y = np.concatenate([r[2][:, foot][r[index]] for r in rows[drop] if r[0] == part])
            split[part] = (x, y)
          result[f'{name}/{key}/{subset}/foot{foot}'] = probe(*split[0], *split[1])
          if not drop and key == 'sf' and foot == 0:
            result[f'steps/{subset}/test'] = int(len(split[1][1]))
  print(json.dumps(result, indent=1))


if __name__ == '__main__':
  main()
