"""Every deliberate poison shape is refused by the services' decoder and carries its marker."""

from __future__ import annotations

import pytest

from ops.faults.collect import MARKER
from ops.faults.driver import poison_bytes
from ops.faults.schedule import POISON_SHAPES
from shared.events import PoisonMessage, decode


@pytest.mark.parametrize("shape", POISON_SHAPES)
def test_each_poison_shape_is_poison_and_recognisable(shape):
    raw = poison_bytes(shape, "faults-poison-abc123-7")
    with pytest.raises(PoisonMessage):
        decode(raw)
    found = MARKER.search(raw)
    assert found is not None and found.group() == b"faults-poison-abc123-7"


def test_an_unknown_shape_is_refused():
    with pytest.raises(ValueError, match="shape"):
        poison_bytes("sweet", "m")
