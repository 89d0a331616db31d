"""new_id: random version-4 UUID text, as str(uuid.uuid4()) gives."""
from __future__ import annotations

import uuid

from services.common.db.engine import new_id, new_ids


def test_ids_are_canonical_random_version_4_uuids() -> None:
    for ids in ([new_id() for _ in range(5000)], new_ids(5000)):
        assert len(set(ids)) == len(ids)
        for text in ids:
            u = uuid.UUID(text)
            assert (u.version, u.variant, str(u)) == (4, uuid.RFC_4122, text)
        # every free bit varies (a stuck nibble would show up as a constant position)
        for pos in range(36):
            if pos not in (8, 13, 14, 18, 19, 23):
                assert len({t[pos] for t in ids}) > 8, pos
