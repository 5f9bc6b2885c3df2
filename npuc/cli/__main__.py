"""`python -m npuc.cli ...` is `npuc ...`."""

import sys

from . import main

sys.exit(main())
