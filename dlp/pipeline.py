"""The core every channel shares: scan(item) = decide(detect(extract(item))).

Pure apart from reading the item: channels (SMTP, HTTP, CLI) carry out the verdict.
A `Scanner` is built once per process (or worker) from the settings and reused.
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from dlp.config import Settings
from dlp.detect import Candidate, Engine
from dlp.edm import EdmMatcher, edm_folder, edm_key_path
from dlp.errors import ConfigError
from dlp.extract import extract
from dlp.extract.mail import HEADERS_PART
from dlp.extract.members import CUT_MARK, location_segment
from dlp.keys import load_or_create_key
from dlp.model import (
    Evidence,
    Finding,
    Item,
    Limits,
    Part,
    PartInfo,
    ScanContext,
    ScanResult,
    new_id,
)
from dlp.policy import PolicySet

__all__ = ["Scanner", "builtin_folder", "hash_key_path", "policy_folders"]

TIME_FLAG = "limit:time"
NAMES_PART = "names"
"""The piece of an item that holds its own and its members' names, where values found only
in those names are located: `upload.csv#names`."""
_MAX_NAMED = 1000
_MIN_VALUE = 4
_MAX_VALUE = 256
_AFTER_CUT = re.compile(f"(^|[/#:]){CUT_MARK}.{{0,{_MAX_VALUE - 1}}}", re.DOTALL)
MAX_FINDINGS_PER_DETECTOR = 1000
"""A 1 GiB export can hold millions of e-mail addresses; a result keeps the first
thousand of each detector. Policy thresholds sit far below it, so decisions do not change."""


def builtin_folder(name: str) -> Path:
    """Where the shipped `detectors/` or `policies/` folder is: inside the installed
    package (wheel, container) or at the top of a source checkout."""
    packaged = Path(__file__).parent / "builtin" / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / name


def hash_key_path(state_dir: Path) -> Path:
    """The key file for finding hashes under the state folder."""
    return state_dir / "keys" / "finding-hash.key"


@dataclass(frozen=True)
class Scanner:
    """A compiled engine, a policy set, extraction limits and (when the installation has
    indexes) the exact-data-match matcher, ready to scan items."""

    engine: Engine
    policies: PolicySet
    limits: Limits = field(default_factory=Limits)
    edm: EdmMatcher | None = None

    @classmethod
    def from_settings(cls, settings: Settings, policies: PolicySet | None = None) -> Scanner:
        """Build the scanner an installation runs: built-in plus configured detectors,
        the configured policy folders, the configured limits and the installation's key."""
        key = load_or_create_key(hash_key_path(settings.state_dir))
        engine = Engine.from_folders(_with_builtin("detectors", settings.detectors), hash_key=key)
        if policies is None:
            policies = PolicySet.load(policy_folders(settings), internal_domains=settings.internal_domains)
        edm = None
        if any(edm_folder(settings.state_dir).glob("*.edm")):
            secret = load_or_create_key(edm_key_path(settings.state_dir))
            edm = EdmMatcher.load(edm_folder(settings.state_dir), secret, key)
        return cls(engine=engine, policies=policies, limits=settings.limits.to_limits(), edm=edm)

    def with_policies(self, policies: PolicySet) -> Scanner:
        """The same scanner with another policy set (reload swaps whole sets)."""
        return Scanner(engine=self.engine, policies=policies, limits=self.limits, edm=self.edm)

    def scan(
        self, item: Item, context: ScanContext | None = None, max_seconds: float | None = None
    ) -> ScanResult:
        """Extract, detect and decide one item; never raises on hostile content.

        `max_seconds` tightens the time limit for this scan: a channel with a deadline of
        its own (the relay's per-message one) gets a result flagged `limit:time` before
        that deadline instead of no result at all."""
        context = context or ScanContext()
        limits = self.limits
        if max_seconds is not None and max_seconds < limits.max_seconds:
            limits = dataclasses.replace(limits, max_seconds=max_seconds)
        started = time.monotonic()
        deadline = started + limits.max_seconds
        parts: dict[str, PartInfo] = {}
        findings: list[Finding] = []
        overall: set[str] = set()
        per_detector: dict[str, int] = {}
        named: dict[str, str] = {}
        for part in extract(item, limits):
            seen = parts.get(part.location)
            if seen is None:
                parts[part.location] = part.info()
            elif not set(part.flags) <= set(seen.flags):
                merged = tuple(sorted(set(seen.flags) | set(part.flags)))
                parts[part.location] = PartInfo(seen.location, seen.type, seen.size, merged, seen.name)
            if self.edm is not None:
                values: list[Candidate] = []
                found = self.engine.detect(part, values, self.edm.run_counts)
                found.extend(self.edm.detect(part, values))
            else:
                found = self.engine.detect(part)
            if found and part.location.rpartition("/")[2] == HEADERS_PART:
                _collect_values(part, found, named)
            _keep_bounded(found, findings, per_detector)
            if time.monotonic() > deadline:
                overall.add(TIME_FLAG)
                break
        self._detect_in_names(item, parts, findings, named)
        part_infos, findings = _mask_names(tuple(parts.values()), findings, named)
        item_name = None if item.name is None else _masked(item.name, named)
        for info in part_infos:
            overall.update(info.flags)
        flags = tuple(sorted(overall))
        evidence = Evidence(
            item_name=item_name,
            item_size=item.size,
            parts=part_infos,
            findings=tuple(findings),
            flags=flags,
        )
        verdict = self.policies.decide(evidence, context)
        return ScanResult(
            id=new_id(),
            verdict=verdict,
            parts=part_infos,
            findings=evidence.findings,
            flags=flags,
            item_size=evidence.item_size,
            item_name=item_name,
            duration_seconds=time.monotonic() - started,
        )

    def _detect_in_names(
        self, item: Item, parts: dict[str, PartInfo], findings: list[Finding], named: dict[str, str]
    ) -> None:
        """Detect in the item's own name, its members' names and the segments of their
        locations (an upload, a ZIP member or a folder in a ZIP called `card 4111 1111 1111
        1111`): the values found are masked wherever the names appear (locations, names,
        explanations), and are findings at `<item>#names` unless the scan already found
        the same value (a mail's attachment names are already in its `headers` part)."""
        names = {info.name for info in parts.values() if info.name}
        names.update(segment for info in parts.values() for segment in info.location.split("/"))
        if item.name:
            names.add(item.name)
        text = "\n".join(sorted(names))
        if not text:
            return
        location = f"{location_segment(item.name) if item.name else 'item'}#{NAMES_PART}"
        part = Part(location, "text/plain", len(text.encode("utf-8", "surrogatepass")), text)
        found = self.engine.detect(part)
        if not found:
            return
        _collect_values(part, found, named)
        known = {finding.hash for finding in findings}
        new = [finding for finding in found if finding.hash not in known]
        if new:
            parts[location] = part.info()
            findings.extend(new)


