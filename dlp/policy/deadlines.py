"""Notification clocks per regulation, in hours, shown to responders on incidents.

These are the defaults a pack may override with a top-level `deadlines:` mapping.
Sources as known (see policies/README.md): GDPR Art. 33(1) 72 hours to the supervisory
authority; HIPAA Breach Notification Rule 45 CFR 164.404 without unreasonable delay and
no later than 60 days; PCI DSS has no clock of its own, the card brands' rules (e.g.
Mastercard's Security Rules and Procedures) expect notice within 24 hours; GLBA Safeguards Rule
16 CFR 314.4(j) 30 days to the FTC (500 or more consumers). CCPA/California Civil Code
1798.82 says "in the most expedient time possible and without unreasonable delay": no
fixed number, so no clock is set for `ccpa`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["DEFAULT_DEADLINES"]

DEFAULT_DEADLINES: Mapping[str, int] = MappingProxyType(
    {
        "gdpr": 72,
        "hipaa": 60 * 24,
        "pci-dss": 24,
        "glba": 30 * 24,
    }
)
