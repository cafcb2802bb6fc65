"""cleanjoin: privacy-safe joins between organizations (data clean rooms) on PySpark.

Example:
    >>> import cleanjoin
    >>> cleanjoin.__version__
    '0.1.0'
"""

from __future__ import annotations

from cleanjoin.errors import CleanJoinError
from cleanjoin.session import ConnectServer, local_spark

__version__ = "0.1.0"

__all__ = ["CleanJoinError", "ConnectServer", "__version__", "local_spark"]
