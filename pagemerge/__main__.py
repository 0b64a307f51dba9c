import sys

from pagemerge.cli import main

sys.exit(main())
