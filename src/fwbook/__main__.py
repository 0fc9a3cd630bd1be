"""``python -m fwbook COMMAND ...``: the same as the ``fwbook`` script."""

import sys

from fwbook.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
