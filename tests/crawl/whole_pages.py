"""Pages of the wait_for_js and whole-page tests: text that scripts bring after load, figures
with captions and alt text, and a 2 MB article."""

from __future__ import annotations

import json
import time

AFTER_LOAD_TEXT = "A timer inserted this sentence half a second after the load event."
FETCHED_TEXT = "This sentence came from a slow API answer that a script rendered."
TIMER_RESULTS = [
    "natives look native",
    "timer args ok",
    "cleared timer stayed silent",
    "interval ran",
    "frame ran",
]

# Text 500 ms after the load event (not after parsing): the wait must see the pending timer.
AFTER_LOAD_PAGE = f"""<!doctype html><html><head><title>After load</title></head><body>
<p>The static part of the page.</p><div id="slot"></div>
<script>window.addEventListener("load", () => setTimeout(() => {{
  document.getElementById("slot").textContent = "{AFTER_LOAD_TEXT}";
}}, 500));</script></body></html>"""

FETCH_PAGE = """<!doctype html><html><head><title>Fetched</title></head><body>
<p>The static part of the page.</p><div id="slot"></div>
<script>fetch("/api/slow-text").then((r) => r.json()).then((j) => {
  document.getElementById("slot").textContent = j.text;
});</script></body></html>"""

# The wrapped timers behave as the real ones: arguments, clearTimeout, setInterval, frames.
TIMERS_PAGE = """<!doctype html><html><head><title>Timers</title></head><body><p id="out"></p>
<script>
const parts = [];
const native = (f, name) => f.name === name && String(f).includes("[native code]");
parts.push(native(setTimeout, "setTimeout") && native(requestAnimationFrame,
  "requestAnimationFrame") ? "natives look native" : "natives BAD");
const out = () => { document.getElementById("out").textContent = parts.join("; "); };
setTimeout((a, b) => { parts.push(a === 1 && b === "two" ? "timer args ok" : "timer args BAD");
  out(); }, 50, 1, "two");
const cleared = setTimeout(() => { parts.push("cleared timer RAN"); out(); }, 150);
clearTimeout(cleared);
setTimeout(() => { parts.push("cleared timer stayed silent"); out(); }, 250);
let ticks = 0;
const every = setInterval(() => { ticks += 1; if (ticks === 2) { clearInterval(every);
  setTimeout(() => { parts.push("interval ran"); out();
    requestAnimationFrame((t) => { parts.push(typeof t === "number" ? "frame ran" : "frame BAD");
      out(); }); }, 10); } }, 100);
</script></body></html>"""

CAPTIONS = [
    "Figure 1: a grey heron waits in the reeds at dawn.",
    "Figure 2: the rebuilt weir, seen from the footbridge.",
]
ALT_TEXTS = [
    "Map of the footpath closure near the heron colony",
    "Chart of nest counts since 1952",
]
MEANINGLESS_ALTS = ["IMG_1234.jpg", "image", "DSC_0042", "photo 3"]
NAV_LOGO_ALT = "Valley News masthead logo"
BODY = [
    "The herons came back to the mill pond this spring after years away from the valley.",
    "Volunteers have watched the colony from the footbridge every morning since March.",
    "The council says the footpath will stay closed until the last chicks have fledged.",
]


def figures_html() -> str:
    body = "\n".join(f"<p>{p} {p}</p>" for p in BODY)
    junk = "".join(f'<img src="/x{i}.jpg" alt="{alt}">' for i, alt in enumerate(MEANINGLESS_ALTS))
    return f"""<!doctype html><html lang="en"><head><title>Figures</title></head><body>
<header><nav><a href="/"><img src="/logo.png" alt="{NAV_LOGO_ALT}"></a> <a href="/a">Sections</a>
</nav></header>
<main><article><h1>The heron colony in pictures</h1>{body}
<figure><img src="/heron.jpg" alt="A heron"><figcaption>{CAPTIONS[0]}</figcaption></figure>
<p>More about the weir and the pond. {BODY[0]}</p>
<figure><img src="/weir.jpg" alt=""><figcaption>{CAPTIONS[1]}</figcaption></figure>
<p><img src="/map.png" alt="{ALT_TEXTS[0]}"></p>
<div><img src="/chart.png" alt="{ALT_TEXTS[1]}"></div>{junk}
<img src="/deco.png" alt="Decorative swirl border" role="presentation">
</article></main>
<footer><img src="/badge.png" alt="Footer award badge"> Copyright 2026. Privacy.</footer>
</body></html>"""


LONG_SECTIONS = 1_500  # about 2 MB of HTML


def long_html() -> str:
    sections = []
    for i in range(LONG_SECTIONS):
        paragraphs = "".join(
            f"<p>Section {i}, paragraph {j}: the heron stood in the shallow water of the mill "
            f"pond and came up with silver fish number {i * 10 + j} of the long record.</p>"
            for j in range(7)
        )
        sections.append(f"<h2>Section {i}</h2>{paragraphs}")
    return (
        '<!doctype html><html lang="en"><head><title>Long page</title></head><body>'
        '<nav><a href="/">Home</a> <a href="/b">Back issues</a></nav><main><article>'
        f"<h1>The whole record</h1>{''.join(sections)}"
        "<p>The very last sentence of the long record.</p></article></main>"
        "<footer>Footer of the long page.</footer></body></html>"
    )


def route(path: str) -> tuple[str, str] | None:
    """(content type, body) of one of these pages, None for another path."""
    if path == "/after-load":
        return "text/html", AFTER_LOAD_PAGE
    if path == "/fetched":
        return "text/html", FETCH_PAGE
    if path == "/api/slow-text":
        time.sleep(0.4)
        return "application/json", json.dumps({"text": FETCHED_TEXT})
    if path == "/timers":
        return "text/html", TIMERS_PAGE
    if path == "/figures":
        return "text/html", figures_html()
    if path == "/long":
        return "text/html", long_html()
    return None
