"""The merge engine: one model of the memory indirection chain and the mechanisms on it."""
from . import _jitcache

_jitcache.refresh()       # before any compiled module is loaded: a stale numba cache is dropped
