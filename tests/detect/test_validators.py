"""Validators: known valid/invalid tables per validator and hypothesis properties.

Properties build valid values by computing their check digits, then require that one changed
character turns a checksummed value invalid; python-stdnum serves as the reference where it
implements the same check.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import string
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from stdnum import iban as stdnum_iban
from stdnum import luhn as stdnum_luhn
from stdnum.gb import nhs as stdnum_nhs
from stdnum.iso7064 import mod_97_10
from stdnum.us import itin as stdnum_itin
from stdnum.us import rtn as stdnum_rtn

from dlp.detect.validators import (
    VALIDATORS,
    card_brand,
    github_checksum,
    salesforce_suffix,
)

FEW = settings(max_examples=60, deadline=None)
THIS_YEAR = datetime.date.today().year
BASE62 = string.digits + string.ascii_letters
BASE32 = string.ascii_uppercase + "234567"

REQUIRED = {
    "luhn", "credit-card", "us-ssn", "us-itin", "uk-nino", "uk-nhs-number", "ca-sin", "iban",
    "us-aba-routing", "swift-bic", "phone-number", "email-address", "ip-address", "icd10-code", "date",
    "not-timestamp", "salesforce-id", "aws-access-key", "github-token", "slack-token", "stripe-key",
}  # fmt: skip


def test_registry_names_every_required_validator() -> None:
    assert set(VALIDATORS) == REQUIRED


GITHUB_ENTROPY = "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123"
GITHUB_TOKEN = "ghp_" + GITHUB_ENTROPY + github_checksum(GITHUB_ENTROPY)
SLACK_APP = "xapp-1-A0123ABCDEF-1234567890123-" + "0f1e2d3c4b5a69788796a5b4c3d2e1f0" * 2
SLACK_HOOK = "https://hooks.slack.com/services/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"

CASES: list[tuple[str, str, bool | None]] = [
    # luhn
    ("luhn", "79927398713", True),
    ("luhn", "7992 7398 713", True),
    ("luhn", "79927398710", False),
    ("luhn", "7992739871x", False),
    ("luhn", "7", False),
    # credit-card: published test numbers of every scheme, each form
    ("credit-card", "4111111111111111", True),
    ("credit-card", "4111 1111 1111 1111", True),
    ("credit-card", "4111-1111-1111-1111", True),
    ("credit-card", "4222222222222", True),
    ("credit-card", "5555555555554444", True),
    ("credit-card", "2223003122003222", True),
    ("credit-card", "378282246310005", True),
    ("credit-card", "3782 822463 10005", True),
    ("credit-card", "6011111111111117", True),
    ("credit-card", "6011000990139424", True),
    ("credit-card", "3530111333300000", True),
    ("credit-card", "3566002020360505", True),
    ("credit-card", "30569309025904", True),
    ("credit-card", "38520000023237", True),
    ("credit-card", "6200000000000005", True),
    ("credit-card", "6205500000000000004", True),
    ("credit-card", "501800000009", True),
    ("credit-card", "6759649826438453", True),
    ("credit-card", "6759649826438454", False),
    ("credit-card", "4929.1804.3277.1533", True),
    ("credit-card", "4929.1804.3277.1534", False),
    ("credit-card", "2200 5260 1815 9085", True),
    ("credit-card", "2200 5260 1815 9086", False),
    ("credit-card", "2205465075291702", False),
    ("credit-card", "3095 351819 0933", True),
    ("credit-card", "30963423667123", False),
    ("credit-card", "4111111111111112", False),
    ("credit-card", "411111111111", False),
    ("credit-card", "3782822463100050", False),
    ("credit-card", "5555555555554445", False),
    ("credit-card", "1234567812345670", False),
    ("credit-card", "7011111111111117", False),
    ("credit-card", "0000000000000000", False),
    ("credit-card", "4444444444444444", False),
    ("credit-card", "5678901234567890", False),
    ("credit-card", "6543210987654321", False),
    ("credit-card", "4111 1111 1111 111a", False),
    ("credit-card", "", False),
    # us-ssn
    ("us-ssn", "536-90-4399", True),
    ("us-ssn", "536 90 4399", True),
    ("us-ssn", "536904399", True),
    ("us-ssn", "772-12-3456", True),
    ("us-ssn", "000-12-3456", False),
    ("us-ssn", "666-12-3456", False),
    ("us-ssn", "900-12-3456", False),
    ("us-ssn", "999-12-3456", False),
    ("us-ssn", "123-00-4567", False),
    ("us-ssn", "123-45-0000", False),
    ("us-ssn", "078-05-1120", False),
    ("us-ssn", "219-09-9999", False),
    ("us-ssn", "457-55-5462", False),
    ("us-ssn", "123-45-6789", False),
    ("us-ssn", "111-11-1111", False),
    ("us-ssn", "53690439", False),
    ("us-ssn", "53a-90-4399", False),
    # us-itin
    ("us-itin", "912-70-1234", True),
    ("us-itin", "900-50-0001", True),
    ("us-itin", "999 94 1234", True),
    ("us-itin", "912-65-1234", True),
    ("us-itin", "912-88-1234", True),
    ("us-itin", "912-92-1234", True),
    ("us-itin", "912-93-1234", False),
    ("us-itin", "912-66-1234", False),
    ("us-itin", "912-89-1234", False),
    ("us-itin", "912-49-1234", False),
    ("us-itin", "812-70-1234", False),
    ("us-itin", "912-70-0000", False),
    ("us-itin", "999-99-9999", False),
    # uk-nino
    ("uk-nino", "AB123456C", True),
    ("uk-nino", "AB 12 34 56 C", True),
    ("uk-nino", "ce123456d", True),
    ("uk-nino", "AB123456", None),
    ("uk-nino", "DA123456A", False),
    ("uk-nino", "VA123456A", False),
    ("uk-nino", "AO123456A", False),
    ("uk-nino", "AV123456A", False),
    ("uk-nino", "GB123456A", False),
    ("uk-nino", "TN123456A", False),
    ("uk-nino", "ZZ123456A", False),
    ("uk-nino", "AB123456E", False),
    ("uk-nino", "AB12345C", False),
    ("uk-nino", "A1123456C", False),
    # uk-nhs-number
    ("uk-nhs-number", "9434765919", True),
    ("uk-nhs-number", "943 476 5919", True),
    ("uk-nhs-number", "943-476-5870", True),
    ("uk-nhs-number", "4010232137", True),
    ("uk-nhs-number", "9434765918", False),
    ("uk-nhs-number", "4010232138", False),
    ("uk-nhs-number", "0000000000", False),
    ("uk-nhs-number", "1111111111", False),
    ("uk-nhs-number", "943476591", False),
    # ca-sin
    ("ca-sin", "130 692 544", True),
    ("ca-sin", "193-456-787", True),
    ("ca-sin", "123456782", True),
    ("ca-sin", "046 454 286", False),
    ("ca-sin", "830692544", False),
    ("ca-sin", "130692545", False),
    ("ca-sin", "13069254", False),
    # iban
    ("iban", "GB82 WEST 1234 5698 7654 32", True),
    ("iban", "GB82WEST12345698765432", True),
    ("iban", "DE89 3704 0044 0532 0130 00", True),
    ("iban", "FR14 2004 1010 0505 0001 3M02 606", True),
    ("iban", "NL91ABNA0417164300", True),
    ("iban", "NO9386011117947", True),
    ("iban", "LC55HEMM000100010012001200023015", True),
    ("iban", "ch9300762011623852957", True),
    ("iban", "GB82WEST12345698765433", False),
    ("iban", "GB82WEST123456987654", False),
    ("iban", "DE89 3704 0044 0532 0130 0", False),
    ("iban", "XX82WEST12345698765432", False),
    ("iban", "US64SVBKUS6S3300958879", False),
    ("iban", "GB00WEST12345698765432", False),
    ("iban", "GB8AWEST12345698765432", False),
    ("iban", "GB82WEST1234569876543!", False),
    # us-aba-routing
    ("us-aba-routing", "011000015", True),
    ("us-aba-routing", "021000021", True),
    ("us-aba-routing", "121000358", True),
    ("us-aba-routing", "0110-0001-5", True),
    ("us-aba-routing", "011000016", False),
    ("us-aba-routing", "131000018", False),
    ("us-aba-routing", "000000000", False),
    ("us-aba-routing", "01100001", False),
    # swift-bic
    ("swift-bic", "DEUTDEFF", True),
    ("swift-bic", "DEUTDEFF500", True),
    ("swift-bic", "NEDSZAJJXXX", True),
    ("swift-bic", "BOFAUS3N", True),
    ("swift-bic", "HSBCGB2L", True),
    ("swift-bic", "deutdeff", False),
    ("swift-bic", "DEUTZZFF", False),
    ("swift-bic", "DEU1DEFF", False),
    ("swift-bic", "DEUTDEF", False),
    ("swift-bic", "DEUTDEFF50", False),
    ("swift-bic", "DEUTDEFFXAB", False),
    # phone-number
    ("phone-number", "+44 20 7946 0958", True),
    ("phone-number", "0044 20 7946 0958", True),
    ("phone-number", "+1 202 456 1111", True),
    ("phone-number", "(202) 456-1111", True),
    ("phone-number", "202.456.1111", True),
    ("phone-number", "+33 1 42 68 53 00", True),
    ("phone-number", "123-456-7890", False),
    ("phone-number", "1 (102) 456-1111", False),
    ("phone-number", "+1 (202) 456-1111 ext. 12", True),
    ("phone-number", "2023-01-15", False),
    ("phone-number", "15.01.2023", False),
    ("phone-number", "20230115123045", False),
    ("phone-number", "1700000000", False),
    ("phone-number", "1700000000123", False),
    ("phone-number", "12345", False),
    ("phone-number", "+44 20 7946", False),
    # email-address
    ("email-address", "john.doe@example.com", True),
    ("email-address", "o'brien+tag@mail.example.co.uk", True),
    ("email-address", "x@ab.io", True),
    ("email-address", "user@example.xn--p1ai", True),
    ("email-address", "a..b@example.com", False),
    ("email-address", ".a@example.com", False),
    ("email-address", "a.@example.com", False),
    ("email-address", "a@example", False),
    ("email-address", "a@example.c", False),
    ("email-address", "a@example.c0m", False),
    ("email-address", "a@-example.com", False),
    ("email-address", "a@example..com", False),
    ("email-address", "a@b@example.com", False),
    ("email-address", "x" * 65 + "@example.com", False),
    ("email-address", "logo@2x.png", False),
    ("email-address", "image001.png@01D5A3B2.C4E5F6A0", False),
    # ip-address
    ("ip-address", "93.184.216.34", True),
    ("ip-address", "2001:4860:4860::8888", True),
    ("ip-address", "[2001:4860:4860::8844]", True),
    ("ip-address", "8.8.8.8", None),
    ("ip-address", "1.2.3.4", None),
    ("ip-address", "10.0.0.1", None),
    ("ip-address", "172.16.5.4", None),
    ("ip-address", "192.168.1.10", None),
    ("ip-address", "127.0.0.1", None),
    ("ip-address", "100.64.12.1", None),
    ("ip-address", "192.0.2.15", None),
    ("ip-address", "224.0.0.251", None),
    ("ip-address", "192.88.99.1", None),
    ("ip-address", "198.18.0.10", None),
    ("ip-address", "240.10.0.1", None),
    ("ip-address", "169.254.10.1", None),
    ("ip-address", "::1", None),
    ("ip-address", "fe80::1", None),
    ("ip-address", "2001:db8::1", None),
    ("ip-address", "ff02::1", None),
    ("ip-address", "0.0.0.0", False),
    ("ip-address", "255.255.255.0", False),
    ("ip-address", "255.255.0.0", False),
    ("ip-address", "255.255.255.255", False),
    ("ip-address", "256.1.1.1", False),
    ("ip-address", "01.02.03.04", False),
    ("ip-address", "1.2.3", False),
    ("ip-address", "::", False),
    ("ip-address", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", None),
    ("ip-address", "2a00:1450:4001:081b:0000:0000:0000:200e", True),
    ("ip-address", "2a00:1450:4001:81b::200e", True),
    ("ip-address", "2A00:1450:4001:81B::200E", True),
    ("ip-address", "fc00::1", None),
    ("ip-address", "::ffff:192.0.2.128", None),
    ("ip-address", "a::b", False),
    ("ip-address", "1:2:3:4:5:6:7:8", False),
    ("ip-address", "4000::1", False),
    ("ip-address", "2001:db8::1::2", False),
    ("ip-address", "2001:db8:0:0:0:0:0:0:1", False),
    ("ip-address", "2001:db8::g1", False),
    ("ip-address", "12:30:45", False),
    ("ip-address", "00:1A:2B:3C:4D:5E", False),
    # icd10-code
    ("icd10-code", "E11.9", True),
    ("icd10-code", "e11.9", True),
    ("icd10-code", "I10", True),
    ("icd10-code", "J45.909", True),
    ("icd10-code", "S72.001A", True),
    ("icd10-code", "C4A.0", True),
    ("icd10-code", "O9A.11", True),
    ("icd10-code", "Z99.89", True),
    ("icd10-code", "T98.3", True),
    ("icd10-code", "U07.1", None),
    ("icd10-code", "C98", False),
    ("icd10-code", "D90", False),
    ("icd10-code", "H96.1", False),
    ("icd10-code", "T99", False),
    ("icd10-code", "U99", False),
    ("icd10-code", "C7C", False),
    ("icd10-code", "E1", False),
    ("icd10-code", "11.9", False),
    ("icd10-code", "EE1.9", False),
    ("icd10-code", "E11.12345", False),
    # date
    ("date", "2024-03-15", True),
    ("date", "1985-3-5", True),
    ("date", "03/15/2024", True),
    ("date", "15/03/2024", True),
    ("date", "15.03.2024", True),
    ("date", "05/06/85", True),
    ("date", "19850312", True),
    ("date", "15 March 1985", True),
    ("date", "15-Mar-1985", True),
    ("date", "March 15, 1985", True),
    ("date", "Sept 5, 1990", True),
    ("date", "1st Jan 2000", True),
    ("date", "1900-01-01", True),
    ("date", f"{THIS_YEAR}-01-01", True),
    ("date", "2024-02-30", False),
    ("date", "2023-02-29", False),
    ("date", "13/13/2020", False),
    ("date", "1899-12-31", False),
    ("date", f"{THIS_YEAR + 1}-01-01", False),
    ("date", "20241315", False),
    ("date", "15 Marchx 1985", False),
    ("date", "hello", None),
    ("date", "15 March", None),
    ("date", "2024/03-15", False),
    # not-timestamp
    ("not-timestamp", "20230115123045", False),
    ("not-timestamp", "19700101000000", False),
    ("not-timestamp", "1700000000", False),
    ("not-timestamp", "1700000000123", False),
    ("not-timestamp", "20231345123045", None),
    ("not-timestamp", "19691231235959", None),
    ("not-timestamp", "0999999999", None),
    ("not-timestamp", "2100000000", None),
    ("not-timestamp", "4111111111111", None),
    ("not-timestamp", "12345", None),
    ("not-timestamp", "2023-01-15", None),
    # salesforce-id
    ("salesforce-id", "001A0000006Vm9rIAC", True),
    ("salesforce-id", "001A0000006Vm9riac", True),
    ("salesforce-id", "0035g00000AbCdEAAV", True),
    ("salesforce-id", "001A0000006Vm9r", None),
    ("salesforce-id", "a0B5g00000AbCdE", None),
    ("salesforce-id", "a0B5g00000AbCdEEAV", None),
    ("salesforce-id", "001A0000006Vm9rIAD", False),
    ("salesforce-id", "0035g00000AbCdEAAA", False),
    ("salesforce-id", "XYZ5g00000AbCdE", False),
    ("salesforce-id", "001A0100006Vm9r", False),
    ("salesforce-id", "001A00000000000", False),
    ("salesforce-id", "00QAb0ZzZzZzZzZ", False),
    ("salesforce-id", "Internationally", False),
    ("salesforce-id", "001A0000006Vm9rI", False),
    ("salesforce-id", "001A0000006Vm9r!AC", False),
    # aws-access-key
    ("aws-access-key", "AKIAZ2QXJ7WVTUMSNPQR", True),
    ("aws-access-key", "ASIAY34FZKBOKMUTVV7A", True),
    ("aws-access-key", "AKIAIOSFODNN7EXAMPLE", False),
    ("aws-access-key", "AKIA1234567890123456", False),
    ("aws-access-key", "AKIBZ2QXJ7WVTUMSNPQR", False),
    ("aws-access-key", "AKIAZ2QXJ7WVTUMSNPQ", False),
    ("aws-access-key", "akiaz2qxj7wvtumsnpqr", False),
    # github-token
    ("github-token", GITHUB_TOKEN, True),
    ("github-token", "gho_" + GITHUB_TOKEN[4:], True),
    ("github-token", GITHUB_TOKEN[:-1] + ("A" if GITHUB_TOKEN[-1] != "A" else "B"), False),
    ("github-token", "ghp_" + "x" * 36, False),
    ("github-token", "ghx_" + GITHUB_TOKEN[4:], False),
    ("github-token", GITHUB_TOKEN[:-1], False),
    ("github-token", "github_pat_" + "A1b2C3d4E5f6G7h8I9j0K1" + "_" + "Zy9" * 19 + "XW", None),
    ("github-token", "github_pat_short_token", False),
    # slack-token
    ("slack-token", "xoxb-2048123456-4096123456789-Q7kLm2Np9RsT4vWx8YzA3bCd", True),
    ("slack-token", "xoxp-2048123456-2048123457-4096123456789-0f1e2d3c4b5a69788796a5b4c3d2e1f0", True),
    ("slack-token", "xoxr-1234567890-Q7kLm2Np9RsT4vWx", None),
    ("slack-token", "xoxa-2-2048123456-4096123456789-0f1e2d3c4b5a6978", None),
    ("slack-token", "xoxb-your-token-here", False),
    ("slack-token", "xoxb-1234567890-1234567890-xxxxxxxxxxxxxxxxxxxxxxxx", False),
    ("slack-token", "xoxz-2048123456-4096123456789-Q7kLm2Np9RsT4vWx8YzA3bCd", False),
    ("slack-token", "xoxb-123", False),
    ("slack-token", SLACK_APP, True),
    ("slack-token", SLACK_APP.replace("-A0", "-B0"), False),
    ("slack-token", SLACK_APP[:-1], False),
    ("slack-token", "xapp-1-A0123ABCDEF-1234567890123-" + "0" * 64, False),
    ("slack-token", SLACK_HOOK, True),
    ("slack-token", "https://hooks.slack.com/services/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", True),
    ("slack-token", "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", False),
    ("slack-token", "https://hooks.slack.com/services/T00000000/B92L0M9V3/KDns2T6SXYjls0CUz9icmwKb", False),
    ("slack-token", SLACK_HOOK[:-1], False),
    ("slack-token", SLACK_HOOK + "x", False),
    ("slack-token", SLACK_HOOK.replace("https", "http"), False),
    ("slack-token", SLACK_HOOK.replace("/services/", "/workflows/"), False),
    # stripe-key
    ("stripe-key", "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", True),
    ("stripe-key", "rk_live_" + "51H8tQ2eZvKYlo2C0aBcDeFgHiJkLmNoP", True),
    ("stripe-key", "sk_test_" + "4eC39HqLyjWDarjtT1zdp7dc", False),
    ("stripe-key", "pk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", False),
    ("stripe-key", "sk_live_" + "4eC39Hq", False),
    ("stripe-key", "sk_live_" + "x" * 24, False),
    ("stripe-key", "sk_live_" + "4eC39HqLyjWDarjtT1zdp7d!", False),
]


@pytest.mark.parametrize(("name", "value", "expected"), CASES)
def test_known_values(name: str, value: str, expected: bool | None) -> None:
    assert VALIDATORS[name](value) is expected


def test_every_validator_has_a_table() -> None:
    for name in REQUIRED:
        answers = {expected for case_name, _, expected in CASES if case_name == name}
        assert False in answers and (True in answers or None in answers), name


@pytest.mark.parametrize(
    ("digits", "brand"),
    [
        ("4111111111111111", "visa"),
        ("5555555555554444", "mastercard"),
        ("2720990000000007", "mastercard"),
        ("378282246310005", "amex"),
        ("3530111333300000", "jcb"),
        ("30569309025904", "diners"),
        ("30953518190933", "diners"),
        ("36319487574917", "diners"),
        ("3818625276018959", "diners"),
        ("3955979711471049", "diners"),
        ("2200526018159085", "mir"),
        ("2204824628194821995", "mir"),
        ("220452601815908", None),
        ("2205465075291702", None),
        ("30963423667123", None),
        ("6011111111111117", "discover"),
        ("6221260000000000", "discover"),
        ("6200000000000005", "unionpay"),
        ("501800000009", "maestro"),
        ("2721000000000000", None),
        ("1234567812345670", None),
        ("41111111111", None),
    ],
)
def test_card_brand(digits: str, brand: str | None) -> None:
    assert card_brand(digits) == brand


def test_salesforce_suffix_matches_the_documented_example() -> None:
    assert salesforce_suffix("001A0000006Vm9r") == "IAC"
    assert salesforce_suffix("001000000000001") == "AAA"


# --- properties ------------------------------------------------------------------------------------


def _plausible(digits: str) -> bool:
    """Not a run the validators reject on sight: one repeated digit or an 0123.../9876... sequence."""
    return len(set(digits)) > 1 and digits not in "0123456789" * 3 and digits not in "9876543210" * 3


def _luhn_complete(body: str) -> str:
    return body + stdnum_luhn.calc_check_digit(body)


def _change_one(value: str, index: int, alphabet: str, pick: int) -> str:
    """`value` with the character at `index` replaced by another one from `alphabet`."""
    index %= len(value)
    others = [c for c in alphabet if c != value[index]]
    return value[:index] + others[pick % len(others)] + value[index + 1 :]


CARD_PREFIXES = [("4", 16), ("51", 16), ("2221", 16), ("2720", 16), ("34", 15), ("37", 15), ("6011", 16),
                 ("65", 19), ("3528", 16), ("3589", 19), ("305", 14), ("36", 14), ("62", 17), ("50", 12),
                 ("69", 19), ("4", 13), ("4", 19), ("2200", 16), ("2204", 19), ("3095", 14), ("38", 16),
                 ("39", 16)]  # fmt: skip


@FEW
@given(
    prefix=st.sampled_from(CARD_PREFIXES),
    fill=st.text(string.digits, min_size=18, max_size=18),
    index=st.integers(0, 18),
    pick=st.integers(0, 8),
)
def test_generated_cards_pass_and_one_changed_digit_fails(
    prefix: tuple[str, int], fill: str, index: int, pick: int
) -> None:
    start, length = prefix
    card = _luhn_complete(start + fill[: length - len(start) - 1])
    assume(_plausible(card))
    check = VALIDATORS["credit-card"]
    assert check(card) is True
    assert check(" ".join(card[i : i + 4] for i in range(0, len(card), 4))) is True
    assert check(".".join(card[i : i + 4] for i in range(0, len(card), 4))) is True
    assert check(_change_one(card, index, string.digits, pick)) is False


@FEW
@given(digits=st.text(string.digits, min_size=2, max_size=32))
def test_luhn_agrees_with_stdnum(digits: str) -> None:
    assert VALIDATORS["luhn"](digits) is stdnum_luhn.is_valid(digits)


@FEW
@given(body=st.text(string.digits, min_size=9, max_size=9), index=st.integers(0, 9), pick=st.integers(0, 8))
def test_nhs_numbers(body: str, index: int, pick: int) -> None:
    total = sum(int(d) * w for d, w in zip(body, range(10, 1, -1), strict=True))
    check = (11 - total % 11) % 11
    number = body + str(check)
    assume(check != 10 and _plausible(number) and _plausible(body + "0"))
    assert VALIDATORS["uk-nhs-number"](number) is True is stdnum_nhs.is_valid(number)
    changed = _change_one(number, index, string.digits, pick)
    assert VALIDATORS["uk-nhs-number"](changed) is False
    assert VALIDATORS["uk-nhs-number"](body + "0") is stdnum_nhs.is_valid(body + "0")


@FEW
@given(
    first=st.sampled_from("1234567 9"),
    body=st.text(string.digits, min_size=7, max_size=7),
    index=st.integers(0, 8),
    pick=st.integers(0, 8),
)
def test_generated_sins_pass_and_one_changed_digit_fails(
    first: str, body: str, index: int, pick: int
) -> None:
    assume(first != " ")
    sin = _luhn_complete(first + body)
    assume(_plausible(sin))
    assert VALIDATORS["ca-sin"](f"{sin[:3]} {sin[3:6]} {sin[6:]}") is True
    assert VALIDATORS["ca-sin"](_change_one(sin, index, string.digits, pick)) is False


IBAN_COUNTRIES = ["GB", "DE", "FR", "NO", "LC", "MT", "BR", "XK", "SA", "NL", "IT", "RU", "YE"]
IBAN_LENGTHS = {"GB": 22, "DE": 22, "FR": 27, "NO": 15, "LC": 32, "MT": 31, "BR": 29, "XK": 20, "SA": 24,
                "NL": 18, "IT": 27, "RU": 33, "YE": 30}  # fmt: skip


@FEW
@given(
    country=st.sampled_from(IBAN_COUNTRIES),
    bban=st.text(string.digits + string.ascii_uppercase, min_size=29, max_size=29),
    index=st.integers(0, 40),
    pick=st.integers(0, 8),
)
def test_generated_ibans_pass_and_one_changed_digit_fails(
    country: str, bban: str, index: int, pick: int
) -> None:
    bban = bban[: IBAN_LENGTHS[country] - 4]
    check = mod_97_10.calc_check_digits(bban + country)
    iban = country + check + bban
    assert mod_97_10.is_valid(bban + country + check)
    assert VALIDATORS["iban"](iban) is True
    assert VALIDATORS["iban"](" ".join(iban[i : i + 4] for i in range(0, len(iban), 4))) is True
    digit_positions = [i for i, c in enumerate(iban) if c.isdigit()]
    position = digit_positions[index % len(digit_positions)]
    assert VALIDATORS["iban"](_change_one(iban, position, string.digits, pick)) is False
    assert VALIDATORS["iban"](iban + "0") is False


def _registry_lengths() -> dict[str, int]:
    """Country -> IBAN length from the SWIFT registry file that python-stdnum ships."""
    lengths = {}
    for line in (Path(stdnum_iban.__file__).parent / "iban.dat").read_text().splitlines():
        if line[:2].isalpha() and 'bban="' in line:
            bban = line.split('bban="')[1].split('"')[0]
            lengths[line[:2]] = 4 + sum(int(n) for n in re.findall(r"(\d+)!", bban))
    return lengths


def test_every_registry_country_has_its_exact_length() -> None:
    lengths = _registry_lengths()
    assert len(lengths) >= 89
    for country, length in lengths.items():
        bban = "1" * (length - 4)
        iban = country + mod_97_10.calc_check_digits(bban + country) + bban
        assert VALIDATORS["iban"](iban) is True, country
        longer = "1" * (length - 3)
        assert VALIDATORS["iban"](country + mod_97_10.calc_check_digits(longer + country) + longer) is False


@FEW
@given(
    prefix=st.sampled_from(["00", "01", "12", "21", "32", "61", "72", "80"]),
    body=st.text(string.digits, min_size=6, max_size=6),
    index=st.integers(0, 8),
    pick=st.integers(0, 8),
)
def test_generated_routing_numbers(prefix: str, body: str, index: int, pick: int) -> None:
    number = prefix + body + stdnum_rtn.calc_check_digit(prefix + body)
    assume(_plausible(number))
    assert VALIDATORS["us-aba-routing"](number) is True is stdnum_rtn.is_valid(number)
    assert VALIDATORS["us-aba-routing"](_change_one(number, index, string.digits, pick)) is False


@FEW
@given(
    area=st.integers(1, 899).filter(lambda a: a != 666),
    group=st.integers(1, 99),
    serial=st.integers(1, 9999),
)
def test_generated_ssns_pass(area: int, group: int, serial: int) -> None:
    ssn = f"{area:03d}-{group:02d}-{serial:04d}"
    assume(ssn not in {"078-05-1120", "219-09-9999", "457-55-5462", "123-45-6789"})
    assume(_plausible(ssn.replace("-", "")))
    assert VALIDATORS["us-ssn"](ssn) is True


@FEW
@given(digits=st.text(string.digits, min_size=9, max_size=9))
def test_itin_agrees_with_stdnum(digits: str) -> None:
    """stdnum predates the IRS's 2011 extension to groups 50-65; everywhere else the two agree."""
    assume(digits[5:] != "0000" and _plausible(digits) and not "50" <= digits[3:5] <= "65")
    assert VALIDATORS["us-itin"](digits) is stdnum_itin.is_valid(digits)


