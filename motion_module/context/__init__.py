"""Context windows for videos longer than the motion module's context:
which frames each pass sees (`plan`), how overlapping outputs combine
(`fuse`), and running one UNet call window by window (`runner`)."""

from .fuse import FUSES, WindowAccumulator, fuse_windows
from .plan import CLOSED_LOOP_MODES, ContextOptions, context_windows, ordered_halving, stride_levels
from .runner import WindowRunner

__all__ = ["CLOSED_LOOP_MODES", "ContextOptions", "FUSES", "WindowAccumulator", "WindowRunner", "context_windows",
           "fuse_windows", "ordered_halving", "stride_levels"]
