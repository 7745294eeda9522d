"""``python -m lmodp_core``: the ``lmodp`` command line."""

from .cli import main

raise SystemExit(main())