@FEW
@given(
    first=st.sampled_from(sorted(set(string.ascii_uppercase) - set("DFIQUV"))),
    second=st.sampled_from(sorted(set(string.ascii_uppercase) - set("DFIOQUV"))),
    digits=st.text(string.digits, min_size=6, max_size=6),
    suffix=st.sampled_from("ABCD"),
)
def test_generated_ninos_pass(first: str, second: str, digits: str, suffix: str) -> None:
    assume(first + second not in {"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})
    assert VALIDATORS["uk-nino"](first + second + digits + suffix) is True


@FEW
@given(
    entropy=st.text(BASE62, min_size=30, max_size=30),
    kind=st.sampled_from("pousr"),
    index=st.integers(4, 39),
    pick=st.integers(0, 60),
)
def test_generated_github_tokens_pass_and_one_changed_char_fails(
    entropy: str, kind: str, index: int, pick: int
) -> None:
    token = f"gh{kind}_{entropy}{github_checksum(entropy)}"
    assert VALIDATORS["github-token"](token) is True
    assert VALIDATORS["github-token"](_change_one(token, index, BASE62, pick)) is False


@FEW
@given(
    prefix=st.sampled_from(["001", "003", "005", "006", "00Q", "500", "701", "00v", "02i", "01t"]),
    instance=st.text(BASE62, min_size=2, max_size=2),
    record=st.text(BASE62, min_size=5, max_size=5),
    flip=st.integers(0, 14),
)
def test_generated_salesforce_ids_and_a_case_flip(prefix: str, instance: str, record: str, flip: int) -> None:
    id15 = prefix + instance + "0" + "0000" + record
    assume(record != "00000")
    assert VALIDATORS["salesforce-id"](id15) is None
    assert VALIDATORS["salesforce-id"](id15 + salesforce_suffix(id15)) is True
    letters = [i for i, c in enumerate(id15[3:], start=3) if c.isalpha()]
    assume(letters)
    position = letters[flip % len(letters)]
    flipped = id15[:position] + id15[position].swapcase() + id15[position + 1 :]
    assert VALIDATORS["salesforce-id"](flipped + salesforce_suffix(id15)) is False


@FEW
@given(day=st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(THIS_YEAR, 12, 31)))
def test_generated_dates_pass_in_every_form(day: datetime.date) -> None:
    check = VALIDATORS["date"]
    forms = [day.isoformat(), day.strftime("%m/%d/%Y"), day.strftime("%d.%m.%Y"), day.strftime("%Y%m%d"),
             day.strftime("%d %B %Y"), day.strftime("%b %d, %Y"), day.strftime("%d-%b-%Y")]  # fmt: skip
    assert [check(form) for form in forms] == [True] * len(forms)


@FEW
@given(
    moment=st.datetimes(min_value=datetime.datetime(2001, 9, 10), max_value=datetime.datetime(2033, 5, 17))
)
def test_timestamps_are_vetoed(moment: datetime.datetime) -> None:
    epoch = int(moment.replace(tzinfo=datetime.UTC).timestamp())
    for text in (moment.strftime("%Y%m%d%H%M%S"), str(epoch), str(epoch * 1000 + 7)):
        assert VALIDATORS["not-timestamp"](text) is False
        assert VALIDATORS["phone-number"](text) is False


@FEW
@given(region=st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)))
def test_example_numbers_of_every_region_pass_in_international_form(region: str) -> None:
    example = phonenumbers.example_number(region)
    assert example is not None
    for style in (phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.E164):
        assert VALIDATORS["phone-number"](phonenumbers.format_number(example, style)) is True


