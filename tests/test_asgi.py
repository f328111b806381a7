"""The API route wrapper (animatediff_webui/asgi.py): WebUI-free, so real ASGI calls here."""

import base64
import json
import os

import pytest
from asgi_timing import call, route

from animatediff_webui import asgi


def _refuse_everything(body):
    raise asgi.Refusal(422, {"field": "fps"})


def test_ordinary_requests_are_not_parsed_and_pass_through_byte_for_byte():
    seen = []
    app = asgi.wrap(route, lambda body: seen.append(body))
    image = base64.b64encode(os.urandom(3_000_000)).decode()
    body = json.dumps({"prompt": "a cat", "init_images": [image], "alwayson_scripts": {"ControlNet": {}}}).encode()
    assert call(app, body) == (200, body)
    assert seen == []  # never handed to the check, so never JSON-decoded


@pytest.mark.parametrize("mention", [b'"alwayson_scripts": {"AnimateDiff": {"args": [{}]}}',
                                     b'"alwayson_scripts": {"animatediff": {"args": [false]}}',
                                     b'"infotext": "a cat\\nSteps: 2, AnimateDiff: \\"enable: True\\""'])
def test_requests_that_mention_us_are_checked(mention):
    app = asgi.wrap(route, _refuse_everything)
    status, answer = call(app, b'{"prompt": "a cat", ' + mention + b"}")
    assert status == 422 and json.loads(answer) == {"field": "fps"}


def test_check_may_replace_the_body():
    app = asgi.wrap(route, lambda body: b'{"restored": true}')
    assert call(app, b'{"infotext": "AnimateDiff: ..."}') == (200, b'{"restored": true}')
    assert call(asgi.wrap(route, lambda body: None), b'{"x": "animatediff"}') == (200, b'{"x": "animatediff"}')


def test_secrets_in_an_options_answer_are_masked():
    app = asgi.mask_json_keys(route, ["animatediff_s3_secret_key"])
    secret = b'{"animatediff_s3_secret_key": "wJalrXUt-very-secret", "animatediff_s3_bucket": "b", "x": 1}'
    status, answer = call(app, secret)
    assert status == 200 and b"very-secret" not in answer
    assert json.loads(answer) == {"animatediff_s3_secret_key": "***", "animatediff_s3_bucket": "b", "x": 1}
    # Nothing to hide (unset secret, other JSON, not JSON): the answer is passed on unchanged.
    for body in (b'{"animatediff_s3_secret_key": "", "x": 1}', b"[1, 2]", b"not json", b""):
        assert call(app, body) == (200, body)
