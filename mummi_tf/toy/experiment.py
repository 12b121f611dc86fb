"""The toy 2-D world experiment (paper Fig. 1, 19, 20): one function per run.

``run(pairs, methods, out, steps, ...)`` generates random-action data for every sensor
pair, trains one ``ToyModel`` per method on the same data, scores it with
``toy.metrics.evaluate`` and draws ``latents_<pair>.png``; it returns (and writes to
``out/results.json``) ``{'settings': ..., 'results': {pair: {method: metrics}},
'figures': {pair: png}}``. ``table(report)`` renders it as a markdown table.
"""
import json
import pathlib
import time

import tf_keras as keras

from mummi_tf.toy import data as toy_data
from mummi_tf.toy import figures
from mummi_tf.toy import metrics as toy_metrics
from mummi_tf.toy import models


def observation_spec(pair, size):
  """The pair's dm_env observation spec (from the toy world itself)."""
  from mummi_tf.envs import toy2d
  return toy2d.load(toy_data.check_pair(pair), size=size).observation_spec()


def train_and_score(pair, method, train, fit, test, *, steps, batch, seed, size, **model_kw):
  """Trains one model; returns (metrics dict, test embedding)."""
  keras.utils.set_random_seed(seed)
  model = models.ToyModel(observation_spec(pair, size), method, **model_kw)
  start = time.time()
  history = model.train(train, steps, batch=batch, seed=seed)
  seconds = time.time() - start
  fit_embed = dict(model.embed(fit), state=fit['state'])
  test_embed = dict(model.embed(test), state=test['state'])
  result = toy_metrics.evaluate(fit_embed, test_embed, model.modalities)
  result['train_seconds'] = seconds
  result['model'] = {
      'kl_weight': model.kl_weight,
      'free_nats': model.free_nats,
      'decoder_std': model.decoder_std,
      'latent': model.latent
  }
  result['final_loss'] = history[-1]
  return result, test_embed


def run(pairs, methods, out, *, steps=1200, samples=4000, test_samples=1000, batch=64, seed=0,
        episode_length=20, size=(64, 64), log=print, **model_kw):
  for pair in pairs:
    toy_data.check_pair(pair)
  for method in methods:
    if method not in models.METHODS:
      raise ValueError(f'Unknown toy method {method!r}; valid: {", ".join(models.METHODS)}.')
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  settings = dict(
      pairs=list(pairs), methods=list(methods), steps=steps, samples=samples,
      test_samples=test_samples, batch=batch, seed=seed, episode_length=episode_length,
      size=list(size), **{
          k: v for k, v in model_kw.items()
      })
  results, figure_names = {}, {}
  for pair in pairs:
    start = time.time()
    train = toy_data.generate(pair, samples, size=size, seed=seed, episode_length=episode_length)
    test = toy_data.generate(pair, test_samples, size=size, seed=seed + 10_000,
                             episode_length=episode_length)
    # Probes and affine maps are fitted on (part of) the training data.
    fit = {k: v[:min(len(v), 2000)] for k, v in train.items()}
    log(f'[{pair}] data: {samples} + {test_samples} samples in {time.time() - start:.1f}s')
    results[pair], panels = {}, {}
    for method in methods:
      result, embedding = train_and_score(pair, method, train, fit, test, steps=steps, batch=batch,
                                          seed=seed, size=size, **model_kw)
      results[pair][method] = result
      panels[method] = dict(embedding=embedding, state=test['state'], metrics=result)
      log(f'[{pair}] {method}: {result["train_seconds"]:.0f}s  ' + summary_line(result))
    figure = out / f'latents_{pair}.png'
    figures.latent_figure(figure, pair, toy_data.modalities(pair), panels)
    figure_names[pair] = figure.name
  report = {'settings': settings, 'results': results, 'figures': figure_names}
  with open(out / 'results.json', 'w') as f:
    json.dump(report, f, indent=2)
  return report


def summary_line(result):
  share = result['precision_share']
  probe = result['probe_r2']
  names = [k for k in share if k != 'prior']
  return (f'distance {result["consistency"]["distance"]:.2f}  '
          f'affine R² {result["consistency"]["affine_r2"]:.2f}  ' +
          '  '.join(f'share[{n}] {share[n]:.3f}' for n in names) +
          f'  share[prior] {share["prior"]:.3f}  ' +
          '  '.join(f'probe R²[{n}] {probe[n]:.2f}' for n in names + ['fused']))


def table(report):
  """Markdown table of a report (one row per pair x method)."""
  lines = [
      '| pair | method | distance ↓ | affine R² | share A | share B | share prior '
      '| probe R² A | probe R² B | probe R² fused |', '|---|---|---|---|---|---|---|---|---|---|'
  ]
  for pair, by_method in report['results'].items():
    a, b = toy_data.modalities(pair)
    for method, r in by_method.items():
      s, p, c = r['precision_share'], r['probe_r2'], r['consistency']
      lines.append(f'| {pair} ({a}, {b}) | {method} | {c["distance"]:.2f} | '
                   f'{c["affine_r2"]:.2f} | {s[a]:.3f} | {s[b]:.3f} | {s["prior"]:.3f} | '
                   f'{p[a]:.2f} | {p[b]:.2f} | {p["fused"]:.2f} |')
  return '\n'.join(lines)
