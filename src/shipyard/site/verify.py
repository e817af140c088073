"""Verify a deploy the way a visitor sees it: fetch each changed path through the site URL and
compare the MD5 of the (decoded) body with the file's. Step 9 of the nine manual steps.

The URL is `site.url` / `--url` (the CloudFront domain or a custom one; in tests, `site serve`).
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

import httpx

from shipyard.errors import ShipyardError
from shipyard.site.plan import url_path


def verify(base_url: str, expected: Iterable[tuple[str, str]], *, workers: int = 8,
           progress: Callable[[int], None] | None = None, timeout: float = 30) -> int:
    """`expected` is (key, md5 of the file's bytes); returns how many matched, raises listing
    the ones that did not."""
    base = base_url.rstrip("/")
    items = list(expected)
    bad: list[str] = []
    # One pooled client for all threads; httpx decodes gzip (and br with brotli installed).
    with httpx.Client(timeout=timeout, follow_redirects=True,
                      headers={"Cache-Control": "no-cache"}) as client:

        def check(item: tuple[str, str]) -> str | None:
            key, md5 = item
            url = base + url_path(key)
            try:
                resp = client.get(url)
            except httpx.HTTPError as exc:
                return f"{url}: {type(exc).__name__}"
            if resp.status_code != 200:
                return f"{url}: HTTP {resp.status_code}"
            got = hashlib.md5(resp.content, usedforsecurity=False).hexdigest()
            return None if got == md5 else f"{url}: content differs (md5 {got}, expected {md5})"

        with ThreadPoolExecutor(max_workers=workers) as pool:
            for i, problem in enumerate(pool.map(check, items), 1):
                if problem:
                    bad.append(problem)
                if progress:
                    progress(i)
    if bad:
        raise ShipyardError(f"verify: {len(bad)} of {len(items)} changed paths do not serve the new "
                            f"content; first: {bad[0]}",
                            hint="the files are uploaded; check the site URL (site.url / --url), the "
                                 "distribution's origin and behaviours, then deploy again",
                            failures=bad[:20])
    return len(items)
