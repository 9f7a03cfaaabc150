"""wait_for_js: done as soon as the page is known to be quiet, not after a fixed window.

A script installed at document start (before the page's own) records when the DOM last
changed and which short timers and animation frames are still pending; the network side is
the page's requests as Playwright reports them. A static page is settled one short quiet
window after its load event; a page with a timer due (text inserted 500 ms after load) is
waited for until that timer has run and the DOM is quiet again, at most `crawl.js_wait_ms`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page

# How long the DOM and the network must both have been still. Short, because pending work is
# seen rather than guessed: a timer or a request in flight holds the wait by itself; the
# window only covers the step after one (a fetch's body parsed, then rendered).
QUIET_MS = 60
# Timers set for at most this long are waited for (later ones: popups, analytics, polls).
TIMER_HORIZON_MS = 1500
# A timer chain (a timer set from a timer's callback) is followed this deep: a polling loop
# or an animation by timers is not waited for without end.
_MAX_CHAIN = 4
# A due timer or frame that has not run this long after its time (a busy or throttled page)
# no longer holds the wait.
_OVERDUE_MS = 150
KEY = "__homelabCrawlQuiet"

# Page scripts see the wrapped setTimeout/requestAnimationFrame; they behave as the real ones
# (same ids, same arguments, errors still thrown), only their pending state is recorded.
TRACKER_JS = f"""(() => {{
  if (window.{KEY} || window.top !== window) return;
  const now = () => performance.now();
  const state = {{last: now(), pending: new Map(), depth: 0}};
  const set = window.setTimeout;  // the real one, for the wait's own timers
  // `schedule(run)` sets the real timer or frame; `key` tells timers' ids from frames'.
  const track = (schedule, delay, handler, args, key) => {{
    const depth = state.depth + 1;
    if (typeof handler !== "function" || delay > {TIMER_HORIZON_MS} || depth > {_MAX_CHAIN}) {{
      return schedule(handler);
    }}
    let id;
    const run = function (...given) {{
      state.pending.delete(key + id);
      const outer = state.depth;
      state.depth = depth;
      try {{ return handler.apply(this, key ? given : args); }}
      finally {{ state.depth = outer; }}
    }};
    id = schedule(run);
    state.pending.set(key + id, now() + delay);
    return id;
  }};
  const ms = (delay) => Math.max(0, Number(delay) || 0);
  // Proxies of the real functions: same name, length and native-looking source.
  const wrap = (name, apply) => {{ window[name] = new Proxy(window[name], {{apply}}); }};
  wrap("setTimeout", (real, self, [handler, delay, ...args]) => track(
    (h) => real.call(window, h, delay, ...(h === handler ? args : [])), ms(delay), handler,
    args, ""));
  // an interval is waited for until its first run only
  wrap("setInterval", (real, self, [handler, delay, ...args]) => track(
    (h) => real.call(window, h, delay, ...(h === handler ? args : [])), ms(delay), handler,
    args, ""));
  for (const name of ["clearTimeout", "clearInterval"]) {{
    wrap(name, (real, self, [id]) => {{ state.pending.delete("" + id); real.call(window, id); }});
  }}
  if (window.requestAnimationFrame) {{
    wrap("requestAnimationFrame", (real, self, [handler]) => track(
      (h) => real.call(window, h), 16, handler, [], "f"));
    wrap("cancelAnimationFrame", (real, self, [id]) => {{
      state.pending.delete("f" + id); real.call(window, id);
    }});
  }}
  const watch = () => {{
    state.last = now();
    new MutationObserver(() => {{ state.last = now(); }})
      .observe(document, {{subtree: true, childList: true, characterData: true}});
  }};
  // From DOMContentLoaded on: the parser's own insertions are the load, not a change after it.
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", watch);
  else watch();
  Object.defineProperty(window, "{KEY}", {{
    enumerable: false,
    value: (quietMs, maxMs) => new Promise((resolve) => {{
      const began = now();
      const check = () => {{
        const t = now();
        let wait = state.last + quietMs - t;
        for (const [id, due] of state.pending) {{
          if (t > due + {_OVERDUE_MS}) state.pending.delete(id);
          else wait = Math.max(wait, due - t + quietMs, 5);
        }}
        if (wait <= 0 || t - began >= maxMs) resolve(Math.round(t - began));
        else set.call(window, check, Math.min(wait, maxMs - (t - began)));
      }};
      check();
    }}),
  }});
}})();"""

# The wait itself; without the tracker (a document it could not run in) a plain quiet window.
_QUIET_JS = f"""([quietMs, maxMs]) => window.{KEY} ? window.{KEY}(quietMs, maxMs) :
  new Promise((resolve) => {{
    let timer = setTimeout(resolve, quietMs);
    const observer = new MutationObserver(() => {{
      clearTimeout(timer); timer = setTimeout(done, quietMs);
    }});
    const done = () => {{ observer.disconnect(); clearTimeout(cap); resolve(); }};
    const cap = setTimeout(done, maxMs);
    observer.observe(document, {{subtree: true, childList: true, characterData: true}});
  }})"""


class Network(Protocol):
    def busy_for(self, quiet: float) -> float: ...


def _browser_gone(page: Page) -> bool:
    browser = page.context.browser
    return page.is_closed() or (browser is not None and not browser.is_connected())


async def install(page: Page) -> None:
    """The tracker, for the page's next document (call before navigating)."""
    await page.add_init_script(TRACKER_JS)


async def settle(page: Page, network: Network, end: float) -> None:
    """Until the DOM is quiet with no short timer pending and the network has been quiet as
    long (or `end`, time.monotonic()): the two windows run at once, not one after the other."""
    quiet = QUIET_MS / 1000
    while (left := (end - time.monotonic()) * 1000) > 0:
        try:
            await page.evaluate(_QUIET_JS, [QUIET_MS, left])
        except PlaywrightError:  # a navigation replaced the document: watch the new one
            if _browser_gone(page):
                raise
            await asyncio.sleep(0.05)
            continue
        busy = network.busy_for(quiet)
        if busy <= 0:
            return
        while busy > 0 and time.monotonic() < end:
            await asyncio.sleep(min(busy, max(0.0, end - time.monotonic())) + 0.002)
            busy = network.busy_for(quiet)
        # the network went quiet after the DOM did: what it brought may still be rendering
