"""Model text -> forward graph: the grammar, its LALR driver, the graph builder."""

from .source import check_loss_shape, parse, read_source

__all__ = ["check_loss_shape", "parse", "read_source"]
