"""``python -m web``: the API process. An entry point, so it hands over to the composition root,
which reads the settings and builds the app; nothing else in ``web`` knows the root exists."""

import sys

from stockcast.cli import main

raise SystemExit(main(["api", *sys.argv[1:]]))
