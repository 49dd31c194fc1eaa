"""Sub-commands of the ``lorsa`` command line, one module per family; each exposes ``register(subparsers)``."""

COMMAND_MODULES = ("demo", "reproduce", "data_io", "evaluate")
