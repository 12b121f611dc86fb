"""Deployment export of the trained policy as a TF-only SavedModel.

Public API::

    export(logdir, out=None, mpc=None, stochastic=False, force=False, tflite=None) -> metadata
    PolicyModule(agent, sample=False, mpc=None)     # the exported tf.Module
    load_logdir(logdir) -> (run, gin_text, newest_checkpoint_path, step)
    restored_agent(logdir, checkpoint=None, strict=False) -> (agent, run, checkpoint, step)

The SavedModel (loadable with ``tf.saved_model.load`` alone, nothing of this package)
has two traced functions, float32 outputs and a dynamic batch size B:

* ``initial_state(batch_size)`` (int32 scalar) -> state
  ``{'mean', 'std', 'stoch', 'deter', 'action'}``, float32 (B, n) tensors;
* ``step(observations, flags, state, is_first) -> (action, new_state)``:
  ``observations`` {modality: (B, *shape) of its dtype}, every modality of the run;
  ``flags`` {modality: (B,) float32}, 1 present / 0 missing (a missing modality's
  tensor is ignored: any subset, including none, may be present); ``state`` as
  above; ``is_first`` (B,) bool restarts those rows; ``action`` (B, A) float32 in
  [-1, 1]. Images may also come as float32 holding uint8 values. Inputs are checked,
  not trusted: a batch-size mismatch, a flag other than 0/1, a non-finite value of a
  present sensor, a float image that is not pixels, or a non-finite state row that
  ``is_first`` does not reset each fail with an error naming the input.

The same two functions are the SavedModel's signatures, with flat, named tensors, for
callers without Python (``saved_model_cli``, TF Serving, the C++/Java loaders, the TFLite
converter): ``initial_state(batch_size)`` -> ``state_<k>``, and ``step`` with inputs
``obs_<modality>`` (images uint8), ``flag_<modality>``, ``state_<k>`` and ``is_first`` ->
outputs ``action`` and ``state_<k>`` (``flat_names`` lists them).

``tflite`` ('int8', 'float16' or 'none') also writes ``policy.tflite`` beside
``saved_model.pb``: the same two flat signatures as TFLite builtin ops, with int8
(dynamic-range), float16 or float32 weights (``mummi_tf.run.export_tflite``). It needs the
policy without MPC (``mpc=False``): MPC differentiates through imagination, and TFLite has no
builtin gradient ops (``EluGrad``, ``StridedSliceGrad``, ``BroadcastGradientArgs``).

It runs the encoders, fusion, the MSSM filter and the actor (plus latent-guided MPC
unless ``mpc=False``) exactly as ``Agent.policy(obs, state, training=False)``, all in
TF's graph (no XLA, so any runtime can call it; ``Agent.jit_policy``'s XLA-compiled MPC
agrees within 1e-4): deterministic (posterior mean, mode action) unless ``stochastic`` (sampled
posterior and action, no exploration noise). ``metadata.json`` beside
``saved_model.pb`` records the task, modalities (shape, dtype), action spec, gin
config, checkpoint step and the export options.

Logdir read (written by ``mummi_tf.run.trainer``): ``checkpoints/`` (a
``tf.train.CheckpointManager`` over ``tf.train.Checkpoint(agent=Agent, ...)``,
files ``ckpt-<env step>``), ``config.gin`` (the gin config) and ``run.json``
(``task``, ``method``, ``obs_spec`` {name: [shape, dtype]}, ``action_spec``
{'shape', 'minimum', 'maximum'}).
"""
import json
import pathlib
import shutil

import gin
import numpy as np
import tensorflow as tf
import tf_keras as keras

from mummi_tf.model import agent as agent_lib
from mummi_tf.run import checkpoints
from mummi_tf.run import export_tflite

METADATA = 'metadata.json'


class ExportError(Exception):
  """A usage error: bad logdir, missing checkpoint, existing output."""


def load_logdir(logdir):
  """Reads a training logdir; returns (run, gin_text, newest checkpoint path, its step).

  The newest checkpoint may not read; ``checkpoints.restore_newest`` falls back to older ones.
  """
  logdir = pathlib.Path(logdir)
  if not logdir.is_dir():
    raise ExportError(f'logdir {logdir} does not exist.')
  found = checkpoints.candidates(logdir / 'checkpoints')
  if not found:
    raise ExportError(f'no checkpoint in {logdir / "checkpoints"}; train first '
                      '(make train LOGDIR=...) or pass the logdir of a run.')
  for name in ('run.json', 'config.gin'):
    if not (logdir / name).is_file():
      raise ExportError(f'{logdir / name} is missing; the logdir must hold '
                        'run.json, config.gin and checkpoints/ of a training run.')
  run = json.loads((logdir / 'run.json').read_text())
  for key in ('task', 'obs_spec', 'action_spec'):
    if key not in run:
      raise ExportError(f'{logdir / "run.json"} has no {key!r}.')
  return run, (logdir / 'config.gin').read_text(), found[0], checkpoints.step_of(found[0])


