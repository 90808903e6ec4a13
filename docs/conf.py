"""Sphinx configuration for the noticeboard documentation."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "noticeboard"
author = "The noticeboard developers"
copyright = "2026, the noticeboard developers"

extensions = ["myst_parser", "sphinx.ext.graphviz", "generated"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
# The collection's README and changelog are written for Galaxy and ship in its artifact.
exclude_patterns = ["_build", "collection"]
html_theme = "alabaster"
graphviz_output_format = "svg"
myst_heading_anchors = 3
nitpicky = True
