"""Sub-commands of `dlp`: each module defines `register(subparsers)`."""
