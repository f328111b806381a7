"""Optional upload of written videos to S3-compatible storage (boto3).

Endpoint `http://{s3_host}:{s3_port}`, bucket `s3_bucket` (created when
missing), object key `{YYYY-MM-DD}/{file name}`, the same date as the
local folder.  Credentials come only from the options object: boto3's
usual chain (environment, ~/.aws, instance metadata) is never consulted,
and with no keys at all the requests are sent unsigned (anonymous).
Neither key is ever logged, and error texts are scrubbed of both before
they are logged or returned.  A failed upload is reported (warning log +
the returned result); the local files are never touched.
"""

from __future__ import annotations

import datetime as _dt
import logging
import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .naming import date_folder_name
from .options import VideoOptions

log = logging.getLogger(__name__)

CONTENT_TYPES = {
    ".gif": "image/gif",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".webp": "image/webp",
    ".txt": "text/plain; charset=utf-8",
    ".png": "image/png",
}


@dataclass
class S3UploadResult:
    path: Path
    key: str
    ok: bool
    error: str = ""


def endpoint_url(options: VideoOptions) -> str:
    return f"http://{options.s3_host}:{options.s3_port}"


def object_key(path: str | os.PathLike, day: _dt.date | _dt.datetime | None = None) -> str:
    return f"{date_folder_name(day)}/{Path(path).name}"


def _scrub(text: str, options: VideoOptions) -> str:
    for secret in (options.s3_secret_key, options.s3_access_key):
        if secret:
            text = text.replace(secret, "***")
    return text


def make_client(options: VideoOptions):
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    if bool(options.s3_access_key) != bool(options.s3_secret_key):
        raise ValueError("S3 needs both s3_access_key and s3_secret_key, or neither (anonymous)")
    config = Config(
        connect_timeout=5,
        read_timeout=60,
        retries={"max_attempts": 2, "mode": "standard"},
        # MinIO and most self-hosted S3 servers expect path-style URLs.
        s3={"addressing_style": "path"},
        signature_version=UNSIGNED if not options.s3_access_key else None,
    )
    # An explicit session with explicit keys: nothing is read from the
    # environment's credential chain.
    session = boto3.session.Session(
        aws_access_key_id=options.s3_access_key or None,
        aws_secret_access_key=options.s3_secret_key or None,
        region_name="us-east-1",
    )
    return session.client("s3", endpoint_url=endpoint_url(options), config=config)


def ensure_bucket(client, bucket: str) -> None:
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
        return
    except ClientError as e:
        code = str(e.response.get("Error", {}).get("Code", ""))
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise
    log.info("S3 bucket %r does not exist; creating it", bucket)
    client.create_bucket(Bucket=bucket)


def upload_files(
    paths: Iterable[str | os.PathLike],
    options: VideoOptions,
    day: _dt.date | _dt.datetime | None = None,
    client=None,
) -> list[S3UploadResult]:
    """Upload each file; never raises for S3 problems, reports them instead."""
    paths = [Path(p) for p in paths]
    keys = [object_key(p, day) for p in paths]
    if not paths:
        return []

    def fail_all(message: str) -> list[S3UploadResult]:
        message = _scrub(message, options)
        log.warning("S3 upload to %s failed: %s", endpoint_url(options), message)
        return [S3UploadResult(p, k, False, message) for p, k in zip(paths, keys)]

    if not options.s3_bucket:
        return fail_all("no bucket configured (s3_bucket / animatediff_s3_storge_bucket is empty)")
    try:
        client = client or make_client(options)
        ensure_bucket(client, options.s3_bucket)
    except Exception as e:
        return fail_all(f"{type(e).__name__}: {e}")

    results = []
    for path, key in zip(paths, keys):
        try:
            content_type = CONTENT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
            extra = {"ContentType": content_type} if content_type else {}
            with open(path, "rb") as body:
                client.put_object(Bucket=options.s3_bucket, Key=key, Body=body, **extra)
            log.info("uploaded %s to s3://%s/%s", path.name, options.s3_bucket, key)
            results.append(S3UploadResult(path, key, True))
        except Exception as e:
            message = _scrub(f"{type(e).__name__}: {e}", options)
            log.warning("S3 upload of %s to s3://%s/%s failed: %s", path.name, options.s3_bucket, key, message)
            results.append(S3UploadResult(path, key, False, message))
    return results
