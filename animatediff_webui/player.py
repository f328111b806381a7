"""The videos of a UI generation, played in its result panel.

The gallery shows what gradio can show (the GIF, or the frames); MP4 and
WEBM are only written to disk. `javascript/animatediff_player.js` puts a
player for them under the gallery of txt2img and img2img. It learns the
task id the WebUI's page gives each generation ("task(...)", the id of its
progress bar) and, when the progress bar ends, asks

    GET /animatediff/v1/videos?task=task(...)

which answers the files `outputs.write` wrote for that task in this process,
as `file=` URLs: the WebUI's own file route, under its own rules. A file
that route would refuse (the output folder is outside the folders it serves)
is listed without a URL and with the reason; nothing is ever added to what
the WebUI serves.

Not a file oracle: the route answers only paths recorded here (our own
outputs of a UI generation), looked up by a task id the page made up at
random; any other id gets an empty list. API generations are not recorded
(the API returns the videos itself). The last KEEP_TASKS tasks are kept.
"""

import collections
import os
import re
import threading
from pathlib import PurePath
from urllib.parse import quote

from .log import logger

PLAYER_FORMATS = ("MP4", "WEBM")  # what a <video> element plays
FORMATS = ("MP4", "WEBM", "GIF", "WEBP", "TXT")  # files listed for download, in this order
MIME = {"MP4": "video/mp4", "WEBM": "video/webm"}
KEEP_TASKS = 32
# The WebUI page makes "task(" + 15 base-36 characters + ")"; its API "task(txt2img-XXXXXXX)".
TASK_ID = re.compile(r"^task\([A-Za-z0-9_-]{1,64}\)$")


class Record:
    """task id -> the videos written for it, each {format: absolute path}.
    Thread-safe; keeps the last `keep` tasks."""

    def __init__(self, keep=KEEP_TASKS):
        self.keep = keep
        self._tasks = collections.OrderedDict()
        self._lock = threading.Lock()

    def add(self, task, paths):
        files = {fmt: os.path.abspath(str(paths[fmt])) for fmt in FORMATS if fmt in paths}
        if not valid_task(task) or not files:
            return
        with self._lock:
            self._tasks.setdefault(task, []).append(files)
            self._tasks.move_to_end(task)
            while len(self._tasks) > self.keep:
                self._tasks.popitem(last=False)

    def get(self, task):
        """The videos of `task` (copies), or None for a task not recorded."""
        with self._lock:
            videos = self._tasks.get(task) if valid_task(task) else None
            return None if videos is None else [dict(v) for v in videos]


def valid_task(task) -> bool:
    return isinstance(task, str) and TASK_ID.match(task) is not None


def file_url(path) -> str:
    """The WebUI's file route for an absolute path, relative to the page
    (so a --subpath works): file=/a/b%20c.mp4."""
    return "file=" + quote(PurePath(path).as_posix(), safe="/:")


def _inside(path: PurePath, root) -> bool:
    try:
        path.relative_to(PurePath(os.path.abspath(str(root))))
        return True
    except ValueError:
        return False


class FileRules:
    """What the WebUI's `/file=` route serves (gradio 3.41, WebUI 1.6-1.10),
    for files of ours: not under a blocked path, no dot-folder in the path,
    and under the WebUI's folder (the server's working directory) or one of
    the allowed paths (--gradio-allowed-path; the data folder by default on
    1.10). Gradio also serves its own temp files and uploads, which our
    outputs are not. Purely lexical, as gradio's check is."""

    def __init__(self, app_dir, allowed=(), blocked=()):
        self.app_dir = app_dir
        self.allowed = [a for a in allowed if a]
        self.blocked = [b for b in blocked if b]

    def refusal(self, path):
        """None when the route serves `path` (absolute), else why not."""
        path = PurePath(path)
        if any(_inside(path, b) for b in self.blocked):
            return "its folder is blocked from the WebUI's file route"
        if any(part.startswith(".") for part in path.parts):
            return "the WebUI's file route does not serve paths with a hidden (dot) folder"
        if not any(_inside(path, root) for root in [self.app_dir, *self.allowed] if root):
            return ("its folder is outside the folders the WebUI serves; start the WebUI with "
                    "--gradio-allowed-path naming the output folder to play videos here")
        return None


def describe(videos, rules: FileRules):
    """The route's list: per video its name, whether it can be played here,
    and its files (format, name, url or None). Names are base names only."""
    listed = []
    for files in videos:
        stem = os.path.splitext(os.path.basename(next(iter(files.values()))))[0]
        entries, notes = [], []
        for fmt in FORMATS:
            if fmt not in files:
                continue
            refusal = rules.refusal(files[fmt])
            if refusal and refusal not in notes:
                notes.append(refusal)
            entries.append({"format": fmt, "name": os.path.basename(files[fmt]), "mime": MIME.get(fmt),
                            "url": None if refusal else file_url(files[fmt]),
                            "folder": os.path.dirname(files[fmt]) if refusal else None})
        listed.append({"name": stem, "files": entries, "note": "; ".join(notes) or None,
                       "playable": any(e["format"] in PLAYER_FORMATS and e["url"] for e in entries)})
    return listed


RECORD = Record()


def record(p, written):
    """outputs.write's hook: remember the videos of a UI generation (`written`:
    SavedVideo per video) under the task id of the running generation. The
    files are written by then: a failure here costs the player, never the
    generation."""
    if getattr(p, "is_api", False) or not written:
        return
    try:
        task = _current_task()
        if not valid_task(task):
            logger.debug("no UI task id (%r): the videos are not offered to the player", task)
            return
        for saved in written:
            RECORD.add(task, saved.paths)
    except Exception as e:  # see above
        logger.warning("the videos are written but not offered to the result panel's player: %s", e)


def _current_task():
    from modules import progress

    return getattr(progress, "current_task", None)


def _state(task):
    from modules import progress

    if task == getattr(progress, "current_task", None):
        return "running"
    if task in getattr(progress, "pending_tasks", {}):
        return "queued"
    return "done" if task in getattr(progress, "finished_tasks", ()) else "unknown"


def _rules():
    from modules import shared

    demo = getattr(shared, "demo", None)
    app = getattr(demo, "server_app", None)
    return FileRules(getattr(app, "cwd", None) or os.getcwd(), getattr(demo, "allowed_paths", None) or (),
                     getattr(demo, "blocked_paths", None) or ())


def videos(task: str = ""):
    """GET /animatediff/v1/videos?task=...: the videos written for a UI task."""
    if not valid_task(task):
        return {"task": None, "state": "unknown", "videos": []}
    found = RECORD.get(task)
    state = _state(task)
    if found is not None and state == "unknown":
        state = "done"  # finished long enough ago for the WebUI to have forgotten it
    return {"task": task, "state": state, "videos": describe(found or [], _rules())}
