"""Fill the lab's config and scenario templates: {{name}} placeholders, since Asterisk and SIPp
files use ${...} and [...] themselves. A placeholder without a value is a bug and raises KeyError."""

from __future__ import annotations

import re
from pathlib import Path


def render(template: Path, values: dict[str, str]) -> str:
    return re.sub(r"\{\{(\w+)\}\}", lambda match: values[match.group(1)], template.read_text())
