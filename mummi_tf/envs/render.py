"""One camera, three images: RGB, metric depth and a background mask (paper Sec. V).

Per observation the scene is updated once and drawn twice:
1. the normal pass (lighting, shadows, reflections); `mjr_readPixels` reads its colour *and*
   depth buffers together, so depth costs no extra render (dm_control's separate `render`
   calls draw the scene once per buffer);
2. a segmentation pass (flat colours, no lighting or shadows, ~1 ms at 64x64 here) that
   labels every pixel with the scene geom drawn there.

Background (replaced by the natural video in RGB) = pixels where no scene geom is drawn
(the skybox) or where the nearest geom is a world-body plane (the floor / ground). Everything
else -- robot, ball, string, target sites -- is foreground and keeps its rendered colour.
This replaces the prior code's red-channel threshold, which also replaced parts of the robot.
The floor's mirror reflection of the robot lies on floor pixels and is therefore background.

Depth: distance along the optical axis in metres, clipped to `depth_range * extent` (the
model's `stat.extent`: walker 2 m, finger and cup ~0.67 m) and scaled to 0..255 (uint8;
0 = at the camera, 255 = at or beyond the clip distance, e.g. the sky).
"""
import mujoco
import numpy as np
from dm_control.mujoco import engine

_FLAG = mujoco.mjtRndFlag


def background_geoms(model):
  """Ids of the geoms that count as background: planes attached to the world body."""
  return np.flatnonzero((model.geom_type == mujoco.mjtGeom.mjGEOM_PLANE) & (model.geom_bodyid == 0))


class Renderer:
  """Renders (rgb uint8 HxWx3, depth uint8 HxWx1, background mask bool HxW) in one update."""
  def __init__(self, physics, size=(64, 64), camera=0, shadows=True, depth_range=2.5):
    self._physics = physics
    height, width = size
    self._camera = engine.Camera(physics, height, width, camera)
    self._scene = self._camera.scene
    self._scene.flags[_FLAG.mjRND_SHADOW] = bool(shadows)
    self._rect = mujoco.MjrRect(0, 0, width, height)
    self._rgb = np.empty((height, width, 3), np.uint8)
    self._depth = np.empty((height, width), np.float32)
    self._seg = np.empty((height, width, 3), np.uint8)
    model = physics.model
    extent = model.stat.extent
    near, far = model.vis.map.znear * extent, model.vis.map.zfar * extent
    self._near, self._far = near, far
    self.clip = depth_range * extent  # metres mapped to depth 255
    is_background = np.zeros(model.ngeom, bool)
    is_background[background_geoms(model)] = True
    self._geom_is_background = is_background

  def _draw(self):
    ctx = self._physics.contexts.mujoco.ptr
    mujoco.mjr_render(self._rect, self._scene.ptr, ctx)
    mujoco.mjr_readPixels(self._rgb, self._depth, self._rect, ctx)
    self._scene.flags[_FLAG.mjRND_SEGMENT] = True
    self._scene.flags[_FLAG.mjRND_IDCOLOR] = True
    try:
      mujoco.mjr_render(self._rect, self._scene.ptr, ctx)
      mujoco.mjr_readPixels(self._seg, None, self._rect, ctx)
    finally:
      self._scene.flags[_FLAG.mjRND_SEGMENT] = False
      self._scene.flags[_FLAG.mjRND_IDCOLOR] = False

  def _foreground_lut(self):
    """Segmentation colour id (segid + 1; 0 = nothing drawn) -> is foreground."""
    scene = self._scene
    lut = np.zeros(scene.ngeom + 1, bool)
    geom_type = int(mujoco.mjtObj.mjOBJ_GEOM)
    for i in range(scene.ngeom):
      g = scene.geoms[i]
      if g.segid < 0:
        continue
      lut[g.segid + 1] = not (g.objtype == geom_type and self._geom_is_background[g.objid])
    return lut

  def render(self):
    self._camera.update()
    with self._physics.contexts.gl.make_current() as ctx:
      ctx.call(self._draw)
    seg = self._seg.astype(np.int32)
    ids = seg[..., 0] | (seg[..., 1] << 8) | (seg[..., 2] << 16)
    lut = self._foreground_lut()
    background = ~lut[np.minimum(ids, len(lut) - 1)]
    metres = self._near / (1 - self._depth * (1 - self._near / self._far))
    depth = np.clip(metres * (255.0 / self.clip), 0, 255).round().astype(np.uint8)
    # OpenGL's first row is the bottom of the image.
    return self._rgb[::-1].copy(), depth[::-1, :, None].copy(), background[::-1].copy()
