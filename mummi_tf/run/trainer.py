"""The training loop of the paper's appendix A around the agent (see ``mummi_tf.cli.train``)."""

import contextlib
import logging
import pathlib
import time

import gin
import numpy as np
import tensorflow as tf
import tf_keras as keras
import tqdm

from mummi_tf.model import agent as agent_lib
from mummi_tf.run import checkpoints
from mummi_tf.run import console
from mummi_tf.model import diagnostics
from mummi_tf.model import distribute
from mummi_tf.run import driver as driver_lib
from mummi_tf import envs as envs_lib
from mummi_tf.run import evaluation
from mummi_tf.run import logger as logger_lib
from mummi_tf.model import precision
from mummi_tf.run import preemption
from mummi_tf.run import replay as replay_lib
from mummi_tf.run import rundir
from mummi_tf.run import schedule
from mummi_tf.run import timing
from mummi_tf.model import world_model
from mummi_tf.errors import UsageError

DETERMINISM = (True, False, 'auto')


def resolve_determinism(setting, gpus):
  """Whether TF op determinism is on: ``Trainer.deterministic`` True / False, or 'auto' (on
  without GPUs, where every kernel the agent uses has a deterministic CPU version at no
  measured cost; off with GPUs, where deterministic kernels are slower or missing)."""
  if setting not in DETERMINISM:
    raise ValueError(f'Trainer.deterministic must be True, False or \'auto\'; got {setting!r}.')
  return not gpus if setting == 'auto' else setting


def determinism_error(error):
  """One line for an op without a deterministic kernel (``tf.errors.UnimplementedError``
  while op determinism is on): the op, as TF names it, and the way out."""
  first = (error.message or str(error)).strip().splitlines()[0]
  op = f' (op {error.node_def.op})' if getattr(error, 'node_def', None) is not None else ''
  return (f'{first}{op} -- Trainer.deterministic = True needs a deterministic kernel for every '
          'op on this device; bind Trainer.deterministic = \'auto\' (the default) or False.')


