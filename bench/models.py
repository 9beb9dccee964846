"""Generated models for benchmarks and scale tests."""


def chain_model(n: int) -> str:
    """n statements: a chain of elementwise ops over a vector param, ending in a scalar loss."""
    ops = ["sigmoid({})", "tanh({})", "{} * 0.5 + b", "softplus({}) - 1", "{} * w"]
    lines = ["input x: [N, 16]", "param w: [16] = normal(0, 0.1)", "param b: [16] = 0", "v0 = x * w + b"]
    for i in range(1, n - 1):
        lines.append(f"v{i} = " + ops[i % len(ops)].format(f"v{i - 1}"))
    lines.append(f"L = mean(v{n - 2}^2)")
    return "\n".join(lines) + "\n"


def nested_model(depth: int) -> str:
    """One expression nested `depth` parentheses deep."""
    return "y = " + "(" * depth + "x" + " + 1)" * depth + "\nL = sum(y)\n"
