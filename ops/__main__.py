"""`python -m ops` is the `citycases` command."""

import sys

from ops.cli import main

sys.exit(main())
