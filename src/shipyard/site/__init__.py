"""site: deploy a static site to S3 + CloudFront (or a local folder) in one command.

Library API (the CLI, `shipyard site ...`, is a thin client of it):
    deploy(dir, to, distribution=, branch=, delete=, dry_run=, url=) -> Summary
    rollback(to, release, ...), cleanup(to, branch, ...), releases(open_site(to, branch=))
Layers: model (files, headers, releases) <- plan (pure) <- targets (s3, folder) / cdn
(CloudFront) <- runner <- cli / serve. See docs/site.md.
"""

from shipyard.site.model import Release, Summary
from shipyard.site.runner import cleanup, deploy, open_site, releases, rollback

__all__ = ["Release", "Summary", "cleanup", "deploy", "open_site", "releases", "rollback"]
