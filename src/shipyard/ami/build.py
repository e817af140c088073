"""`shipyard ami build`: bake an AMI with Packer, then check it carries its branch and timestamp.

Packer runs as `packer build -machine-readable -var branch=B TEMPLATE`. Its machine-readable
output is one line per message, `timestamp,target,type,data...`, with commas inside data
written `%!(PACKER_COMMA)` and newlines `\\n`
(https://developer.hashicorp.com/packer/docs/commands#machine-readable-output). The AMI comes
from the artifact's `id` line: `...,amazon-ebs,artifact,0,id,us-east-1:ami-0abc` (one
`region:ami` pair per region, comma-separated).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator

from shipyard import aws
from shipyard.ami.aws import to_image
from shipyard.errors import ConfigError, InputError, ShipyardError
from shipyard.redact import redact

# A timestamp tag may be a little ahead of our clock (Packer ran on another host).
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class PackerLine:
    timestamp: int
    target: str
    type: str
    data: tuple[str, ...]


def _unescape(field: str) -> str:
    return field.replace("%!(PACKER_COMMA)", ",").replace("\\n", "\n").replace("\\r", "\r")


def parse_machine_readable(lines: Iterable[str]) -> Iterator[PackerLine]:
    """Packer's machine-readable lines; anything else (a stray log line) is skipped."""
    for line in lines:
        parts = line.rstrip("\r\n").split(",")
        if len(parts) < 3 or not parts[0].isdigit():
            continue
        yield PackerLine(int(parts[0]), parts[1], parts[2], tuple(_unescape(p) for p in parts[3:]))


def artifact_images(lines: Iterable[PackerLine]) -> list[tuple[str, str]]:
    """(region, ami id) of every artifact's `id`."""
    out = []
    for ln in lines:
        if ln.type == "artifact" and len(ln.data) >= 3 and ln.data[1] == "id":
            for pair in ln.data[2].split(","):
                region, _, ami = pair.strip().partition(":")
                if ami.startswith("ami-"):
                    out.append((region, ami))
    return out


def parse_timestamp_tag(value: str) -> datetime | None:
    """Packer's `{{timestamp}}` (Unix seconds) or an ISO 8601 time (HCL's `timestamp()`)."""
    value = value.strip()
    try:
        if value.isdigit():
            return datetime.fromtimestamp(int(value), tz=timezone.utc)
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError):
        return None


def check_image_tags(tags: dict[str, str], branch: str, started: datetime, now: datetime, *,
                     branch_tag: str = "branch", timestamp_tag: str = "timestamp") -> list[str]:
    """What is wrong with a fresh image's tags (empty when nothing): the branch tag names
    `branch`, and the timestamp tag is a time within this build (`started`..`now`)."""
    problems = []
    if tags.get(branch_tag) != branch:
        problems.append(f"tag {branch_tag}={tags.get(branch_tag)!r}, expected {branch!r}")
    raw = tags.get(timestamp_tag)
    when = parse_timestamp_tag(raw) if raw is not None else None
    if raw is None:
        problems.append(f"no {timestamp_tag} tag")
    elif when is None:
        problems.append(f"tag {timestamp_tag}={raw!r} is not a Unix or ISO 8601 time")
    elif not started - CLOCK_SKEW <= when <= now + CLOCK_SKEW:
        problems.append(f"tag {timestamp_tag}={raw!r} is not within this build "
                        f"({started.isoformat(timespec='seconds')} .. {now.isoformat(timespec='seconds')})")
    return problems


def run_packer(template: Path, branch: str, *, packer: str = "packer",
               on_line: Callable[[PackerLine], None] | None = None) -> list[tuple[str, str]]:
    """Run Packer; the (region, ami) pairs it made. Its output streams through `on_line`."""
    exe = shutil.which(packer)
    if exe is None:
        raise ConfigError(f"{packer} is not on PATH",
                          hint="install Packer (https://developer.hashicorp.com/packer/install)")
    if not template.is_file():
        raise InputError(f"Packer template {template} is not a file")
    cmd = [exe, "build", "-machine-readable", "-color=false", f"-var=branch={branch}", str(template)]
    errors: list[str] = []
    seen: list[PackerLine] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          bufsize=1) as proc:
        assert proc.stdout is not None
        for ln in parse_machine_readable(proc.stdout):
            seen.append(ln)
            if ln.type == "error" or (ln.type == "ui" and ln.data[:1] == ("error",)):
                errors.append(redact(ln.data[-1]))
            if on_line:
                on_line(ln)
    if proc.returncode != 0:
        raise ShipyardError(f"packer build failed (exit {proc.returncode})"
                            + (f": {errors[-1]}" if errors else ""),
                            hint="run the same packer build by hand to see all its output")
    images = artifact_images(seen)
    if not images:
        raise ShipyardError("packer build made no AMI (no artifact id line in its output)",
                            hint="the template needs an amazon-ebs (or other amazon-*) builder")
    return images


def verify_images(images: list[tuple[str, str]], branch: str, started: datetime, now: datetime,
                  *, branch_tag: str = "branch", timestamp_tag: str = "timestamp") -> None:
    """Each built AMI exists in its region and is tagged for this branch and this build."""
    for region, ami in images:
        ec2 = aws.client("ec2", region=region or None)
        with aws.aws_errors(f"describing {ami} in {region}"):
            raw = ec2.describe_images(ImageIds=[ami])["Images"]
        if not raw:
            raise ShipyardError(f"{ami} is not in {region}")
        problems = check_image_tags(to_image(raw[0]).tags, branch, started, now,
                                    branch_tag=branch_tag, timestamp_tag=timestamp_tag)
        if problems:
            raise InputError(f"{ami} in {region}: " + "; ".join(problems),
                             hint=f"tag the AMI in the template: tags = {{ {branch_tag} = var.branch, "
                             f"{timestamp_tag} = timestamp() }}")
