"""Named validator functions that confirm or reject detector candidates.

A detector definition names one of these by key (`validator: luhn`). The engine calls it once per
candidate with the value as matched in the text (separators, a leading '+', etc. included) and reads
the answer the Presidio way:

- ``True``: the value is structurally valid (checksum, ranges): raise confidence;
- ``False``: the value cannot be what the detector looks for: drop the match;
- ``None``: the validator cannot decide: keep the pattern's score.

Every validator is a pure function of its argument and runs on the hot path, so each does its cheap
checks (length, character set, prefixes) first and the costly ones (``phonenumbers``) last. The
checksums are written out here instead of calling python-stdnum: stdnum costs 5-40 microseconds a
call (it normalises, raises and catches exceptions), a small loop costs under one; the tests use
stdnum as the reference implementation.
"""

from __future__ import annotations

import binascii
import datetime
import ipaddress
import re
import string
from collections.abc import Callable
from functools import cache

import phonenumbers

__all__ = [
    "VALIDATORS",
    "Validator",
    "card_brand",
    "github_checksum",
    "salesforce_suffix",
    "validate_aws_access_key",
    "validate_ca_sin",
    "validate_credit_card",
    "validate_date",
    "validate_email_address",
    "validate_github_token",
    "validate_iban",
    "validate_icd10_code",
    "validate_ip_address",
    "validate_luhn",
    "validate_not_timestamp",
    "validate_phone_number",
    "validate_salesforce_id",
    "validate_slack_token",
    "validate_stripe_key",
    "validate_swift_bic",
    "validate_uk_nhs_number",
    "validate_uk_nino",
    "validate_us_aba_routing",
    "validate_us_itin",
    "validate_us_ssn",
]

Validator = Callable[[str], bool | None]

_SEPARATORS = str.maketrans("", "", " -.\t\u00a0")
_ASCENDING = "0123456789" * 3
_DESCENDING = "9876543210" * 3


def _digits(value: str) -> str | None:
    """Return `value` without spaces, dashes and dots when only ASCII digits remain, else None."""
    compact = value.strip().translate(_SEPARATORS)
    if compact.isascii() and compact.isdigit():
        return compact
    return None


def _is_trivial(digits: str) -> bool:
    """True for runs no real identifier uses: one repeated digit, or 0123.../9876... sequences."""
    return digits.count(digits[0]) == len(digits) or digits in _ASCENDING or digits in _DESCENDING


# A doubled Luhn digit replaced by its digit sum (7 -> 14 -> 5) is again one digit.
_LUHN_DOUBLED = str.maketrans("0123456789", "0246813579")


def _luhn_ok(digits: str) -> bool:
    """Luhn (mod 10) check of a string of ASCII digits, check digit last.

    Summing the bytes of the (partly translated) string keeps the loop in C: about 0.7 us for 16
    digits, against 3 us for a per-digit loop and 5-9 us for stdnum.
    """
    kept_and_doubled = digits[-1::-2] + digits[-2::-2].translate(_LUHN_DOUBLED)
    return (sum(kept_and_doubled.encode()) - 48 * len(digits)) % 10 == 0


# ---------------------------------------------------------------------------------------------------
# Payment cards


def validate_luhn(value: str) -> bool | None:
    """Luhn (mod 10) checksum of 2-32 digits (cards, SIN, IMEI, ICCID) with optional separators."""
    digits = _digits(value)
    if digits is None or not 2 <= len(digits) <= 32:
        return False
    return _luhn_ok(digits)


def card_brand(digits: str) -> str | None:
    """Name the card scheme whose IIN range and length fit `digits` (ASCII digits), or None.

    Ranges follow the schemes' published IIN tables: Visa 4 (13/16/19), Mastercard 51-55 and
    2221-2720 (16), Mir 2200-2204 (16-19), Amex 34/37 (15), JCB 3528-3589 (16-19), Diners
    300-305/3095/36/38/39 (14-19), Discover 6011/644-649/65/622126-622925 (16-19), UnionPay 62
    (16-19), Maestro 50/56-69 (12-19).
    """
    n = len(digits)
    if n < 12 or n > 19:
        return None
    first = digits[0]
    p2 = int(digits[:2])
    if first == "4":
        return "visa" if n in (13, 16, 19) else None
    p4 = int(digits[:4])
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return "mastercard" if n == 16 else None
    if 2200 <= p4 <= 2204:
        return "mir" if n >= 16 else None
    if first == "3":
        if p2 in (34, 37):
            return "amex" if n == 15 else None
        if 3528 <= p4 <= 3589:
            return "jcb" if n >= 16 else None
        if 300 <= int(digits[:3]) <= 305 or p4 == 3095 or p2 in (36, 38, 39):
            return "diners" if n >= 14 else None
        return None
    if n >= 16 and (
        p4 == 6011 or 644 <= int(digits[:3]) <= 649 or p2 == 65 or 622126 <= int(digits[:6]) <= 622925
    ):
        return "discover"
    if p2 == 62 and n >= 16:
        return "unionpay"
    if p2 == 50 or 56 <= p2 <= 69:
        return "maestro"
    return None


