"""MuMMI in TensorFlow 2."""
