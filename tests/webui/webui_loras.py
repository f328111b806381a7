"""The random LoRA files the WebUI suite puts into the WebUI's Lora folder (conftest.loras)."""

LORA_FILES = {  # tag name -> (what, naming, rank); official files pickled, re-saves fp16 safetensors
    "adtest_v2_lora_PanLeft": ("motion", "official", 64),
    "adtest_mm_sd15_v2_lora_PanLeft": ("motion", "a1111", 64),
    "adtest_v3_sd15_adapter": ("adapter", "official", 128),
    "adtest_mm_sd15_v3_adapter": ("adapter", "a1111", 128),
}
MOTION, MOTION_RESAVE, ADAPTER, ADAPTER_RESAVE = LORA_FILES
