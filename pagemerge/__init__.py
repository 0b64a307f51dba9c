"""pagemerge: the application layer (the ``pagemerge`` command) on top of the libraries
``engine`` (the merge engine), ``claims`` (patents as data) and ``reports``."""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("pagemerge")
except PackageNotFoundError:      # running from a checkout that is not installed
    __version__ = "0+unknown"
