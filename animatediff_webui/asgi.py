"""Reading a route's request body once, checking it, and replaying it.

WebUI-free (plain ASGI), so it is tested and timed without a WebUI. Ordinary
requests (no AnimateDiff arguments, no AnimateDiff infotext) are recognised
from their bytes and passed on without being parsed: a txt2img carrying a
20 MB base64 image costs one scan of its bytes, not a JSON decode.
"""

import json

# Our arguments sit in an "alwayson_scripts" entry titled AnimateDiff (the
# WebUI matches titles in any case), or in an "infotext" with an AnimateDiff
# entry: either way the word stands in some quoted JSON string, and the word
# has no quote in it. Strings longer than this are image data (base64 has no
# quotes), not a script title or an infotext, so only the short ones are
# lower-cased and searched; finding the quotes skips the rest at memchr speed.
_LONGEST_SCANNED = 1 << 16


def mentions_us(body: bytes) -> bool:
    start = 0
    while start <= len(body):
        end = body.find(b'"', start)
        stop = len(body) if end < 0 else end
        if stop - start <= _LONGEST_SCANNED and b"animatediff" in body[start:stop].lower():
            return True
        if end < 0:
            return False
        start = end + 1
    return False


class Refusal(Exception):
    """Answer the request with this JSON instead of running it."""

    def __init__(self, status: int, content: dict):
        super().__init__(content)
        self.status, self.content = status, content


async def _read(receive):
    """(messages to replay, the whole body). A complete body is replayed as
    one message, so the route's own read of it costs no second copy."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return [message], b"".join(chunks)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            body = b"".join(chunks)
            return [{"type": "http.request", "body": body, "more_body": False}], body


async def _answer(send, refusal: Refusal):
    body = json.dumps(refusal.content).encode()
    await send({"type": "http.response.start", "status": refusal.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def wrap(route_app, check):
    """An ASGI app that runs ``check(body)`` on requests that mention us.

    ``check`` returns None (run the request as sent), new body bytes (run
    that instead) or raises Refusal (answer it, the route never runs).
    """
    async def app(scope, receive, send):
        messages, body = await _read(receive)
        if mentions_us(body):
            try:
                replaced = check(body)
            except Refusal as refusal:
                await _answer(send, refusal)
                return
            if replaced is not None:
                messages = [{"type": "http.request", "body": replaced, "more_body": False}]

        async def replay():
            return messages.pop(0) if messages else await receive()

        await route_app(scope, replay, send)

    app.animatediff_wrapped = True
    return app


def mask_json_keys(route_app, keys, mask="***"):
    """An ASGI app whose JSON-object answers show `mask` instead of any
    non-empty value under `keys` (secrets the WebUI's options route would
    otherwise return as stored)."""
    keys = frozenset(keys)

    async def app(scope, receive, send):
        held = {}

        async def capture(message):
            if message["type"] == "http.response.start":
                held["start"] = message
                held["body"] = []
                return
            if message["type"] != "http.response.body" or "start" not in held:
                await send(message)
                return
            held["body"].append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(held["body"])
            try:
                data = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                data = None
            if isinstance(data, dict) and any(data.get(k) for k in keys):
                body = json.dumps({k: mask if k in keys and v else v for k, v in data.items()}).encode()
            start = held.pop("start")
            headers = [(n, v) for n, v in start.get("headers", []) if n.lower() != b"content-length"]
            await send({**start, "headers": headers + [(b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await route_app(scope, receive, capture)

    app.animatediff_wrapped = True
    return app
