"""TFLite export of the SavedModel policy: smaller weights for robots.

Public API::

    QUANTIZE = ('int8', 'float16', 'none')
    convert(saved_model_dir, quantize='int8') -> bytes      # the .tflite flatbuffer
    write(saved_model_dir, quantize='int8') -> metadata      # <dir>/policy.tflite
    signature_runners(path, num_threads=None) -> (initial_state, step)

``policy.tflite`` holds the SavedModel's two flat signatures (``mummi_tf.run.export``) with
the same tensor names, as TFLite builtin ops only (no Flex delegate, no TensorFlow on the
robot: ``tf.lite.Interpreter`` or ``ai_edge_litert``'s): ``initial_state(batch_size)`` ->
``state_<k>``; ``step`` with ``obs_<modality>`` (images uint8), ``flag_<modality>`` (1 present /
0 missing: any subset), ``state_<k>`` and ``is_first`` -> ``action`` and ``state_<k>``. The
batch size is dynamic (a signature runner resizes its inputs to each call's).

``quantize``: ``'int8'`` dynamic-range quantisation (``tf.lite.Optimize.DEFAULT``: weights
int8 with per-channel scales, activations float32 and quantised on the fly inside the
matrix products; ~4x fewer weight bytes), ``'float16'`` (weights stored float16,
dequantised to float32 when the model loads: 2x smaller file, float32 compute) or
``'none'`` (float32, the SavedModel's arithmetic). ``tests/test_export.py`` bounds the int8
action error against the float32 SavedModel.

Unlike the SavedModel, the TFLite model does not check its inputs: the converter drops
``Assert`` ops, so a bad flag or a non-finite sensor value is not refused (a flag-0
sensor's values are still ignored, NaN included).
"""
import pathlib
import warnings

import tensorflow as tf

QUANTIZE = ('int8', 'float16', 'none')
FILENAME = 'policy.tflite'
SIGNATURES = ('initial_state', 'step')


def _converter(saved_model_dir, quantize):
  """A builtins-only converter of both signatures with the options of ``quantize``."""
  if quantize not in QUANTIZE:
    raise ValueError(f'quantize must be one of {", ".join(QUANTIZE)}; got {quantize!r}.')
  converter = tf.lite.TFLiteConverter.from_saved_model(
      str(saved_model_dir), signature_keys=list(SIGNATURES))
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  if quantize != 'none':
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if quantize == 'float16':
    converter.target_spec.supported_types = [tf.float16]
  return converter


def convert(saved_model_dir, quantize='int8'):
  """The ``.tflite`` flatbuffer (bytes) of an exported SavedModel's two signatures."""
  return _converter(saved_model_dir, quantize).convert()


def write(saved_model_dir, quantize='int8'):
  """Writes ``<saved_model_dir>/policy.tflite``; returns its metadata.json entry."""
  path = pathlib.Path(saved_model_dir) / FILENAME
  model = convert(saved_model_dir, quantize)
  path.write_bytes(model)
  return {
      'file': FILENAME,
      'quantize': quantize,
      'bytes': len(model),
      'ops': 'TFLITE_BUILTINS',
      'signatures': list(SIGNATURES)
  }


def interpreter(path, num_threads=None):
  """A TFLite interpreter of ``path``: LiteRT's (``ai_edge_litert``) when installed, else
  ``tf.lite.Interpreter`` (its deprecation warning silenced)."""
  try:
    from ai_edge_litert.interpreter import Interpreter
  except ImportError:
    with warnings.catch_warnings():
      warnings.filterwarnings('ignore', message='.*tf.lite.Interpreter is deprecated')
      return tf.lite.Interpreter(model_path=str(path), num_threads=num_threads)
  return Interpreter(model_path=str(path), num_threads=num_threads)


def signature_runners(path, num_threads=None):
  """(initial_state, step) signature runners of a ``.tflite`` file; call them with
  keyword numpy arrays, they return dicts of numpy arrays."""
  runner = interpreter(path, num_threads)
  return tuple(runner.get_signature_runner(name) for name in SIGNATURES)
