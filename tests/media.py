"""Reading back what the writers embed, with tools independent of them."""

import subprocess

import imageio_ffmpeg


def parse_ffmetadata(text: str) -> dict[str, str]:
    """Global tags of an FFMETADATA document (keys lower-cased)."""
    tags: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    # Logical lines: a trailing unescaped backslash continues the value.
    logical: list[str] = []
    buf = ""
    while i < len(lines):
        line = lines[i]
        j = len(line) - len(line.rstrip("\\"))
        if j % 2 == 1:
            buf += line[:-1] + "\n"
        else:
            logical.append(buf + line)
            buf = ""
        i += 1
    for line in logical:
        if line.startswith("[") and line.rstrip().endswith("]"):
            break  # streams/chapters follow; we want the global section
        if not line or line.startswith(";") or line.startswith("#"):
            continue
        key, value, escaped = [], [], False
        target = key
        for ch in line:
            if escaped:
                target.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == "=" and target is key:
                target = value
            else:
                target.append(ch)
        if target is value:
            tags["".join(key).lower()] = "".join(value)
    return tags


def read_comment(path: object) -> str | None:
    """The container `comment` tag of an MP4/WEBM file (None if absent)."""
    proc = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path), "-f", "ffmetadata", "-"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode("utf-8", "replace").strip())
    return parse_ffmetadata(proc.stdout.decode("utf-8", "replace")).get("comment")


