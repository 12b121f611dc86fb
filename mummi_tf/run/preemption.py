"""Stopping a run at a safe point when it is asked to: SIGTERM (Slurm's preemption and time
limit, ``kill``, a machine's shutdown) or Ctrl-C.

The first signal only sets a flag; the loop checks it between updates, saves a checkpoint and
exits with the shell's code for that signal (143, 130), so rerunning the command resumes with
no update lost. A second signal acts at once, as if no handler were installed (a crash, which
loses at most the updates since the last checkpoint and never an episode).
"""

import contextlib
import os
import signal
import threading

import tqdm

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stop(Exception):
  """Raised by ``StopOnSignal.check`` once a stop was asked; ``code`` is the exit status."""
  def __init__(self, signum):
    self.signum = signum
    self.code = 128 + signum
    super().__init__(f'stopped by {signal.Signals(signum).name}')


class StopOnSignal(contextlib.AbstractContextManager):
  """Installs the handlers for its ``with`` block: only in the main thread, where Python
  delivers signals (elsewhere ``check`` never raises), and not over an ignored signal (``nohup``
  and ``&`` in a script ignore SIGINT: the run stays deaf to it)."""
  def __init__(self, signals=SIGNALS):
    self.signals = tuple(signals)
    self.signum = None
    self._previous = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = {
          s: signal.signal(s, self._handle)
          for s in self.signals
          if signal.getsignal(s) is not signal.SIG_IGN
      }
    return self

  def __exit__(self, *exc):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous = {}
    return False

  def _handle(self, signum, frame):
    if self.signum is not None:  # The second one: what it would have done unhandled.
      signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))
      if signum == signal.SIGINT:
        raise KeyboardInterrupt
      os.kill(os.getpid(), signum)
      return
    self.signum = signum
    tqdm.tqdm.write(f'{signal.Signals(signum).name}: saving a checkpoint after the update in '
                    'progress, then stopping (send it again to stop at once)')

  def check(self):
    """Raises ``Stop`` when a stop was asked."""
    if self.signum is not None:
      raise Stop(self.signum)
