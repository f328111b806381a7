"""S3 upload against moto's in-process mock (custom endpoint like MinIO)."""

import datetime as dt
import logging
import os
import socket

import pytest

ENDPOINT = "http://127.0.0.1:9001"
# moto only intercepts non-AWS endpoints listed here, read when its S3
# backend is first loaded, so it must be set before moto is imported.
_existing = os.environ.get("MOTO_S3_CUSTOM_ENDPOINTS", "")
if ENDPOINT not in _existing.split(","):
    os.environ["MOTO_S3_CUSTOM_ENDPOINTS"] = ",".join(filter(None, [_existing, ENDPOINT]))

moto = pytest.importorskip("moto")
boto3 = pytest.importorskip("boto3")


from motion_module.video.options import VideoOptions
from motion_module.video.s3 import make_client, object_key, upload_files

SECRET = "wJalrXUtnFEMI-K7MDENG-very-secret"
ACCESS = "AKIDEXAMPLEACCESS"
DAY = dt.date(2024, 3, 5)


def opts(**kw):
    base = dict(s3_enable=True, s3_host="127.0.0.1", s3_port=9001, s3_access_key=ACCESS,
                s3_secret_key=SECRET, s3_bucket="animatediff")
    base.update(kw)
    return VideoOptions(**base)


@pytest.fixture
def files(tmp_path):
    out = []
    for name, data in (("00001-42.gif", b"GIF89a-fake"), ("00001-42.mp4", b"\x00\x00\x00\x18ftypmp42")):
        p = tmp_path / name
        p.write_bytes(data)
        out.append(p)
    return out


@pytest.fixture
def aws_env(monkeypatch):
    # Decoy credentials in the environment: must never be used.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ENV-ACCESS-DECOY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ENV-SECRET-DECOY")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_object_key():
    assert object_key("/x/y/00001-42.gif", DAY) == "2024-03-05/00001-42.gif"


def test_upload_creates_bucket_and_uses_dated_keys(files, aws_env, caplog):
    caplog.set_level(logging.DEBUG)  # botocore's debug logs included
    with moto.mock_aws():
        client = make_client(opts())
        assert client.list_buckets()["Buckets"] == []
        results = upload_files(files, opts(), DAY)
        assert [r.ok for r in results] == [True, True], [r.error for r in results]
        assert [r.key for r in results] == ["2024-03-05/00001-42.gif", "2024-03-05/00001-42.mp4"]
        assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["animatediff"]
        for path, r in zip(files, results):
            obj = client.get_object(Bucket="animatediff", Key=r.key)
            assert obj["Body"].read() == path.read_bytes()
        assert client.head_object(Bucket="animatediff", Key=results[0].key)["ContentType"] == "image/gif"
        creds = client._request_signer._credentials
        assert (creds.access_key, creds.secret_key) == (ACCESS, SECRET)
    assert all(p.exists() for p in files)
    assert "creating it" in caplog.text
    assert SECRET not in caplog.text


def test_existing_bucket_is_reused(files, aws_env):
    with moto.mock_aws():
        client = make_client(opts())
        client.create_bucket(Bucket="animatediff")
        client.put_object(Bucket="animatediff", Key="keep", Body=b"k")
        results = upload_files(files[:1], opts(), DAY)
        assert results[0].ok
        keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="animatediff")["Contents"])
        assert keys == ["2024-03-05/00001-42.gif", "keep"]


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_endpoint_is_reported_not_raised(files, aws_env, caplog):
    caplog.set_level(logging.DEBUG)
    results = upload_files(files, opts(s3_port=_closed_port()), DAY)
    assert [r.ok for r in results] == [False, False]
    assert all("Could not connect" in r.error or "Endpoint" in r.error for r in results)
    assert "S3 upload to http://127.0.0.1:" in caplog.text
    assert SECRET not in caplog.text and all(SECRET not in r.error for r in results)
    assert all(p.exists() for p in files)


def test_put_failure_is_reported_per_file(files, aws_env, caplog, monkeypatch):
    with moto.mock_aws():
        client = make_client(opts())
        real_put = client.put_object

        def put(**kw):
            if kw["Key"].endswith(".mp4"):
                raise RuntimeError(f"quota exceeded for key {SECRET}")  # a leaky error text
            return real_put(**kw)

        monkeypatch.setattr(client, "put_object", put)
        with caplog.at_level(logging.WARNING):
            results = upload_files(files, opts(), DAY, client=client)
    assert [r.ok for r in results] == [True, False]
    assert "quota exceeded" in results[1].error and SECRET not in results[1].error
    assert SECRET not in caplog.text and "***" in caplog.text
    assert all(p.exists() for p in files)


def test_invalid_bucket_name_is_reported(files, aws_env):
    with moto.mock_aws():
        results = upload_files(files, opts(s3_bucket="Not_A_Valid_Bucket!"), DAY)
    assert not any(r.ok for r in results) and results[0].error


def test_missing_bucket_setting_and_half_credentials(files):
    assert "no bucket configured" in upload_files(files, opts(s3_bucket=""), DAY)[0].error
    r = upload_files(files, opts(s3_secret_key=""), DAY)
    assert not r[0].ok and "both s3_access_key and s3_secret_key" in r[0].error
