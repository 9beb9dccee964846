#!/bin/sh
# System programs graphc's pictures and tests use, installed when missing: Graphviz's `dot`
# (pip's `graphviz` is only the Python half) and pdflatex (the tests compile `equations --latex`).
missing=""
command -v dot >/dev/null 2>&1 || missing="$missing graphviz"
command -v pdflatex >/dev/null 2>&1 || missing="$missing texlive-latex-base"
[ -z "$missing" ] && exit 0
if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    # shellcheck disable=SC2086
    ($SUDO apt-get install -y -q $missing || ($SUDO apt-get update -q && $SUDO apt-get install -y -q $missing)) \
        >/dev/null 2>&1 && exit 0
fi
echo "graphc: missing system programs:$missing" >&2
echo "  Debian/Ubuntu: sudo apt-get install$missing" >&2
echo "  macOS: brew install graphviz; brew install --cask basictex" >&2
echo "  Fedora: sudo dnf install graphviz texlive-latex    Windows: winget install graphviz MiKTeX.MiKTeX" >&2
exit 0
