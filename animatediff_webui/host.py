"""The WebUI the extension runs in: AUTOMATIC1111 (v1.6–v1.10) or Forge
(`main`, the 2024 rewrite on A1111 1.10.1), and the few things that differ.

Both share the script API, the processing objects, the samplers' callbacks
and ldm's UNet layout, so the rest of the glue is shared. They differ in where
the UNet is, how the noise schedule is stored, which device and dtype the UNet
computes in, who moves the motion module between devices, how each model
evaluation reaches the injection (its forward wrap on A1111, Forge's model
function wrapper on Forge), whether a checkpoint is loaded and which request
fields load another model partway. Forge is told by its
`modules_forge` package, which its webui.py imports before any extension
loads; nothing of Forge's is imported on A1111, nor of A1111's ldm on Forge.
"""

import contextlib
import importlib.util
import os
import sys
from typing import NamedTuple

import torch
from modules import devices, sd_models, shared


def _is_forge() -> bool:
    if "modules_forge" in sys.modules:
        return True
    try:
        return importlib.util.find_spec("modules_forge") is not None
    except (ImportError, ValueError):
        return False


IS_FORGE = _is_forge()
NAME = "Forge" if IS_FORGE else "AUTOMATIC1111"
# Forge: bind_for_sampling sends each evaluation to the injection (its model
# function wrapper); A1111: the injection wraps the UNet's forward itself.
SENDS_EVALUATIONS = IS_FORGE


def loaded_model():
    """The loaded checkpoint's model, or None before one is loaded. Never
    `shared.sd_model`, whose reading loads the checkpoint. Forge holds a
    placeholder (FakeInitialModel) until its first load."""
    model = sd_models.model_data.sd_model
    if model is None or type(model).__name__ == "FakeInitialModel":
        return None
    return model


def next_checkpoint_file():
    """The checkpoint file the next generation runs on, where that is not the
    loaded one: Forge loads a checkpoint chosen in the settings at the start
    of the next generation, not when it is chosen. None on A1111 (it loads at
    once), or when not known."""
    if not IS_FORGE:
        return None
    info = getattr(sd_models.model_data, "forge_loading_parameters", {}).get("checkpoint_info")
    return getattr(info, "filename", None)


def model_change(p):
    """(field, allowed value) of the request field that makes Forge load
    another model partway through the sampling, or None (asked in process(),
    when p.sd_model is final). The rest of the video would run on a UNet
    without the motion module. A1111 loads another SD1.5 checkpoint's weights
    into the same UNet, which keeps it."""
    if not IS_FORGE:
        return None
    current = getattr(p.sd_model, "sd_checkpoint_info", None)
    refiner = getattr(p, "refiner_checkpoint_info", None)  # set by the WebUI before process()
    switch_at = getattr(p, "refiner_switch_at", None)
    if refiner is not None and (switch_at is None or switch_at < 1) and (
            current is None or refiner.filename != current.filename):
        return "refiner_checkpoint", "None"
    if not getattr(p, "enable_hr", False):
        return None
    name = getattr(p, "hr_checkpoint_name", None)
    if name and name != "Use same checkpoint":
        wanted = sd_models.get_closet_checkpoint_match(name)
        if wanted is None or current is None or wanted.filename != current.filename:
            return "hr_checkpoint_name", "Use same checkpoint"
    modules = getattr(p, "hr_additional_modules", None)
    if isinstance(modules, list) and "Use same choices" not in modules:
        from modules_forge import main_entry

        chosen = sorted(main_entry.module_list[os.path.basename(m)] for m in modules
                        if os.path.basename(m) in main_entry.module_list)
        if chosen != sorted(shared.opts.data.get("forge_additional_modules", [])):
            return "hr_additional_modules", "Use same choices"
    return None


def unet_of(sd_model):
    """The checkpoint's UNet module (ldm's layout on both), or None. On Forge
    every patcher clone of a batch shares this one module."""
    if sd_model is None:
        return None
    if IS_FORGE:
        patcher = getattr(getattr(sd_model, "forge_objects_original", None), "unet", None)
        return getattr(getattr(patcher, "model", None), "diffusion_model", None)
    return getattr(getattr(sd_model, "model", None), "diffusion_model", None)


