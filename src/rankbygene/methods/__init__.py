"""The compared gene-guided training methods behind one interface.

A :class:`Method` says whether it keeps an EMA teacher, which augmentation the
student sees, which defaults it overrides (projection size, temperature) and how to
build its objective: a module mapping (student, gene, teacher) features to a dict of
named loss terms plus ``"total"``. New methods register with :func:`register_method`.
"""

from rankbygene.methods.registry import Method, get_method, list_methods, register_method

__all__ = ["Method", "get_method", "list_methods", "register_method"]