def restored_agent(logdir, checkpoint=None, strict=False):
  """The agent of a training logdir: built from its config.gin (replacing the process's gin
  config) and run.json, restored from ``checkpoint`` (a prefix) or the newest checkpoint that
  reads (``strict``: every saved value must match the agent); returns (agent, run, checkpoint,
  its step). Raises ExportError when the logdir does not hold a run that builds and restores."""
  logdir = pathlib.Path(logdir)
  run, gin_text, _, _ = load_logdir(logdir)
  gin.clear_config()
  try:
    gin.parse_config(gin_text, skip_unknown=True)
    agent = agent_lib.Agent(obs_spec_from_run(run), run['action_spec'])
  except ValueError as e:
    raise ExportError(f'{logdir}: config.gin / run.json do not build an agent: {e}') from e
  saved = tf.train.Checkpoint(agent=agent)
  if checkpoint and not pathlib.Path(f'{checkpoint}.index').exists():
    raise ExportError(f'{checkpoint}: no such checkpoint (a prefix such as '
                      f'{logdir / "checkpoints" / "ckpt-10000"} is expected)')
  try:
    if checkpoint:
      saved.restore(str(checkpoint)).expect_partial()
      return agent, run, str(checkpoint), checkpoints.step_of(checkpoint)
    ckpt = checkpoints.restore_newest(saved, logdir / 'checkpoints', strict=strict)
  except (checkpoints.CheckpointError, tf.errors.OpError) as e:
    raise ExportError(f'{" ".join(str(e).split())} (or it does not match the agent of config.gin '
                      'and run.json)') from e
  return agent, run, ckpt, checkpoints.step_of(ckpt)


def obs_spec_from_run(run):
  """{name: (shape, dtype)} from run.json's ``obs_spec`` {name: [shape, dtype]}."""
  return {k: (tuple(v[0]), np.dtype(v[1])) for k, v in run['obs_spec'].items()}


def _checked(label, bad_rows, present, what):
  """An assert that no present row (B,) is bad; rows are cut to a common length so that
  a batch-size mismatch reaches its own, clearer assert."""
  n = tf.minimum(tf.shape(bad_rows)[0], tf.shape(present)[0])
  return tf.debugging.Assert(~tf.reduce_any(bad_rows[:n] & present[:n]), [f'step: {label} {what}'])


def _unknown_batch(x):
  return tf.raw_ops.PlaceholderWithDefault(input=x, shape=[None] + x.shape[1:].as_list())


def _any_per_row(x):
  return tf.reduce_any(tf.reshape(x, [tf.shape(x)[0], -1]), -1)


def _input_checks(agent, observations, flags, state, is_first):
  """Assert ops for what the policy must not trust: an empty batch, batch sizes, each
  observation's shape (the flat signature takes any), non-finite values where a sensor is
  present, flags other than 0/1, a non-finite state not reset by ``is_first``, image values
  that are not uint8 pixels. Each names its input."""
  batch = tf.shape(is_first)[0]
  checks = [
      tf.debugging.assert_positive(
          batch, message='step: the batch is empty (is_first has 0 rows); give one row or more')
  ]
  for m, (_, shape) in agent.modalities.items():
    checks.append(
        tf.debugging.assert_equal(
            tf.shape(observations[m])[1:], tf.constant(shape, tf.int32),
            message=f'step: observations {m} must have shape (batch, {", ".join(map(str, shape))})')
    )
  for label, t in ([(f'observations {m}', observations[m]) for m in agent.modalities] +
                   [(f'flags {m}', flags[m]) for m in agent.modalities] +
                   [(f'state {k}', v) for k, v in state.items()]):
    checks.append(
        tf.debugging.assert_equal(
            tf.shape(t)[0], batch, message=f'step: {label} must have the batch size of is_first'))
  for m, (kind, _) in agent.modalities.items():
    flag, x = flags[m], observations[m]
    every = tf.ones_like(flag, tf.bool)
    checks.append(
        _checked(f'flags {m}', ~((flag == 0.0) | (flag == 1.0)), every,
                 'must be 0 (missing) or 1 (present)'))
    if kind == 'image' and x.dtype != tf.uint8:
      pixel = (x >= 0) & (x <= 255) & (tf.round(x) == x)
      checks.append(
          _checked(f'observations {m}', _any_per_row(~pixel), flag > 0,
                   'must hold uint8 pixel values (integers in [0, 255])'))
    elif kind != 'image':
      checks.append(
          _checked(f'observations {m}', _any_per_row(~tf.math.is_finite(x)), flag > 0,
                   'must be finite where its flag is 1'))
  for k, v in state.items():
    checks.append(
        _checked(f'state {k}', _any_per_row(~tf.math.is_finite(v)), ~is_first,
                 'must be finite (start from initial_state or set is_first)'))
  return checks


