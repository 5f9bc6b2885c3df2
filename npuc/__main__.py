"""`python -m npuc ...` is `npuc ...`."""

import sys

from .cli import main

sys.exit(main())
