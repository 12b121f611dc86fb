"""The stop-on-signal handler in this process (no TF): one signal asks, a second one acts."""

import os
import signal
import threading

import pytest

from mummi_tf.run import preemption


def _send(signum):
  os.kill(os.getpid(), signum)  # Python runs the handler before the next bytecode


def test_the_first_signal_asks_to_stop_with_the_shells_exit_code():
  with preemption.StopOnSignal() as stop:
    stop.check()  # nothing asked yet
    _send(signal.SIGTERM)
    with pytest.raises(preemption.Stop) as raised:
      stop.check()
  assert raised.value.code == 143 and str(raised.value) == 'stopped by SIGTERM'


def test_a_second_ctrl_c_interrupts_at_once_and_handlers_are_restored():
  # As in a terminal (a pytest-xdist worker ignores SIGINT).
  outer = signal.signal(signal.SIGINT, signal.default_int_handler)
  try:
    with preemption.StopOnSignal() as stop:
      _send(signal.SIGINT)
      with pytest.raises(KeyboardInterrupt):
        _send(signal.SIGINT)
    assert stop.signum == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
  finally:
    signal.signal(signal.SIGINT, outer)


def test_an_ignored_signal_stays_ignored():
  previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as under nohup ... &
  try:
    with preemption.StopOnSignal() as stop:
      _send(signal.SIGINT)
      stop.check()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
  finally:
    signal.signal(signal.SIGINT, previous)


def test_outside_the_main_thread_it_installs_nothing():
  seen = []

  def enter():
    with preemption.StopOnSignal() as stop:
      seen.append(signal.getsignal(signal.SIGTERM))
      stop.check()

  thread = threading.Thread(target=enter)
  thread.start()
  thread.join()
  assert seen == [signal.SIG_DFL]


def test_a_second_sigterm_kills_as_if_unhandled():
  import subprocess
  import sys
  code = ('import os, signal\n'
          'from mummi_tf import preemption\n'
          'with preemption.StopOnSignal():\n'
          '  os.kill(os.getpid(), signal.SIGTERM)\n'
          '  os.kill(os.getpid(), signal.SIGTERM)\n'
          '  print("survived")\n')
  result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
  assert result.returncode == -signal.SIGTERM and 'survived' not in result.stdout
  assert result.stdout.startswith('SIGTERM: saving a checkpoint')
