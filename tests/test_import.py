"""``import skimportance`` stays fast: no TensorFlow, Keras, matplotlib or dask."""

import subprocess
import sys

import pytest

import skimportance

HEAVY = ("tensorflow", "keras", "matplotlib", "dask", "scikeras")


@pytest.mark.slow  # a subprocess
def test_import_does_not_load_heavy_libraries():
    code = (
        f"import sys, skimportance; print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_every_public_name_resolves():
    for name in skimportance.__all__:
        assert getattr(skimportance, name) is not None, name
    assert set(skimportance.__all__) <= set(dir(skimportance))


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = skimportance.nope
