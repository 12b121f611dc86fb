"""Latent-space figures of the toy experiment in the style of the paper's Fig. 1/19/20.

``latent_figure(path, pair, modalities, panels)`` draws one row per method: the true
positions (the colour key), each expert's means, and both experts overlaid (dots: first
modality, crosses: second), every point coloured by the robot's true (x, y). Latents with
more than two dimensions are shown on the first two principal axes of the fused means.
"""
import numpy as np


def position_colours(state):
  """RGB (N, 3) in [0, 1] from positions in [-1, 1]^2: red grows with x, green with y."""
  state = np.clip((np.asarray(state, np.float64) + 1.0) / 2.0, 0.0, 1.0)
  blue = 1.0 - 0.5 * (state[:, 0] + state[:, 1])
  return np.stack([state[:, 0], state[:, 1], 0.2 + 0.6 * blue], -1)


def _projection(fused):
  """2-D view of latents: identity for two dims, otherwise the top-2 PCA axes."""
  if fused.shape[1] <= 2:
    return lambda x: x if x.shape[1] == 2 else np.concatenate([x, np.zeros_like(x)], 1)
  centre = fused.mean(0)
  _, _, vt = np.linalg.svd(fused - centre, full_matrices=False)
  return lambda x: (x - centre) @ vt[:2].T


def latent_figure(path, pair, modalities, panels):
  """``panels``: {method: dict(embedding=ToyModel.embed(...), state=(N, 2), metrics=...)}
  (``metrics`` from ``toy.metrics.evaluate``, used in the titles). Writes ``path``."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  a, b = modalities
  methods = list(panels)
  fig, axes = plt.subplots(len(methods), 4, figsize=(14, 3.4 * len(methods)), squeeze=False)
  for row, method in zip(axes, methods):
    embedding, state = panels[method]['embedding'], panels[method]['state']
    metrics = panels[method].get('metrics', {})
    share = metrics.get('precision_share', {})
    probe = metrics.get('probe_r2', {})
    colours = position_colours(state)
    project = _projection(embedding['fused_mean'])
    za, zb = project(embedding['means'][0]), project(embedding['means'][1])
    both = np.concatenate([za, zb])
    lo, hi = np.percentile(both, 1, 0), np.percentile(both, 99, 0)
    pad = 0.1 * np.maximum(hi - lo, 1e-3)
    row[0].scatter(state[:, 0], state[:, 1], c=colours, s=4)
    row[0].set_title(f'{method}: true position (colour key)')
    row[0].set_xlim(-1, 1)
    row[0].set_ylim(-1, 1)
    for ax, z, name in ((row[1], za, a), (row[2], zb, b)):
      ax.scatter(z[:, 0], z[:, 1], c=colours, s=4)
      ax.set_title(
          f'{name} expert: share {share.get(name, float("nan")):.2f}, '
          f'probe R² {probe.get(name, float("nan")):.2f}', fontsize=9)
    row[3].scatter(za[:, 0], za[:, 1], c=colours, s=4, marker='o', label=a)
    row[3].scatter(zb[:, 0], zb[:, 1], c=colours, s=10, marker='x', linewidths=0.6, label=b)
    cons = metrics.get('consistency', {})
    row[3].set_title(
        f'both: distance {cons.get("distance", float("nan")):.2f}, '
        f'affine R² {cons.get("affine_r2", float("nan")):.2f}', fontsize=9)
    row[3].legend(fontsize=7, loc='upper right')
    for ax in row[1:]:
      ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
      ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
      ax.set_xlabel('latent 1')
      ax.set_ylabel('latent 2')
  fig.suptitle(f'toy 2-D world, sensors {a} + {b}: expert means coloured by true position')
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)
  return path
