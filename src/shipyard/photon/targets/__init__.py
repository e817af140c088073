"""Targets by name: "module:class" import paths, so the AWS stack is imported only when used."""

from __future__ import annotations

import importlib
from typing import Any

TARGETS: dict[str, str] = {
    "local": "shipyard.photon.targets.local.target:LocalTarget",
    "aws": "shipyard.photon.aws.target:AwsTarget",
}


def get_target(name: str, settings: Any) -> Any:
    module, _, cls = TARGETS[name].partition(":")
    return getattr(importlib.import_module(module), cls)(settings)
