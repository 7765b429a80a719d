"""The composition root: settings read from ``STOCKCAST_*`` variables and the ``stockcast`` CLI.

It may import every other package; nothing imports it (the ``__main__`` modules of ``web`` and
``scheduler`` are entry points and delegate here).
"""
