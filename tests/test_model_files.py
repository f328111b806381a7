import os
import pathlib

import pytest


from motion_module.request.model_files import MODEL_EXTENSIONS, list_models, resolve_model
from motion_module.request.params import ParamError


def touch(path: pathlib.Path, data: bytes = b"x") -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def symlink(link: pathlib.Path, target: pathlib.Path, is_dir=False):
    try:
        os.symlink(target, link, target_is_directory=is_dir)
    except (OSError, NotImplementedError) as exc:  # e.g. Windows without privilege
        pytest.skip(f"symlinks unavailable: {exc}")


@pytest.fixture
def models(tmp_path):
    root = tmp_path / "model"
    for name in (
        "mm_sd_v15_v2.ckpt",
        "B_model.safetensors",
        "a_model.pth",
        "sub/nested.pt",
        "sub/deeper/Deep.SAFETENSORS",
        "other/nested.pt",
        "sub2/unique.ckpt",
    ):
        touch(root / name)
    touch(root / "README.md")
    touch(root / ".gitkeep")
    touch(root / ".hidden.ckpt")
    touch(root / ".cache" / "secret.ckpt")
    touch(root / "notes.txt")
    (root / "folder.ckpt").mkdir()
    return root


def refused(folder, name):
    with pytest.raises(ParamError) as info:
        resolve_model(folder, name)
    assert info.value.field == "model"
    return str(info.value)


# --- listing --------------------------------------------------------------------


def test_extensions():
    assert MODEL_EXTENSIONS == (".ckpt", ".pt", ".pth", ".safetensors")


def test_list_is_recursive_sorted_and_filtered(models):
    assert list_models(models) == [
        "a_model.pth",
        "B_model.safetensors",
        "mm_sd_v15_v2.ckpt",
        "other/nested.pt",
        "sub/deeper/Deep.SAFETENSORS",
        "sub/nested.pt",
        "sub2/unique.ckpt",
    ]
    assert list_models(str(models)) == list_models(models)


def test_missing_folder_is_empty(tmp_path):
    assert list_models(tmp_path / "nope") == []
    assert list_models(None) == []
    assert list_models("") == []
    assert list_models(touch(tmp_path / "file.ckpt")) == []


def test_list_skips_symlinks_leaving_the_folder(tmp_path, models):
    outside = tmp_path / "outside"
    touch(outside / "evil.ckpt")
    symlink(models / "evil.ckpt", outside / "evil.ckpt")
    symlink(models / "evil_dir", outside, is_dir=True)
    names = list_models(models)
    assert "evil.ckpt" not in names
    assert not any(n.startswith("evil_dir") for n in names)


def test_list_keeps_symlinks_inside_and_survives_loops(models):
    symlink(models / "alias.ckpt", models / "mm_sd_v15_v2.ckpt")
    symlink(models / "sub" / "loop", models, is_dir=True)
    names = list_models(models)
    assert "alias.ckpt" in names
    assert len(names) == len(set(names))
    assert not any("loop" in n for n in names)


# --- resolving --------------------------------------------------------------------


def test_resolve_direct_and_nested(models):
    assert resolve_model(models, "mm_sd_v15_v2.ckpt") == models / "mm_sd_v15_v2.ckpt"
    assert resolve_model(models, "sub/deeper/Deep.SAFETENSORS") == models / "sub" / "deeper" / "Deep.SAFETENSORS"
    assert resolve_model(str(models), "./sub//nested.pt") == models / "sub" / "nested.pt"


def test_every_listed_name_resolves(models):
    for name in list_models(models):
        assert resolve_model(models, name).is_file()


def test_unique_bare_name_in_subfolder(models):
    assert resolve_model(models, "unique.ckpt") == models / "sub2" / "unique.ckpt"
    assert resolve_model(models, "Deep.SAFETENSORS") == models / "sub" / "deeper" / "Deep.SAFETENSORS"


def test_ambiguous_bare_name(models):
    message = refused(models, "nested.pt")
    assert "ambiguous" in message
    assert "other/nested.pt" in message and "sub/nested.pt" in message


def test_missing_model_lists_available(models):
    message = refused(models, "mm_sd15_v3.safetensors")
    assert "not found" in message and "mm_sd_v15_v2.ckpt" in message
    assert "not found" in refused(models, "sub/unique.ckpt")


def test_missing_model_list_is_truncated(tmp_path):
    for i in range(25):
        touch(tmp_path / f"m{i:02d}.ckpt")
    message = refused(tmp_path, "x.ckpt")
    assert "m00.ckpt" in message and "and 15 more" in message and "m24.ckpt" not in message


def test_empty_folder_message(tmp_path):
    assert "no model files" in refused(tmp_path, "mm.ckpt")
    assert "no model files" in refused(tmp_path / "missing", "mm.ckpt")


@pytest.mark.parametrize("name", ["", "   ", None, 3])
def test_refuses_empty_or_non_string(models, name):
    refused(models, name)


@pytest.mark.parametrize("name", [
    "../x.ckpt",
    "a/../../x.ckpt",
    "sub/../mm_sd_v15_v2.ckpt",  # even when it would stay inside
    "..",
    "/etc/passwd",
    "/etc/x.ckpt",
    "C:\\x.ckpt",
    "C:/x.ckpt",
    "C:x.ckpt",
    "c:\\Windows\\x.ckpt",
    "\\\\server\\share\\x.ckpt",
    "//server/share/x.ckpt",
    "..\\x.ckpt",
    "sub\\nested.pt",
    "mm_sd_v15_v2.ckpt\x00.txt",
    ".hidden.ckpt",
    ".cache/secret.ckpt",
    "README.md",
    "notes.txt",
    "sub",
    "folder.ckpt",
])
def test_refuses_traversal_and_non_models(models, name):
    refused(models, name)


def test_refuses_absolute_path_even_to_an_existing_model(models):
    refused(models, str(models / "mm_sd_v15_v2.ckpt"))


def test_refuses_symlink_pointing_outside(tmp_path, models):
    outside = touch(tmp_path / "outside" / "evil.ckpt")
    symlink(models / "evil.ckpt", outside)
    assert "outside" in refused(models, "evil.ckpt")


def test_refuses_symlinked_dir_pointing_outside(tmp_path, models):
    outside = tmp_path / "outside"
    touch(outside / "evil.ckpt")
    symlink(models / "linkdir", outside, is_dir=True)
    assert "outside" in refused(models, "linkdir/evil.ckpt")


def test_symlink_inside_folder_is_accepted_and_keeps_its_name(models):
    symlink(models / "alias.ckpt", models / "sub" / "nested.pt")
    assert resolve_model(models, "alias.ckpt") == models / "alias.ckpt"


def test_symlinked_model_folder_itself_is_fine(tmp_path, models):
    link = tmp_path / "link_to_models"
    symlink(link, models, is_dir=True)
    assert "mm_sd_v15_v2.ckpt" in list_models(link)
    assert resolve_model(link, "mm_sd_v15_v2.ckpt") == link / "mm_sd_v15_v2.ckpt"


def test_bare_name_search_ignores_outside_symlinks(tmp_path, models):
    outside = tmp_path / "outside"
    touch(outside / "only_outside.ckpt")
    symlink(models / "linkdir", outside, is_dir=True)
    assert "not found" in refused(models, "only_outside.ckpt")
