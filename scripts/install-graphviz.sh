#!/bin/sh
# Install the Graphviz `dot` program when it is missing (pip's `graphviz` is only the Python half).
command -v dot >/dev/null 2>&1 && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get install -y -q graphviz || (apt-get update -q && apt-get install -y -q graphviz)) >/dev/null && exit 0
elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then
    sudo apt-get install -y -q graphviz >/dev/null && exit 0
fi
echo "graphc: the Graphviz program 'dot' is missing; pictures need it." >&2
echo "  Debian/Ubuntu: sudo apt-get install graphviz   macOS: brew install graphviz" >&2
echo "  Fedora: sudo dnf install graphviz   Windows: winget install graphviz   (then re-run)" >&2
exit 0
