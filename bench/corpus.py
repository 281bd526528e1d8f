"""Deterministic labeled corpus for the detection benchmark and the precision/recall test.

`generate(seed, size_bytes, density)` returns synthetic business documents (prose, email
bodies, CSV exports, CRM notes) built from Faker text with planted sensitive values and
their exact character spans, plus planted hard negatives (numbers that look sensitive
but are not) with their spans.

Ground truth is computed here with small independent generators (Luhn, ISO 7064 mod 97,
national bank check digits, SSN area/group/serial rules); nothing here imports `dlp`, so
the benchmark cannot agree with the engine merely because both share a bug.

Densities: "realistic" plants about one true value per 2 KB and one hard negative per
KB; "dense" about ten true values per KB and two hard negatives per KB.
"""

from __future__ import annotations

import random
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from faker import Faker

__all__ = [
    "DETECTORS",
    "NEGATIVE_KINDS",
    "Density",
    "Doc",
    "generate",
    "iban_check_digits",
    "iban_is_valid",
    "luhn_check_digit",
    "luhn_is_valid",
    "ssn_is_valid",
]

Density = Literal["realistic", "dense"]

DETECTORS = ("credit-card", "us-ssn", "iban", "email-address", "phone-number")
NEGATIVE_KINDS = (
    "luhn-invalid-16",
    "order-number",
    "tracking-ups",
    "tracking-fedex",
    "timestamp-14",
    "unix-epoch",
    "invalid-ssn",
    "bad-iban",
    "version-string",
    "po-number",
    "invoice-number",
    "isbn",
    "outlook-cid",
)

# True values per byte and hard negatives per byte, by density.
_RATES: dict[str, tuple[float, float]] = {
    "realistic": (1 / 2048, 1 / 1024),
    "dense": (10 / 1024, 2 / 1024),
}


@dataclass
class Doc:
    """One document: its text, exact ground-truth spans and hard-negative spans.

    `spans` holds (detector_id, start, end) for every planted true value; `negatives`
    holds (negative_kind, start, end) for every planted hard negative, on which no
    detector may report medium or high confidence. `header` is the CSV header row of a
    `csv` document (the column names), None for other kinds.
    """

    kind: str
    text: str
    spans: list[tuple[str, int, int]] = field(default_factory=list)
    negatives: list[tuple[str, int, int]] = field(default_factory=list)
    header: tuple[str, ...] | None = None


# ---------------------------------------------------------------- checksums


def luhn_check_digit(payload: str) -> str:
    """The Luhn digit that makes `payload + digit` pass the Luhn test."""
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_is_valid(number: str) -> bool:
    """True when the digits of `number` (separators ignored) pass the Luhn test."""
    digits = "".join(ch for ch in number if ch.isdigit())
    return len(digits) > 1 and luhn_check_digit(digits[:-1]) == digits[-1]


def _iban_numeric(text: str) -> int:
    return int("".join(str(int(ch, 36)) for ch in text))


def iban_check_digits(country: str, bban: str) -> str:
    """ISO 13616 check digits (ISO 7064 mod 97-10) for a country code and BBAN."""
    return f"{98 - _iban_numeric(bban + country + '00') % 97:02d}"


def iban_is_valid(iban: str) -> bool:
    """True when `iban` (spaces ignored) has a known country, its length, and passes mod 97."""
    compact = iban.replace(" ", "").upper()
    spec = _IBAN_SPECS.get(compact[:2])
    if spec is None or len(compact) != 4 + sum(n for n, _ in _parse_spec(spec)):
        return False
    return _iban_numeric(compact[4:] + compact[:4]) % 97 == 1


def ssn_is_valid(ssn: str) -> bool:
    """SSA rules: area not 000, 666 or 900-999; group not 00; serial not 0000."""
    digits = "".join(ch for ch in ssn if ch.isdigit())
    if len(digits) != 9:
        return False
    area, group, serial = int(digits[:3]), int(digits[3:5]), int(digits[5:])
    return 0 < area < 900 and area != 666 and group != 0 and serial != 0


# ---------------------------------------------------------------- value generators

# (brand, prefix ranges (inclusive, same width), lengths with weights)
_CARD_BRANDS: tuple[tuple[str, tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]], ...] = (
    ("visa", ((4, 4),), ((16, 9), (19, 1))),
    ("mastercard", ((51, 55),), ((16, 1),)),
    ("mastercard-2", ((2221, 2720),), ((16, 1),)),
    ("amex", ((34, 34), (37, 37)), ((15, 1),)),
    ("discover", ((6011, 6011), (644, 649), (65, 65)), ((16, 1),)),
    ("jcb", ((3528, 3589),), ((16, 1),)),
    ("diners", ((36, 36), (300, 305)), ((14, 1),)),
    ("unionpay", ((62, 62),), ((16, 3), (19, 1))),
    (
        "maestro",
        ((5018, 5018), (5020, 5020), (5038, 5038), (5893, 5893), (6304, 6304), (6759, 6759), (6761, 6763)),
        ((16, 3), (19, 1)),
    ),
)
CARD_BRANDS = tuple(b[0] for b in _CARD_BRANDS)

# Published test numbers and advertising SSNs that a detector may rightly exclude.
_PUBLISHED = {"4111111111111111", "5555555555554444", "378282246310005", "6011111111111117"}
_AD_SSNS = ("078-05-1120", "219-09-9999", "123-45-6789")

