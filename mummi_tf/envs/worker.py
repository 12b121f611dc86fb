"""Runs an environment in a fresh Python process behind a `dm_env.Environment` proxy.

TensorFlow and Mesa rendering cannot share a process (docs/ARCHITECTURE.md), and forking a
process that imported TF crashes. The worker is therefore a new interpreter
(`python -m mummi_tf.envs.worker`, not multiprocessing's spawn, which would re-import the
caller's `__main__` and with it TF). Its import chain is `mummi_tf.envs.*` only.

Transport: two OS pipes carry small pickled messages (commands, actions, step type, reward,
discount); the observation arrays go through one shared-memory file in /dev/shm that the
worker writes and the parent copies out of, so a step costs one small round trip.
"""
import os
import signal
import subprocess
import sys
import tempfile
import traceback
import mmap
from multiprocessing.connection import Connection

import builtins

import dm_env
import numpy as np


class WorkerError(RuntimeError):
  """An exception raised inside the worker, with the worker's traceback in its message.

    When the worker raised a builtin exception type (ValueError, TypeError, ...), the error
    raised here is also an instance of that type, so `except ValueError` works across the
    process boundary.
    """


class WorkerDied(WorkerError):
  """The worker process itself is gone (killed, crashed): the env can be restarted."""


def _worker_error(payload):
  name, message, tb = payload
  base = getattr(builtins, name, None)
  if isinstance(base, type) and issubclass(base, Exception) and base is not RuntimeError:
    cls = type(f'Worker{name}', (WorkerError, base), {})
  else:
    cls = WorkerError
  return cls(f'{message}\n(raised in the environment worker)\n{tb}')


def _layout(obs_spec):
  """Byte offset of each observation key in the shared block (64-byte aligned)."""
  offsets, total = {}, 0
  for key in sorted(obs_spec):
    spec = obs_spec[key]
    offsets[key] = total
    size = int(np.prod(spec.shape, dtype=np.int64)) * np.dtype(spec.dtype).itemsize
    total += (size + 63) // 64 * 64
  return offsets, max(total, 64)


def _views(buf, obs_spec, offsets):
  return {
      k: np.ndarray(s.shape, s.dtype, buffer=buf, offset=offsets[k]) for k, s in obs_spec.items()
  }


