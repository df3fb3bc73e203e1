"""`python -m minidock` runs the CLI."""

from minidock.cli import main

raise SystemExit(main())
