"""A description typed by a person (the demo's text box, ``--text`` on the command line).

Two formats are accepted, both read by the same parser as model answers:

JSON::

    {"items": [{"name": "red car", "detail": "parked by the curb"},
               {"name": "old man", "detail": "grey coat, walking a dog"}],
     "overall": "A quiet street in the morning ..."}

Lines: one ``name: detail`` line per item, a blank line, then the paragraph::

    red car: parked by the curb
    old man: grey coat, walking a dog

    A quiet street in the morning ...

Text with no ``name: detail`` lines is all paragraph (no items, so no maps). The same
limits as for a model apply (``DescribeConfig``): a person typing a long paragraph pays
for it in bits just the same, so it is cut the same way.
"""

from __future__ import annotations

from PIL import Image

from codec.describe.config import DescribeConfig
from codec.describe.parse import parse_description
from codec.errors import DescriberError
from codec.records import Description

FORMAT_HELP = (
    'Either JSON {"items": [{"name": "...", "detail": "..."}], "overall": "..."}, or one '
    '"name: detail" line per item, a blank line, then the overall paragraph.'
)


class ManualDescriber:
    """Returns the description the user wrote, whatever the image (it is not looked at)."""

    name = "manual"

    def __init__(self, text: str, config: DescribeConfig | None = None) -> None:
        self.config = config or DescribeConfig()
        if text is None or not str(text).strip():
            raise DescriberError(f"manual describer: no text given. {FORMAT_HELP}")
        self.text = str(text)
        self._description = parse_description(self.text, self.config)
        if self._description.is_empty():
            raise DescriberError(
                f"manual describer: could not read a description from the text. {FORMAT_HELP}"
            )

    def describe(self, image: Image.Image | None = None) -> Description:
        d = self._description
        return Description.from_dict(d.to_dict())  # a copy: callers may edit theirs

    def __repr__(self) -> str:
        return f"ManualDescriber({self.text[:40]!r}...)"
