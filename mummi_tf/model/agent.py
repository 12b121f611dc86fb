"""The agent: world model + actor-critic (paper appendix A), trained as one step.

Public API::

    agent = Agent(obs_spec, action_spec)       # gin: expl_noise, eval_policy, noise_seed, jit_policy,
                                               #      model_step_first
    metrics = agent.train(batch)               # one tf.function: model, actor, value
    action, state = agent.policy(obs, state, training)   # tf.function
    state = agent.initial_state(batch_size)    # the policy state, see below
    action, state = agent.step(obs, state, sample, noise, mpc)  # python, traceable

``obs``: the modalities and ``<modality>_flag`` of one step, batch leading, raw dtypes,
optionally ``is_first`` (B,) bool (rows where it is set restart from the initial
state); other keys (``state``, ``reward``, ...) are ignored. The policy state is a
dict ``{'mean', 'std', 'stoch', 'deter', 'action'}``: the latest posterior and the
action taken after it; ``None`` means the initial state.

Training (``training=True``): sampled posterior and actor action (latent-guided MPC
if enabled), plus Gaussian exploration noise ``expl_noise`` (0.3), clipped to
[-1, 1]. Evaluation (``eval_policy``, gin): ``'mode'`` is deterministic, the
posterior mean as s^c, the actor's mode action tanh(mean) and, with MPC, an
imagined rollout through prior means, so it is a pure function of its inputs (the
SavedModel export of ``mummi_tf.run.export`` reproduces it); ``'sample'`` is upstream
Dreamer's: a sampled posterior and the most likely of 100 actor samples, no noise.
``jit_policy`` (gin) XLA-compiles the MPC action (actor, imagined rollout, gradient) inside
``policy``; ``step`` itself stays in the caller's graph (the export's).

Several devices: an agent built under a ``tf.distribute.MirroredStrategy`` scope (the
trainer's ``Trainer.devices``) has mirrored variables, and ``train`` runs the update on
every replica (``strategy.run``), each on its contiguous share of the batch's rows
(the global batch is the one-device batch); gradients are averaged over replicas
before clipping (``optim``), and the metrics are the mean over replicas.
``model_step_first`` (gin, default True) orders the update as Dreamer's Algorithm 1 does: the
world model's step, then imagination in the updated model. False is the order of the code the
paper builds on (danijar/dreamer, clear-nus/MuMMI) and of DreamerV3: every gradient at the same
parameters, the world model's step last; the actor-critic then runs beside the world model's
gradient (1.14x faster at ``small.gin``'s sizes for MuMMI, 1.07x for Dreamer, on a 2-core CPU:
docs/results/2026-12-07-update-speed/).
``noise_seed`` (gin; None: TF's stateful sampling) makes the update's samples
stateless, keyed on (seed, update, call), so that a row's noise is the same on one
device and on several (``mummi_tf.model.distribute.keyed_noise``; the equality test).
"""
import functools

import gin
import numpy as np
import tensorflow as tf

from mummi_tf.model import behavior
from mummi_tf.model import distribute
from mummi_tf.model import mssm
from mummi_tf.model import precision
from mummi_tf.model import world_model as world_model_lib

LATENT_KEYS = ('mean', 'std', 'stoch', 'deter')
EVAL_POLICIES = ('mode', 'sample')
BEST_OF = 100  # actor samples of the 'sample' evaluation policy (upstream Dreamer)


def action_size(action_spec):
  """The action dimension of a dm_env spec, or of ``{'shape': [A], ...}``."""
  shape = action_spec['shape'] if isinstance(action_spec, dict) else (action_spec.shape)
  shape = tuple(int(s) for s in shape)
  if len(shape) != 1 or shape[0] < 1:
    raise ValueError(f'action_spec must have shape (A,) with A >= 1; got {shape}.')
  return shape[0]