class Placement(NamedTuple):
    device: torch.device
    dtype: torch.dtype
    fp8: bool
    low_vram: bool  # A1111's --lowvram/--medvram: the module waits on the CPU and goes along with its block


def module_placement(sd_model) -> Placement:
    """Where and in what the UNet computes, for the motion module."""
    if IS_FORGE:
        patcher = sd_model.forge_objects_original.unet
        return Placement(patcher.load_device, patcher.model.computation_dtype, False, False)
    low_vram = bool(getattr(sd_model, "lowvram", False))
    # The WebUI's FP8 weight option (devices.fp8) applies to our Linear layers too.
    return Placement(devices.cpu if low_vram else devices.device, devices.dtype_unet,
                     bool(getattr(devices, "fp8", False)), low_vram)


def bind_for_sampling(sd_model, module: torch.nn.Module, injection):
    """Forge (in process_before_every_sampling, on this sampling's UNet
    patcher): the motion module joins the sampling as an extra model, so
    Forge's memory manager counts it, moves it to the GPU when sampling starts
    and may move it out when something else needs the memory; and each model
    evaluation goes through the injection (context windows, step cache,
    ControlNet hints) as Forge's model function wrapper. Per sampling: Forge
    gives each sampling a fresh copy of the patchers. Returns what `unbind`
    takes (None on A1111, where the injection wraps the UNet's forward)."""
    if not IS_FORGE:
        return None
    objects = sd_model.forge_objects
    previous = objects.unet
    unet = previous.clone()  # the shared original keeps no trace of us
    patcher = _patcher(module, unet)
    earlier = unet.model_options.get("model_function_wrapper")
    wrapper = _evaluation(injection, unet.model.predictor, earlier)
    unet.add_extra_model_patcher_during_sampling(patcher)
    unet.set_model_unet_function_wrapper(wrapper)
    objects.unet = unet
    return objects, previous, unet, patcher, wrapper, earlier


def unbind(binding) -> None:
    """At the end of the run, take the motion module off the sampled patcher.
    The model's objects keep it until the next generation replaces them, and
    Forge's memory manager lists it until the next sampling: both after the
    next generation has loaded its module, so a swap of modules held both."""
    objects, previous, unet, patcher, wrapper, earlier = binding
    if objects.unet is unet:
        objects.unet = previous
    if unet.model_options.get("model_function_wrapper") is wrapper:
        if earlier is None:
            del unet.model_options["model_function_wrapper"]
        else:
            unet.model_options["model_function_wrapper"] = earlier
    extra = unet.extra_model_patchers_during_sampling
    extra[:] = [m for m in extra if m is not patcher]


def _evaluation(injection, predictor, earlier):
    """Forge's model function wrapper: `wrapper(apply_model, params)` for one
    batched evaluation (`params`: input, sigmas as `timestep`, conditioning
    `c`, cond_or_uncond). A wrapper set before ours (MultiDiffusion's) runs
    inside each window. A closure, not a bound method: Forge deep-copies
    model_options with each patcher clone, and a function is copied as is."""

    def unet_view(args, kwargs):
        # apply_model takes sigmas and c_crossattn; the step cache keys on the UNet's timesteps and context.
        return (predictor.timestep(args[0]).float(),), {"context": kwargs.get("c_crossattn"), "y": kwargs.get("y")}

    def wrapper(apply_model, params):
        cond_or_uncond = params.get("cond_or_uncond")

        def call(x, sigma, **c):
            if earlier is None:
                return apply_model(x, sigma, **c)
            return earlier(apply_model, {"input": x, "timestep": sigma, "c": c, "cond_or_uncond": cond_or_uncond})

        return injection.evaluate(call, params["input"], (params["timestep"],), params["c"], unet_view)

    return wrapper


def release(module: torch.nn.Module) -> None:
    """Forge: the memory manager forgets the motion module (before we drop it
    or move it ourselves; a module it still lists as on the GPU is never moved
    back). Nothing on A1111."""
    patcher = vars(module).get("_forge_patcher")
    if patcher is None:
        return
    from backend import memory_management

    memory_management.unload_model_clones(patcher)
    del module._forge_patcher
    # Forge's ModelPatcher gives the module a LoraLoader pointing back at it;
    # the cycle kept a dropped module in memory until Python's cycle collector
    # ran. A new patcher makes a new one.
    if getattr(vars(module).get("lora_loader"), "model", None) is module:
        del module.lora_loader


