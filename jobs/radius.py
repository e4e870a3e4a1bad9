"""The one text of a radius: in trial keys and folder names, labels, and to find a radius listed
twice in a study file.

The shortest decimal that reads back to the same float, with a trailing `.0` dropped (`0.01`,
`0.1`, `1`, `1e-05`): two radii with one text are one radius.
"""

from __future__ import annotations


def radius_tag(radius: float) -> str:
    text = repr(float(radius))
    return text[:-2] if text.endswith(".0") else text
