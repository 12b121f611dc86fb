"""Touch sensors for the Natural MuJoCo tasks, added to the installed suite's MJCF at load time.

The paper's tactile modality (Sec. V) is one channel per contact surface: each walker foot
sole, the finger's two fingertip sensors, and one touch site inside the cup. The suite XML is
read from the installed dm_control (`<domain>.get_model_and_assets()`), edited in memory with
lxml and compiled -- no suite file is vendored, so the sensors cannot be shadowed.

A MuJoCo `touch` sensor sums the normal force (N) of every contact that involves a geom of
the site's body and lies inside the site volume. Raw forces are heavy-tailed (walker feet
reach kN at impact), so the modality is `log1p(force)` as float32 (see `normalize`).
"""
import numpy as np
from lxml import etree

# Per domain: (new sites: (parent body, site attributes)), sensor site names in channel order.
# Walker: a capsule site 1 cm larger than each foot capsule (the foot is a capsule along its
# body x axis, radius 5 cm, half-length 10 cm), so every foot-floor contact lies inside it.
# Cup: a box filling the cup's interior (walls at x = +-5 cm, bottom at z = -10 cm).
# Sites go in group 4, which no camera renders.
_SITES = {
    'walker': (
        ('right_foot', dict(name='right_foot_touch', type='capsule', zaxis='1 0 0', size='.06 .1')),
        ('left_foot', dict(name='left_foot_touch', type='capsule', zaxis='1 0 0', size='.06 .1')),
    ),
    'finger': (),  # the suite already defines the fingertip sites and sensors
    'ball_in_cup': (('cup', dict(name='cup_touch', type='box', pos='0 0 -.065',
                                 size='.05 .02 .05')),),
}
SENSORS = {
    'walker': ('right_foot_touch', 'left_foot_touch'),
    'finger': ('touchtop', 'touchbottom'),
    'ball_in_cup': ('cup_touch',),
}


def add_touch_sensors(domain, xml):
  """Returns the suite `xml` (str or bytes) with the domain's touch sites and sensors added."""
  root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
  for body_name, attrib in _SITES[domain]:
    bodies = root.findall(f".//body[@name='{body_name}']")
    if len(bodies) != 1:
      raise ValueError(f'suite model {domain!r} has no unique body {body_name!r}')
    etree.SubElement(bodies[0], 'site', dict(attrib, group='4', rgba='0 0 0 0'))
  sensor = root.find('sensor')
  if sensor is None:
    sensor = etree.SubElement(root, 'sensor')
  existing = {el.get('name') for el in sensor.findall('touch')}
  for name in SENSORS[domain]:
    if name not in existing:
      etree.SubElement(sensor, 'touch', name=name, site=name)
  return etree.tostring(root, encoding='unicode')


def read_forces(physics, domain):
  """Raw touch forces (N) of the domain's sensors, channel order of `SENSORS`."""
  return np.array([physics.named.data.sensordata[name][0] for name in SENSORS[domain]])


def normalize(forces):
  """The tactile modality: `log1p` of the non-negative contact force in newtons, float32."""
  return np.log1p(np.maximum(forces, 0.0)).astype(np.float32)
