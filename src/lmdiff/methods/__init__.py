"""Diff methods, registered by name (``@register_method``); ``lmdiff diff --methods a,b`` runs them."""

from lmdiff.methods.base import DiffMethod, MethodContext, MethodResult
from lmdiff.methods.registry import available_methods, get_method, register_method

__all__ = [
    "DiffMethod",
    "MethodContext",
    "MethodResult",
    "available_methods",
    "get_method",
    "register_method",
]
