"""Natural moving backgrounds for the RGB modality (paper Sec. V: "natural video" behind the robot).

The paper plays ILSVRC videos, which are not available offline. Two sources:
- `'photos'` (default, offline): slow pans and zooms across photographs that ship inside
  scikit-image. Train and test use disjoint photographs (`TRAIN_PHOTOS` / `TEST_PHOTOS`).
- a folder path: videos (played frame by frame, looping) and images (panned and zoomed like
  the photos), read with imageio. If the folder has `train/` and `test/` subfolders they are
  the two splits; otherwise the sorted files are split, every fourth file going to test.
Each episode draws one source and a random pan/zoom (or video start) from the seeded rng.
"""
import os

import imageio.v3 as iio
import numpy as np

TRAIN_PHOTOS = ('astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg', 'brick.png',
                'hubble_deep_field.jpg', 'motorcycle_left.png', 'grass.png', 'camera.png',
                'coins.png')
TEST_PHOTOS = ('ihc.png', 'retina.jpg', 'gravel.png', 'moon.png', 'page.png', 'clock_motion.png')
SPLITS = ('train', 'test')
IMAGE_EXT = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_EXT = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.gif', '.mpg', '.mpeg')
_MAX_SIDE = 256  # photos are downscaled to at most this many pixels per side
_MAX_VIDEO_FRAMES = 1000


def bilinear(image, ys, xs):
  """Samples float `image` (H, W, C) at float coordinates ys (h,), xs (w,) -> (h, w, C)."""
  h, w = image.shape[:2]
  ys = np.clip(ys, 0, h - 1.001)
  xs = np.clip(xs, 0, w - 1.001)
  y0, x0 = ys.astype(int), xs.astype(int)
  fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
  x = np.concatenate([x0, x0 + 1])
  top, bottom = image[y0][:, x], image[y0 + 1][:, x]  # only the needed columns
  rows = top + (bottom - top) * fy
  return rows[:, :len(x0)] + (rows[:, len(x0):] - rows[:, :len(x0)]) * fx


def _as_rgb(frame):
  frame = np.asarray(frame)
  if frame.ndim == 2:
    frame = np.repeat(frame[..., None], 3, axis=-1)
  frame = frame[..., :3]
  if frame.dtype == bool:
    frame = frame.astype(np.uint8) * 255
  if frame.dtype != np.uint8:
    frame = (255 * (frame - frame.min()) / max(np.ptp(frame), 1e-8)).astype(np.uint8)
  return frame


def _downscale(image, max_side):
  h, w = image.shape[:2]
  scale = min(1.0, max_side / max(h, w))
  out_h, out_w = max(2, int(h * scale)), max(2, int(w * scale))
  return bilinear(
      image.astype(np.float32), np.linspace(0, h - 1, out_h), np.linspace(0, w - 1, out_w))


class PanZoom:
  """A slow pan (bouncing off the image border) with a sinusoidal zoom over one image."""
  def __init__(self, image, size, rng):
    self._image = image
    self._size = size
    h, w = image.shape[:2]
    self._base = rng.uniform(0.45, 0.7) * min(h, w)  # crop side, pixels
    self._zoom_amp = rng.uniform(0.1, 0.25)  # relative crop side change
    self._zoom_period = rng.uniform(150, 400)  # frames
    self._phase = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(0.2, 0.6)  # source pixels per frame
    angle = rng.uniform(0, 2 * np.pi)
    self._vel = speed * np.array([np.sin(angle), np.cos(angle)])
    self._pos = rng.uniform(0, 1, 2) * [h, w]
    self._t = 0

  def frame(self):
    h, w = self._image.shape[:2]
    side = self._base * (
        1 + self._zoom_amp * np.sin(2 * np.pi * self._t / self._zoom_period + self._phase))
    lo, hi = side / 2, np.array([h, w]) - 1 - side / 2
    for k in range(2):  # bounce the crop centre between the borders
      if self._pos[k] < lo or self._pos[k] > hi[k]:
        self._vel[k] = -self._vel[k]
      self._pos[k] = np.clip(self._pos[k], lo, max(lo, hi[k]))
    ys = self._pos[0] - side / 2 + np.arange(self._size[0]) * side / self._size[0]
    xs = self._pos[1] - side / 2 + np.arange(self._size[1]) * side / self._size[1]
    self._pos += self._vel
    self._t += 1
    return bilinear(self._image, ys, xs).astype(np.uint8)


