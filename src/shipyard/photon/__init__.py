"""photon: one deployment file, one command; blue/green, canary and linear rollouts.

Library first: `shipyard.photon.runner.Photon` (apply, terminate, status, promote, rollback,
logs, ls) over `model.load(path)`. Targets: local (HAProxy in front of processes) and aws
(ECS Fargate behind an ALB). This package's __init__ stays empty of imports: the release
supervisor (targets/local/supervise.py) starts once per release and imports through it.
"""