def validate_credit_card(value: str) -> bool | None:
    """A payment card number: known scheme IIN and length, Luhn-valid, not a trivial digit run.

    UnionPay (62) also has to pass Luhn: the cards issued on that range for well over a decade do,
    and a Luhn-invalid 16-19 digit run starting with 62 is far more often an order or tracking
    number than one of the old non-Luhn UnionPay debit cards, so it is dropped like any other.
    """
    digits = _digits(value)
    if digits is None or not 12 <= len(digits) <= 19 or _is_trivial(digits):
        return False
    if card_brand(digits) is None:
        return False
    return _luhn_ok(digits)


# ---------------------------------------------------------------------------------------------------
# National identifiers

_SSN_INVALID = frozenset({"078051120", "219099999", "457555462", "123456789"})


def validate_us_ssn(value: str) -> bool | None:
    """A US Social Security number: area not 000/666/900-999, group not 00, serial not 0000.

    Also rejects the famous advertising and sample numbers (078-05-1120 from a wallet insert,
    219-09-9999 from an SSA pamphlet, 457-55-5462 from LifeLock's advertisements, 123-45-6789) and
    single-digit repeats such as 111-11-1111.
    """
    digits = _digits(value)
    if digits is None or len(digits) != 9:
        return False
    area = digits[:3]
    if area == "000" or area == "666" or area[0] == "9":
        return False
    if digits[3:5] == "00" or digits[5:] == "0000":
        return False
    return not (digits in _SSN_INVALID or _is_trivial(digits))


_ITIN_GROUPS = frozenset(
    f"{g:02d}" for g in (*range(50, 66), *range(70, 89), *range(90, 93), *range(94, 100))
)


def validate_us_itin(value: str) -> bool | None:
    """A US ITIN: 9xx-GG-xxxx with group GG in 50-65, 70-88, 90-92 or 94-99 (IRS ranges)."""
    digits = _digits(value)
    if digits is None or len(digits) != 9 or digits[0] != "9":
        return False
    return digits[3:5] in _ITIN_GROUPS and digits[5:] != "0000" and not _is_trivial(digits)


_NINO_BAD_FIRST = frozenset("DFIQUV")
_NINO_BAD_SECOND = frozenset("DFIOQUV")
_NINO_BAD_PREFIX = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})


def validate_uk_nino(value: str) -> bool | None:
    """A UK National Insurance number: two prefix letters, six digits, suffix A-D (HMRC rules).

    The prefix may not start with D, F, I, Q, U, V, may not have D, F, I, O, Q, U, V second, and is
    not one of the administrative prefixes BG, GB, NK, KN, TN, NT, ZZ. Without its suffix letter a
    number is still plausible but less certain: None.
    """
    compact = value.strip().replace(" ", "").replace("-", "").upper()
    if len(compact) not in (8, 9) or not compact.isascii():
        return False
    first, second, number = compact[0], compact[1], compact[2:8]
    if not (first.isalpha() and second.isalpha() and number.isdigit()):
        return False
    if first in _NINO_BAD_FIRST or second in _NINO_BAD_SECOND or compact[:2] in _NINO_BAD_PREFIX:
        return False
    if len(compact) == 8:
        return None
    return compact[8] in "ABCD"


def validate_uk_nhs_number(value: str) -> bool | None:
    """An NHS number: ten digits whose last is the mod-11 check digit of the first nine.

    Weights 10..2; check = 11 - (sum mod 11), 11 becomes 0 and 10 is never issued.
    Repeated-digit runs (0000000000, 1111111111 ...) pass the arithmetic but are not issued: False.
    """
    digits = _digits(value)
    if digits is None or len(digits) != 10 or _is_trivial(digits):
        return False
    b = digits.encode()
    total = 10 * b[0] + 9 * b[1] + 8 * b[2] + 7 * b[3] + 6 * b[4] + 5 * b[5] + 4 * b[6] + 3 * b[7] + 2 * b[8]
    check = 11 - (total - 48 * 54) % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