# SWIFT IBAN registry: country -> BBAN structure (n digits, a upper letters, c alphanumerics).
_IBAN_SPECS: dict[str, str] = {
    "AD": "4n4n12c", "AE": "3n16n", "AT": "5n11n", "BE": "3n7n2n", "BG": "4a4n2n8c",
    "BH": "4a14c", "BR": "8n5n10n1a1c", "CH": "5n12c", "CY": "3n5n16c", "CZ": "4n6n10n",
    "DE": "8n10n", "DK": "4n9n1n", "EE": "2n2n11n1n", "ES": "4n4n1n1n10n", "FI": "3n11n",
    "FR": "5n5n11c2n", "GB": "4a6n8n", "GI": "4a15c", "GR": "3n4n16c", "HR": "7n10n",
    "HU": "3n4n1n15n1n", "IE": "4a6n8n", "IL": "3n3n13n", "IS": "4n2n6n10n", "IT": "1a5n5n12c",
    "JO": "4a4n18c", "KW": "4a22c", "KZ": "3n13c", "LI": "5n12c", "LT": "5n11n", "LU": "3n13c",
    "LV": "4a13c", "MC": "5n5n11c2n", "MT": "4a5n18c", "MU": "4a2n2n12n3n3a", "NL": "4a10n",
    "NO": "4n6n1n", "PK": "4a16c", "PL": "8n16n", "PT": "4n4n11n2n", "QA": "4a21c", "RO": "4a16c",
    "SA": "2n18c", "SE": "3n16n1n", "SI": "5n8n2n", "SK": "4n6n10n", "SM": "1a5n5n12c",
    "TR": "5n1n16c", "UA": "6n19c",
}  # fmt: skip
_IBAN_WEIGHTED = ("DE", "GB", "FR", "ES", "IT", "NL", "BE", "CH", "AT", "PL", "IE", "PT", "SE")

_US_AREA_CODES = (
    "201", "202", "203", "205", "206", "207", "208", "212", "213", "214", "215", "216", "217",
    "218", "219", "224", "225", "228", "229", "231", "234", "239", "240", "248", "251", "252",
    "253", "254", "256", "260", "262", "267", "269", "270", "276", "281", "301", "302", "303",
    "304", "305", "307", "308", "309", "310", "312", "313", "314", "315", "316", "317", "318",
    "319", "320", "321", "323", "330", "334", "336", "337", "339", "347", "351", "352", "360",
    "361", "386", "401", "402", "404", "405", "406", "407", "408", "409", "410", "412", "413",
    "414", "415", "417", "419", "423", "425", "432", "434", "435", "440", "443", "469", "478",
    "479", "480", "484", "501", "502", "503", "504", "505", "507", "508", "509", "510", "512",
    "513", "515", "516", "517", "518", "520", "530", "540", "541", "551", "559", "561", "562",
    "563", "567", "570", "571", "573", "574", "575", "580", "585", "586", "601", "602", "603",
    "605", "606", "607", "608", "609", "610", "612", "614", "615", "616", "617", "618", "619",
    "620", "623", "626", "630", "631", "636", "641", "646", "650", "651", "660", "661", "662",
    "678", "682", "701", "702", "703", "704", "706", "707", "708", "712", "713", "714", "715",
    "716", "717", "718", "719", "720", "724", "727", "731", "732", "734", "740", "754", "757",
    "760", "763", "765", "770", "772", "773", "774", "775", "781", "785", "786", "801", "802",
    "803", "804", "805", "806", "808", "810", "812", "813", "814", "815", "816", "817", "818",
    "828", "830", "831", "832", "843", "845", "847", "848", "850", "856", "857", "858", "859",
    "860", "862", "863", "864", "865", "870", "901", "903", "904", "906", "907", "908", "909",
    "910", "912", "913", "914", "915", "916", "917", "918", "919", "920", "925", "928", "931",
    "936", "937", "940", "941", "949", "951", "952", "954", "956", "970", "971", "972", "973",
    "978", "979", "980", "985", "989",
)  # fmt: skip


