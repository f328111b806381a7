"""The extension's logger, at the level given by --animatediff-loglevel."""

import logging

logger = logging.getLogger("animatediff")


def configure(level_name: str = "INFO"):
    logger.setLevel(getattr(logging, str(level_name).upper(), logging.INFO))
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[AnimateDiff] %(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    return logger
