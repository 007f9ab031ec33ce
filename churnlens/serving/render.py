"""The Jinja2 environment of the card and the web app: one template set, autoescape on.

Templates live in ``churnlens/serving/templates`` (package data). Every value a template
prints is HTML-escaped unless it is marked safe; nothing from a request or a data file is.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The shared environment (autoescape everywhere, undefined names are errors)."""
    return Environment(
        loader=PackageLoader("churnlens.serving", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(template: str, **context: Any) -> str:
    """Render one template of the set with ``context``."""
    return environment().get_template(template).render(**context)


def template_source(name: str) -> str:
    """The raw text of a template file (the style sheets, served as they are)."""
    env = environment()
    assert env.loader is not None
    source, _, _ = env.loader.get_source(env, name)
    return source


__all__ = ["environment", "render", "template_source"]
