"""Where a run's wall time goes: exclusive section timers and per-core CPU idle fractions.

Public API::

    clock = Clock()                   # sections: SECTIONS
    with clock('env'):                # time.perf_counter around the call
      ...
    clock.window()   # {section: s, 'other': s, 'wall': s} since the last window
    idle = CpuIdle()
    idle.window()    # {core: idle fraction} since the last window ({} off Linux)

Sections nest and each counts only its own time: an env wait that runs updates meanwhile
(``driver.Driver``'s ``meanwhile``) gives the updates to ``update`` and the rest of the wait
to ``env``. So the sections of a window are disjoint and ``other`` (the window's wall time
less their sum) is what no section covers. Nothing is synchronised: a section ends when its
Python call returns (a policy call returns numpy actions, an update its metrics as numpy).
"""
import os
import pathlib
import time

# The trainer's sections (docs/ARCHITECTURE.md, metrics.jsonl's ``time/*`` keys).
SECTIONS = ('update', 'env', 'policy', 'replay', 'log', 'save', 'eval')


class _Section:
  """The context manager of one section name (its state lives in the clock)."""
  __slots__ = ('_clock', '_name')

  def __init__(self, clock, name):
    self._clock, self._name = clock, name

  def __enter__(self):
    self._clock._open()

  def __exit__(self, *exc):
    self._clock._close(self._name)


class Clock:
  """Seconds per section since the last ``window()``; ``clock(name)`` times a block."""
  def __init__(self, sections=SECTIONS):
    self.sections = tuple(sections)
    self._sections = {name: _Section(self, name) for name in self.sections}
    self._stack = []  # [start, seconds of the sections inside] per open section
    self.restart()

  def __call__(self, name):
    return self._sections[name]  # KeyError: not one of self.sections

  def restart(self):
    """Starts a new window, dropping what was measured since the last one."""
    self._totals = dict.fromkeys(self.sections, 0.0)
    self._start = time.perf_counter()

  def _open(self):
    self._stack.append([time.perf_counter(), 0.0])

  def _close(self, name):
    start, inner = self._stack.pop()
    elapsed = time.perf_counter() - start
    self._totals[name] += elapsed - inner
    if self._stack:
      self._stack[-1][1] += elapsed

  def window(self):
    """``{section: seconds, 'other': seconds, 'wall': seconds}`` since the last window
    (or ``restart``), then starts the next one. Call it outside every section."""
    if self._stack:
      raise RuntimeError('Clock.window() inside a section.')
    wall = time.perf_counter() - self._start
    split = dict(self._totals)
    split['other'] = max(0.0, wall - sum(split.values()))
    split['wall'] = wall
    self.restart()
    return split


def cpu_times(path='/proc/stat'):
  """``{core: (idle, total)}`` jiffies of the cores this process may run on, from Linux's
  ``/proc/stat`` (idle includes iowait; guest time is already in user); {} elsewhere."""
  try:
    lines = pathlib.Path(path).read_text().splitlines()
  except OSError:
    return {}
  try:
    allowed = os.sched_getaffinity(0)
  except (AttributeError, OSError):
    allowed = None
  times = {}
  for line in lines:
    fields = line.split()
    if not fields or not fields[0].startswith('cpu') or not fields[0][3:].isdigit():
      continue
    core = int(fields[0][3:])
    if allowed is None or core in allowed:
      jiffies = [int(x) for x in fields[1:9]]  # user nice system idle iowait irq softirq steal
      times[core] = (jiffies[3] + jiffies[4], sum(jiffies))
  return times


class CpuIdle:
  """The idle fraction of each core (the whole machine's load, not only this process's)
  between consecutive ``window()`` calls; {} where ``/proc/stat`` is not readable."""
  def __init__(self, path='/proc/stat'):
    self._path = path
    self._last = cpu_times(path)

  def window(self):
    now = cpu_times(self._path)
    idle = {}
    for core, (idle_now, total_now) in now.items():
      idle_then, total_then = self._last.get(core, (idle_now, total_now))
      if total_now > total_then:
        idle[core] = (idle_now - idle_then) / (total_now - total_then)
    self._last = now
    return idle