def validate_ca_sin(value: str) -> bool | None:
    """A Canadian Social Insurance Number: nine digits, Luhn-valid, first digit not 0 or 8."""
    digits = _digits(value)
    if digits is None or len(digits) != 9 or digits[0] in "08" or _is_trivial(digits):
        return False
    return _luhn_ok(digits)


# ---------------------------------------------------------------------------------------------------
# Banking

# Total IBAN length per country, from the SWIFT IBAN registry (release 101, as shipped in stdnum).
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28,
    "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
    "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip

_IBAN_LETTERS = str.maketrans({chr(c): str(c - 55) for c in range(ord("A"), ord("Z") + 1)})
_IBAN_SPACES = str.maketrans("", "", " -\t\u00a0")


def validate_iban(value: str) -> bool | None:
    """An IBAN, spaced or not: registry country, that country's exact length, ISO 7064 mod 97-10."""
    compact = value.strip().translate(_IBAN_SPACES).upper()
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    if not (compact.isascii() and compact.isalnum() and compact[2:4].isdigit()):
        return False
    if not "02" <= compact[2:4] <= "98":
        return False
    rearranged = (compact[4:] + compact[:4]).translate(_IBAN_LETTERS)
    return int(rearranged) % 97 == 1


_ABA_PREFIXES = frozenset(f"{p:02d}" for p in (*range(0, 13), *range(21, 33), *range(61, 73), 80))


def validate_us_aba_routing(value: str) -> bool | None:
    """An ABA routing transit number: Federal Reserve prefix and the 3-7-1 weighted checksum."""
    digits = _digits(value)
    if digits is None or len(digits) != 9 or digits[:2] not in _ABA_PREFIXES or _is_trivial(digits):
        return False
    b = digits.encode()
    total = 3 * (b[0] + b[3] + b[6]) + 7 * (b[1] + b[4] + b[7]) + b[2] + b[5] + b[8]
    return (total - 48 * 33) % 10 == 0


# ISO 3166-1 alpha-2 codes plus XK (Kosovo), which SWIFT also assigns.
_COUNTRY_CODES = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
    BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE
    EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
    HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC
    LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
    NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
    SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
    TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW
"""
_COUNTRIES = frozenset(_COUNTRY_CODES.split())
_BIC_RE = re.compile(r"[A-Z]{4}([A-Z]{2})[A-Z0-9]{2}(?:[A-Z0-9]{3})?")


def validate_swift_bic(value: str) -> bool | None:
    """A SWIFT/BIC code (ISO 9362): 4-letter bank, ISO 3166 country, 2-char location, optional branch.

    Upper case only (mixed-case words are not BICs); a branch starting with X must be XXX.
    """
    compact = value.strip().replace(" ", "")
    match = _BIC_RE.fullmatch(compact)
    if match is None or match.group(1) not in _COUNTRIES:
        return False
    return not (len(compact) == 11 and compact[8] == "X" and compact[8:] != "XXX")


# ---------------------------------------------------------------------------------------------------
# Contact data

# Shared by the phone-number veto and the date validator: 2024-03-15, 15.03.2024, 3/15/24 ...
_NUMERIC_DATE = re.compile(r"(\d{1,4})([-/.])(\d{1,2})\2(\d{1,4})", re.ASCII)
_MIXED_SEPARATOR_DATE = re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}", re.ASCII)
_PHONE_PUNCTUATION = str.maketrans("", "", " -.()/+\t\u00a0")


def _is_date_or_timestamp(text: str, digits: str) -> bool:
    """True when a phone-shaped digit run is a date (2023-01-15, 15.01.2023) or a timestamp."""
    if validate_not_timestamp(digits) is False:
        return True
    match = _NUMERIC_DATE.fullmatch(text)
    return match is not None and _numeric_date_ok(match.group(1), match.group(3), match.group(4))


_NANP_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan",
               "voicemail", "fixed_line", "mobile")  # fmt: skip
_NANP_LENGTH = 10

Pattern = re.Pattern[str]


@cache
def _nanp_regions() -> tuple[tuple[Pattern | None, Pattern | None], ...]:
    """For each region of country code 1, in libphonenumber's order: its leading-digits
    pattern and one pattern matching a 10-digit national number of any valid type (None when
    no type can), built from phonenumbers' own metadata."""
    out = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1]:
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region, None)
        if meta is None:
            continue

        def fits(desc: phonenumbers.PhoneNumberDesc | None) -> bool:
            return (
                desc is not None
                and bool(desc.national_number_pattern)
                and (not desc.possible_length or _NANP_LENGTH in desc.possible_length)
            )

        general = meta.general_desc
        types = [getattr(meta, name) for name in _NANP_TYPES]
        branches = [f"(?:{t.national_number_pattern})" for t in types if fits(t)]
        valid = None
        if general is not None and fits(general) and branches:
            valid = re.compile(f"(?=(?:{general.national_number_pattern})$)(?:{'|'.join(branches)})$")
        leading = re.compile(meta.leading_digits) if meta.leading_digits is not None else None
        out.append((leading, valid))
    return tuple(out)


