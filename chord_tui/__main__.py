import sys

from chord_tui.cli import main

sys.exit(main())
