"""dlp: a data-loss-prevention scanning service (SMTP relay, HTTP API, CLI).

The core pipeline is `item -> extract -> detect -> decide`; see `dlp.pipeline`.
"""

__version__ = "0.1.0"
