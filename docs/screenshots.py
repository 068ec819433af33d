"""README's screenshots of the agent client, made from the demo: `.venv/bin/python docs/screenshots.py`.

Rules: it runs `didchat demo` as a user would (in a scratch folder, so its ./data is new), texts Alice's number
with `didchat simulate sms` from a few customers, names one of them, signs in as alice in Debian's chromium and
saves docs/screenshots/desktop.png (1280x800) and docs/screenshots/phone.png (390x844: the conversation, one
view at a time). Nothing is faked: what the pictures show is what an agent sees.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.async_api import async_playwright, expect

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
DIDCHAT = str(Path(sys.executable).with_name("didchat"))
ALICE = "+12125550101"
TEXTS = [  # (customer, text): the last one is the conversation shown
    ("+12125550177", "Is the store open on Sunday?"),
    ("+447911123456", "Hello, I ordered a blue jacket last week (order 5521). When will it arrive?"),
    ("+12125550199", "Hi Alice, it's Carol. Can we move my appointment to Thursday at 3?"),
]
REPLY = "Hi Carol! Thursday at 3 works. See you then."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, seconds: float = 60) -> None:
    """Until the demo answers its health check."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the demo did not answer at {url} within {seconds:.0f} s")


async def shoot(url: str, password: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium")
        for name, size in (("desktop", {"width": 1280, "height": 800}), ("phone", {"width": 390, "height": 844})):
            page = await browser.new_page(viewport=size, device_scale_factor=2 if name == "phone" else 1)
            await page.goto(url + "/")
            await page.get_by_test_id("login-username").fill("alice")
            await page.get_by_test_id("login-password").fill(password)
            await page.get_by_test_id("login-submit").click()
            await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected", timeout=15_000)
            items = page.get_by_test_id("conversation-list").locator("li")
            await expect(items).to_have_count(len(TEXTS), timeout=15_000)
            await items.first.click()
            if name == "desktop":
                await page.get_by_test_id("reply-text").fill(REPLY)
                await page.get_by_test_id("reply-send").click()
                await expect(page.get_by_test_id("transcript").get_by_text(REPLY)).to_be_visible(timeout=15_000)
            await page.wait_for_load_state("networkidle")
            await page.screenshot(path=str(OUT / f"{name}.png"))
            await page.close()
        await browser.close()


def main() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="didchat-shots-") as scratch:
        env = {**os.environ, "DIDCHAT_LOG_LEVEL": "warning"}
        demo = subprocess.Popen([DIDCHAT, "demo", "--port", str(port)], cwd=scratch, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_up(url)
            for sender, text in TEXTS:
                subprocess.run([DIDCHAT, "simulate", "sms", "--from", sender, "--to", ALICE, "--text", text, "--url", url],
                               cwd=scratch, env=env, check=True, stdout=subprocess.DEVNULL)
            password = dict(line.split("=", 1) for line in (Path(scratch) / "data" / "demo.env").read_text().split())
            asyncio.run(shoot(url, password["DIDCHAT_DEMO_PASSWORD"]))
        finally:
            demo.terminate()
            demo.wait(timeout=30)
    print(f"wrote {OUT / 'desktop.png'} and {OUT / 'phone.png'}")


if __name__ == "__main__":
    main()
