"""The shared validation rules of sepconv's file formats (sepconv.formats.rules)."""

import doctest

import pytest

from sepconv.formats import rules
from sepconv.formats.rules import Invalid, check_document, is_int, is_number, need, short


def test_doctests():
    result = doctest.testmod(rules)
    assert result.attempted > 0 and result.failed == 0


def _positive(key, value, doc):
    need(is_int(value, 1), key, value, "must be a positive integer")


SCHEMA = {"format": (lambda key, value, doc: need(value == "x", key, value, "must be 'x'"), True),
          "size": (_positive, False)}


@pytest.mark.parametrize("doc, message", [
    ([1], "f.json: top level=[1] must be a JSON object with the keys format (and optionally size)"),
    ({"format": "x", "evil": 1}, "f.json: key 'evil'=1 is not part of an x file (format, size)"),
    ({"size": 2}, "f.json: top level={'size': 2} lacks the key 'format': not an x document"),
    ({"format": "x", "size": 0}, "f.json: size=0 must be a positive integer"),
    ({"format": "x", "size": float("nan")}, "f.json: "),  # not plain JSON: json_typed's own rule
])
def test_check_document_names_the_file_key_value_and_rule(doc, message):
    with pytest.raises(ValueError) as caught:
        check_document(doc, "f.json", SCHEMA, "an x file", lacking="an x document")
    assert str(caught.value).startswith(message)
    assert not isinstance(caught.value, Invalid)


def test_check_document_returns_a_valid_document():
    assert check_document({"format": "x", "size": 3}, "f.json", SCHEMA, "an x file") == {"format": "x", "size": 3}


def test_numbers_and_short():
    assert is_int(3, 1) and not is_int(True, 0) and not is_int(0, 1) and not is_int(1.0, 1)
    assert is_number(1.5) and not is_number(float("inf")) and not is_number(False)
    assert short("a" * 200).endswith("...'") and len(short("a" * 200)) <= 80
    nested: list = []
    for _ in range(100_000):
        nested = [nested]
    assert short(nested) == "[[[..."
