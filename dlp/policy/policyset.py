"""A loaded, validated set of policy packs and the one decision it makes per item.

`PolicySet.load` reads every `*.yaml` in the given folders and validates them as a
whole (rule ids unique across files). `decide` is pure and runs on every item:

- rules that are disabled, or whose sender is allowlisted, are skipped; allowlisted
  value hashes and recipients are removed before the rule's conditions look;
- a matching enforced `allow` rule is an exception and wins;
- otherwise the most severe action among matching enforced rules
  (block > quarantine > alert > allow), as Microsoft Purview resolves rules;
- `monitor` rules are reported with mode "monitor" and never change the action.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dlp.errors import PolicyError
from dlp.model import Action, Evidence, Finding, RuleMatch, ScanContext, Verdict
from dlp.policy.conditions import (
    EDM_PREFIX,
    Facts,
    domain_matches,
    domain_of,
    named_detectors,
    needs_findings,
)
from dlp.policy.deadlines import DEFAULT_DEADLINES
from dlp.policy.parse import Problems
from dlp.policy.rules import Pack, Rule, parse_pack
from dlp.policy.source import read_yaml

__all__ = ["PolicySet", "check_folders", "policy_files"]

_CONTEXT_WORDS = ("to ", "from ", "via ")
_GLOB = re.compile(r"[*?\[]")


def _rebuild(
    rules: tuple[Rule, ...],
    version: str,
    internal_domains: tuple[str, ...],
    deadlines: dict[str, int],
    files: tuple[Path, ...],
) -> PolicySet:
    return PolicySet(rules, version, internal_domains, MappingProxyType(deadlines), files)


def policy_files(folders: Sequence[Path]) -> list[Path]:
    """Every `*.yaml` file directly in the folders, in a stable order."""
    files: list[Path] = []
    for folder in folders:
        files.extend(sorted(p for p in Path(folder).glob("*.yaml") if p.is_file()))
    return files


def check_folders(
    folders: Sequence[Path], internal_domains: tuple[str, ...] = ()
) -> tuple[PolicySet | None, list[PolicyError]]:
    """Validate the folders as a whole: the set, or None and every error found."""
    problems = Problems()
    packs: list[Pack] = []
    digest = hashlib.sha256()
    for folder in folders:
        if not Path(folder).is_dir():
            problems.add(str(folder), None, None, "policy folder does not exist")
    files = policy_files(folders)
    if not files and not problems.errors:
        problems.add(", ".join(str(f) for f in folders), None, None, "no *.yaml policy files found")
    for path in files:
        try:
            document = read_yaml(path)
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        except PolicyError as exc:
            problems.errors.append(exc)
            continue
        pack = parse_pack(path, document, problems)
        if pack is not None:
            packs.append(pack)
    seen: dict[str, Rule] = {}
    for pack in packs:
        for rule in pack.rules:
            first = seen.setdefault(rule.id, rule)
            if first is not rule:
                problems.add(
                    rule.source,
                    rule.line,
                    "id",
                    f"duplicate rule id {rule.id!r} (first in {first.source}:{first.line})",
                )
    if problems.errors:
        return None, problems.errors
    deadlines = dict(DEFAULT_DEADLINES)
    overrides: dict[str, int] = {}
    for pack in packs:
        for name, hours in pack.deadlines.items():
            overrides[name] = min(hours, overrides.get(name, hours))
    deadlines.update(overrides)
    rules = tuple(rule for pack in packs for rule in pack.rules)
    return (
        PolicySet(
            rules=rules,
            version=digest.hexdigest()[:12],
            internal_domains=_domains(internal_domains),
            deadlines=MappingProxyType(deadlines),
            files=tuple(files),
        ),
        [],
    )


@dataclass(frozen=True)
class PolicySet:
    """Validated rules from every policy file, with a content hash as version."""

    rules: tuple[Rule, ...]
    version: str
    internal_domains: tuple[str, ...] = ()
    deadlines: Mapping[str, int] = field(default_factory=lambda: DEFAULT_DEADLINES)
    files: tuple[Path, ...] = ()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickle support: scan workers receive the very set the service validated,
        rather than re-reading files that may have changed since."""
        return _rebuild, (self.rules, self.version, self.internal_domains, dict(self.deadlines), self.files)

    @classmethod
    def load(cls, folders: Sequence[Path], internal_domains: tuple[str, ...] = ()) -> PolicySet:
        """Load and validate every `*.yaml` in the folders.

        Raises the first `PolicyError` (file, line, field); `check_folders` lists all.
        """
        policies, errors = check_folders(folders, internal_domains)
        if policies is None:
            raise errors[0]
        return policies

    def unknown_names(self, detectors: Collection[str], categories: Collection[str]) -> list[str]:
        """Warnings for rules that name a detector id or category nobody loaded: such a
        name (usually a typo) never matches. Globs and `edm:` ids are not checked."""
        out = []
        for rule in self.rules:
            names: set[str] = set()
            kinds: set[str] = set()
            for condition in (rule.when, rule.unless):
                if condition is not None:
                    found, found_kinds = named_detectors(condition)
                    names |= found
                    kinds |= found_kinds
            where = f"{rule.source}:{rule.line}: rule '{rule.id}'"
            for name in sorted(names):
                if name not in detectors and not name.startswith(EDM_PREFIX) and not _GLOB.search(name):
                    out.append(f"{where} names detector '{name}', which is not loaded")
            out.extend(
                f"{where} names category '{kind}', which no loaded detector has"
                for kind in sorted(kinds - set(categories))
            )
        return out

    @functools.cached_property
    def _rules_for_clean_items(self) -> tuple[Rule, ...]:
        """The rules whose `when` can hold for an item without findings."""
        return tuple(rule for rule in self.rules if not needs_findings(rule.when))

    def decide(self, evidence: Evidence, context: ScanContext) -> Verdict:
        """The one action for an item, with the rules that matched and why."""
        internal = self.internal_domains + _domains(context.internal_domains)
        base = Facts.of(evidence, context, evidence.findings, tuple(context.recipients), internal)
        sender = (context.sender or "").strip("<>").lower()
        matches: list[tuple[Rule, RuleMatch]] = []
        for rule in self.rules if evidence.findings else self._rules_for_clean_items:
            if not rule.enabled or (sender and rule.allow_senders and _listed(sender, rule.allow_senders)):
                continue
            facts = _facts_for(rule, base, internal)
            fragments = rule.when.test(facts)
            if fragments is None or (rule.unless is not None and rule.unless.test(facts) is not None):
                continue
            match = RuleMatch(
                rule_id=rule.id,
                action=rule.action,
                explanation=_sentence(fragments) or rule.description,
                mode=rule.mode,
                severity=rule.severity,
                regulations=rule.regulations,
                message=rule.message,
                notify=rule.notify,
            )
            matches.append((rule, match))
        return self._resolve(matches)

    def _resolve(self, matches: list[tuple[Rule, RuleMatch]]) -> Verdict:
        enforced = [(r, m) for r, m in matches if m.mode == "enforce"]
        excepted = any(m.action is Action.ALLOW for _, m in enforced)
        action = Action.ALLOW if excepted else max((m.action for _, m in enforced), default=Action.ALLOW)

        def order(pair: tuple[Rule, RuleMatch]) -> tuple[bool, bool, int, int, str]:
            """Enforced first; a winning exception first of all; then action, severity, id."""
            rule, match = pair
            deciding = excepted and match.action is Action.ALLOW
            return (match.mode != "enforce", not deciding, -int(match.action), -rule.severity_rank, rule.id)

        ordered = sorted(matches, key=order)
        message = None
        regulations: list[str] = []
        if action is not Action.ALLOW:
            for rule, match in ordered:
                if match.mode == "enforce" and match.action is not Action.ALLOW:
                    regulations.extend(r for r in rule.regulations if r not in regulations)
                    if message is None and match.action is action and match.message:
                        message = match.message
        deadlines = {r: self.deadlines[r] for r in regulations if r in self.deadlines}
        return Verdict(
            action=action,
            rules=tuple(m for _, m in ordered),
            regulations=tuple(regulations),
            message=message,
            deadlines=deadlines,
            policy_version=self.version,
        )


