"""What the HTTP server costs a request, with uvicorn's stock protocol and the gateway's own.

    python bench/http_protocol.py [--seconds 6] [--rounds 3] [--connections 32]

Serves one small ASGI application, which answers every POST with a flash sale's refusal (the
same JSON bytes, with a Content-Length), under uvicorn with one worker twice in turn: with
uvicorn's httptools protocol (the baseline: `uvicorn gateway:create_app --factory`) and with
`transport.http_protocol.OneSendHttp` (what `quanyi serve` runs). wrk drives each for
--seconds after a warm-up, --rounds times, alternating, so both meet the same machine. Prints
the server's CPU per request (from /proc) and requests a second, each round and the median.
The application does nothing else, so the difference is the server's: the gateway's answer
leaves in one write instead of two. Aim: the gateway's protocol costs less CPU a request
than the stock one, in every round.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from load import server_cpu
from servers import HOST, ROOT, free_port, project_env, stop
from tables import text_table

ANSWER = (
    b'{"data":{"placeOrder":{"order":null,"refusals":[{"field":"lines.0.quantity",'
    b'"message":"not enough stock","code":"OUT_OF_STOCK"}]}}}'
)
APP = f'''
ANSWER = {ANSWER!r}
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({{"type": "http.response.start", "status": 200, "headers": HEADERS}})
    await send({{"type": "http.response.body", "body": ANSWER}})
'''
SERVE = """
import sys, uvicorn
from transport.http_protocol import OneSendHttp
http = OneSendHttp if sys.argv[2] == "gateway" else "httptools"
uvicorn.run("answer:app", host="{host}", port=int(sys.argv[1]), http=http, log_level="warning", access_log=False)
"""
BODY = (
    '{"query":"mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } '
    'refusals { field message code } } }","variables":{"input":{"channel":"web","idempotencyKey":'
    '"bench-http-protocol-0001","lines":[{"skuId":"U2t1OjE=","quantity":1}],"buyer":{"phone":"13800000000"}}}}'
)
LUA = f"""
wrk.method = "POST"
wrk.body = '{BODY}'
wrk.headers["Content-Type"] = "application/json"
"""
PROTOCOLS = {"stock": "uvicorn's httptools protocol (baseline)", "gateway": "OneSendHttp (quanyi serve)"}


def _wrk(port: int, seconds: int, connections: int, script: Path) -> int:
    """Requests answered in `seconds`, as wrk reports them."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), f"http://{HOST}:{port}/"],
        check=True, capture_output=True, text=True,
    ).stdout
    for line in out.splitlines():
        if "requests in" in line:
            return int(line.split()[0])
    raise RuntimeError(f"wrk said:\n{out}")


def measure(kind: str, folder: Path, seconds: int, connections: int, script: Path) -> tuple[float, float]:
    """(µs of server CPU a request, requests a second) of one protocol, after a warm-up."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE.format(host=HOST), str(port), kind],
        env=project_env({"PYTHONPATH": f"{folder}:{ROOT}"}), cwd=folder,
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                _wrk(port, 1, 1, script)
                break
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"the {kind} server did not start") from None
                time.sleep(0.2)
        _wrk(port, 2, connections, script)  # warm-up
        before = server_cpu(server.pid) or 0.0
        answered = _wrk(port, seconds, connections, script)
        spent = (server_cpu(server.pid) or 0.0) - before
        return spent / answered * 1e6, answered / seconds
    finally:
        stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {kind: [] for kind in PROTOCOLS}
    with tempfile.TemporaryDirectory() as folder:
        where = Path(folder)
        (where / "answer.py").write_text(APP)
        script = where / "post.lua"
        script.write_text(LUA)
        for _ in range(args.rounds):
            for kind in PROTOCOLS:
                results[kind].append(measure(kind, where, args.seconds, args.connections, script))
    rows = []
    for kind, label in PROTOCOLS.items():
        cpu = [round(c, 1) for c, _ in results[kind]]
        rates = [r for _, r in results[kind]]
        rows.append([label, ", ".join(f"{c}" for c in cpu), f"{statistics.median(cpu):.1f}",
                     f"{statistics.median(rates):,.0f}"])
    print(text_table(["protocol", "µs CPU a request, each round", "median", "requests/s (median)"], rows))
    stock = statistics.median(c for c, _ in results["stock"])
    gateway = statistics.median(c for c, _ in results["gateway"])
    wins = sum(g < s for (g, _), (s, _) in zip(results["gateway"], results["stock"], strict=True))
    print(f"\nthe gateway's protocol: {gateway:.1f} against {stock:.1f} µs a request ({gateway / stock:.2f}×); "
          f"less in {wins} of {args.rounds} rounds (aim: every round)")


if __name__ == "__main__":
    main()