@FEW
@given(address=st.emails())
def test_generated_email_addresses_pass(address: str) -> None:
    local, _, domain = address.rpartition("@")
    assume(len(local) <= 64 and ".." not in local and not local.startswith(".") and not local.endswith("."))
    assume(domain.rsplit(".", 1)[-1].lower() not in {"png", "jpg", "gif", "svg", "css", "js", "json", "pdf"})
    assert VALIDATORS["email-address"](address) is True


IPV4_SPECIAL_BUT_GLOBAL = [ipaddress.IPv4Network("192.0.0.0/24"), ipaddress.IPv4Network("192.88.99.0/24")]


@FEW
@given(address=st.ip_addresses(v=4))
def test_ipv4_agrees_with_the_ipaddress_module(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    """Public (per ipaddress, which also counts a few special /24s as global) -> True, else None."""
    assert isinstance(address, ipaddress.IPv4Address)
    text = str(address)
    result = VALIDATORS["ip-address"](text)
    octets = [int(o) for o in text.split(".")]
    if address.is_unspecified or octets[0] == 255:
        assert result in (False, None)
    elif any(address in network for network in IPV4_SPECIAL_BUT_GLOBAL) or max(octets) < 10:
        assert result is None
    else:
        assert result is (True if address.is_global and not address.is_multicast else None)


@FEW
@given(
    address=st.ip_addresses(v=6)
    | st.ip_addresses(network="2000::/3")
    | st.ip_addresses(network="fe80::/10")
    | st.ip_addresses(network="2001:db8::/32")
)
def test_ipv6_agrees_with_the_ipaddress_module_in_both_forms(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    """Compressed and full forms: :: -> False, global unicast -> True, private, multicast and
    IPv4-mapped -> None, unallocated and reserved space -> False."""
    assert isinstance(address, ipaddress.IPv6Address)
    expected: bool | None = False
    if address.is_global and address in ipaddress.IPv6Network("2000::/3"):
        expected = True
    elif not address.is_unspecified and (
        address.is_private or address.is_multicast or address.ipv4_mapped is not None
    ):
        expected = None
    assert VALIDATORS["ip-address"](address.compressed) is expected
    assert VALIDATORS["ip-address"](address.exploded) is expected
    assert VALIDATORS["ip-address"](address.exploded + ":1") is False


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(REQUIRED)), text=st.text(max_size=40))
def test_arbitrary_text_never_raises(name: str, text: str) -> None:
    assert VALIDATORS[name](text) in (True, False, None)


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_huge_input_is_answered(name: str) -> None:
    assert VALIDATORS[name]("9" * 100_000) in (False, None)
    assert VALIDATORS[name]("a@b." * 10_000) in (False, None)


