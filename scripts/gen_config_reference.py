"""Rewrites the configuration reference, docs/configuration.md, from the site file's schema (`make docs`)."""

from pathlib import Path

from controller.config.reference import replace_in

page = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
page.write_text(replace_in(page.read_text()))
