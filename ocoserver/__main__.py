import sys

from ocoserver.cli import main

sys.exit(main())