def _parse_spec(spec: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    num = ""
    for ch in spec:
        if ch.isdigit():
            num += ch
        else:
            out.append((int(num), ch))
            num = ""
    return out


def _group(text: str, sizes: Sequence[int], sep: str) -> str:
    parts, i = [], 0
    for size in sizes:
        parts.append(text[i : i + size])
        i += size
    if i < len(text):
        parts.append(text[i:])
    return sep.join(p for p in parts if p)


def _card_groups(length: int) -> tuple[int, ...]:
    return {15: (4, 6, 5), 14: (4, 6, 4)}.get(length, (4, 4, 4, 4, 3))


class _Values:
    """Random true values and hard negatives, each as the exact string to plant."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def digits(self, n: int) -> str:
        return "".join(self.rng.choice(string.digits) for _ in range(n))

    def _form(self, digits: str, groups: Sequence[int]) -> str:
        r = self.rng.random()
        if r < 0.4:
            return digits
        return _group(digits, groups, " " if r < 0.8 else "-")

    # cards
    def card_digits(self, brand: str | None = None) -> str:
        entry = (
            self.rng.choice(_CARD_BRANDS) if brand is None else next(b for b in _CARD_BRANDS if b[0] == brand)
        )
        _, ranges, lengths = entry
        lo, hi = self.rng.choice(ranges)
        prefix = str(self.rng.randint(lo, hi))
        length = self.rng.choices([n for n, _ in lengths], weights=[w for _, w in lengths])[0]
        while True:
            body = prefix + self.digits(length - len(prefix) - 1)
            number = body + luhn_check_digit(body)
            if number not in _PUBLISHED:
                return number

    def card(self) -> str:
        number = self.card_digits()
        return self._form(number, _card_groups(len(number)))

    # SSNs
    def ssn_parts(self) -> tuple[str, str, str]:
        while True:
            area = self.rng.randint(1, 899)
            if area == 666:
                continue
            parts = (f"{area:03d}", f"{self.rng.randint(1, 99):02d}", f"{self.rng.randint(1, 9999):04d}")
            if "-".join(parts) not in _AD_SSNS:
                return parts

    def invalid_ssn(self) -> str:
        area, group, serial = self.ssn_parts()
        kind = self.rng.randrange(6)
        if kind == 0:
            area = "000"
        elif kind == 1:
            area = "666"
        elif kind == 2:
            # 9xx area with a group outside the ITIN ranges (50-65, 70-88, 90-92, 94-99),
            # so the value is neither an SSN nor an ITIN.
            area = str(self.rng.randint(900, 999))
            group = f"{self.rng.choice([*range(1, 50), 66, 67, 68, 69, 89, 93]):02d}"
        elif kind == 3:
            group = "00"
        elif kind == 4:
            serial = "0000"
        else:
            return self.rng.choice(_AD_SSNS[:2])
        return f"{area}-{group}-{serial}"

    # IBANs
    def _bban(self, country: str) -> str:
        chars = []
        for count, cls in _parse_spec(_IBAN_SPECS[country]):
            for _ in range(count):
                if cls == "n" or (cls == "c" and self.rng.random() < 0.7):
                    chars.append(self.rng.choice(string.digits))
                else:
                    chars.append(self.rng.choice(string.ascii_uppercase))
        bban = "".join(chars)
        return _NATIONAL_CHECKS.get(country, _no_national_check)(bban, self.rng)

    def iban_compact(self) -> str:
        pool = _IBAN_WEIGHTED if self.rng.random() < 0.6 else tuple(_IBAN_SPECS)
        country = self.rng.choice(pool)
        bban = self._bban(country)
        return country + iban_check_digits(country, bban) + bban

    def iban(self) -> str:
        compact = self.iban_compact()
        return compact if self.rng.random() < 0.45 else _group(compact, [4] * 9, " ")

    def bad_iban(self) -> str:
        compact = list(self.iban_compact())
        digit_positions = [i for i, ch in enumerate(compact) if ch.isdigit() and i >= 2]
        i = self.rng.choice(digit_positions)
        compact[i] = self.rng.choice([d for d in string.digits if d != compact[i]])
        text = "".join(compact)
        return text if self.rng.random() < 0.45 else _group(text, [4] * 9, " ")

    # phones
    def us_phone_parts(self) -> tuple[str, str, str]:
        area = self.rng.choice(_US_AREA_CODES)
        while True:
            exchange = str(self.rng.randint(2, 9)) + self.digits(2)
            if exchange != "555" and exchange[1:] != "11":
                return area, exchange, self.digits(4)

    def phone(self, bare_ok: bool = False) -> str:
        if self.rng.random() < 0.6:
            a, e, n = self.us_phone_parts()
            forms = [
                f"({a}) {e}-{n}",
                f"{a}-{e}-{n}",
                f"{a}.{e}.{n}",
                f"+1 {a} {e} {n}",
                f"+1-{a}-{e}-{n}",
                f"1-{a}-{e}-{n}",
                f"+1 ({a}) {e}-{n}",
                f"+1{a}{e}{n}",
            ]
            if bare_ok:
                forms.append(f"{a}{e}{n}")
            return self.rng.choice(forms)
        return self.rng.choice(_INTL_PHONES)(self)

    # emails
    def email(self, first: str, last: str, company_slug: str) -> str:
        first = "".join(ch for ch in first.lower() if ch.isalpha()) or "info"
        last = "".join(ch for ch in last.lower() if ch.isalpha()) or "contact"
        local = self.rng.choice(
            [
                f"{first}.{last}",
                f"{first[0]}{last}",
                f"{first}_{last}",
                f"{first}.{last}+{self.rng.choice(['billing', 'news', 'crm', 'x'])}",
                f"{first}{self.rng.randint(1, 99)}",
                f"{first}-{last}",
                f"{last}.{first[0]}",
            ]
        )
        if self.rng.random() < 0.35:
            domain = self.rng.choice(
                [
                    "gmail.com",
                    "yahoo.com",
                    "outlook.com",
                    "hotmail.co.uk",
                    "proton.me",
                    "icloud.com",
                    "web.de",
                    "gmx.net",
                ]
            )
        else:
            tld = self.rng.choice(["com", "com", "net", "org", "io", "co.uk", "de", "fr", "com.au", "co"])
            sub = self.rng.choice(["", "", "", "mail.", "eu.", "corp."])
            domain = f"{sub}{company_slug}.{tld}"
        address = f"{local}@{domain}"
        if self.rng.random() < 0.1:
            address = address[0].upper() + address[1:]
        return address

    # hard negatives
    def luhn_invalid_16(self) -> str:
        brand = self.rng.choice(["visa", "mastercard", "mastercard-2", "discover", "jcb"])
        body = self.card_digits(brand)[:15]
        good = int(luhn_check_digit(body))
        number = body + str((good + self.rng.randint(1, 9)) % 10)
        return self._form(number, (4, 4, 4, 4))

    def order_number(self) -> str:
        kind = self.rng.randrange(4)
        if kind == 0:
            return f"{self.digits(3)}-{self.digits(7)}-{self.digits(7)}"
        if kind == 1:
            # 16 digits that pass Luhn but start with no card issuer's prefix.
            body = self.rng.choice("017") + self.digits(14)
            return body + luhn_check_digit(body)
        if kind == 2:
            a, e, n = self.us_phone_parts()
            return a + e + n
        return f"SO-{self.rng.randint(2019, 2026)}-{self.digits(6)}"

    def ups(self) -> str:
        shipper = "".join(self.rng.choice(string.ascii_uppercase + string.digits) for _ in range(6))
        body = shipper + self.rng.choice(["01", "02", "03", "12", "13"]) + self.digits(7)
        odd = even = 0
        for i, ch in enumerate(body):
            value = int(ch) if ch.isdigit() else (ord(ch) - 63) % 10
            if i % 2 == 0:
                odd += value
            else:
                even += value
        return "1Z" + body + str((10 - (odd + 2 * even) % 10) % 10)

    def fedex(self) -> str:
        if self.rng.random() < 0.5:
            body = self.rng.choice("79") + self.digits(10)
            weights = (1, 7, 3)
            total = sum(int(ch) * weights[i % 3] for i, ch in enumerate(reversed(body)))
            return body + str(total % 11 % 10)
        return self.rng.choice(["0", "9"]) + self.digits(14)

    def timestamp_14(self) -> str:
        # YYYYMMDDhhmmss that passes Luhn, as a tenth of real timestamps do by chance.
        start = datetime(2015, 1, 1) + timedelta(seconds=self.rng.randrange(12 * 365 * 86400))
        while True:
            text = start.strftime("%Y%m%d%H%M%S")
            if luhn_is_valid(text):
                return text
            start += timedelta(seconds=1)

    def epoch(self) -> str:
        seconds = self.rng.randint(1_420_070_400, 1_800_000_000)
        if self.rng.random() < 0.5:
            return str(seconds)
        return f"{seconds}{self.digits(3)}"

    def version(self) -> str:
        r = self.rng.randint
        return self.rng.choice(
            [
                f"{r(1, 9)}.{r(0, 20)}.{r(0, 30)}.{r(0, 9)}",
                f"{r(1, 4)}.{r(0, 9)}.{r(0, 9)}.{r(1000, 9999)}",
                f"10.0.{r(17000, 26000)}.{r(100, 4000)}",
            ]
        )

    def po_number(self) -> str:
        return self.rng.choice(["45", "71", "41"]) + self.digits(8)

    def invoice_number(self) -> str:
        return self.rng.choice(
            [
                f"INV-{self.rng.randint(2019, 2026)}-{self.digits(6)}",
                str(self.rng.randint(100_000_000, 899_999_999)),
                f"{self.rng.randint(2019, 2026)}{self.digits(4)}-{self.digits(4)}",
            ]
        )

    def isbn(self) -> str:
        if self.rng.random() < 0.6:
            body = self.rng.choice(["978", "979"]) + self.digits(9)
            check = str((10 - sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(body)) % 10) % 10)
            digits = body + check
            if self.rng.random() < 0.5:
                return digits
            return f"{digits[:3]}-{digits[3]}-{digits[4:7]}-{digits[7:12]}-{digits[12]}"
        body = self.digits(9)
        total = sum(int(d) * (10 - i) for i, d in enumerate(body))
        check10 = (11 - total % 11) % 11
        digits = body + ("X" if check10 == 10 else str(check10))
        return f"{digits[0]}-{digits[1:4]}-{digits[4:9]}-{digits[9]}"

    def outlook_cid(self) -> str:
        hexes = "".join(self.rng.choice("0123456789ABCDEF") for _ in range(16))
        return f"image{self.rng.randint(1, 9):03d}.png@{hexes[:8]}.{hexes[8:]}"


def _no_national_check(bban: str, rng: random.Random) -> str:
    return bban


def _be_check(bban: str, rng: random.Random) -> str:
    bank = f"{rng.randint(1, 99):03d}"  # 001-049 BNP Paribas Fortis, 050-099 Belfius
    head = bank + bban[3:10]
    check = int(head) % 97 or 97
    return f"{head}{check:02d}"


def _es_digit(digits: str) -> str:
    weights = (1, 2, 4, 8, 5, 10, 9, 7, 3, 6)
    value = 11 - sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    return {10: "1", 11: "0"}.get(value, str(value))


def _es_check(bban: str, rng: random.Random) -> str:
    bank_branch, account = bban[:8], bban[10:]
    return bank_branch + _es_digit("00" + bank_branch) + _es_digit(account) + account


def _no_check(bban: str, rng: random.Random) -> str:
    weights = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
    while True:
        head = bban[:10]
        value = 11 - sum(int(d) * w for d, w in zip(head, weights, strict=True)) % 11
        if value != 10:
            return head + ("0" if value == 11 else str(value))
        bban = "".join(rng.choice(string.digits) for _ in range(11))


def _fr_check(bban: str, rng: random.Random) -> str:
    bank, branch = bban[:5], bban[5:10]
    account = "".join(rng.choice(string.digits) for _ in range(11))
    key = 97 - (89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97
    return f"{bank}{branch}{account}{key:02d}"


_NATIONAL_CHECKS: dict[str, Callable[[str, random.Random], str]] = {
    "BE": _be_check,
    "ES": _es_check,
    "NO": _no_check,
    "FR": _fr_check,
    "MC": _fr_check,
}


def _intl(cc: str, *groups: str) -> Callable[[_Values], str]:
    """A phone template: `+cc` then groups; `d` is a random digit, `D` a non-zero one, others literal."""

    def make(values: _Values) -> str:
        out = []
        for g in groups:
            out.append(
                "".join(
                    values.rng.choice(string.digits if ch == "d" else "123456789") if ch in "dD" else ch
                    for ch in g
                )
            )
        return f"+{cc} " + " ".join(out)

    return make


_INTL_PHONES: tuple[Callable[[_Values], str], ...] = (
    _intl("44", "20", "7ddd", "dddd"),
    _intl("44", "78dd", "dddddd"),
    _intl("44", "161", "4dd", "dddd"),
    _intl("49", "30", "2ddddddd"),
    _intl("49", "89", "2dddddd"),
    _intl("49", "151", "2ddddddd"),
    _intl("33", "1", "4d", "dd", "dd", "dd"),
    _intl("33", "6", "1d", "dd", "dd", "dd"),
    _intl("34", "91", "2dd", "dd", "dd"),
    _intl("34", "6dd", "ddd", "ddd"),
    _intl("39", "06", "4ddd", "dddd"),
    _intl("39", "34d", "ddd", "dddd"),
    _intl("31", "20", "5dd", "dddd"),
    _intl("31", "6", "1ddd", "dddd"),
    _intl("91", "98ddd", "ddddd"),
    _intl("61", "2", "9ddd", "dddd"),
    _intl("61", "41d", "ddd", "ddd"),
    _intl("81", "3-5ddd-dddd"),
    _intl("81", "90-Dddd-dddd"),
    _intl("55", "11", "9dddd-dddd"),
    _intl("1", "416", "3dd", "dddd"),
    _intl("52", "55", "5ddd", "dddd"),
    _intl("41", "44", "2dd", "dd", "dd"),
    _intl("65", "8Ddd", "dddd"),
    _intl("353", "1", "6dd", "dddd"),
)


# ---------------------------------------------------------------- text building


class _Builder:
    """Accumulates one document's text and records spans at exact offsets."""

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self.pos = 0
        self.spans: list[tuple[str, int, int]] = []
        self.negatives: list[tuple[str, int, int]] = []

    def add(self, text: str) -> None:
        self.chunks.append(text)
        self.pos += len(text)

    def value(self, detector: str, text: str) -> None:
        self.spans.append((detector, self.pos, self.pos + len(text)))
        self.add(text)

    def negative(self, kind: str, text: str) -> None:
        self.negatives.append((kind, self.pos, self.pos + len(text)))
        self.add(text)

    def template(self, template: str, label: tuple[str, str], text: str) -> None:
        """Add `template` with `{v}` replaced by `text`, recorded as a value or a negative."""
        before, _, after = template.partition("{v}")
        self.add(before)
        if label[0] == "value":
            self.value(label[1], text)
        else:
            self.negative(label[1], text)
        self.add(after)

    def doc(self, kind: str, header: tuple[str, ...] | None = None) -> Doc:
        return Doc(kind, "".join(self.chunks), self.spans, self.negatives, header)


# Sentences planting a true value; "{v}" is the value. Context words appear only where
# the detector id's kind of value would naturally carry them.
_VALUE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "card": (
        "Please charge the renewal to card number {v} as agreed.",
        "The customer read out the Visa {v} over the phone.",
        "Payment card: {v} (exp {exp}).",
        "Refund issued to the credit card {v} on {date}.",
        "Use {v} for the deposit, expiry {exp}, CVV to follow by phone.",
        "She asked us to keep {v} on file for the recurring invoices.",
        "cc: {v}",
        "Card on file {v} was updated after the chargeback.",
    ),
    "ssn_dashed": (
        "Employee SSN: {v}.",
        "For the background check we received {v} from {name}.",
        "The W-2 lists social security number {v} for {name}.",
        "{name}, DOB {dob}, {v}, applied on {date}.",
        "Tax ID on the form is {v}; please verify before payroll runs.",
        "Record updated: {v} replaces the previous entry.",
    ),
    "ssn_context": (
        "SSN {v} was provided for the credit check.",
        "Her social security number is {v}.",
        "Please confirm SSN#{v} with the applicant.",
        "Social Security No. {v} on the enrollment form.",
        "SSN: {v}",
    ),
    "iban": (
        "Please wire the balance to IBAN {v} by Friday.",
        "Our bank details have changed: {v} ({bank}).",
        "Beneficiary account: {v}",
        "Refund to IBAN: {v}, reference {ref}.",
        "The supplier's new account is {v}, please update the vendor master.",
    ),
    "email": (
        "You can reach {name} at {v} for the contract questions.",
        "Send the signed copy to {v}.",
        "Contact: {name} <{v}>",
        "Forwarding this thread to {v} (mailto:{v2}) for follow-up.",
        "Her new address is {v}, the old one bounces.",
        "Invite {v} to the kickoff call.",
    ),
    "phone": (
        "Call {name} on {v} after 3pm.",
        "Mobile: {v}",
        "The customer's phone number is {v}.",
        "He left a voicemail, call back at {v}.",
        "Tel. {v} (office), ask for {first}.",
        "Reach the site manager at {v} if the delivery is late.",
    ),
    "phone_bare": (
        "Phone {v}",
        "Call back number: {v}",
        "tel {v}",
    ),
}

