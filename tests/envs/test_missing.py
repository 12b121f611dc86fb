"""Missing-sensor schedules (paper Sec. V) and the MissingSensors wrapper."""
import dm_env
import numpy as np
import pytest
from dm_env import specs

from mummi_tf.envs import missing, wrappers


@pytest.mark.parametrize('level, target', [('none', 0.0), ('train', 0.375), ('medium', 0.375),
                                           ('high', 0.75)])
def test_paper_mode_hits_target_every_episode(level, target):
  rate = missing.resolve_rate('paper', level)
  rng = np.random.default_rng(0)
  fractions = [missing.paper_mask(rng, 501, rate).mean() for _ in range(200)]
  assert np.all(np.abs(np.array(fractions) - target) <= 0.03)
  assert abs(np.mean(fractions) - target) < 0.002


def test_paper_mode_segments_are_random():
  rng = np.random.default_rng(1)
  masks = np.stack([missing.paper_mask(rng, 501, 0.375) for _ in range(300)])
  per_step = masks.mean(0)  # every position gets dropped sometimes, none always
  assert per_step.min() > 0.15 and per_step.max() < 0.65
  starts = np.flatnonzero(np.diff(masks[0].astype(int)) == 1)
  assert len(starts) > 5, 'one long block instead of segments'
  runs = np.diff(np.flatnonzero(np.diff(np.r_[0, masks[0].astype(int), 0])))[::2]
  assert runs.max() <= 3 * 14  # overlapping segments of <= 14 steps


@pytest.mark.parametrize('p', [0.05, 0.1])
def test_reference_mode_rate_is_analytic(p):
  rng = np.random.default_rng(2)
  measured = np.mean([missing.reference_mask(rng, 501, p).mean() for _ in range(400)])
  expected = missing.reference_fraction(p)
  assert expected == pytest.approx({0.05: 0.283, 0.1: 0.455}[p], abs=0.002)
  assert measured == pytest.approx(expected, abs=0.02)


@pytest.mark.parametrize('bad', [1.0, -0.1, 1.5, 'sometimes'])
def test_bad_rates(bad):
  with pytest.raises(ValueError, match=r'\[0, 1\)|valid'):
    missing.resolve_rate('paper', bad)


def test_bad_mode():
  with pytest.raises(ValueError, match='paper, reference'):
    missing.resolve_rate('random', 0.1)


class Counter(dm_env.Environment):
  """A tiny numpy env: observation `a` is the step count, `b` its negative."""
  def __init__(self):
    self.t = 0

  def reset(self):
    self.t = 0
    return dm_env.restart(self._obs())

  def step(self, action):
    self.t += 1
    return dm_env.transition(1.0, self._obs())

  def _obs(self):
    return {
        'a': np.full((2,), self.t + 1, np.float32),
        'b': np.full((3, 3, 1), 1 + self.t % 200, np.uint8),
        'state': np.zeros(1, np.float32)
    }

  def observation_spec(self):
    return {
        'a': specs.Array((2,), np.float32),
        'b': specs.Array((3, 3, 1), np.uint8),
        'state': specs.Array((1,), np.float32)
    }

  def action_spec(self):
    return specs.BoundedArray((1,), np.float64, -2.0, 4.0)


def _episode(env, steps=100):
  obs = [env.reset().observation]
  for _ in range(steps):
    ts = env.step(np.zeros(1))
    obs.append(ts.observation)
  assert ts.last()
  return {k: np.stack([o[k] for o in obs]) for k in obs[0]}


def _wrapped(seed, **kw):
  env = wrappers.TimeLimit(Counter(), 100)
  return wrappers.MissingSensors(env, ('a', 'b'), length=101, seed=seed, **kw)


def test_wrapper_zeroes_and_flags():
  env = _wrapped(0, missing='high')
  assert env.observation_spec()['a_flag'] == specs.Array((), np.float32)
  ep = _episode(env)
  for m in ('a', 'b'):
    gone = ep[m + '_flag'] == 0
    assert ep[m][gone].max() == 0 and ep[m][~gone].min() > 0
    assert env.last_fraction[m] == pytest.approx(gone.mean())
    assert gone.mean() == pytest.approx(0.75, abs=0.01)
  assert not np.array_equal(ep['a_flag'], ep['b_flag']), 'modalities not independent'
  assert missing.missing_fraction(ep) == env.last_fraction


def _collect(env, episodes):
  """Episodes of the contract's format, as the trainer collects them (driver.Driver)."""
  from mummi_tf.run import driver
  got = []
  zero = lambda obs, state: (np.zeros((len(obs['is_first']), 1), np.float32), state)
  driver.Driver([env], [lambda ep, _: got.append(ep)])(zero, episodes=episodes)
  return got


def test_each_episode_draws_new_masks():
  got = _collect(_wrapped(0, missing='high'), episodes=2)
  assert [len(ep['reward']) for ep in got] == [101, 101]
  assert all(ep['is_first'][0] and not ep['is_first'][1:].any() for ep in got)
  assert not np.array_equal(got[0]['a_flag'], got[1]['a_flag'])


def test_wrapper_deterministic_under_seed():
  a, b, c = (_episode(_wrapped(s)) for s in (4, 4, 5))
  assert np.array_equal(a['a_flag'], b['a_flag']) and np.array_equal(a['b'], b['b'])
  assert not np.array_equal(a['a_flag'], c['a_flag'])


def test_remove_drops_a_modality_all_episode():
  ep = _episode(_wrapped(0, missing='none', remove=('b',)))
  assert ep['b_flag'].max() == 0 and ep['b'].max() == 0 and ep['a_flag'].min() == 1
  with pytest.raises(ValueError, match='valid: a, b'):
    _wrapped(0, remove=('workspace',))


def test_action_repeat_normalise_time_limit():
  env = wrappers.TimeLimit(wrappers.NormalizeActions(wrappers.ActionRepeat(Counter(), 2)), 5)
  spec = env.action_spec()
  assert (spec.minimum, spec.maximum, spec.dtype) == (-1.0, 1.0, np.float32)
  env.reset()
  ts = env.step(np.array([1.0], np.float32))
  assert ts.reward == 2.0 and ts.observation['a'][0] == 3  # two env steps per agent step
  steps = 1
  while not ts.last():
    ts = env.step(np.array([-1.0], np.float32))
    steps += 1
  assert steps == 5 and ts.discount == 1.0 and ts.observation['a'][0] == 11


def test_collected_episodes_keep_the_contract():
  ep = _collect(_wrapped(0), episodes=1)[0]
  assert ep['action'].shape == (101, 1) and ep['action'].dtype == np.float32
  assert ep['reward'][0] == 0 and ep['reward'][1:].min() == 1 and ep['is_first'][0]
  assert not ep['is_first'][1:].any() and ep['discount'].dtype == np.float32
  assert ep['a'].shape == (101, 2) and ep['b_flag'].shape == (101,)
