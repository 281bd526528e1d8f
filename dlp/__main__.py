"""`python -m dlp` runs the `dlp` command."""

from dlp.cli import main

raise SystemExit(main())
