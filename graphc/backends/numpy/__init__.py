"""The NumPy target: the emitted module, and the interpreter that runs the same expressions in memory."""
