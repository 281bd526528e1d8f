"""Rule conditions: what a rule's `when` and `unless` test, and how each explains itself.

Each condition is a small frozen object with `test(facts)`, which returns `None` when
it does not hold and otherwise the fragments of a one-line explanation ("3 distinct
high-confidence credit-card values in attachment export.csv", "to external domain
example.org"). `dlp.policy.grammar` builds them from YAML.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from dlp.model import Confidence, Evidence, Finding, PartInfo, ScanContext

__all__ = [
    "AllOf",
    "AnyOf",
    "AttributeTest",
    "ChannelCondition",
    "ClientCondition",
    "Condition",
    "CrmCondition",
    "EdmCondition",
    "ExternalCondition",
    "Facts",
    "FindingsCondition",
    "FlagsCondition",
    "NotCondition",
    "OutboundCondition",
    "PartsCondition",
    "RecipientsCondition",
    "SenderCondition",
    "SizeCondition",
    "describe_part",
    "domain_matches",
    "domain_of",
    "named_detectors",
    "needs_findings",
]

CUSTOMER_LIST = "customer-list"
CRM_HEADER = "crm-export-header"
EDM_PREFIX = "edm:"
_BODY = re.compile(r"(^|/)body\[\d+\]$")


@dataclass(frozen=True)
class Facts:
    """What conditions look at for one item under one rule, prepared once per item.

    `groups` holds the findings by (detector, category) and `recipients` the recipients,
    both already reduced by the rule's allowlists (value hashes, recipients); `external`
    are the remaining recipients outside the internal domains.
    """

    evidence: Evidence
    context: ScanContext
    groups: Mapping[tuple[str, str], tuple[Finding, ...]]
    recipients: tuple[str, ...]
    external: tuple[str, ...]
    external_domains: tuple[str, ...]

    @classmethod
    def of(
        cls,
        evidence: Evidence,
        context: ScanContext,
        findings: Iterable[Finding],
        recipients: tuple[str, ...],
        internal: tuple[str, ...],
    ) -> Facts:
        """Group the findings and work out the external recipients once."""
        groups: dict[tuple[str, str], list[Finding]] = {}
        for finding in findings:
            groups.setdefault((finding.detector, finding.category), []).append(finding)
        external = tuple(r for r in recipients if not domain_matches(domain_of(r), internal))
        return cls(
            evidence=evidence,
            context=context,
            groups={key: tuple(group) for key, group in groups.items()},
            recipients=recipients,
            external=external,
            external_domains=tuple(sorted({domain_of(r) for r in external})),
        )

    def of_detector(self, detector: str) -> list[Finding]:
        """The findings of one detector."""
        return [f for (name, _), group in self.groups.items() if name == detector for f in group]


class Condition(Protocol):
    """A test on the facts: explanation fragments when it holds, else `None`."""

    def test(self, facts: Facts) -> list[str] | None:
        """Fragments of the explanation if the condition holds, otherwise None."""


@dataclass(frozen=True)
class AllOf:
    """Holds when every member holds; explains with all their fragments."""

    members: tuple[Condition, ...]

    def test(self, facts: Facts) -> list[str] | None:
        """Every member's fragments, or None at the first that fails."""
        out: list[str] = []
        for member in self.members:
            got = member.test(facts)
            if got is None:
                return None
            out.extend(got)
        return out


@dataclass(frozen=True)
class AnyOf:
    """Holds when one member holds; explains with the first that does."""

    members: tuple[Condition, ...]

    def test(self, facts: Facts) -> list[str] | None:
        """The first holding member's fragments, or None."""
        for member in self.members:
            got = member.test(facts)
            if got is not None:
                return got
        return None


@dataclass(frozen=True)
class NotCondition:
    """Holds when its member does not; adds nothing to the explanation."""

    member: Condition

    def test(self, facts: Facts) -> list[str] | None:
        """An empty explanation when the member fails, else None."""
        return [] if self.member.test(facts) is None else None


@dataclass(frozen=True)
class AttributeTest:
    """A comparison on one of a finding's attributes (`rows`, `records`, `system`)."""

    name: str
    minimum: int | None = None
    maximum: int | None = None
    values: tuple[str, ...] = ()

    def holds(self, finding: Finding) -> bool:
        """True when the finding has the attribute and it satisfies every bound."""
        value = finding.attributes.get(self.name)
        if value is None:
            return False
        if self.values and str(value).lower() not in self.values:
            return False
        if self.minimum is not None or self.maximum is not None:
            number = _as_int(value)
            if number is None:
                return False
            if self.minimum is not None and number < self.minimum:
                return False
            if self.maximum is not None and number > self.maximum:
                return False
        return True


