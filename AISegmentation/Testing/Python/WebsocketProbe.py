"""A raw wslink client for the web tests, run in .venv-web (aiohttp, msgpack): one scenario per call, a JSON line out.

    python WebsocketProbe.py SCENARIO URL [ARGUMENT ...]

URL is the page's URL (with ?secret=TOKEN); the server's pid, where given, is for its memory (/proc). Scenarios:
  flood PID COUNT          COUNT unfinished 512-byte messages without the token
  text PID COUNT MB        COUNT text frames of MB megabytes without the token
  silent SECONDS           connect, send nothing; when the server closes
  header PID               authenticated, one chunk announcing a 2 GiB message
  upload PID MB            authenticated, a message of MB megabytes sent in 4 MiB chunks
  call NAME [JSON-ARGS]    authenticated, trame.trigger(NAME, ARGS): the reply and the state's error line
  fifo PATH                authenticated, load PATH from the page; meanwhile how long a second client's hello takes
  path KIND PATH           authenticated, load PATH (of File kind KIND) by the Load button: the page's lists, error
  send KIND FILE           authenticated, FILE uploaded as File kind KIND (as the file input does): lists, error
  save NAME FILE           authenticated, trame.trigger(NAME) of a download: its bytes written to FILE, error
"""

import asyncio
import json
import os
import re
import sys
import time
import urllib.parse

import aiohttp
import msgpack

CHUNK = 4 * 2**20 - 12


def memory(pid):
    """{'rssMb', 'vmMb'} of a process."""
    values = {}
    with open(f"/proc/{pid}/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmSize:")):
                values["rssMb" if line.startswith("VmRSS") else "vmMb"] = int(line.split()[1]) / 1024.0
    return values


def header(messageId, offset, total):
    return b"".join(value.to_bytes(4, "little") for value in (messageId, offset, total))


def chunks(message, messageId):
    data = msgpack.packb(message)
    return [header(messageId, start, len(data)) + data[start:start + CHUNK] for start in range(0, len(data), CHUNK)]


class Client:
    def __init__(self, url):
        parsed = urllib.parse.urlsplit(url)
        self.wsUrl = f"ws://{parsed.netloc}/ws"
        self.token = urllib.parse.parse_qs(parsed.query).get("secret", [""])[0]
        self.nextId = 1

    async def open(self, session):
        self.ws = await session.ws_connect(self.wsUrl, max_msg_size=0)
        return self

    async def send(self, message):
        for chunk in chunks(message, self.nextId):
            await self.ws.send_bytes(chunk)
        self.nextId += 1

    async def reply(self, rpcId, timeout=30.0):
        pending = {}
        while True:
            message = await self.ws.receive(timeout=timeout)
            if message.type != aiohttp.WSMsgType.BINARY:
                return {"closed": True, "type": message.type.name}
            messageId, offset, total = (int.from_bytes(message.data[i:i + 4], "little") for i in (0, 4, 8))
            pending.setdefault(messageId, bytearray()).extend(message.data[12:])
            if len(pending[messageId]) >= total:
                decoded = msgpack.unpackb(bytes(pending.pop(messageId)), strict_map_key=False)
                if decoded.get("id") == rpcId:
                    return decoded

    async def call(self, method, args, rpcId=None):
        rpcId = rpcId or f"rpc:c0:{self.nextId}"
        await self.send({"wslink": "1.0", "id": rpcId, "method": method, "args": args, "kwargs": {}})
        return await self.reply(rpcId)

    async def hello(self):
        return await self.call("wslink.hello", [{"secret": self.token}], "system:c0:0")

    async def closedBy(self, seconds):
        """(closed, close code) within seconds."""
        try:
            message = await self.ws.receive(timeout=seconds)
        except asyncio.TimeoutError:
            return False, None
        return message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), self.ws.close_code


async def sendUntilClosed(client, frames):
    """Send frames until the server closes; (frames sent, closed, close code)."""
    sent = 0
    try:
        for frame in frames:
            if client.ws.closed:
                break
            await (client.ws.send_str(frame) if isinstance(frame, str) else client.ws.send_bytes(frame))
            sent += 1
            if sent % 1000 == 0:
                await asyncio.sleep(0)
    except (ConnectionError, aiohttp.ClientError):
        pass
    closed, code = await client.closedBy(3.0)
    return sent, closed or client.ws.closed, code or client.ws.close_code


async def pageState(client):
    return (await client.call("trame.state.get", []))["result"]["state"]


async def stateError(client):
    return (await pageState(client)).get("error", "")


async def buttonTrigger(client, buttonId):
    """The trigger name behind a button of the page (from its template)."""
    state = await pageState(client)
    template = "".join(str(value) for key, value in state.items() if key.startswith("trame__template"))
    button = re.search(rf'<VBtn[^>]*id="{buttonId}"[^>]*>', template).group(0)
    return re.search(r"trigger\('([^']+)'", button).group(1)