def flat_names(modalities, state_keys):
  """The named tensors of the ``step`` signature: inputs and outputs (see the module
  docstring); sorted, as the SavedModel lists them."""
  inputs = ([f'obs_{m}' for m in modalities] + [f'flag_{m}' for m in modalities] +
            [f'state_{k}' for k in state_keys] + ['is_first'])
  return sorted(inputs), sorted(['action'] + [f'state_{k}' for k in state_keys])


def _signatures(initial_state, step, obs_sig, flag_sig, state_sig):
  """``initial_state`` and ``step`` as SavedModel signatures of flat, named tensors, callable
  from ``saved_model_cli``, TF Serving, the C++/Java loaders and the TFLite converter."""
  def flat_initial_state(batch_size):
    return {f'state_{k}': v for k, v in initial_state(batch_size).items()}

  def flat_step(**inputs):
    action, state = step({m: inputs[f'obs_{m}'] for m in obs_sig},
                         {m: inputs[f'flag_{m}'] for m in flag_sig},
                         {k: inputs[f'state_{k}'] for k in state_sig}, inputs['is_first'])
    return {'action': action, **{f'state_{k}': v for k, v in state.items()}}

  def spec(name, s):
    return tf.TensorSpec(s.shape, s.dtype, name=name)

  specs = {f'obs_{m}': spec(f'obs_{m}', s) for m, s in obs_sig.items()}
  specs.update({f'flag_{m}': spec(f'flag_{m}', s) for m, s in flag_sig.items()})
  specs.update({f'state_{k}': spec(f'state_{k}', s) for k, s in state_sig.items()})
  specs['is_first'] = tf.TensorSpec([None], tf.bool, name='is_first')
  return {
      'initial_state': tf.function(flat_initial_state).get_concrete_function(
          tf.TensorSpec([], tf.int32, name='batch_size')),
      'step': tf.function(flat_step).get_concrete_function(**specs),
  }


class PolicyModule(tf.Module):
  """The exported policy: a plain ``tf.Module`` holding only what ``step`` uses.

  ``step`` is saved for images as uint8 and as float32 holding uint8 values (what numpy
  pipelines often produce); a float array is checked, never silently cast.
  """
  def __init__(self, agent, sample=False, mpc=None):
    super().__init__(name='mummi_policy')
    names = sorted(agent.modalities)
    flag_sig = {m: tf.TensorSpec([None], tf.float32, name=f'{m}_flag') for m in names}
    state_sig = {
        k: tf.TensorSpec([None, v.shape[-1]], tf.float32, name=k)
        for k, v in agent.initial_state(1).items()
    }

    def obs_sig(image_dtype):
      return {
          m: tf.TensorSpec((None,) + tuple(shape), image_dtype if kind == 'image' else tf.float32,
                           name=m) for m, (kind, shape) in agent.modalities.items()
      }

    def initial_state(batch_size):
      return agent.initial_state(batch_size)

    def step(observations, flags, state, is_first):
      # The loaded model may trace this with the caller's exact shapes; a batch size
      # left unknown keeps a mismatch for the assert below (not a shape-inference error).
      observations, flags, state, is_first = tf.nest.map_structure(
          _unknown_batch, (observations, flags, state, is_first))
      with tf.control_dependencies(_input_checks(agent, observations, flags, state, is_first)):
        obs = {
            m: tf.cast(observations[m], tf.uint8)
               if agent.modalities[m][0] == 'image' else tf.identity(observations[m]) for m in names
        }
      obs.update({f'{m}_flag': flags[m] for m in names})
      obs['is_first'] = is_first
      return agent.step(obs, state, sample=sample, mpc=mpc)

    self.initial_state = tf.function(
        initial_state, input_signature=[tf.TensorSpec([], tf.int32, name='batch_size')])
    self.step = tf.function(step)
    images = any(kind == 'image' for kind, _ in agent.modalities.values())
    concrete = [
        self.step.get_concrete_function(
            obs_sig(dtype), flag_sig, state_sig, tf.TensorSpec([None], tf.bool, name='is_first'))
        for dtype in ((tf.uint8, tf.float32) if images else (tf.uint8,))
    ]
    self.flat_signatures = _signatures(self.initial_state, self.step, obs_sig(tf.uint8), flag_sig,
                                       state_sig)
    used = {}
    for fn in [self.initial_state.get_concrete_function()] + concrete:
      for var in fn.variables:
        used[id(var)] = var
    # Only the variables the policy reads are saved (no optimiser slots, heads).
    self.policy_variables = list(used.values())