class EnvProcess(dm_env.Environment):
  """Proxy of an env built by `factory(**kwargs)` in a worker process.

    `factory` is an importable function given as 'module:function'. Besides the dm_env API
    it offers `reset_async()`/`reset_wait()` and `step_async(action)`/`step_wait()` so one
    thread can step several workers in parallel. `close()` always reaps the worker.
    """
  def __init__(self, factory, kwargs, env_vars=None):
    self._args = (factory, dict(kwargs), env_vars)
    self.restarts = 0
    self._start(factory, kwargs, env_vars)

  def restart(self):
    """Replaces the worker by a fresh one (after `WorkerDied`); the env starts over with
        a seed of its own, so it does not replay the first worker's episodes."""
    self.close()
    factory, kwargs, env_vars = self._args
    self.restarts += 1
    if kwargs.get('seed') is not None:
      seed = kwargs['seed']  # an int or a sequence of ints (np.random.SeedSequence entropy)
      kwargs = dict(kwargs, seed=[*np.atleast_1d(seed).tolist(), self.restarts])
    self._start(factory, kwargs, env_vars)

  def _start(self, factory, kwargs, env_vars):
    parent_r, child_w = os.pipe()
    child_r, parent_w = os.pipe()
    env = dict(os.environ)
    env.setdefault('MUJOCO_GL', 'egl')
    env.update(env_vars or {})
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env['PYTHONPATH'] = os.pathsep.join([root] + [p for p in [env.get('PYTHONPATH')] if p])
    self._closed = False
    self._proc = subprocess.Popen([
        sys.executable, '-m', 'mummi_tf.envs.worker',
        str(child_r), str(child_w)
    ], pass_fds=(child_r, child_w), env=env, stdin=subprocess.DEVNULL)
    os.close(child_r)
    os.close(child_w)
    self._recv_conn = Connection(parent_r, writable=False)
    self._send_conn = Connection(parent_w, readable=False)
    self._pending = None
    try:
      self._send_conn.send((factory, kwargs))
      self._specs = self._receive()
      self._obs_spec = self._specs['observation']
      offsets, size = _layout(self._obs_spec)
      fd, self._path = tempfile.mkstemp(prefix='mummi_env_', dir=_shm_dir())
      try:
        os.ftruncate(fd, size)
        self._mmap = mmap.mmap(fd, size)
      finally:
        os.close(fd)
      self._send_conn.send((self._path, offsets, size))
      self._receive()
      os.unlink(self._path)  # both sides hold it mapped; nothing left on disk
      self._path = None
      self._obs = _views(self._mmap, self._obs_spec, offsets)
    except BaseException:
      self.close()
      raise

  def _receive(self):
    try:
      status, payload = self._recv_conn.recv()
    except (EOFError, OSError):
      code = self._proc.wait(timeout=10)
      raise WorkerDied(f'environment worker exited with code {code}') from None
    if status == 'error':
      raise _worker_error(payload)
    return payload

  def _call_async(self, name, *args):
    if self._closed:
      raise RuntimeError('environment worker is closed')
    if self._pending is not None:
      raise RuntimeError(f'{self._pending}_wait() must be called before {name}')
    try:
      self._send_conn.send((name, args))
    except OSError:
      raise WorkerDied(f'environment worker exited with code {self._proc.wait()}') from None
    self._pending = name

  def _wait(self, name):
    if self._pending != name:
      raise RuntimeError(f'{name}_wait() without a pending {name}_async()')
    self._pending = None
    step_type, reward, discount, extra = self._receive()
    obs = {k: v.copy() for k, v in self._obs.items()}
    obs.update(extra)
    return dm_env.TimeStep(dm_env.StepType(step_type), reward, discount, obs)

  def reset_async(self):
    self._call_async('reset')

  def reset_wait(self):
    return self._wait('reset')

  def step_async(self, action):
    self._call_async('step', np.asarray(action))

  def step_wait(self):
    return self._wait('step')

  def reset(self):
    self.reset_async()
    return self.reset_wait()

  def step(self, action):
    self.step_async(action)
    return self.step_wait()

  def call(self, method, *args):
    """Calls `method(*args)` of the worker's env and returns its (picklable) result."""
    self._call_async('call', method, args)
    self._pending = None
    return self._receive()

  def get_attr(self, name):
    """The (picklable) attribute `name` of the worker's env, e.g. 'last_fraction'."""
    self._call_async('getattr', name)
    self._pending = None
    return self._receive()

  def observation_spec(self):
    return self._obs_spec

  def action_spec(self):
    return self._specs['action']

  def reward_spec(self):
    return self._specs['reward']

  def discount_spec(self):
    return self._specs['discount']

  def close(self):
    if self._closed:
      return
    self._closed = True
    try:
      self._send_conn.send(('close', ()))
    except (OSError, AttributeError):
      pass
    try:
      self._proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
      self._proc.kill()
      self._proc.wait()
    for conn in ('_send_conn', '_recv_conn'):
      if hasattr(self, conn):
        getattr(self, conn).close()
    if getattr(self, '_path', None):
      os.unlink(self._path)
    self._obs = None
    if hasattr(self, '_mmap'):
      self._mmap.close()

  def __del__(self):
    try:
      self.close()
    except Exception:
      pass


def _shm_dir():
  return '/dev/shm' if os.path.isdir('/dev/shm') else None


def _describe(error):
  return type(error).__name__, str(error), traceback.format_exc()


def _serve(recv, send):
  import importlib
  factory, kwargs = recv.recv()
  module, fn = factory.split(':')
  env = getattr(importlib.import_module(module), fn)(**kwargs)
  obs_spec = env.observation_spec()
  send.send(('ok',
             dict(observation=obs_spec, action=env.action_spec(), reward=env.reward_spec(),
                  discount=env.discount_spec())))
  path, offsets, size = recv.recv()
  with open(path, 'r+b') as f:
    shared = mmap.mmap(f.fileno(), size)
  views = _views(shared, obs_spec, offsets)
  send.send(('ok', None))
  while True:
    command, args = recv.recv()
    if command == 'close':
      env.close()
      return
    try:
      if command in ('call', 'getattr'):
        value = getattr(env, args[0])
        send.send(('ok', value(*args[1]) if command == 'call' else value))
        continue
      ts = env.reset() if command == 'reset' else env.step(*args)
      extra = {}
      for key, value in ts.observation.items():
        if key in views:
          views[key][...] = value
        else:
          extra[key] = value
      send.send(('ok', (int(ts.step_type), ts.reward, ts.discount, extra)))
    except Exception as e:
      send.send(('error', _describe(e)))


def main(argv):
  # Ctrl-C, and Slurm's SIGTERM, reach the whole process group: the parent decides when to
  # stop (it saves first, see mummi_tf.run.preemption) and closes its workers; if it dies, the
  # pipe's EOF ends them.
  for signum in (signal.SIGINT, signal.SIGTERM):
    signal.signal(signum, signal.SIG_IGN)
  recv = Connection(int(argv[1]), writable=False)
  send = Connection(int(argv[2]), readable=False)
  try:
    _serve(recv, send)
  except EOFError:  # the parent went away
    pass
  except Exception as e:
    try:
      send.send(('error', _describe(e)))
    except OSError:
      pass


if __name__ == '__main__':
  main(sys.argv)