async def loaded(client, actionsBefore, seconds=60.0):
    """What the page shows once its action count has passed actionsBefore: volumes, segmentations, error line."""
    deadline = time.perf_counter() + seconds
    state = await pageState(client)
    while state.get("actionCount", 0) <= actionsBefore and time.perf_counter() < deadline:
        await asyncio.sleep(0.2)
        state = await pageState(client)
    return {"lastAction": state.get("lastAction", ""),
            "volumes": [item["title"] for item in state.get("volumes") or []],
            "segmentations": [item["title"] for item in state.get("segmentations") or []],
            "error": state.get("error", "")}


async def loadPath(client, kind, path):
    await client.call("trame.state.update", [[{"key": "serverPath", "value": path},
                                              {"key": "fileKind", "value": kind}]])
    before = (await pageState(client)).get("actionCount", 0)
    await client.call("trame.trigger", [await buttonTrigger(client, "load-path"), [], {}])
    return await loaded(client, before)


async def sendFile(client, kind, path):
    with open(path, "rb") as file:
        content = file.read()
    upload = {"name": os.path.basename(path), "size": len(content), "type": "application/octet-stream",
              "lastModified": 0, "content": content}
    await client.call("trame.state.update", [[{"key": "fileKind", "value": kind}]])
    before = (await pageState(client)).get("actionCount", 0)
    await client.call("trame.state.update", [[{"key": "uploads", "value": [upload]}]])
    return await loaded(client, before)


async def saveDownload(client, triggerName, path):
    reply = await client.call("trame.trigger", [triggerName, [], {}])
    content = reply.get("result")
    if isinstance(content, bytes):
        with open(path, "wb") as file:
            file.write(content)
    return {"bytes": len(content) if isinstance(content, bytes) else None, "replyError": reply.get("error"),
            "error": await stateError(client)}


async def scenario(name, url, arguments, session):
    client = await Client(url).open(session)
    if name == "silent":
        start = time.perf_counter()
        closed, code = await client.closedBy(float(arguments[0]))
        return {"closed": closed, "code": code, "seconds": round(time.perf_counter() - start, 1)}
    if name in ("flood", "text"):
        pid, count = int(arguments[0]), int(arguments[1])
        before = memory(pid)
        frames = ((header(i + 1, 0, 512) + b"x") for i in range(count)) if name == "flood" else \
            ("A" * int(float(arguments[2]) * 2**20) for _ in range(count))
        sent, closed, code = await sendUntilClosed(client, frames)
        await asyncio.sleep(1.0)
        return {"sent": sent, "closed": closed, "code": code, "before": before, "after": memory(pid)}
    authenticated = await client.hello()
    if "error" in authenticated:
        return {"hello": authenticated}
    if name == "header":
        pid = int(arguments[0])
        before = memory(pid)
        sent, closed, code = await sendUntilClosed(client, [header(77, 0, 2**31 - 1) + b"xy"])
        return {"sent": sent, "closed": closed, "code": code, "before": before, "after": memory(pid)}
    if name == "upload":
        pid, megabytes = int(arguments[0]), float(arguments[1])
        before = memory(pid)
        total, body = int(megabytes * 2**20), b"\0" * CHUNK
        frames = (header(88, start, total) + body[:min(CHUNK, total - start)] for start in range(0, total, CHUNK))
        sent, closed, code = await sendUntilClosed(client, frames)
        return {"sentMb": round(sent * CHUNK / 2**20), "closed": closed, "code": code, "before": before,
                "after": memory(pid)}
    if name == "call":
        reply = await client.call("trame.trigger", [arguments[0], json.loads(arguments[1]) if len(arguments) > 1
                                                    else [], {}])
        return {"reply": reply, "error": await stateError(client)}
    if name == "fifo":
        return await loadFromOtherClient(client, url, arguments[0], session)
    actions = {"path": loadPath, "send": sendFile, "save": saveDownload}
    if name in actions:
        return await actions[name](client, *arguments)
    raise SystemExit(f"unknown scenario {name}")


async def loadFromOtherClient(client, url, path, session):
    """Client 1 loads `path` through the page's Load button; client 2 says hello meanwhile."""
    triggerName = await buttonTrigger(client, "load-path")
    await client.call("trame.state.update", [[{"key": "serverPath", "value": path},
                                              {"key": "fileKind", "value": "volume"}]])
    await client.send({"wslink": "1.0", "id": "rpc:c0:load", "method": "trame.trigger",
                       "args": [triggerName, [], {}], "kwargs": {}})
    await asyncio.sleep(1.0)
    other = await Client(url).open(session)
    start = time.perf_counter()
    try:
        reply = await asyncio.wait_for(other.hello(), 10.0)
        await asyncio.sleep(1.0)
        error = await asyncio.wait_for(stateError(other), 10.0)
    except asyncio.TimeoutError:
        reply, error = {"timeout": True}, None
    return {"helloSeconds": round(time.perf_counter() - start, 2), "hello": "result" in reply, "error": error}


async def main(argv):
    async with aiohttp.ClientSession() as session:
        result = await scenario(argv[0], argv[1], argv[2:], session)
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
