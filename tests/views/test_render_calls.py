"""`render --group-by-call`: each call of the model's own functions is a box, calls in its body inside it."""

import re

from clitools import run_cleanly

import graphc

MODEL = """\
def dense(x, W, b) = x @ W + b
def layer(x, W, b):
    z = dense(x, W, b)
    return sigmoid(z)
input X: [N, 3]
param W1: [3, 4]
param b1: [4] = 0
H1 = layer(X, W1, b1)
L = sum(H1)
"""


def clusters(dot: str) -> list[tuple[int, str]]:
    """(depth, title) of each call box, in the order drawn."""
    out, depth = [], 0
    for line in dot.splitlines():
        if re.search(r"subgraph cluster_call\d+ \{", line):
            depth += 1
        elif line.strip() == "}" and depth:
            depth -= 1
        m = re.search(r"label=<<FONT[^>]*>(.*?) \(line \d+\)</FONT>>", line)
        if m and depth:
            out.append((depth, m.group(1)))
    return out


def test_each_call_is_a_box_and_a_call_in_a_body_is_inside_it():
    dot = graphc.compile(MODEL).to_digraph(group_by_call=True, legend=False).source
    assert [t for _, t in clusters(dot)] == ["layer(X, W1, b1)", "dense(x, W, b)"]
    assert [d for d, _ in clusters(dot)] == [1, 2]
    assert "cluster_call" not in graphc.compile(MODEL).to_digraph(legend=False).source  # only when asked


def test_the_backward_pass_of_a_call_is_boxed_too(tmp_path):
    path = tmp_path / "m.gc"
    path.write_text(MODEL)
    r = run_cleanly("render", path, "--backward", "--group-by-call")
    assert r.returncode == 0, r.stderr
    parts = r.stdout.split("subgraph cluster_backward")
    assert len(parts) == 2 and "cluster_call" in parts[1]  # boxes inside the backward pass too
