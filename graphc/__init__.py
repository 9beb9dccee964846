"""graphc: a computation-graph compiler and interpreter for the maths of neural networks.

>>> import graphc
>>> m = graphc.compile("z = w*x + b; y = sigmoid(z); L = 0.5*(y - t)^2")
>>> loss, grads = m.loss_and_grad({"w": 1.0, "x": 2.0, "b": 0.5, "t": 1.0})
"""

from .api import Model, compile, load
from .errors import GraphcError, Span
from .ir.graph import Graph


def _graph_mimebundle(self, include=None, exclude=None) -> dict:
    """Jupyter shows a graph as its picture (with its backward part, if it has one)."""
    from .views.render import mimebundle, to_digraph  # (graphviz only when a notebook shows a graph)

    return mimebundle(lambda: to_digraph(self), repr(self), include, exclude)


def playground(model=None):
    """The playground in a notebook: edit a model and watch its pictures, equations, cost and code."""
    from .app.widget import playground  # (anywidget only when a notebook asks for it)

    return playground(model)


# The IR knows nothing of pictures: the package's face registers how Jupyter displays a Graph.
Graph._repr_mimebundle_ = _graph_mimebundle

__all__ = ["Graph", "GraphcError", "Model", "Span", "compile", "load", "playground"]
__version__ = "0.1.0"