def _nanp_is_valid(national: str) -> bool:
    """`phonenumbers.is_valid_number` for a 10-digit number of country code 1, without the
    parse: the region is the first whose leading digits match, or else the first where the
    number is of a valid type (libphonenumber's own rule), and the number must be valid there."""
    for leading, valid in _nanp_regions():
        if leading is not None:
            if leading.match(national):
                return valid is not None and valid.match(national) is not None
        elif valid is not None and valid.match(national) is not None:
            return True
    return False


def validate_phone_number(value: str) -> bool | None:
    """A phone number valid (per libphonenumber) for the region of its leading +, for one of
    `TRUNK_ZERO_REGIONS` when it starts with the trunk prefix 0, else for the US.

    A leading 00 counts as +. The phonenumbers parse costs 20-80 us, so cheap vetoes come first:
    digit count (7-17), US numbers whose area code starts with 1, and (without a +) dates,
    14-digit timestamps and Unix epochs. A plain NANP number (10 digits, 11 with a leading 1,
    or +1 and 10 digits) skips the parse: `_nanp_is_valid` applies libphonenumber's metadata to it directly.
    """
    text = value.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    international = text.startswith("+")
    digits = text.translate(_PHONE_PUNCTUATION)
    plain = digits.isascii() and digits.isdigit()
    count = len(digits) if plain else sum(c.isdigit() for c in text)
    if not 7 <= count <= 17:
        return False
    if plain and not international:
        if _is_date_or_timestamp(text, digits):
            return False
        if digits[0] == "0":
            return _valid_in_trunk_zero_region(text, digits)
        national = digits[1:] if len(digits) == 11 and digits[0] == "1" else digits
        if len(national) == 10 and national[0] == "1":
            return False
        if len(national) == _NANP_LENGTH and "+" not in text:
            return _nanp_is_valid(national)
    elif plain and len(digits) == _NANP_LENGTH + 1 and digits[0] == "1" and text.count("+") == 1:
        return _nanp_is_valid(digits[1:])
    try:
        number = phonenumbers.parse(text, None if international else "US")
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number(number))


TRUNK_ZERO_REGIONS = ("GB", "DE", "FR", "IT", "NL", "BE", "AT", "CH", "IE", "SE", "AU", "NZ", "IN", "ZA")
"""Where a national number starts with the trunk prefix 0 and is written that way in
business mail: the regions a number like '020 7946 0958' is tried in (no US number
starts with 0). A number valid in any of them is a phone number."""


def _valid_in_trunk_zero_region(text: str, digits: str) -> bool:
    """Valid in one of `TRUNK_ZERO_REGIONS`; such numbers have 9 to 12 digits, and an
    unbroken run is taken at 10 or 11 only (a 12-to-15-digit run starting with 0 is more
    often a tracking or account number)."""
    if not 9 <= len(digits) <= (12 if digits != text else 11):
        return False
    for region in TRUNK_ZERO_REGIONS:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            return False
        if phonenumbers.is_valid_number(number):
            return True
    return False


_EMAIL_LOCAL_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_EMAIL_LABEL_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_EMAIL_TLD_RE = re.compile(r"[A-Za-z]{2,63}|(?i:xn--)[A-Za-z0-9-]{1,59}")
# File extensions that are not top-level domains: "logo@2x.png" and "image001.png@..." are not mail.
_FILE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "tif", "tiff",
                              "css", "js", "json", "htm", "html", "xml", "txt", "pdf", "csv", "xlsx",
                              "docx", "pptx"})  # fmt: skip


# Outlook's inline-image content ids ('image007.png@01D9A2B3.C4D5E6F0'): two 8-digit hex labels.
_CONTENT_ID_DOMAIN_RE = re.compile(r"[0-9A-Fa-f]{8}\.[0-9A-Fa-f]{8}")