_NEGATIVE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "luhn-invalid-16": (
        "The card number {v} was rejected as invalid by the gateway.",
        "Reference {v} is attached to the dispute.",
        "Account ref: {v}",
    ),
    "order-number": (
        "Order #{v} shipped on {date}.",
        "Your order number is {v}.",
        "Re: order {v} - missing item",
    ),
    "tracking-ups": ("UPS tracking: {v}", "Shipped via UPS, tracking number {v}."),
    "tracking-fedex": ("FedEx tracking {v}", "The FedEx shipment {v} is delayed."),
    "timestamp-14": (
        "Batch {v} completed without errors.",
        "Log entry {v}: sync finished.",
        "Export_{v}.csv",
    ),
    "unix-epoch": ("Last login at epoch {v}.", "created_at={v}", "The token expires at {v}."),
    "invalid-ssn": (
        "The SSN {v} on the form is not a valid number; ask the applicant again.",
        "SSN: {v} (placeholder)",
    ),
    "bad-iban": ("IBAN {v} failed validation, please resend the correct one.", "Account (IBAN): {v}"),
    "version-string": (
        "Upgraded the agent to version {v}.",
        "Build {v} fixes the sync issue.",
        "Running v{v}.",
    ),
    "po-number": ("PO {v} approved by finance.", "Purchase order no. {v}", "PO# {v}"),
    "invoice-number": ("Invoice {v} is overdue.", "Please pay invoice no. {v} within 30 days."),
    "isbn": ("ISBN {v}", "The handbook (ISBN {v}) is on order."),
    "outlook-cid": ("[cid:{v}]",),
}

