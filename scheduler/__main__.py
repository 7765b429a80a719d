"""``python -m scheduler``: a scheduler/worker node. An entry point, so it hands over to the
composition root, which reads the settings and builds the node's configuration.

The guard matters: training runs in anyio worker processes, which re-run the parent's main module
(as ``__mp_main__``) to mirror its imports; unguarded, each would start a scheduler of its own.
"""

import sys

if __name__ == "__main__":
    from stockcast.cli import main

    raise SystemExit(main(["scheduler", *sys.argv[1:]]))