def validate_email_address(value: str) -> bool | None:
    """Syntax sanity of an e-mail address (RFC 5321 limits, dot-atom local part, DNS host name).

    Local part at most 64 characters, no leading, trailing or consecutive dots; domain labels of
    1-63 letters, digits and inner hyphens; a TLD of 2-63 letters (or an xn-- IDN label) that is
    not a file extension; not an Outlook content id (a domain of two 8-digit hex labels).
    """
    text = value.strip()
    if len(text) > 254 or text.count("@") != 1:
        return False
    local, domain = text.split("@")
    if not 1 <= len(local) <= 64 or _EMAIL_LOCAL_RE.fullmatch(local) is None:
        return False
    labels = domain.split(".")
    if len(labels) < 2 or not all(_EMAIL_LABEL_RE.fullmatch(label) for label in labels[:-1]):
        return False
    if _CONTENT_ID_DOMAIN_RE.fullmatch(domain):
        return False
    tld = labels[-1]
    return _EMAIL_TLD_RE.fullmatch(tld) is not None and tld.lower() not in _FILE_EXTENSIONS


def _ipv4_octets(text: str) -> list[int] | None:
    """The four octets of a dotted-quad IPv4 address in canonical form (no leading zeros), or None."""
    parts = text.split(".")
    if len(parts) != 4 or not text.isascii():
        return None
    for part in parts:
        if not part.isdigit() or len(part) > 3 or (part[0] == "0" and len(part) > 1):
            return None
    octets = list(map(int, parts))
    return octets if max(octets) <= 255 else None


_NETMASK_OCTETS = frozenset({0, 128, 192, 224, 240, 248, 252, 254, 255})

# IPv4 ranges that are not globally reachable (IANA special-purpose registry), by first octet:
# (lowest second octet, highest second octet, third octet or -1 for any). 224/4 and 240/4 (multicast,
# reserved) are everything from 224 up.
_IPV4_SPECIAL: dict[int, tuple[tuple[int, int, int], ...]] = {
    0: ((0, 255, -1),),  # "this network"
    10: ((0, 255, -1),),  # private
    100: ((64, 127, -1),),  # carrier-grade NAT
    127: ((0, 255, -1),),  # loopback
    169: ((254, 254, -1),),  # link-local
    172: ((16, 31, -1),),  # private
    192: ((0, 0, 0), (0, 0, 2), (88, 88, 99), (168, 168, -1)),  # IETF, TEST-NET-1, 6to4 relay, private
    198: ((18, 19, -1), (51, 51, 100)),  # benchmarking, TEST-NET-2
    203: ((0, 0, 113),),  # TEST-NET-3
}


def _ipv4_public(octets: list[int]) -> bool:
    """Whether a dotted quad lies outside every special-purpose and multicast range."""
    first, second, third = octets[0], octets[1], octets[2]
    if first >= 224:
        return False
    for low, high, exact_third in _IPV4_SPECIAL.get(first, ()):
        if low <= second <= high and (exact_third < 0 or exact_third == third):
            return False
    return True


# The only IPv6 block IANA allocates global unicast addresses from.
_IPV6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")


def validate_ip_address(value: str) -> bool | None:
    """An IPv4 or IPv6 address: True when public, None when private or special, False when not one.

    False: malformed, 0.0.0.0 / ::, leading-zero octets, netmasks (255.255.255.0). None: private,
    loopback, link-local, CGNAT, documentation, benchmarking, reserved and multicast ranges, and
    dotted quads of single digits (1.2.3.4 is as often a version string as an address; 8.8.8.8 and
    1.1.1.1 are real). IPv4 is checked by hand (about 1 us), IPv6 with ``ipaddress``, full or
    compressed: True only for global unicast (2000::/3); None for ::1, link-local, unique-local,
    documentation (2001:db8::/32), multicast and IPv4-mapped; False for unallocated and reserved
    space ("a::b", "1:2:3:4:5:6:7:8" read as addresses are not ones).
    """
    text = value.strip()
    if ":" not in text:
        octets = _ipv4_octets(text)
        if octets is None or octets == [0, 0, 0, 0]:
            return False
        if octets[0] == 255 and all(o in _NETMASK_OCTETS for o in octets):
            ones = "".join(f"{o:08b}" for o in octets)
            if "01" not in ones:
                return False
        if all(o < 10 for o in octets):
            return None
        return True if _ipv4_public(octets) else None
    try:
        address = ipaddress.IPv6Address(text.strip("[]"))
    except ValueError:
        return False
    if address.is_unspecified:
        return False
    if address.is_global and address in _IPV6_GLOBAL_UNICAST:
        return True
    if address.is_private or address.is_multicast or address.ipv4_mapped is not None:
        return None
    return False


# ---------------------------------------------------------------------------------------------------
# Health

