"""Sphinx configuration for the noticeboard documentation."""

project = "noticeboard"
author = "The noticeboard developers"
copyright = "2026, the noticeboard developers"

extensions: list[str] = []
exclude_patterns = ["_build"]
html_theme = "alabaster"
nitpicky = True
