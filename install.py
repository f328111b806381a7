# Run by the WebUI (launch.py) before it starts: install the few runtime
# packages this extension needs that the WebUI does not already ship.
#
# Pillow, numpy, safetensors and torch come with the WebUI; this file never
# installs or upgrades torch. boto3 is only needed when S3 upload is enabled in
# Settings, so it is not installed here: the S3 code reports its absence.
import launch

# pip name -> what it is for
NEEDED = {
    "imageio-ffmpeg": "imageio-ffmpeg for AnimateDiff MP4/WEBM output",  # bundles an ffmpeg binary
}

for package, description in NEEDED.items():
    if not launch.is_installed(package):
        launch.run_pip(f"install {package}", description)
