"""AnimateDiff axes in the WebUI's X/Y/Z plot, and grid cells showing frames.

The plot copies `p` for each cell and calls each axis's `apply` on the copy;
our apply stores the value in a dict on that copy (a new dict each time, so
cells never share one), and `before_process` lays it over the cell's
AnimateDiff args. Nothing is kept in module globals.

A cell's result goes into the grid image, which needs pictures: for grid
cells the videos are written as usual and the cell shows each video's first
frame (outputs.py).
"""

import dataclasses

from modules import scripts

from ..motion_module.request.axes import AXES, LABEL_PREFIX, axis, parse_values
from ..motion_module.request.params import check_cache_depth_value
from . import models
from .log import logger

ATTR = "animatediff_xyz"
XYZ_MODULES = ("xyz_grid.py", "scripts.xyz_grid")  # module name of the WebUI's script, by version
XYZ_TITLE = "X/Y/Z plot"


def _xyz_module():
    for data in scripts.scripts_data:
        if data.script_class.__module__ in XYZ_MODULES:
            return data.module
    return None


def _apply(name):
    def apply(p, value, values):
        setattr(p, ATTR, {**getattr(p, ATTR, {}), name: value})
    return apply


def _confirm(name):
    def confirm(p, values):
        parsed = parse_values(name, values)  # ParamError naming the parameter: the grid does not start
        if name == "deepcache_depth":  # its bound depends on the checkpoint, known now
            is_sdxl = bool(getattr(getattr(p, "sd_model", None), "is_sdxl", False))
            for depth in parsed:
                check_cache_depth_value(depth, is_sdxl)
    return confirm


def _choices(name, fixed):
    if name == "model":
        return lambda: models.available()
    return (lambda: list(fixed)) if fixed else None


def register():
    """Add the axes to the X/Y/Z plot (again after a UI reload, never twice)."""
    xyz = _xyz_module()
    if xyz is None:
        logger.debug("the X/Y/Z plot script is not loaded; no AnimateDiff axes")
        return
    xyz.axis_options[:] = [o for o in xyz.axis_options if not o.label.startswith(LABEL_PREFIX)]
    for name in AXES:
        ax = axis(name)
        xyz.axis_options.append(xyz.AxisOption(ax.label, ax.type, _apply(name), confirm=_confirm(name),
                                               choices=_choices(name, ax.choices)))


def axis_indexes(is_img2img: bool) -> dict:
    """{label: index} of our axes in the plot's type dropdown of one tab: the
    API takes axis types as these indexes (`script_args[0]` is the X type)."""
    xyz = _xyz_module()
    if xyz is None:
        return {}
    shown = [o for o in xyz.axis_options if type(o) is xyz.AxisOption or o.is_img2img == is_img2img]
    return {o.label: i for i, o in enumerate(shown) if o.label.startswith(LABEL_PREFIX)}


def with_axis_values(p, params):
    """`params` with this grid cell's AnimateDiff axis values laid over them
    (validated again as a whole: an overlap must still fit its context)."""
    values = getattr(p, ATTR, None)
    if not values:
        return params
    if not params.enable:
        logger.warning("X/Y/Z plot: the AnimateDiff axes have no effect while AnimateDiff is not enabled")
        return params
    return dataclasses.replace(params, **values)


def is_grid_cell(p) -> bool:
    """True while the X/Y/Z plot runs `p` as one of its cells."""
    args = getattr(p, "script_args", None) or ()
    runner = getattr(p, "scripts", None)
    index = args[0] if args and isinstance(args[0], int) else 0
    selectable = getattr(runner, "selectable_scripts", [])
    return 0 < index <= len(selectable) and selectable[index - 1].title() == XYZ_TITLE