def _facts_for(rule: Rule, base: Facts, internal: tuple[str, ...]) -> Facts:
    if not rule.allow_hashes and not rule.allow_recipients:
        return base
    findings: tuple[Finding, ...] = base.evidence.findings
    if rule.allow_hashes:
        findings = tuple(f for f in findings if not _hash_listed(f.hash, rule.allow_hashes))
    recipients = base.recipients
    if rule.allow_recipients:
        recipients = tuple(r for r in recipients if not _listed(r.strip("<>").lower(), rule.allow_recipients))
    return Facts.of(base.evidence, base.context, findings, recipients, internal)


def _hash_listed(value: str, listed: frozenset[str]) -> bool:
    return value in listed or value.partition(":")[2] in listed


def _listed(address: str, entries: tuple[str, ...]) -> bool:
    """An address is listed by itself or by its domain (subdomains included)."""
    return address in entries or domain_matches(domain_of(address), [e for e in entries if "@" not in e])


def _domains(domains: Sequence[str]) -> tuple[str, ...]:
    return tuple(d.strip().lower().lstrip("@.") for d in domains if d.strip())


def _sentence(fragments: list[str]) -> str:
    """One line: what was found (comma-separated), then where it goes ("to ...")."""
    content = [f for f in fragments if not f.startswith(_CONTEXT_WORDS)]
    context = [f for f in fragments if f.startswith(_CONTEXT_WORDS)]
    return " ".join([", ".join(content), *context]).strip()
