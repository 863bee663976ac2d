"""The facade's explicit delegation: a composed area logic's public names become the facade's own.

``delegate(AISegmentationLogic, "ai", AILogic)`` gives the facade every name in ``AILogic.FACADE_API``: methods
that call ``self.ai.<name>`` (same signature and docstring, so help() and the widget contract test see them),
static methods as they are, and properties / plain attributes that read and assign ``self.ai.<name>``.
"""

import functools
import inspect


def _method(area, name, function):
    @functools.wraps(function)
    def method(self, *args, **kwargs):
        return getattr(getattr(self, area), name)(*args, **kwargs)

    return method


def _property(area, name, doc=None):
    def get(self):
        return getattr(getattr(self, area), name)

    def set(self, value):
        setattr(getattr(self, area), name, value)

    return property(get, set, doc=doc)


def delegate(facadeClass, area, areaClass, names=None):
    """Add areaClass's names (default: its FACADE_API) to facadeClass, served by the attribute `area` of the facade.

    ValueError when the facade already has one of them (delegation never hides the facade's own methods)."""
    for name in names if names is not None else areaClass.FACADE_API:
        if name in vars(facadeClass):
            raise ValueError(f"{facadeClass.__name__}.{name} exists already; it cannot be delegated to {area}")
        member = inspect.getattr_static(areaClass, name, None)
        if isinstance(member, staticmethod):
            setattr(facadeClass, name, member)
        elif inspect.isfunction(member):
            setattr(facadeClass, name, _method(area, name, member))
        else:  # a property, or an attribute set in the area's constructor
            setattr(facadeClass, name, _property(area, name, member.__doc__ if isinstance(member, property) else None))
    return facadeClass
