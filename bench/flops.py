"""Dense FLOPs of a traced `tf.function`, its loops counted times their trip count.

    count(fn, *args) -> Count       # fn: a tf.function; args: its example inputs
    count_graph(graph) -> Count     # a FuncGraph (e.g. a concrete function's .graph)

`tf.compat.v1.profiler.profile(graph, options=ProfileOptionBuilder.float_operation())` sums
TF's per-op FLOP registry over the ops of the graph's top level only: on a TF 2 graph the
bodies of functional control flow (`While`: `tf.scan`, `tf.while_loop` and their gradients;
`If`; function calls) live in the function library and count zero, not once
(tests/test_roofline.py checks both). This walker recurses into them: a `While` body counts
times its trip count (the loop's `maximum_iterations`, exact for `tf.scan`, `tf.map_fn` and
their gradient loops, which reuse it; a loop without one raises), an `If`/`Case` its larger
branch, a call once.

Counted: the dense ops, each as a GEMM of m x k times k x n, 2 m n k FLOPs: `MatMul` and
`BatchMatMul*` (m, n, k from the shapes, batch dims into m), `Conv2D` and its two gradients
`Conv2DBackpropInput` (= the transposed convolution) and `Conv2DBackpropFilter` (im2col: m =
N Ho Wo, n = output channels, k = kh kw Cin, Ho Wo those of the forward convolution). Not
counted: elementwise ops and reductions (1 FLOP per element in TF's registry; they cannot run
at a matmul peak, and are < 1 % of the update's), and ops no output depends on (a function
never runs them). A dense op whose shapes are not static is listed in `Count.unknown`.
"""
import collections

import numpy as np
import tensorflow as tf

MATMULS = ('MatMul', 'BatchMatMul', 'BatchMatMulV2', 'BatchMatMulV3')
CONVS = ('Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter')
LOOPS = ('While', 'StatelessWhile')
BRANCHES = {'If': ('then_branch', 'else_branch'), 'StatelessIf': ('then_branch', 'else_branch')}
CASES = ('Case', 'StatelessCase')
CALLS = ('PartitionedCall', 'StatefulPartitionedCall')

# One dense op as a GEMM (m x k) (k x n), run `times` times per call of the function.
Gemm = collections.namedtuple('Gemm', 'op type dtype m n k times')


class Count(collections.namedtuple('Count', 'gemms unknown')):
  """The dense ops of a graph (`Gemm`s) and the names of those with unknown shapes."""
  @property
  def flops(self):
    return sum(gemm_flops(g) for g in self.gemms)

  def by_dtype(self):
    """{dtype name: FLOPs}."""
    out = collections.Counter()
    for g in self.gemms:
      out[g.dtype] += gemm_flops(g)
    return dict(out)

  def median_width(self):
    """The FLOP-weighted median of min(m, n, k) over the dense ops: how narrow their GEMMs
    are (a narrow side leaves little work per loaded byte and per thread)."""
    if not self.gemms:
      return 0
    gemms = sorted(self.gemms, key=lambda g: min(g.m, g.n, g.k))
    weights = np.cumsum([gemm_flops(g) for g in gemms])
    g = gemms[int(np.searchsorted(weights, weights[-1] / 2))]
    return int(min(g.m, g.n, g.k))


def gemm_flops(g):
  return 2 * g.m * g.n * g.k * g.times


def count(fn, *args):
  """The Count of tf.function `fn` traced on `args`."""
  return count_graph(fn.get_concrete_function(*args).graph)


def live_ops(graph):
  """Names of the ops `graph`'s outputs and control outputs depend on: a function runs only
  these (e.g. the input gradient a conv's gradient function builds for uint8 images, which
  the tape drops, never runs)."""
  stack = [t.op for t in graph.outputs] + list(graph.control_outputs)
  live = set()
  while stack:
    op = stack.pop()
    if op.name not in live:
      live.add(op.name)
      stack += [t.op for t in op.inputs] + list(op.control_inputs)
  return live


def count_graph(graph, times=1):
  """The Count of the live ops of FuncGraph `graph` and of the functions they call, each
  `times` times."""
  gemms, unknown = [], []
  live = live_ops(graph)
  for op in graph.get_operations():
    if op.name not in live:
      continue
    if op.type in LOOPS:
      sub = count_graph(function_graph(op, 'body'), times * trip_count(op))
    elif op.type in BRANCHES or op.type in CASES:
      subs = [count_graph(g, times) for g in branch_graphs(op)]
      sub = max(subs, key=lambda c: c.flops)
    elif op.type in CALLS:
      sub = count_graph(function_graph(op, 'f'), times)
    elif op.type in MATMULS or op.type in CONVS:
      gemm = as_gemm(op, times)
      sub = Count([gemm], []) if gemm else Count([], [op.name])
    else:
      continue
    gemms += sub.gemms
    unknown += sub.unknown
  return Count(gemms, unknown)


def trip_count(op):
  """Iterations of a while_v2 loop: its `maximum_iterations` (input 1), static."""
  trips = tf.get_static_value(op.inputs[1])
  if trips is None or int(trips) < 0:
    raise ValueError(f'{op.name}: a loop without a static maximum_iterations; its trip count '
                     'is unknown (give tf.while_loop a static maximum_iterations).')
  return int(trips)


def _lookup(graph, name):
  """The FuncGraph of library function `name`, looked up from `graph` outwards."""
  while graph is not None:
    fn = graph._get_function(name)  # noqa: SLF001 - the only way to the Python FuncGraph
    if fn is not None:
      return fn.graph
    graph = getattr(graph, 'outer_graph', None)
  raise ValueError(f'function {name} not found in the graph library')


def function_graph(op, attr):
  return _lookup(op.graph, op.node_def.attr[attr].func.name)


def branch_graphs(op):
  if op.type in CASES:
    return [_lookup(op.graph, f.name) for f in op.node_def.attr['branches'].list.func]
  return [function_graph(op, attr) for attr in BRANCHES[op.type]]


def _dims(tensor):
  shape = tensor.shape
  return shape.as_list() if shape.is_fully_defined() else None


def as_gemm(op, times):
  """`op` as a Gemm, or None when its shapes are not static."""
  if op.type in MATMULS:
    a, out = _dims(op.inputs[0]), _dims(op.outputs[0])
    if a is None or out is None:
      return None
    if op.type == 'MatMul':
      k = a[0] if op.get_attr('transpose_a') else a[1]
    else:
      k = a[-2] if op.get_attr('adj_x') else a[-1]
    m = int(np.prod(out[:-1]))
    return Gemm(op.name, op.type, op.inputs[0].dtype.name, m, out[-1], k, times)
  # The forward convolution's output (m = N Ho Wo) and filter (kh kw Cin x Cout).
  out = _dims(op.outputs[0] if op.type == 'Conv2D' else op.inputs[2])
  kernel = _dims(op.outputs[0] if op.type == 'Conv2DBackpropFilter' else op.inputs[1])
  if out is None or kernel is None or op.get_attr('data_format') != b'NHWC':
    return None
  m = int(np.prod(out[:-1]))
  return Gemm(op.name, op.type, op.outputs[0].dtype.name, m, kernel[3], int(np.prod(kernel[:3])),
              times)