def is_managed(module) -> bool:
    """Whether Forge's memory manager lists the module as loaded now."""
    patcher = vars(module).get("_forge_patcher") if module is not None else None
    if patcher is None:
        return False
    from backend import memory_management

    return any(loaded.model is patcher for loaded in memory_management.current_loaded_models)


def _patcher(module, unet):
    # One patcher per module, kept with it: Forge recognises a loaded model by
    # its patcher, and treats one nobody else holds as abandoned.
    patcher = vars(module).get("_forge_patcher")
    if patcher is None or (patcher.load_device, patcher.offload_device) != (unet.load_device, unet.offload_device):
        from backend.patcher.base import ModelPatcher

        release(module)
        patcher = ModelPatcher(module, load_device=unet.load_device, offload_device=unet.offload_device)
        module._forge_patcher = patcher
    return patcher


@contextlib.contextmanager
def noise_schedule(sd_model, alphas_cumprod: torch.Tensor):
    """The motion module's training schedule while sampling, the checkpoint's
    after, also after an error. The WebUI's own schedule options (zero
    terminal SNR, A1111's downcast) stay on top of it."""
    apply, restore = (_forge_schedule if IS_FORGE else _a1111_schedule)(sd_model, alphas_cumprod)
    try:
        apply()
        yield
    finally:
        restore()


def terminal_alpha(sd_model) -> float:
    """ᾱ at the schedule's last timestep, as sampling uses it now (FreeInit
    noises its latents back to there)."""
    if IS_FORGE:
        sigma = sd_model.forge_objects.unet.model.predictor.sigmas[-1].double()
        return float(1 / (1 + sigma * sigma))
    return float(sd_model.alphas_cumprod[-1])


def _a1111_schedule(sd_model, alphas):
    """(apply, restore). WebUI >= 1.8 rebuilds alphas_cumprod from
    alphas_cumprod_original before each sample, so both are set; re-applying
    its override keeps the user's downcast / zero terminal SNR options on top."""
    saved = {name: getattr(sd_model, name) for name in ("alphas_cumprod", "alphas_cumprod_original")
             if hasattr(sd_model, name)}

    def apply():
        if hasattr(sd_model, "alphas_cumprod_original"):
            sd_model.alphas_cumprod_original = alphas.to(devices.device)
            sd_models.apply_alpha_schedule_override(sd_model, None)
        else:
            sd_model.alphas_cumprod = alphas.to(devices.device, sd_model.alphas_cumprod.dtype)

    def restore():
        for name, value in saved.items():
            setattr(sd_model, name, value)

    return apply, restore


def _forge_zero_terminal_snr(sd_model) -> bool:
    # Forge's processing.py rescales the sigmas around p.sample on this condition.
    config = getattr(sd_model, "model_config", None)
    return shared.opts.sd_noise_schedule == "Zero Terminal SNR" or bool(getattr(config, "ztsnr", False))


def _forge_schedule(sd_model, alphas):
    """(apply, restore). Forge keeps the schedule as the predictor's sigmas,
    read live by its samplers; DDIM/PLMS/UniPC copy sd_model.alphas_cumprod
    when created (img2img creates its sampler in p.init), so that copy follows."""
    predictor = sd_model.forge_objects.unet.model.predictor  # held: a reload mid-run swaps sd_model's objects
    saved_sigmas = predictor.sigmas
    saved_alphas = vars(sd_model).get("alphas_cumprod")

    def apply():
        sigmas = ((1 - alphas.double()) / alphas.double()).sqrt().float()
        if _forge_zero_terminal_snr(sd_model):
            from backend.modules.k_prediction import rescale_zero_terminal_snr_sigmas

            sigmas = rescale_zero_terminal_snr_sigmas(sigmas)
        predictor.set_sigmas(sigmas.to(saved_sigmas.device))
        if saved_alphas is not None:
            sd_model.alphas_cumprod = (1 / (sigmas * sigmas + 1)).to(saved_alphas.device)

    def restore():
        predictor.set_sigmas(saved_sigmas)
        if saved_alphas is not None:
            sd_model.alphas_cumprod = saved_alphas

    return apply, restore
