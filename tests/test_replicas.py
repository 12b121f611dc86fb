"""The update on several devices (``Trainer.devices``): two replicas on two logical CPUs
give the one-device update's losses and weights; checkpoints cross between the two;
mixed precision trains. The device checks run in a fresh interpreter (``python
tests/test_replicas.py CHECK``): logical devices must be set before TF starts."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

HERE = pathlib.Path(__file__).resolve().parent
TOLERANCE = dict(rtol=1e-5, atol=1e-7)  # float32 sums in another order
PER_REPLICA = ('cross_modal_distance',)  # a diagnostic of each replica's rows


def _run(check, tmp_path):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES='')
  out = tmp_path / 'out.json'
  proc = subprocess.run([sys.executable, __file__, check, str(out)], env=env, cwd=HERE.parent,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  return json.loads(out.read_text())


def test_two_replicas_update_as_one_device_and_checkpoints_cross(tmp_path):
  result = _run('equality', tmp_path)
  for step, (one, two) in enumerate(zip(result['one'], result['two'])):
    assert set(one) == set(two)
    for key in sorted(set(one) - set(PER_REPLICA)):
      np.testing.assert_allclose(two[key], one[key], **TOLERANCE, err_msg=f'{step} {key}')
  assert result['weights_checked'] > 50
  assert result['weight_max_abs_diff'] < 1e-6, result
  assert result['restored_one_from_two'] == result['restored_two_from_one'] == 'matched'
  assert result['policy_max_abs_diff'] < 1e-6
  assert result['label'] == '2 replicas (CPU:0, CPU:1)'


def test_two_replicas_train_under_mixed_precision(tmp_path):
  result = _run('mixed', tmp_path)
  for policy in ('mixed_bfloat16', 'mixed_float16'):
    metrics = result[policy]
    assert all(np.isfinite(v) for v in metrics['losses']), metrics
    assert metrics['changed'], policy
  assert result['mixed_float16']['loss_scale'] > 0


def test_a_run_on_two_devices_trains_saves_and_names_them(tmp_path):
  result = _run('trainer', tmp_path)
  assert ' · 2 replicas (CPU:0, CPU:1) · ' in result['summary'], result['summary']
  assert result['checkpoints'] and np.isfinite(result['model_loss'])


def test_devices_resolve_and_validate():
  from mummi_tf.model import distribute
  assert distribute.resolve_devices(None, 4) == ['CPU:0']  # No GPU here.
  assert distribute.resolve_devices(['/device:CPU:0'], 4) == ['CPU:0']
  with pytest.raises(ValueError, match='default one'):
    distribute.resolve_devices(['GPU:1'], 4)
  with pytest.raises(ValueError, match='does not split'):
    distribute.resolve_devices(['CPU:0', 'CPU:1'], 5)
  with pytest.raises(ValueError, match='twice'):
    distribute.resolve_devices(['CPU:0', '/cpu:0'], 4)
  assert distribute.devices_label(['CPU:0']) == 'CPU'
  assert distribute.devices_label(['GPU:0']) == '1 GPU'
  assert distribute.devices_label(['GPU:0', 'GPU:1']) == '2 replicas (GPU:0, GPU:1)'


def test_keyed_noise_is_reproducible_and_fresh_per_call_and_update():
  import tensorflow as tf
  from mummi_tf.model import behavior
  from mummi_tf.model import distribute
  assert not distribute.keyed()
  draws = {}
  for counter in (0, 0, 1):
    with distribute.keyed_noise(7, tf.constant(counter)):
      assert distribute.keyed() and distribute.replicas() == 1
      draws.setdefault(counter, []).append([
          distribute.normal([3, 2]).numpy(),
          distribute.uniform([4], axis=0).numpy()
      ])
  np.testing.assert_array_equal(draws[0][0][0], draws[0][1][0])  # same key, same numbers
  assert not np.allclose(draws[0][0][0], draws[1][0][0])  # the next update
  assert np.all((draws[0][0][1] >= 0) & (draws[0][0][1] < 1))
  # A truncated-normal actor samples by the inverse CDF; starts are a keyed permutation.
  actor = behavior.Actor(2, layers=1, units=4, dist='trunc_normal')
  critic = behavior.ActorCritic(2, starts=3)
  post = {k: tf.reshape(tf.range(8.0), [2, 4, 1]) for k in ('mean', 'std', 'stoch', 'deter')}
  samples = []
  for _ in range(2):
    with distribute.keyed_noise(3, 5):
      action, logp = actor._sample_logp(*actor.params(tf.ones([5, 3])), [])
      picked = critic.start_states(post)['deter'].numpy().ravel()
    samples.append(action.numpy())
    assert np.all(np.abs(action.numpy()) < 1) and np.all(np.isfinite(logp.numpy()))
    assert len(set(picked)) == 3 and set(picked) <= set(range(8))
  np.testing.assert_array_equal(*samples)


# ----------------------------------------------------------------- in the subprocess
def _values(agent):
  return [v.numpy() for v in agent.variables]


def _floats(metrics):
  for value in metrics.values():
    assert value.shape == (), value  # scalars, reduced over replicas
  return {k: float(v) for k, v in metrics.items()}


def _equality(tf, out_dir):
  import gin
  from mummi_tf.model import agent as agent_lib
  from mummi_tf.model import distribute
  import test_agent as ta
  # Keyed noise: the same samples per row on one device and two; every posterior starts
  # imagination; the slow target is refreshed each update (a cross-replica copy).
  ta.bind_tiny(**{
      'Agent.noise_seed': 7,
      'ActorCritic.starts': 0,
      'ActorCritic.slow_target_every': 1
  })
  tf.random.set_seed(1)
  one = agent_lib.Agent(ta.OBS_SPEC, ta.ACTION_SPEC)
  start = tf.train.Checkpoint(agent=one).save(f'{out_dir}/start')
  devices = distribute.resolve_devices(['/cpu:0', '/cpu:1'], 4)
  strategy = distribute.strategy_for(devices)
  with strategy.scope():
    two = agent_lib.Agent(ta.OBS_SPEC, ta.ACTION_SPEC)
  assert two.replicas == 2 and one.replicas == 1
  status = tf.train.Checkpoint(agent=two).restore(start)
  status.assert_existing_objects_matched()
  result = {'restored_two_from_one': 'matched', 'one': [], 'two': []}
  for step in range(2):
    batch = ta.make_batch(4, 5, seed=step)  # touch missing in half the steps
    result['one'].append(_floats(one.train(batch)))
    result['two'].append(_floats(two.train(batch)))
  diffs = [
      float(np.max(np.abs(a - b))) if a.size else 0.0 for a, b in zip(_values(one), _values(two))
  ]
  result['weights_checked'] = len(diffs)
  result['weight_max_abs_diff'] = max(diffs)
  # Two replicas -> one device: the same weights, the same deterministic policy.
  saved = tf.train.Checkpoint(agent=two).save(f'{out_dir}/two')
  gin.clear_config()
  ta.bind_tiny()
  three = agent_lib.Agent(ta.OBS_SPEC, ta.ACTION_SPEC)
  tf.train.Checkpoint(agent=three).restore(saved).assert_existing_objects_matched()
  result['restored_one_from_two'] = 'matched'
  for a, b in zip(_values(two), _values(three)):
    np.testing.assert_array_equal(a, b)
  obs = ta.make_obs(3, seed=4)
  acted = [agent.policy(obs, None, training=False)[0].numpy() for agent in (two, three)]
  result['policy_max_abs_diff'] = float(np.max(np.abs(acted[0] - acted[1])))
  sampled, state = two.policy(obs, None, training=True)
  assert np.all(np.isfinite(sampled.numpy())) and set(state) >= {'deter', 'action'}
  result['label'] = distribute.devices_label(devices)
  return result


def _mixed(tf, out_dir):
  import gin
  import tf_keras as keras
  from mummi_tf.model import agent as agent_lib
  from mummi_tf.model import distribute
  import test_agent as ta
  strategy = distribute.strategy_for(['CPU:0', 'CPU:1'])
  result = {}
  for policy in ('mixed_bfloat16', 'mixed_float16'):
    gin.clear_config()
    ta.bind_tiny(**{'ActorCritic.starts': 4})
    keras.mixed_precision.set_global_policy(policy)
    with strategy.scope():
      agent = agent_lib.Agent(ta.OBS_SPEC, ta.ACTION_SPEC)
    before = _values(agent)
    losses = []
    for step in range(2):
      metrics = _floats(agent.train(ta.make_batch(4, 5, seed=step)))
      losses += [metrics[k] for k in ('model_loss', 'actor_loss', 'value_loss')]
    result[policy] = {
        'losses': losses,
        'changed': any(not np.array_equal(a, b) for a, b in zip(before, _values(agent))),
        'loss_scale': metrics.get('model_loss_scale', 0.0)
    }
  keras.mixed_precision.set_global_policy('float32')
  return result


def _trainer(tf, out_dir):
  import contextlib
  import io
  from mummi_tf.cli import train
  bindings = [
      'mummi_tf.envs.make.time_limit = 40', 'Trainer.steps = 120', 'Trainer.prefill = 40',
      'Trainer.train_every = 40', 'Trainer.train_steps = 1', 'Trainer.batch_size = 2',
      'Trainer.batch_length = 8', 'Trainer.eval_every = 1000', 'Trainer.log_every = 40',
      'Trainer.save_every = 1000', "Trainer.devices = ['CPU:0', 'CPU:1']", 'WorldModel.deter = 8',
      'WorldModel.stoch = 4', 'WorldModel.hidden = 8', 'WorldModel.reward_units = 8',
      'Actor.units = 8', 'Value.units = 8', 'ActorCritic.horizon = 3', 'ActorCritic.mpc_horizon = 3'
  ]
  argv = ['--task', 'toy2d_x_y', '--logdir', str(out_dir / 'run'), '--gin_file', 'dreamer']
  for binding in bindings:
    argv += ['--gin_binding', binding]
  printed = io.StringIO()
  with contextlib.redirect_stdout(printed):
    assert train.main(argv) == 0
  lines = [json.loads(l) for l in (out_dir / 'run' / 'metrics.jsonl').read_text().splitlines()]
  return {
      'summary': printed.getvalue(),
      'checkpoints': sorted(p.name for p in (out_dir / 'run' / 'checkpoints').iterdir()),
      'model_loss': [l['model_loss'] for l in lines if 'model_loss' in l][-1]
  }


if __name__ == '__main__':
  import tensorflow as tf
  cpu = tf.config.list_physical_devices('CPU')[0]
  tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
  sys.path[:0] = [str(HERE), str(HERE.parent)]
  check, out = sys.argv[1], pathlib.Path(sys.argv[2])
  out.write_text(
      json.dumps({
          'equality': _equality,
          'mixed': _mixed,
          'trainer': _trainer
      }[check](tf, out.parent)))
