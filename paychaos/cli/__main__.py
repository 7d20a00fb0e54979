"""``python -m paychaos.cli``: the same as the ``paychaos`` command."""

import sys

from paychaos.cli import main

sys.exit(main())
