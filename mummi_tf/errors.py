"""The one exception the commands turn into a message: ``UsageError``.

Its own module so that the trainer, the sweep and the commands share one class: under
``python -m mummi_tf.cli.train`` the command's module is ``__main__``, and a class defined there
is not the ``mummi_tf.cli.train.UsageError`` that library code would import.
"""


class UsageError(Exception):
  """Bad command-line input: printed as one line, exit code 2, nothing written."""
