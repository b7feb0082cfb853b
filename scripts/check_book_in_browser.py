"""Load every page of the built book in headless Chromium and report what is broken.

    python scripts/check_book_in_browser.py [BUILD_DIR] [--screenshots DIR]

BUILD_DIR defaults to ``_build/html``; every .html file in it except those under
``_static/`` is checked. The pages are served from 127.0.0.1 on a
free port. A page fails the check when

* it requests any URL outside that server (a CDN, web fonts, analytics, ...);
  such requests are blocked and reported;
* a request to the server fails or answers with an HTTP error;
* LaTeX is left unrendered: visible text outside code still holds ``$$``,
  ``\\(``, ``\\[`` or ``\\begin{``, a ``.math`` element holds no rendered
  ``mjx-container``, or MathJax reports a TeX error;
* an image (SVG included) fails to load;
* the browser console shows an error, or a script throws.

The browser is the system's Chromium (``$CHROMIUM``, else ``chromium`` on PATH);
Playwright never downloads one. Exit status: 0 when every page is clean, 1 when
there are problems, 2 when the check could not run.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Request, Route, sync_playwright

# From the notes on this machine's toolchain: a quiet, sandbox-free headless Chromium.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAGE_TIMEOUT_MS = 30_000

# Runs in the page after it has loaded: waits for MathJax and the images, then
# returns what is wrong with the page as a list of strings.
INSPECT_PAGE_JS = r"""
async () => {
  const problems = [];
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // MathJax typesets asynchronously after loading.
  const hasMath = document.querySelector(".math") !== null;
  if (hasMath) {
    for (let i = 0; i < 150 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++) {
      await sleep(100);
    }
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      await MathJax.startup.promise;
    } else {
      problems.push("math: MathJax never started");
    }
  }

  // Lazy images load only when scrolled to; load them all now.
  const images = Array.from(document.images);
  images.forEach((img) => { img.loading = "eager"; });
  await Promise.race([
    Promise.all(images.map((img) => img.complete ? null :
      new Promise((resolve) => { img.addEventListener("load", resolve); img.addEventListener("error", resolve); }))),
    sleep(10000),
  ]);
  for (const img of images) {
    if (!img.complete || img.naturalWidth === 0) {
      problems.push(`image did not load: ${img.getAttribute("src")}`);
    }
  }

  document.querySelectorAll(".math").forEach((el) => {
    if (el.querySelector("mjx-container") === null) {
      problems.push(`math not rendered: ${el.textContent.trim().slice(0, 80)}`);
    }
  });
  document.querySelectorAll("mjx-merror").forEach((el) => {
    problems.push(`TeX error: ${(el.getAttribute("data-mjx-error") || el.textContent).slice(0, 120)}`);
  });

  // Raw LaTeX in the visible text, outside code and rendered math.
  const skip = "pre, code, script, style, textarea, mjx-container, .highlight, .MathJax";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const markers = ["$$", "\\(", "\\)", "\\[", "\\]", "\\begin{", "\\end{"];
  for (let node = walker.nextNode(); node !== null; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (parent === null || parent.closest(skip) !== null) continue;
    if (parent.getClientRects().length === 0) continue;  // not displayed
    const text = node.textContent;
    const marker = markers.find((m) => text.includes(m));
    if (marker !== undefined) {
      const at = text.indexOf(marker);
      const excerpt = text.slice(Math.max(0, at - 30), at + 50).replace(/\s+/g, " ");
      problems.push(`raw LaTeX (${marker}) in text: ...${excerpt}...`);
    }
  }
  return problems;
}
"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base signature
        pass


def start_server(root: Path) -> http.server.ThreadingHTTPServer:
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def find_chromium() -> str:
    candidates = [os.environ.get("CHROMIUM", "")]
    candidates += [shutil.which(name) or "" for name in ("chromium", "chromium-browser")]
    candidates.append("/usr/bin/chromium")
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    print(
        "check_book_in_browser: no Chromium found. Install it "
        "(scripts/ensure-system-deps.sh chromium) or set CHROMIUM=/path/to/chrome.",
        file=sys.stderr,
    )
    sys.exit(2)  # the check could not run


def check_page(page: Page, url: str, origin: str) -> list[str]:
    """Load one page and return its problems."""
    problems: list[str] = []

    def on_console(message: object) -> None:
        if getattr(message, "type") == "error":
            problems.append(f"console error: {getattr(message, 'text')}")

    def on_response(response: object) -> None:
        status = getattr(response, "status")
        if status >= 400 and getattr(response, "url").startswith(origin):
            problems.append(f"HTTP {status}: {getattr(response, 'url')}")

    def on_request_failed(request: Request) -> None:
        if request.url.startswith(origin):
            problems.append(f"request failed: {request.url} ({request.failure})")

    def on_page_error(error: object) -> None:
        problems.append(f"page error: {error}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    page.on("response", on_response)
    page.on("requestfailed", on_request_failed)
    try:
        page.goto(url, wait_until="load", timeout=PAGE_TIMEOUT_MS)
        problems += page.evaluate(INSPECT_PAGE_JS)
        # Fonts and scripts fetched late (by MathJax, say) must be local too.
        page.wait_for_load_state("networkidle", timeout=PAGE_TIMEOUT_MS)
    except PlaywrightError as error:
        problems.append(f"could not check the page: {error.message.splitlines()[0]}")
    finally:
        page.remove_listener("console", on_console)
        page.remove_listener("pageerror", on_page_error)
        page.remove_listener("response", on_response)
        page.remove_listener("requestfailed", on_request_failed)
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build_dir", nargs="?", default="_build/html", type=Path)
    parser.add_argument("--screenshots", type=Path, metavar="DIR", help="save a full-page PNG of every page here")
    args = parser.parse_args()

    root: Path = args.build_dir.resolve()
    # _static/ holds the themes' Jinja macro files, which are not pages.
    pages = sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*.html") if p.relative_to(root).parts[0] != "_static"
    )
    if not pages:
        print(f"check_book_in_browser: no .html pages under {root}; build the book first", file=sys.stderr)
        return 2
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)

    server = start_server(root)
    origin = f"http://127.0.0.1:{server.server_address[1]}/"
    outside: list[str] = []  # URLs outside the server requested by the current page

    def block_outside(route: Route) -> None:
        url = route.request.url
        if url.startswith(origin) or url.startswith(("data:", "blob:", "about:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort("blockedbyclient")

    total_problems = 0
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=find_chromium(), headless=True, args=CHROMIUM_ARGS, chromium_sandbox=False
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.route("**/*", block_outside)
        page = context.new_page()
        for relative in pages:
            outside.clear()
            problems = check_page(page, origin + relative, origin)
            # A blocked request also shows up as a failed request or console error: report it once.
            problems = [p for p in problems if "ERR_BLOCKED_BY_CLIENT" not in p and not any(u in p for u in outside)]
            problems += [f"request outside the book: {url}" for url in dict.fromkeys(outside)]
            if args.screenshots:
                name = relative.removesuffix(".html").replace("/", "__") + ".png"
                page.screenshot(path=str(args.screenshots / name), full_page=True)
            total_problems += len(problems)
            print(f"{'ok  ' if not problems else 'FAIL'} {relative}" + (f" ({len(problems)} problems)" if problems else ""))
            for problem in problems:
                print(f"       - {problem}")
        browser.close()
    server.shutdown()

    print(f"{len(pages)} pages checked, {total_problems} problems")
    return 1 if total_problems else 0


if __name__ == "__main__":
    sys.exit(main())
