"""Sub-commands of the ``stockcast`` CLI, one module per area, each exposing ``add_commands``."""
