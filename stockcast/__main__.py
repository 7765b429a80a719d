"""``python -m stockcast``: the same as the ``stockcast`` console command."""

from stockcast.cli import main

raise SystemExit(main())
