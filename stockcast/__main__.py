"""``python -m stockcast``: the same as the ``stockcast`` console command."""

from stockcast.cli import main

# Guarded: anyio's training worker processes re-run the parent's main module as __mp_main__.
if __name__ == "__main__":
    raise SystemExit(main())