# Highest category number per chapter letter (ICD-10 WHO and ICD-10-CM together); the rest run to 99.
_ICD10_MAX_CATEGORY = {"C": 97, "D": 89, "E": 90, "H": 95, "K": 95, "P": 96, "T": 98, "U": 85}
# ICD-10-CM categories whose third character is a letter.
_ICD10_LETTER_CATEGORIES = frozenset({"C4A", "C7A", "C7B", "D3A", "M1A", "O9A", "Z3A"})
_ICD10_RE = re.compile(r"([A-Z])([0-9])([0-9A-Z])(?:\.?([0-9A-Z]{1,4}))?")


def validate_icd10_code(value: str) -> bool | None:
    """An ICD-10 / ICD-10-CM code: chapter letter, category in that chapter's range, optional subcode.

    Chapter U (U00-U85) is reserved for special purposes (provisional codes such as U07.1): None.
    """
    match = _ICD10_RE.fullmatch(value.strip().upper())
    if match is None:
        return False
    letter, tens, units = match.group(1), match.group(2), match.group(3)
    if units.isdigit():
        if int(tens + units) > _ICD10_MAX_CATEGORY.get(letter, 99):
            return False
    elif letter + tens + units not in _ICD10_LETTER_CATEGORIES:
        return False
    return None if letter == "U" else True


# ---------------------------------------------------------------------------------------------------
# Dates and timestamps

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",),
            ("jun", "june"), ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"),
            ("oct", "october"), ("nov", "november"), ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}  # fmt: skip
_DAY_MONTH_NAME = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?[ -]([A-Za-z]{3,9})\.?,?[ -](\d{4})", re.ASCII)
_MONTH_NAME_DAY = re.compile(r"([A-Za-z]{3,9})\.? (\d{1,2})(?:st|nd|rd|th)?,? (\d{4})", re.ASCII)


def _real_date(year: int, month: int, day: int) -> bool:
    """True when year-month-day exists on the calendar with 1900 <= year <= the current year."""
    if not 1900 <= year <= datetime.date.today().year:
        return False
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return True


def _full_year(text: str) -> int:
    """A 4-digit year as is; a 2-digit year in the past century window ending this year."""
    year = int(text)
    if len(text) == 4:
        return year
    this_year = datetime.date.today().year
    century = this_year - this_year % 100
    return century + year if century + year <= this_year else century - 100 + year


def _numeric_date_ok(first: str, middle: str, last: str) -> bool:
    """Whether Y-M-D (4-digit first part) or M/D/Y or D/M/Y (4- or 2-digit year last) is a real date."""
    if len(first) == 4:
        return len(last) <= 2 and _real_date(int(first), int(middle), int(last))
    if len(first) == 3 or len(last) not in (2, 4):
        return False
    year = _full_year(last)
    a, b = int(first), int(middle)
    return _real_date(year, a, b) or _real_date(year, b, a)


def validate_date(value: str) -> bool | None:
    """A real calendar date, year 1900 to this year, in a common written form.

    Forms: 2024-03-15, 2024/3/15, 15.03.2024, 03/15/2024 (either day-month order), 2-digit years,
    20240315, "15 March 2024", "15-Mar-2024", "March 15, 2024". Mixed separators (2024/03-15) are
    not a written date: False. Anything else: None.
    """
    text = value.strip()
    match = _NUMERIC_DATE.fullmatch(text)
    if match is not None:
        return _numeric_date_ok(match.group(1), match.group(3), match.group(4))
    if len(text) == 8 and text.isascii() and text.isdigit():
        return _real_date(int(text[:4]), int(text[4:6]), int(text[6:]))
    if _MIXED_SEPARATOR_DATE.fullmatch(text):
        return False
    match = _DAY_MONTH_NAME.fullmatch(text)
    if match is not None:
        day, month_name, year = match.group(1), match.group(2), match.group(3)
    else:
        match = _MONTH_NAME_DAY.fullmatch(text)
        if match is None:
            return None
        month_name, day, year = match.group(1), match.group(2), match.group(3)
    month = _MONTHS.get(month_name.lower())
    if month is None:
        return False
    return _real_date(int(year), month, int(day))


# Unix epochs in seconds from 2001-09-09 (the first 10-digit value) up to 2033-05-18.
_EPOCH_SECONDS = range(1_000_000_000, 2_000_000_000)


