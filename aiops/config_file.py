"""Settings files: YAML read and validated by a pydantic model, one way for all.

A file the user wrote is judged strictly (unknown keys are errors) and a problem
is one line naming the file, the field and what to do: a typo must fail loudly,
never loosen a gate or an exemption silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from aiops.errors import ParameterError

M = TypeVar("M", bound=BaseModel)


def load_model(path: str | Path, model: type[M], *, what: str, unreadable_hint: str,
               invalid_hint: str) -> M:
    """`model` validated from the YAML file at `path` (an empty file: the defaults)."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ParameterError(f"{what} {p}: cannot read it ({exc.strerror})",
                             unreadable_hint) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ParameterError(f"{what} {p}: invalid YAML{at}", invalid_hint) from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "(top level)"
        raise ParameterError(f"{what} {p}: {where}: {first['msg']}", invalid_hint) from None