class Clip:
  """Plays pre-decoded video frames from a random start, looping."""
  def __init__(self, frames, rng):
    self._frames = frames
    self._t = int(rng.integers(len(frames)))

  def frame(self):
    frame = self._frames[self._t % len(self._frames)]
    self._t += 1
    return frame


def _photo_dir():
  import skimage
  return os.path.join(os.path.dirname(skimage.__file__), 'data')


def _list_folder(path, split):
  if not os.path.isdir(path):
    raise ValueError(f'background folder {path!r} does not exist; give a folder of '
                     f'videos/images or background="photos" or "none"')
  if all(os.path.isdir(os.path.join(path, s)) for s in SPLITS):
    path = os.path.join(path, split)
    files = sorted(os.listdir(path))
    files = [os.path.join(path, f) for f in files if f.lower().endswith(IMAGE_EXT + VIDEO_EXT)]
  else:
    files = sorted(f for f in os.listdir(path) if f.lower().endswith(IMAGE_EXT + VIDEO_EXT))
    files = [
        os.path.join(path, f) for i, f in enumerate(files) if (i % 4 == 3) == (split == 'test')
    ]
  if not files:
    raise ValueError(f'background folder {path!r} has no {split} videos or images '
                     f'(extensions {IMAGE_EXT + VIDEO_EXT}; needs >= 2 files or '
                     f'train/ and test/ subfolders)')
  return files


class Backgrounds:
  """Per-episode background frames of `size` (H, W) for the RGB modality.

    Args:
      source: 'photos' (offline default), 'none' (keep the rendered sky and floor), or a
        folder of videos/images.
      split: 'train' or 'test'; the two splits never share a photograph or file.
      size: (H, W) of the frames.
      seed: seeds the choice of source and motion per episode.
    """
  def __init__(self, source='photos', split='train', size=(64, 64), seed=None):
    if split not in SPLITS:
      raise ValueError(f'background split {split!r} unknown; valid: {SPLITS}')
    self._size = tuple(size)
    self._rng = np.random.default_rng(seed)
    self.enabled = source != 'none'
    self._sources = []
    self._cache = {}
    if source == 'photos':
      names = TRAIN_PHOTOS if split == 'train' else TEST_PHOTOS
      self._sources = [os.path.join(_photo_dir(), n) for n in names]
    elif self.enabled:
      self._sources = _list_folder(os.fspath(source), split)
      for path in self._sources:
        self._load(path)  # fail early on unreadable files
    self._current = None

  def _load(self, path):
    if path not in self._cache:
      try:
        if path.lower().endswith(VIDEO_EXT):
          frames = []
          for frame in iio.imiter(path):
            frame = _as_rgb(frame)
            frames.append(
                bilinear(
                    frame.astype(np.float32), np.linspace(0, frame.shape[0] - 1, self._size[0]),
                    np.linspace(0, frame.shape[1] - 1, self._size[1])).astype(np.uint8))
            if len(frames) >= _MAX_VIDEO_FRAMES:
              break
          if len(frames) < 2:  # a single frame is an image
            self._cache[path] = ('image', _downscale(_as_rgb(frames[0]), _MAX_SIDE))
          else:
            self._cache[path] = ('video', np.stack(frames))
        else:
          self._cache[path] = ('image', _downscale(_as_rgb(iio.imread(path)), _MAX_SIDE))
      except Exception as e:  # imageio raises many types for unreadable files
        raise ValueError(f'background file {path!r} is not a readable image or '
                         f'video: {e}') from e
    return self._cache[path]

  def reset(self):
    """Starts a new episode's background."""
    if not self.enabled:
      return
    path = self._sources[self._rng.integers(len(self._sources))]
    kind, data = self._load(path)
    self._current = PanZoom(data, self._size, self._rng) if kind == 'image' else Clip(
        data, self._rng)

  def frame(self):
    """The next background frame, uint8 (H, W, 3); None when disabled."""
    if not self.enabled:
      return None
    if self._current is None:
      self.reset()
    return self._current.frame()
