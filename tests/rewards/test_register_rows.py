"""Backer ids in register rows, from a CSV file or the platform's register: the whole id
must match the documented pattern (docs/platform.md, "Share register")."""

from __future__ import annotations

from datetime import UTC

import pytest

from heliod.rewards.register_rows import InputError, RowText, register_rows


def _row(backer: str) -> RowText:
    return RowText("alpha: backers[0]", "row [0]", {"backer": backer, "amount": "100"})


@pytest.mark.parametrize("backer", ["b1\n", "b1\r\n", "\nb1", "b 1", "-b1", "b" * 129])
def test_an_id_with_anything_around_it_is_refused(backer: str) -> None:
    with pytest.raises(InputError, match="not a valid backer id"):
        register_rows([_row(backer)], UTC)


@pytest.mark.parametrize("backer", ["b1", "anne.dupont@example.org", "x:1+2_3-4", "b" * 128])
def test_a_valid_id_is_taken_as_it_is(backer: str) -> None:
    (row,) = register_rows([_row(backer)], UTC)
    assert row.backer == backer
