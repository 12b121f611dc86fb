"""Load-time compatibility patches that let robosuite 1.5.2 run on MuJoCo >= 3.17.

Why a compatibility layer instead of an older dm_control: dm_control 1.0.50 (the Natural
MuJoCo tasks) requires MuJoCo >= 3.17, and robosuite 1.5.2 is the newest robosuite; only two
robosuite call sites break on the newer MuJoCo bindings, so patching those two keeps one
environment for both suites. Each patch is applied once, only when the installed MuJoCo
needs it, and is tested in ``tests/envs/test_robosuite_wipe.py``.

1. ``MjData.qM`` (the sparse joint-space inertia) was removed in MuJoCo 3.17 and
   ``mj_fullM`` changed from ``mj_fullM(m, dst, qM)`` to ``mj_fullM(m, d, dst)``. robosuite's
   ``Controller.update`` calls ``mujoco.mj_fullM(model, mass_matrix, sim.data.qM)`` to build
   the mass matrix used by the OSC controller. The patch gives robosuite's ``MjData`` wrapper
   a ``qM`` handle carrying the raw ``mujoco.MjData`` and points the controller module's
   ``mujoco`` name at a proxy whose ``mj_fullM`` accepts the old argument order.
2. Joint types: robosuite's ``MjModel.get_joint_qpos_addr`` / ``get_joint_qvel_addr`` assert
   ``jnt_type[i] in (mjJNT_HINGE, mjJNT_SLIDE)``; with the newer bindings the enum members no
   longer compare equal to the ``numpy.int32`` entries of ``jnt_type`` from the enum side, so
   the assertion fails for every robot joint. The patch replaces both methods by versions
   that compare integer joint types.

This module imports robosuite and mujoco only; never TensorFlow (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import types

import mujoco
import numpy as np

# Width of a joint in qpos / qvel, keyed by the integer value of mujoco.mjtJoint.
_QPOS_WIDTH = {
    int(mujoco.mjtJoint.mjJNT_FREE): 7,
    int(mujoco.mjtJoint.mjJNT_BALL): 4,
    int(mujoco.mjtJoint.mjJNT_SLIDE): 1,
    int(mujoco.mjtJoint.mjJNT_HINGE): 1,
}
_QVEL_WIDTH = {
    int(mujoco.mjtJoint.mjJNT_FREE): 6,
    int(mujoco.mjtJoint.mjJNT_BALL): 3,
    int(mujoco.mjtJoint.mjJNT_SLIDE): 1,
    int(mujoco.mjtJoint.mjJNT_HINGE): 1,
}

#: Names of the patches applied in this process (filled by :func:`apply`).
APPLIED: set[str] = set()


def needs_mass_matrix_patch() -> bool:
  """True when the installed MuJoCo has no ``MjData.qM`` (MuJoCo >= 3.17)."""
  return not hasattr(mujoco.MjData, "qM")


def needs_joint_type_patch() -> bool:
  """True when ``mjtJoint`` members do not match ``numpy.int32`` joint types in a tuple."""
  return np.int32(int(mujoco.mjtJoint.mjJNT_HINGE)) not in (mujoco.mjtJoint.mjJNT_HINGE,)


class _SparseInertia:
  """What ``sim.data.qM`` returns after the patch: a handle on the raw ``mujoco.MjData``."""

  __slots__ = ("data",)

  def __init__(self, data: mujoco.MjData):
    self.data = data


def _mj_fullM_old_order(m, dst, qM):
  """``mj_fullM(m, dst, qM)`` (MuJoCo < 3.17 order) on top of ``mj_fullM(m, d, dst)``."""
  if not isinstance(qM, _SparseInertia):
    raise ValueError("mj_fullM shim: qM must be robosuite's sim.data.qM (a _SparseInertia handle)")
  mujoco.mj_fullM(m, qM.data, dst)


class _MujocoProxy(types.ModuleType):
  """The ``mujoco`` module with only ``mj_fullM`` replaced by the old-order shim."""

  mj_fullM = staticmethod(_mj_fullM_old_order)

  def __getattr__(self, name):
    return getattr(mujoco, name)


def _joint_address(model, name: str, address_field: str, widths: dict[int, int]):
  """qpos/qvel address of joint ``name``: an int for 1-dof joints, else ``(start, end)``."""
  joint_id = model.joint_name2id(name)
  joint_type = int(model.jnt_type[joint_id])
  start = int(getattr(model, address_field)[joint_id])
  if joint_type not in widths:
    raise ValueError(f"joint {name!r} has unknown type {joint_type}; valid: {sorted(widths)}")
  width = widths[joint_type]
  return start if width == 1 else (start, start + width)


def _get_joint_qpos_addr(self, name):
  return _joint_address(self, name, "jnt_qposadr", _QPOS_WIDTH)


def _get_joint_qvel_addr(self, name):
  return _joint_address(self, name, "jnt_dofadr", _QVEL_WIDTH)


def apply() -> frozenset[str]:
  """Apply the patches the installed MuJoCo needs (idempotent); returns their names."""
  from robosuite.controllers.parts import controller as controller_module
  from robosuite.utils import binding_utils

  if "mass_matrix" not in APPLIED and needs_mass_matrix_patch():
    binding_utils.MjData.qM = property(lambda self: _SparseInertia(self._data))
    controller_module.mujoco = _MujocoProxy("mujoco")
    APPLIED.add("mass_matrix")
  if "joint_type" not in APPLIED and needs_joint_type_patch():
    binding_utils.MjModel.get_joint_qpos_addr = _get_joint_qpos_addr
    binding_utils.MjModel.get_joint_qvel_addr = _get_joint_qvel_addr
    APPLIED.add("joint_type")
  return frozenset(APPLIED)