@gin.configurable(denylist=['obs_spec', 'action_spec'])
class Agent(tf.Module):
  """World model + ``behavior.ActorCritic``; ``tf.train.Checkpoint``-trackable."""
  def __init__(self, obs_spec, action_spec, expl_noise=0.3, eval_policy='mode', noise_seed=None,
               jit_policy=False, model_step_first=True, name='agent'):
    super().__init__(name=name)
    if expl_noise < 0:
      raise ValueError(f'Agent.expl_noise must be >= 0, got {expl_noise}.')
    if eval_policy not in EVAL_POLICIES:
      raise ValueError(f'Agent.eval_policy must be one of {", ".join(EVAL_POLICIES)}; '
                       f'got {eval_policy!r}.')
    self.eval_policy = eval_policy
    self.modalities = mssm.read_modalities(obs_spec)
    self.action_size = action_size(action_spec)
    self.expl_noise = float(expl_noise)
    self.model_step_first = bool(model_step_first)
    self.world_model = world_model_lib.WorldModel(obs_spec, self.action_size)
    self.behavior = behavior.ActorCritic(self.action_size)
    self.noise_seed = None if noise_seed is None else int(noise_seed)
    # The strategy whose scope builds the agent (the default one: a single device).
    self.strategy = tf.distribute.get_strategy()
    self.replicas = self.strategy.num_replicas_in_sync
    self._build()
    update = self._train if self.replicas == 1 else self._train_replicas
    self.train = precision.compile_fn(update)  # gin: jit_compile
    # With MPC the action at batch 1 is hundreds of small ops (an imagined rollout and its
    # gradient): XLA fuses them, 1.5-1.7x faster (docs/performance.md). Only that: XLA runs the
    # encoders and 1024-wide experts slower on a CPU, and the actor alone no faster.
    self._act = None  # step's default: behavior.act in the caller's graph
    if jit_policy and self.behavior.mpc:
      self._act = tf.function(
          functools.partial(self.behavior.act, self.world_model), jit_compile=True, autograph=False)
    self._policy = tf.function(self._policy_step, autograph=False)

  def _build(self):
    """Creates every network variable eagerly (restore and export need them)."""
    obs = {}
    for m, (_, shape) in self.modalities.items():
      dtype = tf.uint8 if len(shape) == 3 else tf.float32
      obs[m] = tf.zeros((1,) + tuple(shape), dtype)
      obs[f'{m}_flag'] = tf.ones([1], tf.float32)
    post, _ = self.world_model.obs_step(
        self.world_model.initial_state(1), tf.zeros([1, self.action_size]), obs)
    self.world_model.reward(self.world_model.feat(post))
    self.world_model.build()  # heads and Adam slots: no retrace, complete restores
    self.behavior.build(self.world_model.feat_size)

  # ------------------------------------------------------------------ training
  def _train(self, batch):
    """World-model update, then actor and value updates (appendix A).

    Returns a dict of scalar metrics: the world model's (``model_loss``, ...)
    and ``actor_loss``, ``value_loss``, their grad norms and skip counts.
    """
    if self.noise_seed is None:
      return self._update(batch)
    with distribute.keyed_noise(self.noise_seed, self.behavior.updates.read_value()):
      return self._update(batch)

  def _update(self, batch):
    """The behaviour learns in the world model after its step (Dreamer's Algorithm 1, the paper's
    appendix A) or, ``model_step_first=False``, in the one before it, as danijar/dreamer's and
    the authors' code do: then the actor-critic runs beside the world model's gradient."""
    imagine = functools.partial(self.behavior.update, self.world_model)
    if not self.model_step_first:
      return dict(self.world_model.update(batch, before_step=imagine)[1])
    post, metrics = self.world_model.update(batch)
    metrics = dict(metrics)
    metrics.update(imagine(post))
    return metrics

  def _train_replicas(self, batch):
    """``_train`` on every replica, each on its rows; the metrics' mean over replicas."""
    metrics = self.strategy.run(lambda b: self._train(distribute.local_rows(b)), args=(batch,))
    return distribute.reduce_metrics(self.strategy, metrics)

  # -------------------------------------------------------------------- acting
  def initial_state(self, batch_size):
    """The policy state before the first step: zeros and a zero action."""
    state = dict(self.world_model.initial_state(batch_size))
    state['action'] = tf.zeros([batch_size, self.action_size], tf.float32)
    return state

  def step(self, obs, state, sample, noise=0.0, mpc=None, best_of=0, act=None):
    """One filter-and-act step (python; traced by ``policy`` and the export).

    Args:
      obs: modalities, ``<m>_flag`` and optional ``is_first``, batch leading.
      state: the policy state (see the module docstring).
      sample: sample the posterior and the action (True) or act
        deterministically (False).
      noise: std of the additive Gaussian exploration noise (0: none).
      mpc: latent-guided MPC on/off; None uses ``ActorCritic.mpc`` (gin).
      best_of: with ``sample``, act with the most likely of that many actor samples.
      act: ``behavior.act`` bound to the world model, e.g. XLA-compiled; None: in this graph.

    Returns:
      (action (B, A) float32 in [-1, 1], new policy state).
    """
    state = dict(state)
    if 'is_first' in obs:  # A select, not a product: a NaN state is reset too.
      first = tf.cast(obs['is_first'], tf.bool)[:, None]
      state = {k: tf.where(first, tf.zeros_like(v), v) for k, v in state.items()}
    inputs = {}
    for m in self.modalities:
      x = tf.convert_to_tensor(obs[m])
      flag = tf.cast(obs[f'{m}_flag'], tf.float32)
      if x.dtype != tf.uint8:  # A missing float sensor may read NaN; any pixel is finite
        present = tf.reshape(flag > 0, [-1] + [1] * (x.shape.rank - 1))  # and flag-masked.
        x = tf.where(present, x, tf.zeros_like(x))
      inputs[m] = x
      inputs[f'{m}_flag'] = flag
    latent = {k: state[k] for k in LATENT_KEYS}
    post, _ = self.world_model.obs_step(latent, state['action'], inputs)
    post = {k: post[k] for k in LATENT_KEYS}
    if not sample:
      post['stoch'] = post['mean']
    if act is None:
      act = functools.partial(self.behavior.act, self.world_model)
    action = act(post, sample, mpc, best_of)
    if noise:
      action = action + noise * tf.random.normal(tf.shape(action))
    action = tf.clip_by_value(action, -1.0, 1.0)
    post['action'] = action
    return action, post

  def _policy_step(self, obs, state, training):
    """``policy``'s compiled body (without AutoGraph, as ``precision.compile_fn``)."""
    if training:
      return self.step(obs, state, sample=True, noise=self.expl_noise, act=self._act)
    if self.eval_policy == 'sample':
      return self.step(obs, state, sample=True, best_of=BEST_OF, act=self._act)
    return self.step(obs, state, sample=False, act=self._act)

  def policy(self, obs, state=None, training=False):
    """The behaviour policy (a ``tf.function``); ``state=None`` starts afresh."""
    names = sorted(self.modalities)
    obs = {
        k: v for k, v in obs.items() if k == 'is_first' or k in self.modalities or
        (k.endswith('_flag') and k[:-5] in self.modalities)
    }
    for m in names:
      if f'{m}_flag' not in obs:
        obs[f'{m}_flag'] = np.ones(np.shape(obs[m])[:1], np.float32)
    if state is None:
      state = self.initial_state(int(np.shape(obs[names[0]])[0]))
    return self._policy(obs, state, bool(training))
