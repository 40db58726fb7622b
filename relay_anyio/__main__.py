"""``python -m relay_anyio``: the same command line as ``relay``."""

import sys

from ._cli import main

sys.exit(main())
