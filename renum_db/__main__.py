import sys

from renum_db.cli import main

sys.exit(main())
