"""Rewrites the configuration reference in README.md from the site file's schema (`make docs`)."""

from pathlib import Path

from controller.config.reference import replace_in

readme = Path(__file__).resolve().parent.parent / "README.md"
readme.write_text(replace_in(readme.read_text()))