def _check_tflite(tflite, mpc):
  """An ExportError unless ``tflite`` is None or a TFLite option the policy allows."""
  if tflite is None:
    return
  if tflite not in export_tflite.QUANTIZE:
    raise ExportError(f'--tflite must be one of {", ".join(export_tflite.QUANTIZE)}; '
                      f'got {tflite!r}.')
  if mpc:
    raise ExportError('--tflite needs the policy without MPC (--no_mpc, mpc=False): latent-guided '
                      'MPC takes gradients through imagination, which TFLite builtins cannot.')


def _write_tflite(tmp, tflite):
  """``tmp/policy.tflite``; its metadata entry (None without ``tflite``)."""
  if tflite is None:
    return None
  try:
    return export_tflite.write(tmp, tflite)
  except Exception as e:  # noqa: BLE001 - the converter raises several types
    shutil.rmtree(tmp, ignore_errors=True)
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise ExportError(f'TFLite conversion failed: {first}') from e


def export(logdir, out=None, mpc=None, stochastic=False, force=False, tflite=None):
  """Writes the SavedModel and metadata.json; returns the metadata dict.

  Replaces the process's gin config by the run's (``gin.clear_config`` first).

  Args:
    logdir: a training logdir (see the module docstring).
    out: output folder; default ``<logdir>/savedmodel``.
    mpc: latent-guided MPC on/off; None keeps the run's gin setting.
    stochastic: sampled posterior and action instead of the deterministic ones.
    force: replace an existing ``out``.
    tflite: None, or also write ``policy.tflite`` with weights 'int8', 'float16' or
      'none' (float32); needs ``mpc`` False.
  """
  logdir = pathlib.Path(logdir)
  out = pathlib.Path(out) if out else logdir / 'savedmodel'
  _check_tflite(tflite, mpc)
  if out.exists() and not force:
    raise ExportError(f'{out} exists; pass --force to overwrite it.')
  _, gin_text, _, _ = load_logdir(logdir)  # the config the metadata records
  policy = keras.mixed_precision.global_policy().name
  keras.mixed_precision.set_global_policy('float32')  # fp32 export.
  try:
    agent, run, ckpt, step = restored_agent(logdir, strict=True)
    mpc = agent.behavior.mpc if mpc is None else bool(mpc)
    _check_tflite(tflite, mpc)
    module = PolicyModule(agent, sample=stochastic, mpc=mpc)
    tmp = out.parent / f'.{out.name}.tmp'
    shutil.rmtree(tmp, ignore_errors=True)
    tf.saved_model.save(module, str(tmp), signatures=module.flat_signatures)
  finally:
    keras.mixed_precision.set_global_policy(policy)
  tflite_entry = _write_tflite(tmp, tflite)
  metadata = {
      'task': run['task'],
      'method': run.get('method'),
      'modalities': {
          m: {
              'shape': list(shape),
              'dtype': 'uint8' if kind == 'image' else 'float32',
              'kind': kind
          } for m, (kind, shape) in sorted(agent.modalities.items())
      },
      'action_spec': run['action_spec'],
      'state': {
          k: int(v.shape[-1]) for k, v in agent.initial_state(1).items()
      },
      'gin_config': gin_text,
      'checkpoint': pathlib.Path(ckpt).name,
      'checkpoint_step': step,
      'mpc': mpc,
      'stochastic': bool(stochastic),
      'dtype': 'float32',
      'tflite': tflite_entry,
  }
  (tmp / METADATA).write_text(json.dumps(metadata, indent=2))
  if out.exists():
    shutil.rmtree(out)
  tmp.rename(out)
  write_example_inputs(out, agent)
  return metadata


EXAMPLE = 'example_inputs'


def write_example_inputs(out, agent):
  """``OUT/example_inputs.npz``: one row of the ``step`` signature's inputs (blank images,
  zero touch, every flag 1, ``is_first``, the initial state), and ``OUT/example_inputs.args``:
  the ``--inputs`` argument of ``saved_model_cli run`` that feeds them, so that

      saved_model_cli run --dir OUT --tag_set serve --signature_def step \\
        --inputs "$(cat OUT/example_inputs.args)" --outdir /tmp/out

  is one command (numpy ``--input_exprs`` no longer parse in TF 2.21)."""
  inputs = {'is_first': np.ones([1], bool)}
  for m, (kind, shape) in agent.modalities.items():
    inputs[f'obs_{m}'] = np.zeros((1,) + tuple(shape), np.uint8 if kind == 'image' else np.float32)
    inputs[f'flag_{m}'] = np.ones([1], np.float32)
  for k, v in agent.initial_state(1).items():
    inputs[f'state_{k}'] = v.numpy()
  path = pathlib.Path(out).resolve() / f'{EXAMPLE}.npz'
  np.savez(path, **inputs)
  path.with_suffix('.args').write_text(';'.join(f'{k}={path}[{k}]' for k in sorted(inputs)) + '\n')
