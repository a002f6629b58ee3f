"""``python -m reglab`` runs the command line."""

import sys

from reglab.cli.main import main

sys.exit(main())