@dataclass(frozen=True)
class FindingsCondition:
    """Findings by detector id (globs allowed) or category, confidence, attributes,
    with a minimum number of instances and of distinct values, per item or per part."""

    detectors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    min_confidence: Confidence = Confidence.LOW
    max_confidence: Confidence = Confidence.HIGH
    min_count: int = 1
    min_distinct: int = 0
    per_part: bool = False
    attributes: tuple[AttributeTest, ...] = ()
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.detectors:
            pattern = re.compile("|".join(fnmatch.translate(d) for d in self.detectors))
            object.__setattr__(self, "_pattern", pattern)

    def names(self, detector: str, category: str) -> bool:
        """Whether findings of this detector and category are looked at."""
        if not self.detectors and not self.categories:
            return True
        if category in self.categories:
            return True
        return self._pattern is not None and self._pattern.match(detector) is not None

    def keeps(self, finding: Finding) -> bool:
        """Whether one finding of a named detector counts (confidence, attributes)."""
        if not self.min_confidence <= finding.confidence <= self.max_confidence:
            return False
        return all(test.holds(finding) for test in self.attributes)

    def test(self, facts: Facts) -> list[str] | None:
        """An explanation of the best group (item, or the part) meeting the minimums."""
        selected = [
            f
            for (detector, category), group in facts.groups.items()
            if self.names(detector, category)
            for f in group
            if self.keeps(f)
        ]
        if not selected:
            return None
        groups: Iterable[list[Finding]]
        if self.per_part:
            by_part: dict[str, list[Finding]] = {}
            for finding in selected:
                by_part.setdefault(finding.location, []).append(finding)
            groups = sorted(by_part.values(), key=lambda g: -sum(f.count for f in g))
        else:
            groups = [selected]
        for group in groups:
            count = sum(f.count for f in group)
            distinct = len({f.hash for f in group})
            if count >= self.min_count and distinct >= self.min_distinct:
                return [self._explain(group, count, distinct)]
        return None

    def _explain(self, group: list[Finding], count: int, distinct: int) -> str:
        confidence = min(f.confidence for f in group).label
        names = _names(sorted({f.detector for f in group}))
        if self.min_distinct > 1:
            amount = f"{distinct} distinct"
            noun = "value" if distinct == 1 else "values"
        else:
            amount = str(count)
            noun = "value" if count == 1 else "values"
        return f"{amount} {confidence}-confidence {names} {noun} {_where(group)}"


@dataclass(frozen=True)
class EdmCondition:
    """Known customer records matched by an exact-data-match index (`edm:<index>`)."""

    index: str | None = None
    min_records: int = 1
    min_columns: int = 1

    def test(self, facts: Facts) -> list[str] | None:
        """Holds when enough records matched, each on at least `min_columns` columns: 20
        records matched on a name alone plus one on email + phone are 1 record for
        `min_columns: 2`, not 21."""
        counted = [
            (f, self._records(f))
            for (detector, _), group in facts.groups.items()
            if detector.startswith(EDM_PREFIX) and (self.index is None or detector == EDM_PREFIX + self.index)
            for f in group
        ]
        selected = [f for f, records in counted if records > 0]
        if not selected:
            return None
        records = sum(records for _, records in counted)
        if records < self.min_records:
            return None
        indexes = _names(sorted({f.detector[len(EDM_PREFIX) :] for f in selected}))
        columns = max(_as_int(f.attributes.get("columns", 1)) or 0 for f in selected)
        noun = "record" if records == 1 else "records"
        return [
            f"{records} known customer {noun} from EDM index {indexes} "
            f"(up to {columns} columns) {_where(selected)}"
        ]

    def _records(self, finding: Finding) -> int:
        """The finding's records matched on at least `min_columns` columns: none when even its
        best record has fewer, else its `records_min_columns_N` attribute (all its records
        when the attribute is absent or `min_columns` is 1)."""
        if (_as_int(finding.attributes.get("columns", 1)) or 0) < self.min_columns:
            return 0
        key = f"records_min_columns_{self.min_columns}"
        if self.min_columns >= 2 and key in finding.attributes:
            return _as_int(finding.attributes[key]) or 0
        return _as_int(finding.attributes.get("records", finding.count)) or 0


