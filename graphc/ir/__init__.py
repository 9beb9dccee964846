"""The intermediate representation: shapes, the op table, the graph."""
