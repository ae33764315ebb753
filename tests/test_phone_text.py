"""Number normalisation, operators, and how texts are counted."""

from __future__ import annotations

import random

import numpy as np
import phonenumbers
import pytest
from phonenumbers import carrier

from payamak_analytics import phone, text
from payamak_analytics.client import validate
from payamak_analytics.errors import InputError
from payamak_analytics.i18n import persian_digits
from payamak_analytics.simulator import HistoryConfig
from payamak_analytics.simulator.history import IN, OPERATOR_PREFIXES, OUT, History, operator_of


@pytest.mark.parametrize(
    "raw",
    [
        "09121234567",
        "9121234567",
        "+989121234567",
        "00989121234567",
        "989121234567",
        "0912 123 4567",
        "0912-123-4567",
        "۰۹۱۲۱۲۳۴۵۶۷",
        "٠٩١٢١٢٣٤٥٦٧",
        "+۹۸ ۹۱۲ ۱۲۳ ۴۵۶۷",
        9121234567,
        "(0912) 123-4567",
    ],
)
def test_every_common_form_becomes_one_number(raw):
    assert phone.normalize(raw) == "09121234567"


@pytest.mark.parametrize(
    "raw",
    ["", "123", "0912123456", "091212345678", "02188888888", "+1 415 555 0100", "09121234567a", "abc", "98912123456"],
)
def test_bad_numbers_are_named_in_the_error(raw):
    with pytest.raises(InputError) as caught:
        phone.normalize(raw)
    assert repr(raw) in str(caught.value) and caught.value.message_fa


@pytest.mark.parametrize(
    "number, operator",
    [
        ("09121234567", "MCI"),
        ("۰۹۹۰ ۱۲۳ ۴۵۶۷", "MCI"),
        ("+98 935 123 4567", "Irancell"),
        ("09011234567", "Irancell"),
        ("09201234567", "Rightel"),
        ("09311234567", "MTCE"),
        ("09341234567", "TeleKish"),
        ("09991234567", "Irancell"),
        ("09981234567", "Rightel"),
        ("09601234567", "Unknown"),
    ],
)
def test_operator_as_libphonenumber_knows_it(number, operator):
    assert phone.operator(number) == operator


def test_operator_agrees_with_libphonenumber_on_every_prefix():
    """Every 09xxx prefix: the operator is libphonenumber's carrier, after the toolkit's normalisation."""
    for prefix in range(9000, 10000):
        number = f"0{prefix}123456"
        parsed = phonenumbers.parse(number, "IR")
        name = carrier.name_for_number(parsed, "en")
        assert phone.operator(persian_digits(number)) == phone.CARRIERS.get(name, name or "Unknown")
        assert phone.is_allocated(number) == phonenumbers.is_valid_number(parsed)


def test_the_first_six_characters_decide_the_operator():
    """The operator is looked up once per prefix of phone.DECIDING_PREFIX characters: every number
    under a prefix must get libphonenumber's answer for that number itself."""
    draw = random.Random(7)
    for prefix in range(9000, 10000):
        for last in range(10):
            stem = f"0{prefix}{last}"
            assert len(stem) == phone.DECIDING_PREFIX
            for number in (stem + "00000", stem + "99999", stem + f"{draw.randrange(100_000):05d}"):
                name = carrier.name_for_number(phonenumbers.parse(number, "IR"), "en")
                assert phone.operator(number) == phone.CARRIERS.get(name, name or "Unknown"), number


def test_operators_reads_a_malformed_number_as_unknown():
    assert phone.operators(["09121234567", "12345", "+989351234567"]) == ["MCI", "Unknown", "Irancell"]


def test_unallocated_numbers_are_flagged_not_refused():
    assert phone.unallocated(["09121234567", "09061234567", "09411234567"]) == ["09061234567", "09411234567"]
    assert phone.normalize("09061234567") == "09061234567"  # still a well-formed mobile number


def test_normalize_many_dedupes_and_reports():
    valid, invalid = phone.normalize_many(["09121234567", "+989121234567", "x", "09351234567"])
    assert valid == ["09121234567", "09351234567"] and invalid == ["x"]


