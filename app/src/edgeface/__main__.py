"""`python -m edgeface` runs the command line."""

from edgeface.cli import main

raise SystemExit(main())