@FEW
@given(body=st.text(BASE32, min_size=16, max_size=16), prefix=st.sampled_from(["AKIA", "ASIA", "AROA"]))
def test_generated_aws_keys_pass(body: str, prefix: str) -> None:
    assume(not body.endswith("EXAMPLE"))
    assert VALIDATORS["aws-access-key"](prefix + body) is True
    assert VALIDATORS["aws-access-key"](prefix + body[:-1] + "1") is False


@FEW
@given(secret=st.text(BASE62, min_size=24, max_size=99))
def test_stripe_live_keys_pass_and_test_keys_do_not(secret: str) -> None:
    assume(len(set(secret)) >= 6)
    assert VALIDATORS["stripe-key"]("sk_live_" + secret) is True
    assert VALIDATORS["stripe-key"]("sk_test_" + secret) is False


@FEW
@given(
    team=st.text(string.ascii_uppercase + string.digits, min_size=8, max_size=12),
    hook=st.text(string.ascii_uppercase + string.digits, min_size=8, max_size=12),
    secret=st.text(BASE62, min_size=24, max_size=24),
    cut=st.integers(1, 23),
)
def test_generated_slack_webhooks_pass_and_cut_ones_fail(team: str, hook: str, secret: str, cut: int) -> None:
    assume(len(set(team)) >= 3 and len(set(hook)) >= 3 and len(set(secret)) >= 6)
    url = f"https://hooks.slack.com/services/T{team}/B{hook}/{secret}"
    assert VALIDATORS["slack-token"](url) is True
    assert VALIDATORS["slack-token"](url[:-cut]) is False
    assert VALIDATORS["slack-token"](url.replace("/B", "/C", 1)) is False


@settings(max_examples=300, deadline=None)
@given(
    area=st.sampled_from(["201", "212", "268", "416", "555", "649", "787", "800", "876", "900", "999"])
    | st.integers(200, 999).map(str),
    rest=st.integers(0, 9_999_999).map(lambda n: f"{n:07d}"),
    style=st.sampled_from(
        ["{a}{r}", "({a}) {x}-{s}", "1-{a}-{x}-{s}", "{a}.{x}.{s}", "+1 {a} {x} {s}", "+1{a}{r}"]
    ),
)
def test_us_numbers_without_the_parse_agree_with_phonenumbers(area: str, rest: str, style: str) -> None:
    text = style.format(a=area, r=rest, x=rest[:3], s=rest[3:])
    expected = phonenumbers.is_valid_number(phonenumbers.parse(area + rest, "US"))
    assert VALIDATORS["phone-number"](text) is expected