@pytest.mark.parametrize(
    "message, encoding, parts",
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("س" * 70, "UCS-2", 1),
        ("س" * 71, "UCS-2", 2),
        ("س" * 134, "UCS-2", 2),
        ("س" * 135, "UCS-2", 3),
        ("{}" * 80, "GSM-7", 3),  # extension characters take two septets each
        ("a" * 69 + "ب", "UCS-2", 1),
        ("a" * 70 + "ب", "UCS-2", 2),  # one Persian letter turns it all into UCS-2
        ("می\u200cخواهم" * 10, "UCS-2", 2),  # 70 letters + 10 ZWNJ = 80 units
        # a character is never split between two parts: an escape stays with its letter, a surrogate
        # pair (an emoji) with its other half, so a part may hold one unit less
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 3),
        ("a" * 151 + "€" + "a" * 153, "GSM-7", 2),
        ("س" * 66 + "😀" + "س" * 66, "UCS-2", 3),
        ("س" * 65 + "😀" + "س" * 67, "UCS-2", 2),
    ],
)
def test_encoding_and_parts(message, encoding, parts):
    info = text.analyze(message)
    assert (info.encoding, info.parts) == (encoding, parts)


def test_cost_estimate():
    assert text.estimate_cost("س" * 71, 10, tariff=1.5) == 30


def _simulated_numbers() -> np.ndarray:
    """Every recipient and every sender of a 90-day simulated history (as int 9xxxxxxxxx)."""
    history = History(HistoryConfig(messages=20_000, days=90), end=1_760_000_000.0)
    sent = np.flatnonzero(history.direction == OUT)
    received = np.flatnonzero(history.direction == IN)
    return np.concatenate([history.numbers(*history.expand(sent)), history.peer[received]])


def test_the_simulator_draws_only_numbers_libphonenumber_gives_the_same_operator():
    """The simulator keeps its own table, but every number it can produce is valid for libphonenumber
    and issued by the operator the simulator says: each drawn three-digit range is checked in full
    down to the digits libphonenumber's data distinguishes, and a sample of real draws one by one."""
    numbers = _simulated_numbers()
    assert len(numbers) > 100_000
    drawn = set((numbers // 10_000_000).tolist())
    table = {prefix: name for name, prefixes in OPERATOR_PREFIXES.items() for prefix in prefixes}
    assert drawn == set(table)  # every range of the table is drawn, and nothing outside it
    for prefix in sorted(drawn):
        for head in range(100):  # libphonenumber's patterns and carrier keys read at most five digits
            for tail in (0, 99999):
                number = f"0{prefix}{head:02d}{tail:05d}"
                assert phone.is_allocated(number), number
                assert phone.operator(number) == table[prefix], number
    names = list(OPERATOR_PREFIXES)
    sample = np.random.default_rng(1).choice(numbers, 3000, replace=False)
    for number, index in zip(sample, operator_of(sample), strict=True):
        assert phone.is_allocated(f"0{number}") and phone.operator(f"0{number}") == names[index]


@pytest.mark.parametrize("raw", ["0912１２３４５６７", "0912१२३४५६७", "09121234５67"])
def test_digits_of_other_scripts_are_refused_not_sent_as_they_are(raw):
    """Only Latin, Persian and Arabic-Indic digits are read: any other script's digits would reach
    the service as they were written, and be a second number beside the Latin one."""
    with pytest.raises(InputError):
        phone.normalize(raw)
    with pytest.raises(InputError):
        validate.recipients([raw, "09121234567"])


@pytest.mark.parametrize("raw", ["１０００２１８８", "1000२188"])
def test_a_sender_line_in_other_scripts_digits_is_refused(raw):
    with pytest.raises(InputError):
        validate.line(raw)


@pytest.mark.parametrize("huge", [10**5000, -(10**30)], ids=["5001 digits", "negative"])
def test_a_huge_whole_number_is_an_input_error_not_a_crash(huge):
    with pytest.raises(InputError, match="Iranian mobile"):
        phone.normalize(huge)
    for given in (huge, [huge], [huge, "09121234567"]):
        with pytest.raises(InputError, match="Not Iranian mobile numbers"):
            validate.recipients(given)
    assert phone.normalize_many([huge, "09121234567"])[0] == ["09121234567"]
