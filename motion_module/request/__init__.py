"""The request model: per-generation parameters (`params`), the infotext
entry (`infotext`), motion-module file names (`model_files`) and the WebUI
settings (`settings`), each declared once and validated once per request."""
