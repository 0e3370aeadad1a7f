"""The range of the store's integer columns, for the spec's models and the CLI's options.

``INTEGER`` is 32 bits on PostgreSQL: a priority or an attempt count outside
this range could be validated but never stored. Standard library only (no
imports at all): ``stockade submit`` checks its options with it before, or
without, loading the models.
"""

__all__ = ["STORE_INT_MAX", "STORE_INT_MIN"]

STORE_INT_MIN, STORE_INT_MAX = -(2**31), 2**31 - 1
