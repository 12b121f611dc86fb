#!/bin/bash
# Makes danijar/dreamer (commit 56d4d44) or clear-nus/MuMMI (commit 94ee06c, its fork; TF 2.1
# era) import and train under TF 2.21 with tf-keras 2.21 (run them with TF_USE_LEGACY_KERAS=1).
# Edits a checkout in place; no upstream code is kept here.
#   git clone https://github.com/danijar/dreamer && bash patch_upstream.sh dreamer
set -euo pipefail
cd "$1"
files=$(ls dreamer.py mummi.py cvrl.py models.py tools.py 2>/dev/null)
# The experimental mixed-precision module became tf.keras.mixed_precision (TF 2.4).
sed -i 's/from tensorflow.keras.mixed_precision import experimental as prec/from tensorflow.keras import mixed_precision as prec/' $files
sed -i "s/prec.set_policy(prec.Policy('mixed_float16'))/prec.set_global_policy('mixed_float16')/" $files
# LossScaleOptimizer's second argument ('dynamic') is the default now and no longer accepted.
sed -i "s/prec.LossScaleOptimizer(self._opt, 'dynamic')/prec.LossScaleOptimizer(self._opt)/" $files
# Strategy.experimental_run_v2 was renamed Strategy.run (TF 2.2).
sed -i 's/experimental_run_v2(/run(/' $files
# MuMMI's InfoNCE casts to float16 whatever the policy, so only its mixed_float16 ran; cast to
# the policy's compute dtype (float16 there, unchanged) so that float32 runs too.
sed -i "s/tf.cast(\(.*\), 'float16')/tf.cast(\1, prec.global_policy().compute_dtype)/" $files
if grep -n "mixed_precision import experimental\|experimental_run_v2\|'dynamic')\|, 'float16')" $files; then
  echo "patch incomplete"; exit 1
fi
echo "patched $(pwd)"
