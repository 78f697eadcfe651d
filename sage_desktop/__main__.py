"""Allow ``python -m sage_desktop``."""

from sage_desktop.cli import main

raise SystemExit(main())
