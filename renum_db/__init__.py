"""renum-db: the Postgres data layer of the Renum platform (thin typed API over SQL)."""

from renum_db.db import Database, act_as, user_claims

__all__ = ["Database", "__version__", "act_as", "user_claims"]
__version__ = "0.2.0"  # keep equal to pyproject.toml (tests/test_packaging.py)
