"""`python -m chimera_tui` is the same as the `chimera-tui` command."""

from chimera_tui.cli import main

raise SystemExit(main())
