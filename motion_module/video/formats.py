"""The output formats and their file extensions, declared once."""

#: Format -> file extension, in the order files are written and listed.
FILE_FORMATS = {"GIF": "gif", "MP4": "mp4", "WEBP": "webp", "WEBM": "webm", "PNG": "png", "TXT": "txt"}
#: Formats that carry the frames (TXT alone writes none).
FRAME_FORMATS = ("GIF", "MP4", "WEBP", "WEBM", "PNG")
#: Formats that are one video file.
VIDEO_FORMATS = ("GIF", "MP4", "WEBP", "WEBM")
