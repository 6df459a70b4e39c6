"""JSON-patch builders: every patch applies to the object as it is, and its
inverse gives back exactly the original (absent, null and present fields)."""

from __future__ import annotations

import jsonpatch
import pytest

from aiops.patches import append_ops, pointer, remove_ops, set_ops

BASE = {"spec": {"a": 1, "nul": None, "list": [{"x": 1}], "sc": None, "slash/key": 2}}


@pytest.mark.parametrize(("path", "value"), [
    (("spec", "a"), 5),  # replace
    (("spec", "new"), {"k": 1}),  # add a member
    (("spec", "deep", "er", "est"), True),  # add the first missing parent whole
    (("spec", "nul"), 3),  # a field holding null is replaced, not added
    (("spec", "sc", "runAsNonRoot"), True),  # a null parent becomes an object
    (("spec", "list", 0, "y"), 2),  # through a list index
    (("spec", "slash/key"), 3),  # escaped pointer
])
def test_set_round_trip(path, value):
    ops, inverse = set_ops(BASE, path, value)
    done = jsonpatch.apply_patch(BASE, ops)
    cur = done
    for p in path:
        cur = cur[p]
    assert cur == value
    assert jsonpatch.apply_patch(done, inverse) == BASE


@pytest.mark.parametrize("path", [("spec", "a"), ("spec", "nul"), ("spec", "list", 0)])
def test_remove_round_trip(path):
    ops, inverse = remove_ops(BASE, path)
    assert ops, "present (even null) fields are removed"
    done = jsonpatch.apply_patch(BASE, ops)
    assert jsonpatch.apply_patch(done, inverse) == BASE


def test_remove_absent_is_nothing():
    assert remove_ops(BASE, ("spec", "nope")) == ([], [])


@pytest.mark.parametrize("path", [("spec", "list"), ("spec", "fresh")])
def test_append_round_trip(path):
    ops, inverse = append_ops(BASE, path, {"x": 9})
    done = jsonpatch.apply_patch(BASE, ops)
    assert done["spec"][path[1]][-1] == {"x": 9}
    assert jsonpatch.apply_patch(done, inverse) == BASE


def test_pointer_escapes():
    assert pointer("a/b", "c~d", 0) == "/a~1b/c~0d/0"