_NEGATIVE_MAKERS: dict[str, Callable[[_Values], str]] = {
    "luhn-invalid-16": _Values.luhn_invalid_16,
    "order-number": _Values.order_number,
    "tracking-ups": _Values.ups,
    "tracking-fedex": _Values.fedex,
    "timestamp-14": _Values.timestamp_14,
    "unix-epoch": _Values.epoch,
    "invalid-ssn": _Values.invalid_ssn,
    "bad-iban": _Values.bad_iban,
    "version-string": _Values.version,
    "po-number": _Values.po_number,
    "invoice-number": _Values.invoice_number,
    "isbn": _Values.isbn,
    "outlook-cid": _Values.outlook_cid,
}

_VALUE_KINDS = ("card", "ssn", "iban", "email", "phone")
_VALUE_WEIGHTS = (0.25, 0.2, 0.15, 0.2, 0.2)

_FILLER_TEMPLATES = (
    "{company} reported revenue of ${amount} in Q{q} {year}, up {pct}% year over year.",
    "The {dept} team will meet on {date} to review the {bs} roadmap.",
    "Shipment of {qty} units to {city} is scheduled for {date}.",
    "Please review the attached proposal before {weekday}.",
    "{name} from {company} confirmed the renewal terms.",
    "We expect to {bs} by the end of the quarter.",
    "The budget for {year} is ${amount}, of which {pct}% is already committed.",
    "Our office at {address} will be closed on {date}.",
    "Thanks again for your time on {weekday}; the slides are in the shared folder.",
    "{company} wants a discount of {pct}% on orders above {qty} units.",
    "Meeting notes: {catch}.",
    "Room {room} is booked from {hour}:00 to {hour2}:30.",
)