@dataclass(frozen=True)
class CrmCondition:
    """CRM signals: an export header seen (optionally from given systems) and/or a
    customer list with at least `min_rows` rows of personal data."""

    export_header: bool = False
    systems: tuple[str, ...] = ()
    min_rows: int | None = None

    def test(self, facts: Facts) -> list[str] | None:
        """Fragments for each signal asked for, or None if one is missing."""
        out: list[str] = []
        if self.export_header:
            headers = [
                f
                for f in facts.of_detector(CRM_HEADER)
                if not self.systems or str(f.attributes.get("system", "")).lower() in self.systems
            ]
            if not headers:
                return None
            systems = _names(sorted({str(f.attributes.get("system", "unknown")) for f in headers}))
            out.append(f"{systems} CRM export header {_where(headers)}")
        if self.min_rows is not None:
            lists = facts.of_detector(CUSTOMER_LIST)
            rows = sum(_as_int(f.attributes.get("rows", f.count)) or 0 for f in lists)
            if not lists or rows < self.min_rows:
                return None
            out.append(f"customer list with {rows} rows of personal data {_where(lists)}")
        return out


@dataclass(frozen=True)
class ChannelCondition:
    """The channel the item arrived on (`smtp`, `http`, `cli`)."""

    channels: tuple[str, ...]

    def test(self, facts: Facts) -> list[str] | None:
        """Holds for the listed channels."""
        return [f"via {facts.context.channel}"] if facts.context.channel in self.channels else None


@dataclass(frozen=True)
class SenderCondition:
    """The sender's address, or its domain (subdomains included)."""

    addresses: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()

    def test(self, facts: Facts) -> list[str] | None:
        """Holds when the sender is listed."""
        sender = (facts.context.sender or "").strip("<>").lower()
        if not sender:
            return None
        if sender in self.addresses or domain_matches(domain_of(sender), self.domains):
            return [f"from {domain_of(sender)}"]
        return None


@dataclass(frozen=True)
class RecipientsCondition:
    """Some recipient (or, with `every`, each recipient) is one of the addresses or in
    one of the domains."""

    addresses: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    every: bool = False

    def test(self, facts: Facts) -> list[str] | None:
        """Holds when a recipient is listed (every one, with `every`); names the domains."""
        hits = [
            r
            for r in facts.recipients
            if r.strip("<>").lower() in self.addresses or domain_matches(domain_of(r), self.domains)
        ]
        if not hits or (self.every and len(hits) != len(facts.recipients)):
            return None
        return ["to " + ", ".join(sorted({domain_of(r) for r in hits}))]


@dataclass(frozen=True)
class ExternalCondition:
    """`true`: a recipient is outside the internal domains; `false`: every recipient is
    inside. Never holds on a channel without recipients (HTTP uploads, CLI)."""

    external: bool

    def test(self, facts: Facts) -> list[str] | None:
        """Holds as described; names the external domains."""
        if not facts.recipients:
            return None
        if self.external and facts.external:
            domains = list(facts.external_domains)
            label = "domain" if len(domains) == 1 else "domains"
            return [f"to external {label} {_names(domains, ', ')}"]
        if not self.external and not facts.external:
            return ["to internal recipients only"]
        return None


@dataclass(frozen=True)
class OutboundCondition:
    """The item leaves, as far as the service can tell: `true` holds for mail with a
    recipient outside the internal domains and for every item on a channel without
    recipients (`http`, `cli`), whose destination the service cannot see; `false`
    holds for mail whose recipients are all internal."""

    outbound: bool

    def test(self, facts: Facts) -> list[str] | None:
        """Holds as described; names the external domains or the channel."""
        if not facts.context.recipients:
            if self.outbound:
                return [f"via {facts.context.channel} (destination not known)"]
            return None
        return ExternalCondition(self.outbound).test(facts)


@dataclass(frozen=True)
class ClientCondition:
    """The name of the HTTP caller (globs allowed)."""

    clients: tuple[str, ...]

    def test(self, facts: Facts) -> list[str] | None:
        """Holds when the client's name matches."""
        client = (facts.context.client or "").lower()
        if client and any(fnmatch.fnmatchcase(client, c) for c in self.clients):
            return [f"from client {client}"]
        return None


@dataclass(frozen=True)
class PartsCondition:
    """Some part has a listed (sniffed) type, name, extension or flag, and none of the
    excluded types; every criterion given must hold for the same part."""

    types: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    exclude_types: tuple[str, ...] = ()

    def holds(self, part: PartInfo) -> bool:
        """Whether one part satisfies every criterion given."""
        name = (part.name or "").lower()
        kind = part.type.lower()
        if self.types and not any(fnmatch.fnmatchcase(kind, t) for t in self.types):
            return False
        if any(fnmatch.fnmatchcase(kind, t) for t in self.exclude_types):
            return False
        if self.flags and not any(fnmatch.fnmatchcase(f, p) for f in part.flags for p in self.flags):
            return False
        if self.names and not any(fnmatch.fnmatchcase(name, n) for n in self.names):
            return False
        return not self.extensions or name.endswith(self.extensions)

    def test(self, facts: Facts) -> list[str] | None:
        """Names the first matching part."""
        for part in facts.evidence.parts:
            if self.holds(part):
                flags = [f for f in part.flags if any(fnmatch.fnmatchcase(f, p) for p in self.flags)]
                state = f" {'/'.join(flags)}" if flags else ""
                return [f"{describe_part(part.location)} ({part.type}){state}"]
        return None


