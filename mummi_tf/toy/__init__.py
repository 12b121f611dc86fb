"""The toy 2-D world experiment of the paper's Fig. 1, 19 and 20.

Modules: ``data`` (random-action data of the ``toy2d`` suite, no TensorFlow), ``models``
(non-sequential PoE latent models trained with the reconstruction ELBO, the ELBO with
random modality dropping, or MuMMI's InfoNCE), ``metrics`` (consistency, precision shares,
linear probes), ``figures`` (Fig. 1-style latent plots), ``experiment`` (the whole run,
used by ``mummi_tf/cli/toy_latents.py``).
"""
