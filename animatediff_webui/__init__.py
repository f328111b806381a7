"""WebUI glue: translates AUTOMATIC1111 WebUI objects into calls on `motion_module`.

Everything here may import the WebUI (`modules.*`, gradio); the engine in
`motion_module/` never does. `scripts/animatediff.py` is the entry point the
WebUI loads.
"""
