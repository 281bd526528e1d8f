"""Policy files -> rules -> one verdict per item, with an explanation for each rule.

`PolicySet.load(folders, internal_domains)` validates every `*.yaml` in the folders;
`policies.decide(evidence, context)` returns the `Verdict`. `check_folders` lists every
error for `dlp policy check`; `dlp.policy.reload.PolicyReloader` swaps sets safely.
"""

from __future__ import annotations

from dlp.policy.policyset import PolicySet, check_folders, policy_files
from dlp.policy.rules import Rule

__all__ = ["PolicySet", "Rule", "check_folders", "policy_files"]
