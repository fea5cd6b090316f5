"""`python -m personal_copilot …` is `pcopilot …` (the form `accelerate launch -m` needs)."""

import sys

from personal_copilot.cli import main

sys.exit(main())
