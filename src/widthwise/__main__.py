import sys

from widthwise.cli import main

sys.exit(main())
