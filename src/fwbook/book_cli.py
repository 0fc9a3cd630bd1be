from .book import add_parser  # noqa: F401  (plugs `python -m fwbook book` into the CLI)
