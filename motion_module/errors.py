"""Exceptions raised by the motion-module engine.

Every error a user can trigger derives from ValueError, so callers (the WebUI
script, the API layer, the demo) can turn it into a clear message without
catching unrelated bugs.
"""


class MotionModuleError(ValueError):
    """Base class for problems with a motion module or its use."""


class CheckpointError(MotionModuleError):
    """A file is unreadable, unsafe, or not a motion module."""


class IncompatibleUNetError(MotionModuleError):
    """The motion module does not fit the UNet it is injected into."""


class FrameCountError(MotionModuleError):
    """More frames in one attention call than the position encoding covers."""


class ParamError(ValueError):
    """A request value was rejected; ``field`` names the offending key."""

    def __init__(self, field: str, message: str):
        super().__init__(f"AnimateDiff: {message}")
        self.field = field
        # Where the WebUI's API error handler looks for the answer's status and detail.
        self.status_code = 422
        self.detail = str(self)
