"""The README's web page screenshot (docs/web-page.png), from a running demo.

    rm -rf var/demo && make run-fast        # in one terminal: a first demo, 20x clock from 15:45
    .venv/bin/python scripts/web_screenshot.py docs/web-page.png --settle-s 20   # in another, ~50 s later

Chromium (Debian's package) is started and left to settle before the page is loaded: on a 2-core box its
start-up alone can stall the demo's 100 ms poll slots, and the page would show that stall. The page then
gets 12 s to refresh (`/status` every few seconds, the chart every 10 s) before it is captured.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.ops.cdp import chromium_page, find_chromium  # noqa: E402


async def shoot(url: str, settle_s: float, profile: Path) -> tuple[bytes, list[str]]:
    binary = find_chromium()
    if binary is None:
        raise SystemExit("no Chromium found: `make services` installs Debian's chromium")
    async with chromium_page(binary, profile) as page:
        await page.send("Emulation.setDeviceMetricsOverride", width=1280, height=1650, deviceScaleFactor=1,
                        mobile=False)
        await asyncio.sleep(settle_s)
        await page.send("Page.navigate", url=url)
        await asyncio.sleep(12)
        shot = await page.send("Page.captureScreenshot", format="png")
        return base64.b64decode(shot["data"]), page.errors()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--url", default="http://127.0.0.1:9109/")
    p.add_argument("--settle-s", type=float, default=20.0)
    p.add_argument("--profile", type=Path, default=ROOT / "var" / "chromium-profile")
    args = p.parse_args()
    png, errors = asyncio.run(shoot(args.url, args.settle_s, args.profile))
    args.out.write_bytes(png)
    print(f"{args.out}: written; page errors: {errors or 'none'}")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
