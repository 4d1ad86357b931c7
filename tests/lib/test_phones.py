"""Phone numbers are read with the user's default SMS country and stored as E.164."""

import pytest
from django.core.exceptions import ValidationError

from sealbox.lib import phones


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("514 555 0100", "CA", "+15145550100"),
        ("(514) 555-0100", "CA", "+15145550100"),
        ("+33 6 12 34 56 78", "CA", "+33612345678"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("+1 514 555 0100", "FR", "+15145550100"),
    ],
)
def test_numbers_are_read_with_the_default_sms_country(raw, country, expected):
    assert phones.parse_phone(raw, country) == expected


def test_a_local_number_without_area_code_is_refused_asking_for_it():
    with pytest.raises(ValidationError) as error:
        phones.parse_phone("555 0100", "CA")
    assert error.value.code == "area_code"
    assert "area code" in error.value.messages[0]


@pytest.mark.parametrize("raw", ["514 555 CODE", "1-800-FLOWERS", "five one four", "514555010O"])
def test_letters_are_refused(raw):
    with pytest.raises(ValidationError) as error:
        phones.parse_phone(raw, "CA")
    assert error.value.code == "characters"


@pytest.mark.parametrize("raw", ["", "   "])
def test_an_empty_number_is_refused(raw):
    with pytest.raises(ValidationError) as error:
        phones.parse_phone(raw, "CA")
    assert error.value.code == "required"


@pytest.mark.parametrize("raw", ["+1 000 555 0100", "514 555 01000", "+++"])
def test_impossible_numbers_are_refused(raw):
    with pytest.raises(ValidationError):
        phones.parse_phone(raw, "CA")


def test_numbers_are_shown_masked():
    assert phones.mask_phone("+15145550100") == "•••• 0100"
    assert phones.mask_phone("") == ""


def test_stored_numbers_are_shown_in_international_format():
    assert phones.display_phone("+15145550100") == "+1 514-555-0100"
    assert phones.display_phone("") == ""


@pytest.mark.parametrize("raw", ["", "   ", None])
def test_an_optional_number_left_empty_is_no_number(raw):
    assert phones.parse_optional_phone(raw, "CA") == ""


def test_an_optional_number_given_is_read_as_a_required_one():
    assert phones.parse_optional_phone(" 514 555 0100 ", "CA") == "+15145550100"
    with pytest.raises(ValidationError) as error:
        phones.parse_optional_phone("555 0100", "CA")
    assert error.value.code == "area_code"