def _masked(text: str, named: dict[str, str]) -> str:
    """`text` with every detected value in `named` replaced by its masked preview, and
    with what follows each `CUT_MARK` that starts a name or a location segment (a name
    cut to its end) dropped up to the longest value masked: a value cut in two there is
    too short to detect."""
    for raw, preview in named.items():
        if raw in text:
            text = text.replace(raw, preview)
    if CUT_MARK in text:
        text = _AFTER_CUT.sub(lambda match: match.group(1) + CUT_MARK, text)
    return text


def _collect_values(part: Part, found: list[Finding], named: dict[str, str]) -> None:
    """Raw values detected in a mail's `headers` part (which carries the attachment file
    names) and their masked previews, for `_mask_names`; at most `_MAX_NAMED`."""
    for finding in found:
        if len(named) >= _MAX_NAMED:
            return
        if finding.count == 1 and 0 < finding.end - finding.start <= _MAX_VALUE:
            raw = part.text[finding.start - part.offset : finding.end - part.offset]
            if len(raw) >= _MIN_VALUE:
                named[raw] = finding.preview


def _mask_names(
    parts: tuple[PartInfo, ...], findings: list[Finding], named: dict[str, str]
) -> tuple[tuple[PartInfo, ...], list[Finding]]:
    """Part locations and names with each detected value replaced by its masked preview
    and the pieces next to a cut dropped (`_masked`): an attachment named `card 4111 1111
    1111 1111.txt` is found through the `headers` part, and its location and name reach
    API responses, incidents and logs."""
    renamed: dict[str, str] = {}
    masked = []
    for info in parts:
        location = _masked(info.location, named)
        name = None if info.name is None else _masked(info.name, named)
        if location != info.location or name != info.name:
            renamed[info.location] = location
            info = PartInfo(location, info.type, info.size, info.flags, name)
        masked.append(info)
    if renamed:
        findings = [
            dataclasses.replace(f, location=renamed[f.location]) if f.location in renamed else f
            for f in findings
        ]
    return tuple(masked), findings


def _keep_bounded(found: list[Finding], findings: list[Finding], per_detector: dict[str, int]) -> None:
    for finding in found:
        kept = per_detector.get(finding.detector, 0)
        if kept < MAX_FINDINGS_PER_DETECTOR:
            per_detector[finding.detector] = kept + 1
            findings.append(finding)


def policy_folders(settings: Settings) -> list[Path]:
    """The configured policy folders; the shipped packs when the default `./policies`
    does not exist (running from outside a checkout). A missing configured folder is an
    error, not a silent fallback."""
    folders = []
    for folder in settings.policies:
        if folder.is_dir():
            folders.append(folder)
        elif folder == Path("./policies"):
            folders.append(builtin_folder("policies"))
        else:
            raise ConfigError(f"policy folder {folder} does not exist")
    return folders


def _with_builtin(kind: str, folders: tuple[Path, ...]) -> list[Path]:
    builtin = builtin_folder(kind).resolve()
    out = [builtin]
    for folder in folders:
        if folder.resolve() != builtin and folder.is_dir():
            out.append(folder)
    return out