@gin.configurable(denylist=['logdir', 'task', 'seed', 'gin_files'])
class Trainer:
  """Owns the environments, replay, agent, logger and checkpoints of one run.

  Units: every ``*steps``/``*every`` count is in env steps (agent steps x action repeat),
  except ``train_steps`` (gradient updates per training round).
  """
  def __init__(self, logdir, task, seed, gin_files=(), steps=2_000_000, prefill=5000,
               train_every=1000, train_steps=100, batch_size=50, batch_length=50, eval_every=10_000,
               eval_episodes=1, num_envs=1, log_every=1000, save_every=10_000, prefetch=0,
               deterministic='auto', devices=None):
    precision.set_threads()  # gin; before TensorFlow runs its first op
    self.logdir = pathlib.Path(logdir)
    self.task, self.seed = task, int(seed)
    self.gin_files = [str(name) for name in gin_files]  # as given, for run.json
    self.steps, self.prefill = int(steps), int(prefill)
    self.train_every, self.train_steps = int(train_every), int(train_steps)
    self.batch_size, self.batch_length = int(batch_size), int(batch_length)
    self.eval_every, self.eval_episodes = int(eval_every), int(eval_episodes)
    self.num_envs, self.log_every = int(num_envs), int(log_every)
    # Checkpoints (agent + three Adams) every save_every env steps and at the end; a crash
    # loses at most those updates, never an episode (the step count comes from them).
    self.save_every = int(save_every)
    if self.save_every < 1:
      raise ValueError(f'Trainer.save_every must be >= 1 env steps, got {save_every}.')
    self.prefetch = int(prefetch)  # batches sampled ahead; 0 keeps seeded runs reproducible
    self.action_repeat = int(envs_lib.configured('action_repeat'))
    # The update's devices (None: every visible GPU, else the CPU); several: data parallel.
    self._devices_option = devices
    self.devices = None
    self._evaluator = None
    self._timed_windows = 0  # logging windows with updates seen (for the cost estimate)
    self._first_updates, self._loop_start, self._prefill_rate = [], None, None
    self._stop = preemption.StopOnSignal()  # installed while run() runs
    self._eval_only = False  # evaluate_only() sets it
    self._seed_everything(deterministic)

  # ----------------------------------------------------------------------- set-up
  def _seed_everything(self, deterministic):
    # Python, numpy, TF and tf_keras's own initializer seed stream (which outlives
    # tf.random.set_seed and would make a run depend on what the process did before).
    keras.utils.set_random_seed(self.seed)
    self.deterministic = resolve_determinism(deterministic, tf.config.list_physical_devices('GPU'))
    if self.deterministic:
      tf.config.experimental.enable_op_determinism()

  def _setup(self):
    self.logdir.mkdir(parents=True, exist_ok=True)
    self._lock = rundir.lock(self.logdir)
    # What loads counts: unreadable episode files are moved to episodes/corrupt/.
    steps, episodes_done = replay_lib.quarantine_unreadable(self.logdir / 'episodes')
    self.step = steps * self.action_repeat
    self.episodes = episodes_done
    if self.step:  # A resumed run continues the random streams instead of repeating them.
      keras.utils.set_random_seed(self.seed + self.step)
    self.replay = replay_lib.Replay(self.logdir / 'episodes', seed=[self.seed, self.step])
    self.envs = [
        envs_lib.make(self.task, seed=self.seed + 100 * episodes_done + i)
        for i in range(self.num_envs)
    ]
    obs_spec, action_spec = self.envs[0].observation_spec(), self.envs[0].action_spec()
    policy = precision.set_policy()  # gin; before any layer is built
    self.devices = distribute.resolve_devices(self._devices_option, self.batch_size)
    self.strategy = distribute.strategy_for(self.devices)  # None on one device
    with self.strategy.scope() if self.strategy else contextlib.nullcontext():
      self.agent = agent_lib.Agent(obs_spec, action_spec)
    self.logger = logger_lib.Logger(self.logdir)
    # The last complete evaluation (a resumed run redoes one that a crash cut short).
    self._evaluated_at = logger_lib.last_step_with(self.logdir, 'test/return_')
    evaluation.recover(self.logdir, self._evaluated_at)
    self.updates = tf.Variable(0, dtype=tf.int64, name='updates')
    self.checkpoint = tf.train.Checkpoint(agent=self.agent, updates=self.updates)
    self.manager = tf.train.CheckpointManager(self.checkpoint, self.logdir / 'checkpoints',
                                              max_to_keep=3)
    # The newest checkpoint that reads (a damaged one is named in a warning).
    checkpoints.remove_unfinished(self.logdir / 'checkpoints')
    self.restored = checkpoints.restore_newest(self.checkpoint, self.logdir / 'checkpoints')
    self._write_run_files(obs_spec, action_spec)
    tqdm.tqdm.write(self._summary(policy))
    # Where each logged window's wall time goes (time/* and cpu_idle/* in metrics.jsonl).
    self.clock, self.cpu_idle = timing.Clock(), timing.CpuIdle()
    self.driver = driver_lib.Driver(self.envs, [self._on_episode], clock=self.clock)

  def _summary(self, policy):
    """The run's first line: task · method · logdir · fresh or resumed · precision ·
    devices · thread pools (when set) · env workers."""
    if self.restored:
      start = f'resumed at step {self.step} from {pathlib.Path(self.restored).name}'
    elif self.step:
      start = f'resumed at step {self.step} (no checkpoint yet)'
    else:
      start = 'fresh'
    if self._eval_only:  # --eval_only steps the evaluation's workers, not the training's
      workers = f'{evaluation.Evaluator.configured_parallel()} eval env workers per missing level'
    else:
      workers = f'{self.num_envs} env worker' + ('s' if self.num_envs > 1 else '')
    parts = [
        self.task,
        world_model.configured_method(),
        str(self.logdir), start, policy,
        distribute.devices_label(self.devices),
        precision.threads_label(), workers,
        'deterministic ops' if self.deterministic else 'nondeterministic ops'
    ]
    return ' · '.join(p for p in parts if p)

  def _write_run_files(self, obs_spec, action_spec):
    record = rundir.run_record(self.task, world_model.configured_method(), self.seed,
                               self.gin_files, self.action_repeat, obs_spec, action_spec)
    rundir.write_run_files(self.logdir, record)

  def _close(self):
    if getattr(self, 'agent', None) is not None and self.logdir.is_dir():
      try:
        rundir.write_operative_config(self.logdir)
      except OSError as e:  # e.g. a full disk: the error that ended the run stays the one shown
        logging.warning('Could not rewrite %s: %s', self.logdir / 'operative_config.gin', e)
    if getattr(self, '_lock', None) is not None:
      self._lock.close()  # releases the flock
      self._lock = None
    for env in getattr(self, 'envs', []):
      env.close()
    if self._evaluator is not None:
      self._evaluator.close()

  # --------------------------------------------------------------------- callbacks
  def _on_episode(self, episode, index):
    with self.clock('replay'):  # stores the episode file
      self.replay.add(episode)
    self.episodes += 1
    self.logger.scalar('train/return', episode['reward'].sum())
    self.logger.scalar('train/length', len(episode['reward']) - 1)  # agent steps, as upstream
    self.logger.scalar('episodes', self.episodes)
    for modality, fraction in envs_lib.missing_fraction(episode).items():
      self.logger.scalar(f'train/missing/{modality}', fraction)

  def _policy(self, training):
    def policy(obs, state):
      action, state = self.agent.policy(obs, state, training=training)
      return action.numpy(), state

    return policy

  # -------------------------------------------------------------------- main loop
  def run(self):
    """Trains to ``steps``; returns the exit status: 0, or 143 / 130 when SIGTERM / Ctrl-C
    stopped it (after saving a checkpoint; see ``mummi_tf.run.preemption``)."""
    self._started = time.perf_counter()
    try:
      with self._stop:
        self._setup()
        return self._loop()
    except tf.errors.UnimplementedError as e:
      if not self.deterministic:
        raise
      raise UsageError(determinism_error(e)) from e
    finally:
      self._close()

  def _collect(self, policy, env_steps, meanwhile=None):
    agent_steps, _ = self.driver(policy, steps=max(1, env_steps // self.action_repeat),
                                 meanwhile=meanwhile)
    self.step += agent_steps * self.action_repeat

  def _overlapped_training(self, dataset, env_steps):
    """The round's ``train_steps`` updates (in proportion, for a shorter last round) spread
    evenly over its collection steps.

    Each update runs while the env workers step and render (the same ratio of updates to
    env steps as upstream's train-then-collect rounds, without leaving the CPU idle).
    """
    agent_steps = max(1, env_steps // self.action_repeat)
    updates = schedule.Spread(
        max(1, round(self.train_steps * env_steps / self.train_every)), agent_steps)

    def meanwhile(step):  # the num_envs workers are about to take agent step `step`
      for _ in range(updates(step + self.num_envs)):
        self._train_once(dataset)

    return meanwhile

  def _loop(self):
    self._bar = console.progress_bar(total=self.steps, initial=min(
        self.step, self.steps), unit='step', desc=f'{self.task} {world_model.configured_method()}')
    self.clock.restart()  # the first window starts here, not at set-up
    self.cpu_idle.window()
    self._fps = logger_lib.Rate()
    self._fps(self.step)
    random_policy = driver_lib.random_policy(self.envs[0].action_spec(), self.seed + self.step)
    self._loop_start = (time.perf_counter(), self.step) if self.step < self.prefill else None
    self._when = {
        'eval': schedule.Every(self.eval_every, self._evaluated_at or 0),
        'log': schedule.Every(self.log_every, self.step),
        'save': schedule.Every(self.save_every, self.step)
    }
    try:
      self._after_round()  # a resumed run redoes an evaluation a crash cut short
      self._rounds(random_policy)
      self._save()
      with self.clock('log'):
        self.logger.write(self.step)
      if self._evaluated_at != self.step:
        self._evaluate()
    except preemption.Stop as stop:  # between two updates, or in an evaluation (redone)
      self._save()
      tqdm.tqdm.write(f'{stop} at step {self.step}: saved {self.manager.latest_checkpoint} '
                      f'({self.updates.numpy()} updates); rerun the same command to resume')
      return stop.code
    self._bar.close()
    tqdm.tqdm.write(console.end_of_run(self.logdir, time.perf_counter() - self._started))
    return 0

  def _rounds(self, random_policy):
    """Collection rounds (with their updates, checkpoints, logs and evaluations) until
    ``steps``; a stop asked by a signal ends them between two updates."""
    dataset = None
    while self.step < self.steps:
      self._stop.check()
      left = self.steps - self.step
      if self.step < self.prefill or not self.replay.can_sample(self.batch_length):
        # Random actions until the prefill is done and replay holds a training window.
        self._collect(
            random_policy,
            min(self.train_every, self.prefill -
                self.step, left) if self.step < self.prefill else min(self.train_every, left))
      else:
        # A resumed run's rounds start where its episodes end: the last one stops at ``steps``.
        dataset = dataset or self._dataset()
        self._collect(
            self._policy(training=True), min(self.train_every, left),
            self._overlapped_training(dataset, min(self.train_every, left)))
        if self._when['save'](self.step):
          self._save()
      self._after_round()
      self._bar.update(min(self.step, self.steps) - self._bar.n)
      self._bar.set_postfix(
          {
              name: f'{self.logger.latest(key, float("nan")):.1f}'
              for name, key in (('fps', 'fps'), ('train', 'train/return'), ('test', 'test/return'))
          }, refresh=False)

  def _dataset(self):
    if self._loop_start is not None and self.step > self._loop_start[1]:  # a prefill ran here
      self._prefill_rate = (self.step - self._loop_start[1]) / (
          time.perf_counter() - self._loop_start[0])
    with self.clock('replay'):
      return iter(self.replay.dataset(self.batch_size, self.batch_length, self.prefetch))

  def _save(self):
    with self.clock('save'):
      self.manager.save(checkpoint_number=self.step)

  def _after_round(self):
    """The round's metrics line first (a crash in evaluation cannot lose it), then the
    evaluation when one is due, written as its own line at the same step."""
    if self._when['log'](self.step):
      rate = self._fps(self.step)
      self.logger.scalar('fps', rate)
      self._log_time_split()
      with self.clock('log'):
        self.logger.write(self.step)
      self._estimate(rate)
    if self.step >= self.prefill and self._when['eval'](self.step):
      self._evaluate()

  def _log_time_split(self):
    """The window's wall time per section (``time/<section>``, ``time/other``, ``time/wall``,
    seconds since the previous training line) and each core's idle fraction
    (``cpu_idle/<core>``, the whole machine's load; none off Linux)."""
    for name, seconds in self.clock.window().items():
      self.logger.scalar(f'time/{name}', seconds)
    for core, idle in self.cpu_idle.window().items():
      self.logger.scalar(f'cpu_idle/{core}', idle)

  def _estimate(self, rate):
    """Once, from the second window with updates (the first one traces): what the rest of
    the run will cost at this rate, said plainly when it is more than a day."""
    if self.updates.numpy() == 0 or self._timed_windows >= 2:
      return
    self._timed_windows += 1
    if self._timed_windows < 2 or rate <= 0:
      return
    tqdm.tqdm.write(console.rate_estimate(rate, self.steps - self.step))

  def _early_estimate(self, seconds):
    """Once, after the first few updates of this process (``seconds``: their durations, the
    first one tracing): the rest of the run from the update time and the prefill's env rate,
    a lower bound (the policy and evaluations come on top)."""
    tqdm.tqdm.write(
        console.update_estimate(
            float(np.median(seconds[1:])), self.train_steps / self.train_every,
            self.steps - self.step, self._prefill_rate))

  def _train_once(self, dataset):
    with self.clock('replay'):
      batch = next(dataset)
    start = time.perf_counter()
    with self.clock('update'):  # .numpy() waits for the update
      metrics = self.agent.train(batch)
      self.updates.assign_add(1)
      self.logger.add({k: v.numpy() for k, v in metrics.items()})
    if len(self._first_updates) < EARLY_UPDATES:
      self._first_updates.append(time.perf_counter() - start)
      if len(self._first_updates) == EARLY_UPDATES:
        self._early_estimate(self._first_updates)
    self._stop.check()

  def _evaluate(self, episodes=None, report=True, progress=None):
    with self.clock('eval'):
      if self._evaluator is None:  # Worker processes kept for the run.
        self._evaluator = evaluation.Evaluator(self.task, self.seed, self.logger.logdir,
                                               action_repeat=self.action_repeat)
      results = self._evaluator(
          self._policy(training=False),
          episodes or self.eval_episodes,
          self.logger,
          self.step,
          check=self._stop.check,  # a stop signal ends an evaluation at its next agent step
          progress=progress)
      self._openloop_videos()
      self.logger.write(self.step)  # The evaluation is complete once its line is written,
      self._evaluator.commit(self.step)  # then its episodes move into place.
    self._evaluated_at = self.step
    if report:
      tqdm.tqdm.write(console.evaluation_line(self.step, results))
    return results

  def _openloop_videos(self, sequences=6):
    """Upstream's ``agent/openl`` for decoder methods, once per evaluation."""
    if not self.replay.can_sample(self.batch_length):
      return
    batch = self.replay.sample(sequences, self.batch_length)
    batch = {k: v for k, v in batch.items() if v.dtype != object}
    for modality, frames in diagnostics.openloop_videos(self.agent, batch).items():
      self.logger.video(f'openl/{modality}', frames, self.step)

  def evaluate_only(self, episodes=None):
    """``--eval_only``: the latest checkpoint under every evaluation condition, no training.

    Returns ``{condition: [episode returns]}``; raises ``UsageError`` without a checkpoint,
    before it writes anything to the logdir.
    """
    if not checkpoints.candidates(self.logdir / 'checkpoints'):
      raise UsageError(f'no checkpoint in {self.logdir / "checkpoints"} to evaluate')
    self._eval_only = True
    try:
      self._setup()
      if not self.restored:
        raise UsageError(f'no checkpoint in {self.logdir / "checkpoints"} to evaluate')
      # Its own metrics, TensorBoard run and episodes: the training's evaluation at the same
      # step stays what the curves and a resume read.
      self.logger = logger_lib.Logger(self.logdir / rundir.EVAL_ONLY)
      started = time.perf_counter()

      def progress(name, returns):
        tqdm.tqdm.write(console.condition_line(name, returns, time.perf_counter() - started))

      return self._evaluate(episodes, report=False, progress=progress)  # the command prints all
    finally:
      self._close()


EARLY_UPDATES = 4  # timed for the first estimate (the first traces)
