"""``python -m curate.cli``: the ``repic`` command."""

from curate.cli import main

raise SystemExit(main())
