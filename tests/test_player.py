"""The result panel's player (animatediff_webui/player.py): what is recorded
per task, the file= URLs, and which files the WebUI's file route would serve.
The page side is tests/test_player_page.py (headless Chromium) and
tests/webui/test_browser.py (a real WebUI)."""

import os
import threading
from types import SimpleNamespace
from urllib.parse import unquote

import pytest

from animatediff_webui import player
from animatediff_webui.player import FileRules, Record, describe, file_url, valid_task

TASK = "task(k3j9x0a1b2c3d4e)"


def saved(folder, stem, formats=("GIF", "MP4")):
    ext = {"GIF": ".gif", "MP4": ".mp4", "WEBM": ".webm", "WEBP": ".webp", "TXT": ".txt"}
    paths = {f: os.path.join(folder, stem + ext[f]) for f in formats}
    return SimpleNamespace(paths=paths)


@pytest.mark.parametrize("task", [TASK, "task(txt2img-ABC1234)", "task(a)"])
def test_task_ids_the_webui_makes_are_valid(task):
    assert valid_task(task)


@pytest.mark.parametrize("task", [None, "", 5, "task()", "abc", "task(../x)", "task(a/b)", "task(a) ", "task(a\n)",
                                  "task(" + "a" * 65 + ")", "xtask(a)"])
def test_other_task_ids_are_not(task):
    assert not valid_task(task)


def test_record_keeps_videos_in_order_per_task_as_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    record = Record()
    record.add(TASK, {"GIF": "out/a.gif", "MP4": "out/a.mp4", "PNG": "out/a"})
    record.add(TASK, saved("out", "b", ("MP4", "TXT")).paths)
    videos = record.get(TASK)
    assert videos == [{"GIF": str(tmp_path / "out/a.gif"), "MP4": str(tmp_path / "out/a.mp4")},
                      {"MP4": str(tmp_path / "out/b.mp4"), "TXT": str(tmp_path / "out/b.txt")}]
    videos[0]["MP4"] = "/etc/passwd"  # a copy: the record does not change
    assert record.get(TASK)[0]["MP4"] == str(tmp_path / "out/a.mp4")


def test_record_ignores_bad_task_ids_and_folders_only():
    record = Record()
    record.add("../x", {"MP4": "/o/a.mp4"})
    record.add(TASK, {"PNG": "/o/a"})  # the frames folder is no download
    assert record.get("../x") is None and record.get(TASK) is None and record.get(None) is None


def test_record_keeps_the_last_tasks_only():
    record = Record(keep=3)
    for i in range(5):
        record.add(f"task({i})", {"MP4": f"/o/{i}.mp4"})
    assert [record.get(f"task({i})") is not None for i in range(5)] == [False, False, True, True, True]
    record.add("task(2)", {"MP4": "/o/2b.mp4"})  # a task written again is kept longest
    record.add("task(5)", {"MP4": "/o/5.mp4"})
    assert record.get("task(2)") is not None and record.get("task(3)") is None