@dataclass(frozen=True)
class SizeCondition:
    """The item's size in bytes is within bounds."""

    minimum: int | None = None
    maximum: int | None = None

    def test(self, facts: Facts) -> list[str] | None:
        """Holds within the bounds; states the size."""
        size = facts.evidence.item_size
        if self.minimum is not None and size < self.minimum:
            return None
        if self.maximum is not None and size > self.maximum:
            return None
        return [f"item of {size} bytes"]


@dataclass(frozen=True)
class FlagsCondition:
    """The item or one of its parts carries an extraction flag (globs: `limit:*`)."""

    flags: tuple[str, ...]

    def test(self, facts: Facts) -> list[str] | None:
        """Names the flag and the part that could not be fully scanned."""
        for part in facts.evidence.parts:
            for flag in part.flags:
                if self._matches(flag):
                    return [f"{flag} content in {describe_part(part.location)}"]
        for flag in facts.evidence.flags:
            if self._matches(flag):
                return [f"item flagged {flag}"]
        return None

    def _matches(self, flag: str) -> bool:
        return any(fnmatch.fnmatchcase(flag, pattern) for pattern in self.flags)


def domain_of(address: str) -> str:
    """The lower-case domain of an address (`<a@b.org>` -> `b.org`)."""
    return address.strip().strip("<>").rpartition("@")[2].lower().rstrip(".")


def domain_matches(domain: str, domains: Iterable[str]) -> bool:
    """Whether `domain` is one of `domains` or a subdomain of one."""
    return any(domain == d or domain.endswith("." + d) for d in domains)


def describe_part(location: str) -> str:
    """A short human name for a part: `message body`, `attachment export.csv`,
    `customers.csv in attachment export.zip`, else its location (a file's name)."""
    if _BODY.search(location):
        return "message body"
    if location.endswith("/headers") or location == "headers":
        return "message headers"
    sep, path = location.partition("attachment[")[1:]
    if sep and "]:" in path:
        path = path.partition("]:")[2]
        container, slash, member = path.partition("/")
        return f"{member.rpartition('/')[2]} in attachment {container}" if slash else f"attachment {path}"
    return location


def _where(findings: list[Finding]) -> str:
    """`in <part>`, `in <part> and <part>`, or `in N parts` for three or more."""
    locations = sorted({f.location for f in findings})
    if len(locations) <= 2:
        return "in " + " and ".join(describe_part(location) for location in locations)
    return f"in {len(locations)} parts"


def _names(names: list[str], sep: str = "/") -> str:
    if len(names) > 3:
        return sep.join(names[:3]) + f" and {len(names) - 3} more"
    return sep.join(names)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def named_detectors(condition: Condition) -> tuple[set[str], set[str]]:
    """The detector ids (or globs) and categories a condition names anywhere inside it,
    so `dlp policy check` can warn about names no loaded detector has."""
    detectors: set[str] = set()
    categories: set[str] = set()
    stack: list[Condition] = [condition]
    while stack:
        current = stack.pop()
        if isinstance(current, AllOf | AnyOf):
            stack.extend(current.members)
        elif isinstance(current, NotCondition):
            stack.append(current.member)
        elif isinstance(current, FindingsCondition):
            detectors.update(current.detectors)
            categories.update(current.categories)
        elif isinstance(current, CrmCondition):
            detectors.add(CRM_HEADER if current.export_header else CUSTOMER_LIST)
            if current.export_header and current.min_rows is not None:
                detectors.add(CUSTOMER_LIST)
    return detectors, categories


def needs_findings(condition: Condition) -> bool:
    """Whether `condition` can hold only for an item with findings (a findings, EDM or CRM
    test, or a combination that cannot hold without one), so that `decide` skips it for
    clean items, most mail, without testing it."""
    if isinstance(condition, FindingsCondition | EdmCondition):
        return True
    if isinstance(condition, CrmCondition):
        return condition.export_header or condition.min_rows is not None
    if isinstance(condition, AllOf):
        return any(needs_findings(member) for member in condition.members)
    if isinstance(condition, AnyOf):
        return all(needs_findings(member) for member in condition.members)
    return False
