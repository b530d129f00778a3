"""``python -m search.cli``: the `search` console command."""

import sys

from search.cli import main

sys.exit(main())
