from __future__ import annotations

import sys

from callbox.cli import main

sys.exit(main())
