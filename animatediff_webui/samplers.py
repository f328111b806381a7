"""An LCM sampler for WebUI versions that have none (1.6, 1.7). From 1.8 on
the WebUI has its own "LCM", and nothing is added."""

from ..motion_module.lcm import sample_lcm
from .log import logger

NAME = "LCM"


def register() -> bool:
    """Add "LCM" to the sampler list if it is missing; True if added."""
    from modules import sd_samplers, sd_samplers_common, sd_samplers_kdiffusion

    if NAME in sd_samplers.all_samplers_map:
        return False
    data = sd_samplers_common.SamplerData(
        NAME, lambda model: sd_samplers_kdiffusion.KDiffusionSampler(sample_lcm, model), ["lcm"], {})
    sd_samplers.all_samplers.append(data)
    sd_samplers.all_samplers_map[NAME] = data
    sd_samplers.set_samplers()
    logger.info("added the LCM sampler (this WebUI version has none)")
    return True
