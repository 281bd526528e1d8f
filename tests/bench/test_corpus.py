"""The benchmark corpus: right ground truth, hard negatives wrong on purpose, reproducible.

Values are checked with the corpus's own checkers and, independently, with python-stdnum
and phonenumbers (neither is `dlp`'s validator code).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from datetime import datetime

import phonenumbers
import pytest
from stdnum import iban as std_iban
from stdnum import luhn as std_luhn
from stdnum.us import ssn as std_ssn

from bench.corpus import (
    CARD_BRANDS,
    DETECTORS,
    NEGATIVE_KINDS,
    Density,
    Doc,
    generate,
    iban_check_digits,
    iban_is_valid,
    luhn_check_digit,
    luhn_is_valid,
    ssn_is_valid,
)

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}")
_CARD_PREFIXES = {
    "visa": ((4, 4, 16), (4, 4, 19)),
    "mastercard": ((51, 55, 16),),
    "mastercard-2": ((2221, 2720, 16),),
    "amex": ((34, 34, 15), (37, 37, 15)),
    "discover": ((6011, 6011, 16), (644, 649, 16), (65, 65, 16)),
    "jcb": ((3528, 3589, 16),),
    "diners": ((36, 36, 14), (300, 305, 14)),
    "unionpay": ((62, 62, 16), (62, 62, 19)),
    "maestro": ((5018, 5018, 16), (5020, 5020, 16), (5038, 5038, 16), (5893, 5893, 16), (6304, 6304, 16),
                (6759, 6759, 16), (6761, 6763, 16), (5018, 5018, 19), (5020, 5020, 19), (5038, 5038, 19),
                (5893, 5893, 19), (6304, 6304, 19), (6759, 6759, 19), (6761, 6763, 19)),
}  # fmt: skip


@pytest.fixture(scope="module")
def corpora() -> dict[str, list[Doc]]:
    densities: tuple[Density, ...] = ("realistic", "dense")
    return {density: generate(11, 300_000, density) for density in densities}


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _values(corpora: dict[str, list[Doc]], detector: str) -> list[str]:
    return [
        doc.text[s:e] for docs in corpora.values() for doc in docs for d, s, e in doc.spans if d == detector
    ]


def _negatives(corpora: dict[str, list[Doc]], kind: str) -> list[str]:
    return [
        doc.text[s:e] for docs in corpora.values() for doc in docs for k, s, e in doc.negatives if k == kind
    ]


def _brand(digits: str) -> str | None:
    for brand, ranges in _CARD_PREFIXES.items():
        for lo, hi, length in ranges:
            width = len(str(lo))
            if len(digits) == length and lo <= int(digits[:width]) <= hi:
                return brand
    return None


@pytest.mark.parametrize(
    ("payload", "digit"), [("7992739871", "3"), ("411111111111111", "1"), ("37828224631000", "5")]
)
def test_luhn_check_digit_matches_published_examples(payload: str, digit: str) -> None:
    assert luhn_check_digit(payload) == digit
    assert luhn_is_valid(payload + digit)
    assert not luhn_is_valid(payload + str((int(digit) + 1) % 10))


@pytest.mark.parametrize(
    "iban",
    [
        "DE89 3704 0044 0532 0130 00",
        "GB29NWBK60161331926819",
        "BE68539007547034",
        "FR1420041010050500013M02606",
    ],
)
def test_iban_checker_on_published_examples(iban: str) -> None:
    compact = iban.replace(" ", "")
    assert iban_is_valid(iban)
    assert iban_check_digits(compact[:2], compact[4:]) == compact[2:4]
    assert not iban_is_valid(compact[:-1] + str((int(compact[-1]) + 1) % 10))


@pytest.mark.parametrize(
    ("ssn", "valid"),
    [("123-45-6780", True), ("000-12-3456", False), ("666-12-3456", False), ("912-34-5678", False),
     ("123-00-4567", False), ("123-45-0000", False), ("899-99-9999", True)],
)  # fmt: skip
def test_ssn_rules(ssn: str, valid: bool) -> None:
    assert ssn_is_valid(ssn) is valid


def test_same_seed_same_corpus_other_seed_other_corpus() -> None:
    first, again, other = (
        generate(5, 40_000, "dense"),
        generate(5, 40_000, "dense"),
        generate(6, 40_000, "dense"),
    )
    assert [(d.text, d.spans, d.negatives) for d in first] == [(d.text, d.spans, d.negatives) for d in again]
    assert [d.text for d in first] != [d.text for d in other]


def test_unknown_density_is_refused() -> None:
    with pytest.raises(ValueError, match="density"):
        generate(1, 1000, "sparse")  # type: ignore[arg-type]


def test_density_and_size(corpora: dict[str, list[Doc]]) -> None:
    for density, (lo, hi) in {"realistic": (0.4, 0.8), "dense": (8.0, 12.0)}.items():
        docs = corpora[density]
        size = sum(len(d.text.encode()) for d in docs)
        assert 300_000 <= size < 330_000
        assert lo <= sum(len(d.spans) for d in docs) / size * 1024 <= hi
    kinds = {d.kind for docs in corpora.values() for d in docs}
    assert kinds == {"prose", "email", "csv", "crm-note"}


def test_spans_are_in_order_in_bounds_and_disjoint(corpora: dict[str, list[Doc]]) -> None:
    for docs in corpora.values():
        for doc in docs:
            marks = sorted([(s, e) for _, s, e in doc.spans] + [(s, e) for _, s, e in doc.negatives])
            for (_, e1), (s2, _) in itertools.pairwise(marks):
                assert e1 <= s2
            assert all(0 <= s < e <= len(doc.text) for s, e in marks)
            assert {d for d, _, _ in doc.spans} <= set(DETECTORS)
            assert (doc.header is not None) == (doc.kind == "csv")


def test_values_are_not_glued_to_neighbouring_digits(corpora: dict[str, list[Doc]]) -> None:
    for docs in corpora.values():
        for doc in docs:
            for _, s, e in doc.spans + doc.negatives:
                assert s == 0 or not doc.text[s - 1].isdigit()
                assert e == len(doc.text) or not doc.text[e].isalnum()


def test_every_card_is_luhn_valid_with_a_known_brand(corpora: dict[str, list[Doc]]) -> None:
    cards = _values(corpora, "credit-card")
    brands: Counter[str | None] = Counter()
    forms: Counter[str] = Counter()
    for card in cards:
        digits = _digits(card)
        assert luhn_is_valid(card) and std_luhn.is_valid(digits), card
        assert re.fullmatch(r"\d+|\d+(?: \d+)+|\d+(?:-\d+)+", card), card
        brands[_brand(digits)] += 1
        forms["plain" if card.isdigit() else "spaced" if " " in card else "dashed"] += 1
    assert set(brands) == set(CARD_BRANDS)
    assert set(forms) == {"plain", "spaced", "dashed"}


def test_every_ssn_follows_the_ssa_rules(corpora: dict[str, list[Doc]]) -> None:
    for docs in corpora.values():
        for doc in docs:
            for detector, s, e in doc.spans:
                if detector != "us-ssn":
                    continue
                ssn = doc.text[s:e]
                assert ssn_is_valid(ssn) and std_ssn.is_valid(_digits(ssn)), ssn
                if "-" not in ssn:
                    window = doc.text[max(0, s - 60) : s].lower()
                    assert doc.kind == "csv" or "ssn" in window or "social security" in window, window


def test_every_iban_is_valid_for_its_country(corpora: dict[str, list[Doc]]) -> None:
    ibans = _values(corpora, "iban")
    for iban in ibans:
        assert iban_is_valid(iban), iban
        assert std_iban.is_valid(iban), iban  # national check digits too (BE, ES, NO)
    assert len({iban[:2] for iban in ibans}) >= 30
    assert any(" " in iban for iban in ibans) and any(" " not in iban for iban in ibans)


def test_every_email_and_phone_is_well_formed(corpora: dict[str, list[Doc]]) -> None:
    for email in _values(corpora, "email-address"):
        assert _EMAIL.fullmatch(email), email
    phones = _values(corpora, "phone-number")
    for phone in phones:
        assert phonenumbers.is_valid_number(phonenumbers.parse(phone, "US")), phone
    assert any(p.startswith("+1") for p in phones) and any(p.startswith("+4") for p in phones)
    assert any(p.startswith("(") for p in phones)


def test_every_negative_kind_is_planted(corpora: dict[str, list[Doc]]) -> None:
    for docs in corpora.values():
        assert {k for doc in docs for k, _, _ in doc.negatives} == set(NEGATIVE_KINDS)


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("luhn-invalid-16", lambda v: len(_digits(v)) == 16 and not luhn_is_valid(v) and _brand(_digits(v))),
        ("timestamp-14", lambda v: luhn_is_valid(v) and datetime.strptime(v, "%Y%m%d%H%M%S").year >= 2015),
        ("unix-epoch", lambda v: v.isdigit() and len(v) in (10, 13)),
        ("invalid-ssn", lambda v: not ssn_is_valid(v) or v in ("078-05-1120", "219-09-9999")),
        ("bad-iban", lambda v: not iban_is_valid(v) and not std_iban.is_valid(v)),
        ("tracking-ups", lambda v: re.fullmatch(r"1Z[0-9A-Z]{16}", v)),
        ("tracking-fedex", lambda v: re.fullmatch(r"\d{12}|\d{15}", v)),
        ("version-string", lambda v: re.fullmatch(r"\d+\.\d+\.\d+\.\d+", v)),
        ("po-number", lambda v: re.fullmatch(r"\d{10}", v)),
        ("outlook-cid", lambda v: re.fullmatch(r"image\d{3}\.png@[0-9A-F]{8}\.[0-9A-F]{8}", v)),
    ],
)
def test_hard_negatives_are_what_they_claim(corpora: dict[str, list[Doc]], kind: str, check: object) -> None:
    values = _negatives(corpora, kind)
    assert values
    for value in values:
        assert callable(check) and check(value), value


def test_sixteen_digit_order_numbers_pass_luhn_without_an_issuer_prefix(
    corpora: dict[str, list[Doc]],
) -> None:
    long_orders = [v for v in _negatives(corpora, "order-number") if v.isdigit() and len(v) == 16]
    assert long_orders
    assert all(luhn_is_valid(v) and _brand(v) is None for v in long_orders)
