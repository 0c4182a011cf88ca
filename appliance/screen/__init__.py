"""The screen: the compositor lays played streams out and draws to an output.

:class:`Compositor` takes decoded frames from players and composes the screen
(layout in :mod:`~appliance.screen.layout`); :func:`open_output` opens KMS, a
framebuffer, a desktop window or nothing, whichever is configured.
"""

from .compositor import Compositor, ScreenState
from .display import open_output

__all__ = ["Compositor", "ScreenState", "open_output"]
