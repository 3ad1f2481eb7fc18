"""``python -m fitscribe``: the same as the ``fitscribe`` command."""

import sys

from fitscribe.cli import main

sys.exit(main())