def validate_not_timestamp(value: str) -> bool | None:
    """False for digit runs that are timestamps, else None (this only ever vetoes).

    Timestamps: 14-digit YYYYMMDDhhmmss (years 1970-2099), 10-digit Unix epochs in seconds and
    13-digit epochs in milliseconds between 2001-09-09 and 2033-05-18.
    """
    text = value.strip()
    if not (text.isascii() and text.isdigit()):
        return None
    n = len(text)
    if n == 10:
        return False if int(text) in _EPOCH_SECONDS else None
    if n == 13:
        return False if int(text) // 1000 in _EPOCH_SECONDS else None
    if n == 14 and "1970" <= text[:4] <= "2099":
        try:
            datetime.datetime(
                int(text[:4]), int(text[4:6]), int(text[6:8]),
                int(text[8:10]), int(text[10:12]), int(text[12:]),
            )  # fmt: skip
        except ValueError:
            return None
        return False
    return None


# ---------------------------------------------------------------------------------------------------
# CRM records

_SALESFORCE_PREFIXES = frozenset(
    {"001", "002", "003", "005", "006", "00Q", "500", "00T", "00U", "701", "00v", "00D", "00P", "800",
     "801", "02i", "01t"}
)  # fmt: skip
_SALESFORCE_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_SALESFORCE_RE = re.compile(r"[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?")
_SALESFORCE_CUSTOM_RE = re.compile(r"a[0-9A-Za-z]{2}")
_UPPER_AS_ONE = str.maketrans(
    string.digits + string.ascii_lowercase + string.ascii_uppercase, "0" * 36 + "1" * 26
)
_DROP_DIGITS = str.maketrans("", "", string.digits)


def salesforce_suffix(id15: str) -> str:
    """The 3-character case-encoding suffix that turns a 15-character Salesforce id into 18.

    Each 5-character chunk gives a 5-bit number, bit j set when the chunk's character j is an
    upper-case letter; it indexes ``ABCDEFGHIJKLMNOPQRSTUVWXYZ012345``.
    """
    flags = id15.translate(_UPPER_AS_ONE)
    alphabet = _SALESFORCE_SUFFIX_ALPHABET
    return alphabet[int(flags[4::-1], 2)] + alphabet[int(flags[9:4:-1], 2)] + alphabet[int(flags[14:9:-1], 2)]


def validate_salesforce_id(value: str) -> bool | None:
    """A Salesforce record id: known key prefix, id layout, and for 18 characters a matching suffix.

    Layout: 3-character key prefix, 2-character instance, reserved '0', 9-character zero-padded
    record number; real ids therefore carry several digits (which also rules out words). An
    18-character id with a known prefix and a matching suffix is True; a 15-character one needs
    context (None), as does a custom-object prefix (a00, a0B, ...), which varies per org.
    """
    text = value.strip()
    if _SALESFORCE_RE.fullmatch(text) is None:
        return False
    if text[5] != "0" or text[6:15] == "000000000" or len(text[:15].translate(_DROP_DIGITS)) > 10:
        return False
    if len(text) == 18 and text[15:].upper() != salesforce_suffix(text[:15]):
        return False
    prefix = text[:3]
    if prefix in _SALESFORCE_PREFIXES:
        return True if len(text) == 18 else None
    return None if _SALESFORCE_CUSTOM_RE.fullmatch(prefix) else False


# ---------------------------------------------------------------------------------------------------
# Secrets

