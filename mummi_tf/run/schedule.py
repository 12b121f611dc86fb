"""When the training loop acts, counted in env steps: small objects in the manner of dreamerv3's
``embodied.when``, so the loop keeps no bookkeeping of its own."""


class Every:
  """True once each time ``step`` reaches a new multiple of ``every``; a resumed run counts
  from its own step (``step``), so it does not redo what its last session did."""
  def __init__(self, every, step=0):
    self.every = int(every)
    if self.every < 1:
      raise ValueError(f'an interval must be >= 1 env steps, got {every}')
    self._last = int(step) // self.every

  def __call__(self, step):
    if step // self.every <= self._last:
      return False
    self._last = step // self.every
    return True


class Spread:
  """``total`` events spread evenly over ``length`` steps (the round's updates over its agent
  steps): ``__call__(done)`` returns how many fall due by step ``done`` that it has not
  returned yet, so the round holds exactly ``total`` however it is stepped."""
  def __init__(self, total, length):
    self.total, self.length = int(total), max(1, int(length))
    self._given = 0

  def __call__(self, done):
    due = self.total * min(max(done, 0), self.length) // self.length
    count = max(due - self._given, 0)
    self._given += count
    return count