_CUSTOMER_COLUMNS = (
    ("First Name", "name-first"),
    ("Last Name", "name-last"),
    ("Email", "email"),
    ("Phone", "phone"),
    ("SSN", "ssn"),
    ("Card Number", "card"),
    ("IBAN", "iban"),
    ("Company", "company"),
    ("City", "city"),
    ("Created Date", "date"),
)

_ORDER_COLUMNS = (
    ("Order ID", "order-number"),
    ("Order Date", "date"),
    ("Tracking Number", "tracking"),
    ("Updated (epoch)", "unix-epoch"),
    ("Batch", "timestamp-14"),
    ("PO Number", "po-number"),
    ("Invoice", "invoice-number"),
    ("Amount", "amount"),
    ("Status", "status"),
)


class _Generator:
    """Builds documents while pacing true values and hard negatives to the density."""

    def __init__(self, seed: int, density: Density) -> None:
        if density not in _RATES:
            raise ValueError(f"density must be 'realistic' or 'dense', not {density!r}")
        self.rng = random.Random(seed)
        self.values = _Values(self.rng)
        self.density = density
        self.true_rate, self.neg_rate = _RATES[density]
        self.bytes = 0
        self.true_count = 0
        self.neg_count = 0
        self.neg_kinds: Counter[str] = Counter()
        fake = Faker("en_US")
        fake.seed_instance(seed)
        self.first = [fake.first_name() for _ in range(300)]
        self.last = [fake.last_name() for _ in range(300)]
        self.companies = [fake.company() for _ in range(200)]
        self.cities = [fake.city() for _ in range(200)]
        self.addresses = [fake.street_address() + ", " + fake.city() for _ in range(100)]
        self.bs = [fake.bs() for _ in range(300)]
        self.catch = [fake.catch_phrase() for _ in range(300)]
        self.sentences = [fake.sentence(nb_words=14) for _ in range(1500)]
        self.jobs = [fake.job() for _ in range(100)]
        self.banks = ["Deutsche Bank", "Barclays", "BNP Paribas", "Santander", "ING", "UBS", "KBC", "Nordea"]

    # pacing
    def want_value(self, builder: _Builder) -> bool:
        return self.true_count < (self.bytes + builder.pos) * self.true_rate + self.rng.uniform(-0.5, 0.5)

    def want_negative(self, builder: _Builder) -> bool:
        return self.neg_count < (self.bytes + builder.pos) * self.neg_rate + self.rng.uniform(-0.5, 0.5)

    # small pieces
    def name(self) -> str:
        return f"{self.rng.choice(self.first)} {self.rng.choice(self.last)}"

    def date(self) -> str:
        day = datetime(2023, 1, 1) + timedelta(days=self.rng.randrange(1200))
        return day.strftime(self.rng.choice(["%B %d, %Y", "%Y-%m-%d", "%m/%d/%Y", "%d %b %Y"]))

    def fill(self, template: str) -> str:
        rng = self.rng
        first = rng.choice(self.first)
        hour = rng.randint(8, 16)
        return template.format(
            company=rng.choice(self.companies),
            amount=f"{rng.randint(1, 999)},{rng.randint(0, 999):03d}.{rng.randint(0, 99):02d}",
            q=rng.randint(1, 4),
            year=rng.randint(2022, 2027),
            pct=rng.randint(2, 40),
            dept=rng.choice(["finance", "sales", "platform", "legal", "support", "marketing"]),
            date=self.date(),
            bs=rng.choice(self.bs),
            qty=rng.randint(5, 5000),
            city=rng.choice(self.cities),
            weekday=rng.choice(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]),
            name=self.name(),
            first=first,
            address=rng.choice(self.addresses),
            catch=rng.choice(self.catch).lower(),
            room=rng.randint(100, 950),
            hour=hour,
            hour2=hour + 1,
            exp=f"{rng.randint(1, 12):02d}/{rng.randint(26, 31)}",
            dob=f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/{rng.randint(1950, 2002)}",
            bank=rng.choice(self.banks),
            ref=f"REF{rng.randint(10000, 99999)}",
            v="{v}",
            v2="{v2}",
        )

    def filler(self) -> str:
        if self.rng.random() < 0.5:
            return self.rng.choice(self.sentences)
        return self.fill(self.rng.choice(_FILLER_TEMPLATES))

    def company_slug(self) -> str:
        words = self.rng.choice(self.companies).lower().replace(",", " ").replace("-", " ").split()
        return "".join(ch for ch in (words[0] if words else "acme") if ch.isalpha()) or "acme"

    def email_value(self) -> str:
        return self.values.email(self.rng.choice(self.first), self.rng.choice(self.last), self.company_slug())

    def plant_value(self, b: _Builder, kind: str | None = None) -> None:
        """Add one sentence holding one true value."""
        kind = kind or self.rng.choices(_VALUE_KINDS, weights=_VALUE_WEIGHTS)[0]
        if kind == "card":
            template, detector, value = (
                self.rng.choice(_VALUE_TEMPLATES["card"]),
                "credit-card",
                self.values.card(),
            )
        elif kind == "ssn":
            area, group, serial = self.values.ssn_parts()
            r = self.rng.random()
            if r < 0.6:
                template, value = self.rng.choice(_VALUE_TEMPLATES["ssn_dashed"]), f"{area}-{group}-{serial}"
            else:
                sep = "" if r < 0.9 else " "
                template, value = (
                    self.rng.choice(_VALUE_TEMPLATES["ssn_context"]),
                    sep.join((area, group, serial)),
                )
            detector = "us-ssn"
        elif kind == "iban":
            template, detector, value = self.rng.choice(_VALUE_TEMPLATES["iban"]), "iban", self.values.iban()
        elif kind == "email":
            template, detector, value = (
                self.rng.choice(_VALUE_TEMPLATES["email"]),
                "email-address",
                self.email_value(),
            )
        else:
            detector = "phone-number"
            if self.rng.random() < 0.1:
                template, value = (
                    self.rng.choice(_VALUE_TEMPLATES["phone_bare"]),
                    self.values.phone(bare_ok=True),
                )
            else:
                template, value = self.rng.choice(_VALUE_TEMPLATES["phone"]), self.values.phone()
        template = self.fill(template)
        if "{v2}" in template:
            before, _, after = template.partition("{v}")
            b.add(before)
            b.value(detector, value)
            mid, _, end = after.partition("{v2}")
            b.add(mid)
            b.value(detector, value)
            b.add(end)
            self.true_count += 2
            return
        b.template(template, ("value", detector), value)
        self.true_count += 1

    def plant_negative(self, b: _Builder, kind: str | None = None) -> None:
        """Add one sentence holding one hard negative."""
        if kind is None:
            # The least planted kind so far: every kind shows up even where CSV exports
            # already brought many negatives of a few kinds.
            low = min(self.neg_kinds[k] for k in NEGATIVE_KINDS[:-1])
            kind = self.rng.choice([k for k in NEGATIVE_KINDS[:-1] if self.neg_kinds[k] == low])
        self.neg_kinds[kind] += 1
        template = self.fill(self.rng.choice(_NEGATIVE_TEMPLATES[kind]))
        b.template(template, ("negative", kind), _NEGATIVE_MAKERS[kind](self.values))
        self.neg_count += 1

    def paragraph(self, b: _Builder, sentences: int) -> None:
        for i in range(sentences):
            if i:
                b.add(" ")
            if self.want_value(b):
                self.plant_value(b)
            elif self.want_negative(b):
                self.plant_negative(b)
            else:
                b.add(self.filler())

    # document kinds
    def prose(self) -> Doc:
        b = _Builder()
        b.add(self.rng.choice(self.catch).title() + "\n\n")
        for _ in range(self.rng.randint(3, 8)):
            self.paragraph(b, self.rng.randint(3, 7))
            b.add("\n\n")
        return b.doc("prose")

    def email(self) -> Doc:
        b = _Builder()
        b.add(f"Hi {self.rng.choice(self.first)},\n\n")
        for _ in range(self.rng.randint(2, 5)):
            self.paragraph(b, self.rng.randint(2, 6))
            b.add("\n\n")
        b.add(
            f"Best regards,\n{self.name()}\n{self.rng.choice(self.jobs)}\n{self.rng.choice(self.companies)}\n"
        )
        if self.want_value(b):
            b.add(self.rng.choice(["Tel: ", "Phone: ", "Direct: ", "M: ", ""]))
            b.value("phone-number", self.values.phone())
            b.add("\n")
            self.true_count += 1
        if self.want_value(b):
            b.value("email-address", self.email_value())
            b.add("\n")
            self.true_count += 1
        if self.rng.random() < 0.3:
            self.plant_negative(b, "outlook-cid")
            b.add("\n")
        if self.want_value(b):
            b.add(f"\nOn {self.date()}, {self.name()} <")
            b.value("email-address", self.email_value())
            self.true_count += 1
            b.add("> wrote:\n> ")
            b.add(self.filler() + "\n> " + self.filler() + "\n")
        return b.doc("email")

    def crm_note(self) -> Doc:
        b = _Builder()
        b.add(
            f"Account: {self.rng.choice(self.companies)}\nContact: {self.name()}\n"
            f"Date: {self.date()}\nOwner: {self.name()}\nCase #{self.rng.randint(10**7, 10**8 - 1):08d}\n\n"
        )
        self.paragraph(b, self.rng.randint(3, 9))
        b.add("\n")
        return b.doc("crm-note")

    def csv_customers(self) -> Doc:
        rng = self.rng
        wanted = [c for c in _CUSTOMER_COLUMNS if c[1] in ("name-first", "name-last") or rng.random() < 0.6]
        if not any(c[1] in ("email", "phone", "ssn", "card", "iban") for c in wanted):
            wanted.append(("Email", "email"))
        header = tuple(c[0] for c in wanted)
        b = _Builder()
        b.add(",".join(header) + "\n")
        rows = rng.randint(3, 8) if self.density == "realistic" else rng.randint(10, 30)
        for _ in range(rows):
            first, last = rng.choice(self.first), rng.choice(self.last)
            for i, (_, kind) in enumerate(wanted):
                if i:
                    b.add(",")
                self.csv_cell(b, kind, first, last)
            b.add("\n")
        return b.doc("csv", header)

    def csv_cell(self, b: _Builder, kind: str, first: str, last: str) -> None:
        rng, values = self.rng, self.values
        if kind == "name-first":
            b.add(first)
        elif kind == "name-last":
            b.add(last)
        elif kind == "company":
            b.add('"' + rng.choice(self.companies) + '"')
        elif kind == "city":
            b.add(rng.choice(self.cities))
        elif kind == "date":
            b.add(self.date() if "," not in (d := self.date()) else f'"{d}"')
        elif kind == "email":
            b.value("email-address", values.email(first, last, self.company_slug()))
            self.true_count += 1
        elif kind == "phone":
            b.value("phone-number", values.phone(bare_ok=True))
            self.true_count += 1
        elif kind == "ssn":
            if rng.random() < 0.05:
                self.plant_negative_raw(b, "invalid-ssn")
                return
            area, group, serial = values.ssn_parts()
            b.value("us-ssn", rng.choice(["-", ""]).join((area, group, serial)))
            self.true_count += 1
        elif kind == "card":
            b.value("credit-card", values.card_digits() if rng.random() < 0.7 else values.card())
            self.true_count += 1
        elif kind == "iban":
            b.value("iban", values.iban())
            self.true_count += 1

    def plant_negative_raw(self, b: _Builder, kind: str) -> None:
        b.negative(kind, _NEGATIVE_MAKERS[kind](self.values))
        self.neg_kinds[kind] += 1
        self.neg_count += 1

    def csv_orders(self) -> Doc:
        rng = self.rng
        wanted = [c for c in _ORDER_COLUMNS if c[1] in ("order-number", "amount") or rng.random() < 0.5]
        header = tuple(c[0] for c in wanted)
        b = _Builder()
        b.add(",".join(header) + "\n")
        for _ in range(rng.randint(3, 10)):
            for i, (_, kind) in enumerate(wanted):
                if i:
                    b.add(",")
                if kind == "date":
                    b.add(self.date().replace(",", ""))
                elif kind == "amount":
                    b.add(f"{rng.randint(1, 9999)}.{rng.randint(0, 99):02d}")
                elif kind == "status":
                    b.add(rng.choice(["shipped", "open", "cancelled", "delivered", "returned"]))
                elif kind == "tracking":
                    self.plant_negative_raw(b, rng.choice(["tracking-ups", "tracking-fedex"]))
                else:
                    self.plant_negative_raw(b, kind)
            b.add("\n")
        return b.doc("csv", header)

    def next_doc(self) -> Doc:
        kinds: tuple[Callable[[], Doc], ...]
        weights: tuple[float, ...]
        if self.density == "realistic":
            kinds = (self.prose, self.email, self.crm_note, self.csv_customers, self.csv_orders)
            weights = (0.3, 0.4, 0.2, 0.04, 0.02)
        else:
            kinds = (self.email, self.crm_note, self.csv_customers, self.csv_orders)
            weights = (0.35, 0.5, 0.1, 0.05)
        doc = self.rng.choices(kinds, weights=weights)[0]()
        self.bytes += len(doc.text.encode("utf-8"))
        return doc


def generate(seed: int, size_bytes: int, density: Density = "realistic") -> list[Doc]:
    """A deterministic labeled corpus of about `size_bytes` bytes (UTF-8) of documents.

    The same seed, size and density always give the same documents (for a given Faker
    version). Generation stops at the first document that reaches the size.
    """
    gen = _Generator(seed, density)
    docs: list[Doc] = []
    while gen.bytes < size_bytes:
        docs.append(gen.next_doc())
    return docs
