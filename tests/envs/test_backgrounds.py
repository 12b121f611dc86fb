"""Background sources: offline photographs and user folders (no rendering needed)."""
import imageio.v3 as iio
import numpy as np
import pytest

from mummi_tf.envs import backgrounds


def _frames(source, n, split='train', seed=0, size=(64, 64)):
  bg = backgrounds.Backgrounds(source, split, size, seed)
  bg.reset()
  return np.stack([bg.frame() for _ in range(n)])


def test_photo_splits_are_disjoint_and_readable():
  assert not set(backgrounds.TRAIN_PHOTOS) & set(backgrounds.TEST_PHOTOS)
  for split in backgrounds.SPLITS:
    bg = backgrounds.Backgrounds('photos', split)
    for path in bg._sources:
      kind, image = bg._load(path)
      assert kind == 'image' and image.shape[-1] == 3 and min(image.shape[:2]) >= 64


def test_photo_frames_move_slowly_and_continuously():
  frames = _frames('photos', 60).astype(float)
  assert frames.shape == (60, 64, 64, 3)
  step = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
  assert step.min() > 0, 'a frame repeated: the background stood still'
  assert np.abs(frames[-1] - frames[0]).mean() > step.mean(), 'no drift over time'


def test_seeded_and_episode_varying():
  a, b, c = _frames('photos', 5, seed=1), _frames('photos', 5, seed=1), _frames('photos', 5, seed=2)
  assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_folder_of_images_and_video(tmp_path):
  rng = np.random.default_rng(0)
  for i in range(3):
    iio.imwrite(tmp_path / f'img{i}.png', rng.integers(0, 255, (80, 100, 3), np.uint8))
  video = np.stack([np.full((40, 50, 3), 10 * t, np.uint8) for t in range(12)])
  iio.imwrite(tmp_path / 'clip.gif', video, loop=0)
  # sorted: clip.gif img0 img1 img2 -> every 4th file (img2) is test
  train = backgrounds.Backgrounds(str(tmp_path), 'train')
  test = backgrounds.Backgrounds(str(tmp_path), 'test')
  assert [p.name for p in map(__import__('pathlib').Path, test._sources)] == ['img2.png']
  assert not set(train._sources) & set(test._sources)
  kinds = {p.rsplit('/', 1)[-1]: train._load(p)[0] for p in train._sources}
  assert kinds == {'clip.gif': 'video', 'img0.png': 'image', 'img1.png': 'image'}
  frames = _frames(str(tmp_path), 20, seed=3)
  assert frames.shape == (20, 64, 64, 3) and frames.dtype == np.uint8


def test_folder_with_split_subfolders(tmp_path):
  for split in ('train', 'test'):
    (tmp_path / split).mkdir()
    iio.imwrite(tmp_path / split / 'a.png', np.zeros((70, 70, 3), np.uint8))
  bg = backgrounds.Backgrounds(str(tmp_path), 'test')
  assert bg._sources == [str(tmp_path / 'test' / 'a.png')]


@pytest.mark.filterwarnings('ignore::DeprecationWarning')  # imageio probing plugins
def test_empty_missing_or_unreadable_folder(tmp_path):
  with pytest.raises(ValueError, match='no train videos or images'):
    backgrounds.Backgrounds(str(tmp_path), 'train')
  with pytest.raises(ValueError, match='does not exist'):
    backgrounds.Backgrounds(str(tmp_path / 'nope'), 'train')
  for i in range(2):
    (tmp_path / f'broken{i}.png').write_bytes(b'not an image')
  with pytest.raises(ValueError, match='not a readable image or video'):
    backgrounds.Backgrounds(str(tmp_path), 'train')
  with pytest.raises(ValueError, match='valid'):
    backgrounds.Backgrounds('photos', 'validation')


def test_none_source_gives_no_frame():
  bg = backgrounds.Backgrounds('none')
  bg.reset()
  assert bg.frame() is None


def test_bilinear_is_exact_on_a_linear_ramp():
  ys, xs = np.mgrid[0:20, 0:30].astype(np.float32)
  image = np.stack([2 * ys + 3 * xs, ys, xs], -1)
  qy, qx = np.array([0.5, 3.25, 18.9]), np.array([1.5, 7.75, 28.1, 0.0])
  out = backgrounds.bilinear(image, qy, qx)
  np.testing.assert_allclose(out[..., 0], 2 * qy[:, None] + 3 * qx[None, :], rtol=1e-5)
