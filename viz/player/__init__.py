"""The backward pass, played step by step: one self-contained HTML page built from a graph.

``play(root)`` walks everything that produced ``root``, replays the backward pass one rule at a
time through the ops' own rules, and returns a ``Page``: Jupyter shows it inline, as wide as the
cell, and ``page.save("backward.html")`` writes one file that opens from disk in any browser.
The page needs no network, no CDN, no server and no Graphviz: it lays itself out with dagre,
inlined in it (``layout`` says when it does not).

The package, one stage a file: ``trace`` (the pass replayed, rule by rule), ``manual`` (the
learner's gradients judged, in ``autograd.diagnose``'s words), ``layout`` (plain columns for the
pages too big for dagre), ``drawing`` (the SVG), ``page`` (``play`` and ``Page``); beside them
the page's own files: player.html, player.css, player.js and dagre.min.js.

What the page carries, for other tools as much as for the eye: one
``<script type="application/json" id="backprop-trace">`` holding the trace (``Page.trace``):

- ``nodes``: ``id``, ``label`` (the user's label, or a parameter's dotted name), ``name`` (what
  ``autograd.naming`` calls the node, as every picture does), ``op``, ``kind`` (root, computed,
  parameter, input), ``value``, ``grad`` (d root / d node, from one pass seeded with 1; None for
  a node that needs no gradient), ``formula`` (the op's docstring:
  ``out = tanh(x);  dx = g * (1 - out ** 2)``) and ``complete_at`` (the step after which its
  gradient is whole). A Tensor's node adds ``shape``, ``dtype`` and ``summary`` (min, max, mean,
  largest magnitude and norm of its value and gradient); its ``value`` and ``grad`` are the full
  arrays (nested lists) when they have at most ``FULL_ARRAY`` elements, else None. With
  ``manual=`` a node the learner gave a gradient for has ``manual`` and ``verdict``.
- ``edges``: ``source`` (an input), ``target`` (the node computed from it), ``input`` (its
  position among the target's inputs; ``a * a`` has two edges), ``local`` (d target / d source,
  for scalars; None for arrays, whose local derivative is a Jacobian), ``contribution`` (what
  the target's rule sends back along the edge), ``filled`` (the rule's clause in the nodes' own
  names, then with the numbers: ``d(w1) = g · x1 = 0.5 · 2 = 1``); an array's edge adds
  ``shape`` and ``summary``.
- ``steps``: the computed nodes, in the order the pass runs their rules, root first. A leaf
  takes no step: its gradient arrives with the rules that feed it.
- ``order``: every node that needs a gradient, in the pass's order.
- ``first_wrong``: the first node whose manual gradient is wrong, by when its gradient is whole
  (or None), and ``diagnosis``: what is wrong with it (``kind`` and ``factor`` from
  ``autograd.diagnose``), and whether the gradient arriving from upstream was right (``cause``).

Numbers that are not finite are written as the strings "NaN", "Infinity" and "-Infinity", which
JSON cannot hold as numbers.
"""

from .layout import LAYERED_NODES
from .page import MANUAL_ATOL, MANUAL_RTOL, MAX_NODES, Page, play
from .trace import FULL_ARRAY

__all__ = [
    "FULL_ARRAY",
    "LAYERED_NODES",
    "MANUAL_ATOL",
    "MANUAL_RTOL",
    "MAX_NODES",
    "Page",
    "play",
]