def test_record_is_thread_safe():
    record = Record()
    threads = [threading.Thread(target=lambda i=i: [record.add(TASK, {"MP4": f"/o/{i}-{k}.mp4"})
                                                    for k in range(200)]) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(record.get(TASK)) == 800


@pytest.mark.parametrize("path", ["/out/AnimateDiff/2024-01-02/00001-5.mp4", "/out/a b/#1?x=2&y%20/ü.mp4",
                                  "/out/[x]/;,+$.webm"])
def test_file_url_names_the_path_exactly(path):
    url = file_url(path)
    assert url.startswith("file=/")
    assert "#" not in url and "?" not in url and " " not in url
    assert unquote(url[len("file="):]) == path


def test_files_under_the_webui_folder_or_an_allowed_path_are_served(tmp_path):
    rules = FileRules(str(tmp_path / "webui"), allowed=[str(tmp_path / "data")])
    assert rules.refusal(str(tmp_path / "webui/outputs/AnimateDiff/a.mp4")) is None
    assert rules.refusal(str(tmp_path / "data/outputs/a.mp4")) is None


@pytest.mark.parametrize("where", ["elsewhere/a.mp4", "webui-old/a.mp4", "webui/../elsewhere/a.mp4"])
def test_files_outside_are_not(tmp_path, where):
    rules = FileRules(str(tmp_path / "webui"))
    reason = rules.refusal(os.path.abspath(str(tmp_path / where)))
    assert "--gradio-allowed-path" in reason


def test_blocked_paths_and_dot_folders_are_not_served(tmp_path):
    rules = FileRules(str(tmp_path), allowed=[str(tmp_path / "data")], blocked=[str(tmp_path / "data/private")])
    assert "blocked" in rules.refusal(str(tmp_path / "data/private/a.mp4"))
    assert "hidden" in rules.refusal(str(tmp_path / "data/.cache/a.mp4"))


def test_our_rule_agrees_with_the_webui_file_route(tmp_path):
    """The same answers as gradio 3.41's /file= check, where gradio is installed."""
    utils = pytest.importorskip("gradio.utils")
    if not hasattr(utils, "is_in_or_equal"):
        pytest.skip("another gradio")
    app, allowed, blocked = tmp_path / "webui", [tmp_path / "data"], [tmp_path / "data/private"]
    rules = FileRules(str(app), [str(a) for a in allowed], [str(b) for b in blocked])
    for where in ["webui/o/a.mp4", "data/a.mp4", "data/private/a.mp4", "data/.x/a.mp4", "webui2/a.mp4", "a.mp4"]:
        path = tmp_path / where
        gradio_serves = (not any(utils.is_in_or_equal(path, b) for b in blocked)
                         and not any(part.startswith(".") for part in utils.abspath(path).parts)
                         and (utils.is_in_or_equal(path, app) or any(utils.is_in_or_equal(path, a) for a in allowed)))
        assert (rules.refusal(str(path)) is None) == gradio_serves, where


def test_describe_lists_every_format_with_its_url(tmp_path):
    folder = str(tmp_path / "o")
    videos = [saved(folder, "00001-7", ("GIF", "MP4", "WEBM", "TXT")).paths, saved(folder, "00002-8", ("GIF",)).paths]
    listed = describe([{f: str(p) for f, p in v.items()} for v in videos], FileRules(str(tmp_path)))
    first, second = listed
    assert first["name"] == "00001-7" and first["playable"] and first["note"] is None
    assert [(f["format"], f["name"], f["mime"]) for f in first["files"]] == [
        ("MP4", "00001-7.mp4", "video/mp4"), ("WEBM", "00001-7.webm", "video/webm"),
        ("GIF", "00001-7.gif", None), ("TXT", "00001-7.txt", None)]
    assert first["files"][0]["url"] == file_url(os.path.join(folder, "00001-7.mp4"))
    assert not second["playable"]  # a GIF only: the gallery shows it


def test_describe_names_files_it_cannot_serve_and_says_why(tmp_path):
    listed = describe([saved("/elsewhere/o", "00001-7").paths], FileRules(str(tmp_path)))[0]
    assert not listed["playable"] and "--gradio-allowed-path" in listed["note"]
    assert all(f["url"] is None and f["folder"] == "/elsewhere/o" for f in listed["files"])
    assert listed["note"].count("outside") == 1  # said once for the video


def test_record_hook_keeps_ui_generations_under_the_running_task(monkeypatch):
    record = Record()
    monkeypatch.setattr(player, "RECORD", record)
    monkeypatch.setattr(player, "_current_task", lambda: TASK)
    cells = [saved("/o", f"0000{i}-1") for i in range(3)]  # batch count 2 in one p, then a grid cell
    player.record(SimpleNamespace(is_api=False), cells[:2])
    player.record(SimpleNamespace(), cells[2:])
    player.record(SimpleNamespace(is_api=True), [saved("/o", "api")])  # the API returns its videos itself
    player.record(SimpleNamespace(), [])
    assert [os.path.basename(v["MP4"]) for v in record.get(TASK)] == ["00000-1.mp4", "00001-1.mp4", "00002-1.mp4"]
    monkeypatch.setattr(player, "_current_task", lambda: None)  # not a UI task (a script calling process_images)
    player.record(SimpleNamespace(), [saved("/o", "x")])
    assert len(record.get(TASK)) == 3


def test_route_answers_only_what_was_recorded(monkeypatch, tmp_path):
    record = Record()
    record.add(TASK, saved(str(tmp_path / "o"), "00001-7").paths)
    monkeypatch.setattr(player, "RECORD", record)
    monkeypatch.setattr(player, "_rules", lambda: FileRules(str(tmp_path)))
    states = {TASK: "done"}
    monkeypatch.setattr(player, "_state", lambda task: states.get(task, "unknown"))
    answer = player.videos(TASK)
    assert answer["state"] == "done" and [v["name"] for v in answer["videos"]] == ["00001-7"]
    assert player.videos("task(other)") == {"task": "task(other)", "state": "unknown", "videos": []}
    assert player.videos("/etc/passwd") == {"task": None, "state": "unknown", "videos": []}
    states[TASK] = "unknown"  # forgotten by the WebUI, still recorded here
    assert player.videos(TASK)["state"] == "done"
    states["task(run)"] = "running"
    assert player.videos("task(run)")["state"] == "running"


def test_a_failing_record_costs_the_player_not_the_generation(monkeypatch, caplog):
    def broken():
        raise ImportError("no progress module")

    monkeypatch.setattr(player, "_current_task", broken)
    player.record(SimpleNamespace(), [saved("/o", "x")])  # no exception
    assert "not offered" in caplog.text
