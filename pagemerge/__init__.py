"""pagemerge: the application layer (the ``pagemerge`` command) on top of the libraries
``engine`` (the merge engine), ``claims`` (patents as data) and ``reports``."""
from engine._util import package_version

__version__ = package_version()
