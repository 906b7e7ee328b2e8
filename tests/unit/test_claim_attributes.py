"""A claim carries its reader's attributes as stored, decoded only when a merge tag asks."""

from __future__ import annotations

from app.sends.store.rows import Claim


def _claim(**fields: object) -> Claim:
    return Claim(1, 1, 1, "r@example.org", 1, "<m@x>", "nonce", **fields)  # type: ignore[arg-type]


def test_stored_json_is_decoded_on_demand() -> None:
    claim = _claim(attributes_json='{"company": "Acme", "seats": 3}')
    assert claim.reader_attributes() == {"company": "Acme", "seats": 3}


def test_no_attributes_and_empty_json_are_none_or_empty() -> None:
    assert _claim().reader_attributes() is None
    assert _claim(attributes_json="").reader_attributes() is None
    assert _claim(attributes_json="{}").reader_attributes() == {}


def test_stored_json_that_is_not_an_object_is_no_attributes() -> None:
    assert _claim(attributes_json="[1, 2]").reader_attributes() is None
    assert _claim(attributes_json='"text"').reader_attributes() is None


def test_attributes_given_directly_win() -> None:
    claim = _claim(attributes={"company": "Given"}, attributes_json='{"company": "Stored"}')
    assert claim.reader_attributes() == {"company": "Given"}
