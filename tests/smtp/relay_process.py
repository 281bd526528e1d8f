"""A relay in its own process (for the crash test): prints its port, serves until killed.

Usage: python -m tests.smtp.relay_process STATE_DIR NEXT_HOP [PORT]
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from dlp.config import Settings, SmtpSettings
from dlp.smtp.relay import Relay
from dlp.store import open_store


async def main(state_dir: Path, next_hop: str, port: int) -> None:
    """Start a pass-through relay and wait for ever."""
    settings = Settings(
        state_dir=state_dir,
        smtp=SmtpSettings(
            listen=f"127.0.0.1:{port}",
            next_hop=next_hop,
            hostname="relay.test",
            next_hop_tls="none",
            scan=False,
        ),
    )
    relay = Relay(settings, None, open_store(settings))
    await relay.start()
    print(relay.port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0))
