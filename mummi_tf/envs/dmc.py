"""Natural MuJoCo suite (paper Sec. V): dm_control tasks with rgb, depth and touch modalities.

`load(task, ...)` returns the raw `dm_env.Environment` of the suite-module contract
(docs/ARCHITECTURE.md): observations are the requested modalities plus `state` (the suite's
proprioceptive observation, flattened, diagnostics only); the suite's action bounds; no
action repeat and no time limit (the wrappers of `mummi_tf.envs.make` add both).

- `rgb` (H, W, 3) uint8: camera `camera` with the natural background (`backgrounds.py`)
  composited over sky and floor using MuJoCo's segmentation (`render.py`).
- `depth` (H, W, 1) uint8: same camera and render pass; metres / (depth_range * extent).
- `touch` (C,) float32: log1p of the contact force (N) of the sensors added in `touch.py`.
- `state` (S,) float32: the suite's proprioceptive observation as a modality of its own (for
  the sanity runs of `gin/state.gin`); unrequested, `state` is still emitted for diagnostics.
"""
import gin

# Listed here, not read from natural_mujoco, so that configuring and listing tasks never loads
# dm_control into a TensorFlow process (tests check both lists agree).
TASKS = ('walker_stand', 'walker_walk', 'walker_run', 'finger_spin', 'cup_catch')
MODALITIES = ('rgb', 'depth', 'touch', 'state')
DEFAULT_MODALITIES = ('rgb', 'depth', 'touch')  # the paper's


def check(task, modalities):
  """The requested modalities (None: all) of `task`; ValueError naming the valid ones."""
  if task not in TASKS:
    raise ValueError(f'unknown Natural MuJoCo task {task!r}; valid: {", ".join(TASKS)}')
  modalities = DEFAULT_MODALITIES if modalities is None else tuple(modalities)
  bad = [m for m in modalities if m not in MODALITIES]
  if bad or not modalities:
    raise ValueError(f'unknown modalities {bad} for {task}; valid: {", ".join(MODALITIES)}')
  return modalities


@gin.configurable(module='mummi_tf.envs.dmc')
def load(task, *, size=(64, 64), modalities=None, seed=None, camera=0, shadows=True,
         background='photos', split='train', depth_range=2.5):
  """The raw Natural MuJoCo env of `task` (suite-module contract, docs/ARCHITECTURE.md).

    Args beyond the contract's: camera (id or name), shadows (True: faithful; False renders
    several times faster), background ('photos' | 'none' | a folder, see backgrounds.py),
    split ('train' | 'test' backgrounds), depth_range (depth clip distance in units of the
    model's extent).
    """
  modalities = check(task, modalities)  # before dm_control is imported
  from mummi_tf.envs import natural_mujoco  # dm_control: worker processes only.
  return natural_mujoco.NaturalMujoco(task, size=size, modalities=modalities, seed=seed,
                                      camera=camera, shadows=shadows, background=background,
                                      split=split, depth_range=depth_range)
