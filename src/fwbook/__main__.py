import sys

from fwbook.cli.main import main

sys.exit(main())
