"""Values tied to the Blocks being built, found again from a request its server answers.

The study's own routes (admin login, stimuli) are plain Starlette routes given to
``launch``; each request finds the object of the app that serves it through
``request.app.get_blocks()``, so several apps in one process never mix.
"""

from __future__ import annotations

import weakref
from typing import Generic, TypeVar

T = TypeVar("T")


class PerApp(Generic[T]):
    """One value per Blocks (held weakly: a closed app's value goes with it)."""

    def __init__(self) -> None:
        self._by_app: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def attach(self, blocks: object, value: T) -> None:
        self._by_app[blocks] = value

    def of(self, request: object) -> T | None:
        """The value of the app whose server answers ``request``, or None."""
        app = getattr(request, "app", None)
        try:
            blocks = app.get_blocks()  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            return None
        return self._by_app.get(blocks)
