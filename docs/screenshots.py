#!/usr/bin/env python
"""The README's VisualDL pictures, taken from a real run with headless Chromium:

    pip install websocket-client          # only for this script
    python docs/screenshots.py --run work/quickstart --out docs

Starts `visualdl --logdir RUN/vdl` on a free port, opens it in `chromium --headless` driven over
the DevTools protocol, and saves OUT/dashboard.png (the page VisualDL opens on, /app/scalar) and
OUT/dashboard_samples.png (SAMPLES with each step slider clicked at its right end, i.e. the newest
grid, at its actual size). Nothing here is part of the package.
"""
import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, seconds: float = 60) -> str:
    end = time.time() + seconds
    while True:
        try:
            # VisualDL 2.5.3 answers 500 to a request without Accept-Language (a browser always sends it)
            req = urllib.request.Request(url, headers={"Accept-Language": "en"})
            return urllib.request.urlopen(req, timeout=2).read().decode()
        except OSError:
            if time.time() > end:
                raise SystemExit(f"error: {url} did not answer within {seconds:.0f} s") from None
            time.sleep(0.5)


class Page:
    """One Chromium tab over the DevTools websocket: evaluate, click, screenshot."""

    def __init__(self, ws_url: str):
        import websocket

        self.ws, self.id = websocket.create_connection(ws_url, timeout=60), 0

    def call(self, method: str, **params):
        self.id += 1
        self.ws.send(json.dumps({"id": self.id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.id:
                if "error" in msg:
                    raise SystemExit(f"error: {method}: {msg['error']}")
                return msg.get("result", {})

    def js(self, expr: str):
        return self.call("Runtime.evaluate", expression=expr, returnByValue=True)["result"].get("value")

    def open(self, url: str, settle: float = 15.0) -> None:
        """Navigate, then give the page `settle` seconds to render (a line every 5 s meanwhile)."""
        self.call("Page.navigate", url=url)
        for waited in range(5, int(settle) + 1, 5):
            time.sleep(5)
            print(f"  rendering {url.rsplit('/app/', 1)[-1]}: {waited} s", flush=True)
        time.sleep(settle % 5)

    def click(self, x: float, y: float) -> None:
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
        time.sleep(0.5)

    def shot(self, path: str) -> None:
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        print(f"wrote {path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="work/quickstart", help="a run folder (its vdl/ is shown)")
    ap.add_argument("--out", default="docs", help="folder for dashboard.png and dashboard_samples.png")
    ap.add_argument("--size", default="1200,760", help="width,height of the scalar page")
    ap.add_argument("--samples-height", type=int, default=1000, help="window height for the samples page")
    args = ap.parse_args()
    logdir = os.path.join(args.run, "vdl")
    if not os.path.isdir(logdir):
        print(f"error: {logdir}: no VisualDL logs (train a run first)", file=sys.stderr)
        return 2
    vport, cport = _free_port(), _free_port()
    print(f"starting VisualDL on {logdir} and headless Chromium (the pages take ~40 s to render)", flush=True)
    procs = [subprocess.Popen(["visualdl", "--logdir", logdir, "--host", "127.0.0.1", "--port", str(vport)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        base = f"http://127.0.0.1:{vport}"
        _wait_http(base + "/app/scalar")
        profile = tempfile.mkdtemp(prefix="chromium-")
        procs.append(subprocess.Popen(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
                                       f"--user-data-dir={profile}", f"--remote-debugging-port={cport}",
                                       f"--window-size={args.size}", "about:blank"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_http(f"http://127.0.0.1:{cport}/json/version")
        tabs = json.loads(_wait_http(f"http://127.0.0.1:{cport}/json/list"))
        page = Page(next(t for t in tabs if t["type"] == "page")["webSocketDebuggerUrl"])
        page.call("Page.enable")
        os.makedirs(args.out, exist_ok=True)
        width, height = (int(v) for v in args.size.split(","))
        page.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        print("scalar page: waiting for the curves to render", flush=True)
        page.open(base + "/app/scalar")
        page.shot(os.path.join(args.out, "dashboard.png"))

        page.call("Emulation.setDeviceMetricsOverride", width=width, height=args.samples_height, deviceScaleFactor=1,
                  mobile=False)
        print("samples page: waiting for the grids to render", flush=True)
        page.open(base + "/app/sample/image")
        # "Show Actual Image Size", then every step slider clicked at the right end of its track
        box = page.js("""(() => { const l = [...document.querySelectorAll('*')]
            .filter(e => e.textContent.trim() === 'Show Actual Image Size').pop();
            if (!l) return null; const r = l.getBoundingClientRect(); return [r.x - 12, r.y + r.height / 2]; })()""")
        if box:
            page.click(*box)
        tracks = page.js("""[...document.querySelectorAll('.input-range__track--background')]
            .filter(e => e.getBoundingClientRect().right < 0.7 * window.innerWidth)  // not the aside's
            .map(e => { const r = e.getBoundingClientRect(); return [r.right - 1, r.y + r.height / 2]; })""") or []
        for x, y in tracks:
            page.click(x, y)
        time.sleep(3)
        # a click on the grid opens it at its actual size
        img = page.js("""(() => { const i = [...document.querySelectorAll('img')]
            .filter(e => e.getBoundingClientRect().width > 100).pop();
            if (!i) return null; const r = i.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()""")
        if img:
            page.click(*img)
            time.sleep(3)
        page.shot(os.path.join(args.out, "dashboard_samples.png"))
        print(f"samples page: {len(tracks)} step slider(s) moved to the newest grid"
              + ("" if box else "; no 'Show Actual Image Size' control found"))
    finally:
        for p in procs[::-1]:
            p.terminate()
            p.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
