"""Fixtures for the suite that talks to a running WebUI over HTTP.

Set SD_WEBUI_URL (e.g. http://127.0.0.1:7860) to a WebUI (A1111 v1.10.x or
Forge `main`) started with --api and this extension installed, on the same machine (the suite writes
random motion modules into a folder and points the extension at it). Without
SD_WEBUI_URL every test here is skipped.
SD_WEBUI_TEST_MM_DIR keeps the generated modules between runs (optional).
SD_WEBUI_CKPT_B names a second checkpoint for the switch test (optional).
"""

import functools
import os

import pytest

URL = os.environ.get("SD_WEBUI_URL", "").rstrip("/")
KINDS = ("v1", "v2", "v3", "animatelcm")
CN_MODEL = os.environ.get("SD_WEBUI_CONTROLNET_MODEL", "control_v11p_sd15_rand")


@pytest.fixture(scope="session")
def webui():
    import requests

    from urllib3.util.retry import Retry

    session = requests.Session()
    # A kept-alive connection the server has just closed answers a reset
    # (seen on Forge, whose server closes idle ones sooner); a GET is sent again.
    session.mount("http://", requests.adapters.HTTPAdapter(max_retries=Retry(
        total=2, connect=2, read=2, allowed_methods={"GET"}, raise_on_status=False)))

    class Client:
        url = URL

        def get(self, path, **kw):
            return session.get(URL + path, timeout=600, **kw)

        def post(self, path, json=None, **kw):
            if self.forge and path in ("/sdapi/v1/txt2img", "/sdapi/v1/img2img") and isinstance(json, dict):
                json = forge_api_workarounds(json)
            r = session.post(URL + path, json=json, timeout=1200, **kw)
            if self.forge and r.status_code >= 400:
                # Forge runs its API without A1111's error middleware: for an
                # error raised in a route (a 422 from a script hook too) the
                # server answers, re-raises, and then drops the connection,
                # so the next request must not reuse it.
                session.close()
            return r

        @functools.cached_property
        def forge(self):
            """True on Forge: the extension's status names the WebUI it runs in."""
            return self.get("/animatediff/v1/status").json().get("webui") == "Forge"

        def skip_on_forge(self, why):
            if self.forge:
                pytest.skip(f"not on Forge: {why}")

        def skip_on_a1111(self, why):
            if not self.forge:
                pytest.skip(f"not on AUTOMATIC1111: {why}")

        def flags(self):
            """The WebUI's paths and flags. Forge main cannot answer
            /sdapi/v1/cmd-flags (its response model wants `port` as a string:
            a 500, then a reset connection), so there the folders are derived
            from a checkpoint's path, which the harness keeps in
            models/Stable-diffusion."""
            if not self.forge:
                return self.get("/sdapi/v1/cmd-flags").json()
            checkpoint = self.get("/sdapi/v1/sd-models").json()[0]["filename"]
            root = os.path.dirname(os.path.dirname(os.path.dirname(checkpoint)))
            return {"data_dir": root, "lora_dir": os.path.join(root, "models", "Lora"),
                    "ui_settings_file": os.path.join(root, "config.json")}

        def options(self):
            return self.get("/sdapi/v1/options").json()

        def set_options(self, **values):
            r = self.post("/sdapi/v1/options", json=values)
            assert r.status_code == 200, r.text

    return Client()


def forge_api_workarounds(payload):
    """Fields a request to Forge main needs for reasons of Forge's own, with no
    extension installed (each reproduced there with a plain request):
    - hires fix: without `hr_additional_modules` its `sample()` fails with
      "argument of type 'NoneType' is not iterable";
    - `infotext`: unless the request sets `styles`, applying any infotext fails
      with "isinstance() argument 2 cannot be a parameterized generic"."""
    payload = dict(payload)
    if payload.get("enable_hr"):
        payload.setdefault("hr_additional_modules", ["Use same choices"])
    if "infotext" in payload:
        payload.setdefault("styles", [])
    return payload


class MotionModules(dict):
    """kind -> file name, and the folder they are in (`.folder`)."""
    folder = ""


@pytest.fixture(scope="session")
def motion_modules(webui, tmp_path_factory):
    """Random full-size SD1.5 motion modules of every kind, served by the extension.

    GET /sdapi/v1/options may not list extension settings at all: it answers
    through a model of the settings known when the WebUI's API module was
    first imported, and ControlNet imports it before extensions register
    theirs. So the folder is kept here, not read back."""
    from motion_module.synthetic import save_random_checkpoint

    folder = os.environ.get("SD_WEBUI_TEST_MM_DIR") or str(tmp_path_factory.mktemp("motion_modules"))
    os.makedirs(folder, exist_ok=True)
    names = MotionModules()
    names.folder = folder
    for seed, kind in enumerate(KINDS):
        name = f"random_{kind}.safetensors"
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            save_random_checkpoint(path, kind, seed=seed)
        names[kind] = name
    before = webui.options().get("animatediff_model_path")
    webui.set_options(animatediff_model_path=folder)
    yield names
    webui.set_options(animatediff_model_path=before or "")


@pytest.fixture(scope="session")
def loras(webui):
    """Random motion LoRAs and v3 adapters in both namings, in the WebUI's Lora
    folder (read from the WebUI's flags) for the session. Values are
    fp16-exact, so an official fp32 file and its fp16 re-save hold the same
    numbers."""
    import torch
    from safetensors.torch import save_file

    from motion_module.synthetic import random_lora
    from webui_loras import LORA_FILES

    folder = webui.flags()["lora_dir"]
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name, (what, naming, rank) in LORA_FILES.items():
        # The adapter acts on the image UNet: a smaller spread keeps the random checkpoint finite.
        sd = random_lora(what, naming, rank=rank, seed=7, std=0.05 if what == "motion" else 0.01)
        if naming == "official":
            path = os.path.join(folder, name + ".ckpt")
            # Written as older torch wrote the official files: the WebUI's own
            # pickle checker (which the built-in Lora loader uses) rejects
            # the .format_version entry that current torch adds to zip files.
            torch.save(sd, path, _use_new_zipfile_serialization=False)
        else:
            path = os.path.join(folder, name + ".safetensors")
            save_file({k: v.half() for k, v in sd.items()}, path)
        paths.append(path)
    assert webui.post("/sdapi/v1/refresh-loras").status_code == 200
    yield LORA_FILES
    for path in paths:
        os.remove(path)
    webui.post("/sdapi/v1/refresh-loras")


@pytest.fixture(scope="session")
def controlnet(webui, motion_modules):
    """The WebUI's ControlNet (sd-webui-controlnet, or Forge's built-in) and its
    random model (SD_WEBUI_CONTROLNET_MODEL), or a skip."""
    r = webui.get("/controlnet/model_list")
    if r.status_code != 200:
        pytest.skip("sd-webui-controlnet is not installed in this WebUI")
    models = r.json().get("model_list", [])
    match = [m for m in models if m.split(" [")[0] == CN_MODEL]
    if not match:
        pytest.skip(f"ControlNet model {CN_MODEL} is not installed (see make_controlnet_model.py)")
    if webui.forge:  # the built-in: no version route, and its pass-through preprocessor is "None"
        return {"model": match[0], "version": None, "module": "None"}
    version = webui.get("/controlnet/version").json().get("version")
    return {"model": match[0], "version": version, "module": "none"}