_AWS_PREFIXES = frozenset({"AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "APKA"})
_AWS_BODY_RE = re.compile(r"[A-Z2-7]{16}")


def validate_aws_access_key(value: str) -> bool | None:
    """An AWS access key id: a known 4-letter type prefix and 16 base-32 characters.

    AWS's documentation placeholders (AKIAIOSFODNN7EXAMPLE and the like) are False.
    """
    text = value.strip()
    if len(text) != 20 or text[:4] not in _AWS_PREFIXES or _AWS_BODY_RE.fullmatch(text, 4) is None:
        return False
    return not text.endswith("EXAMPLE")


_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_GITHUB_PREFIXES = frozenset({"ghp_", "gho_", "ghu_", "ghs_", "ghr_"})
_GITHUB_BODY_RE = re.compile(r"[0-9A-Za-z]{36}")
_GITHUB_PAT_RE = re.compile(r"github_pat_[0-9A-Za-z]{22}_[0-9A-Za-z]{59}")


def github_checksum(entropy: str) -> str:
    """GitHub's token checksum: CRC32 of the 30 random characters, base-62 encoded, 6 characters.

    As published in "Behind GitHub's new authentication token formats" (2021); the alphabet is
    0-9, A-Z, a-z and the value is left-padded with '0'.
    """
    crc = binascii.crc32(entropy.encode("ascii"))
    chars = []
    for _ in range(6):
        crc, digit = divmod(crc, 62)
        chars.append(_BASE62[digit])
    return "".join(reversed(chars))


def validate_github_token(value: str) -> bool | None:
    """A GitHub token: ghp_/gho_/ghu_/ghs_/ghr_ + 30 random + 6 checksum characters (True when the
    checksum verifies), or a well-formed fine-grained github_pat_ token (None: no public checksum).
    """
    text = value.strip()
    if text.startswith("github_pat_"):
        return None if _GITHUB_PAT_RE.fullmatch(text) else False
    if len(text) != 40 or text[:4] not in _GITHUB_PREFIXES or _GITHUB_BODY_RE.fullmatch(text, 4) is None:
        return False
    return github_checksum(text[4:34]) == text[34:]


_SLACK_BOT_RE = re.compile(r"xoxb-[0-9]{10,13}-[0-9]{10,13}-([0-9A-Za-z]{24})")
_SLACK_USER_RE = re.compile(r"xox[ps]-[0-9]{10,13}-[0-9]{10,13}-[0-9]{10,13}-([0-9a-f]{32})")
_SLACK_OTHER_RE = re.compile(r"xox[baprs]-(?:[0-9]{1,13}-)+([0-9A-Za-z-]{8,})")
_SLACK_APP_RE = re.compile(r"xapp-[0-9]-A[A-Z0-9]{8,11}-[0-9]{10,13}-([0-9a-f]{64})")
_SLACK_WEBHOOK_RE = re.compile(
    r"https://hooks\.slack\.com/services/T([A-Z0-9]{8,12})/B([A-Z0-9]{8,12})/([0-9A-Za-z]{24})"
)


def _looks_random(secret: str) -> bool:
    """False for placeholder bodies (xxxxxxxx, 00000000, abababab): fewer than 6 distinct characters."""
    return len(set(secret)) >= 6


def validate_slack_token(value: str) -> bool | None:
    """A Slack token: xoxb- bot, xoxp-/xoxs- user and xapp- app-level layouts are True; other
    xox[baprs]- tokens with numeric id groups (refresh, legacy workspace) are None; placeholders and
    other shapes False.

    An incoming-webhook URL (hooks.slack.com/services/ + team id T..., hook id B... and a 24-character
    secret) is True; one with a placeholder id (T00000000: fewer than 3 distinct characters) or
    secret (XXXX...) is False.
    """
    text = value.strip()
    if text.startswith("https://"):
        hook = _SLACK_WEBHOOK_RE.fullmatch(text)
        if hook is None:
            return False
        team, bot, secret = hook.groups()
        return len(set(team)) >= 3 and len(set(bot)) >= 3 and _looks_random(secret)
    match = _SLACK_BOT_RE.fullmatch(text) or _SLACK_USER_RE.fullmatch(text) or _SLACK_APP_RE.fullmatch(text)
    if match is not None:
        return _looks_random(match.group(1))
    match = _SLACK_OTHER_RE.fullmatch(text)
    if match is None or not _looks_random(match.group(1)):
        return False
    return None


_STRIPE_RE = re.compile(r"(sk|rk|pk)_(live|test)_([0-9A-Za-z]{24,99})")


def validate_stripe_key(value: str) -> bool | None:
    """A live Stripe secret or restricted key (sk_live_/rk_live_ + 24-99 alphanumerics): True.

    Test-mode keys (sk_test_) reach no money and publishable keys (pk_) are public by design, so
    neither is a secret worth blocking: False, as are placeholders.
    """
    match = _STRIPE_RE.fullmatch(value.strip())
    if match is None or match.group(1) == "pk" or match.group(2) == "test":
        return False
    return _looks_random(match.group(3))


VALIDATORS: dict[str, Validator] = {
    "luhn": validate_luhn,
    "credit-card": validate_credit_card,
    "us-ssn": validate_us_ssn,
    "us-itin": validate_us_itin,
    "uk-nino": validate_uk_nino,
    "uk-nhs-number": validate_uk_nhs_number,
    "ca-sin": validate_ca_sin,
    "iban": validate_iban,
    "us-aba-routing": validate_us_aba_routing,
    "swift-bic": validate_swift_bic,
    "phone-number": validate_phone_number,
    "email-address": validate_email_address,
    "ip-address": validate_ip_address,
    "icd10-code": validate_icd10_code,
    "date": validate_date,
    "not-timestamp": validate_not_timestamp,
    "salesforce-id": validate_salesforce_id,
    "aws-access-key": validate_aws_access_key,
    "github-token": validate_github_token,
    "slack-token": validate_slack_token,
    "stripe-key": validate_stripe_key,
}
