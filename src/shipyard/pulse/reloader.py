"""Config reloading: which monitor files changed, and the set of monitors they now give.

The service polls `fingerprint()` (file list, sizes, mtimes); on a change, `reload()` re-parses
only the files whose bytes changed and merges in file order. A file that became invalid, or
whose ids clash with an earlier file, contributes its last good version and is reported once.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.pulse.config import ParseLimits, monitor_files, parse_text
from shipyard.pulse.model import ConfigProblem, Monitor

log = logging.getLogger("shipyard.pulse")


@dataclass
class _FileEntry:
    digest: str
    monitors: list[Monitor] | None
    problem: ConfigProblem | None


@dataclass
class ReloadResult:
    monitors: dict[str, Monitor]
    new_problems: list[tuple[ConfigProblem, bool]] = field(default_factory=list)  # (problem, last good kept)
    fixed: list[str] = field(default_factory=list)


class ConfigReloader:
    def __init__(self, config_dir: Path, limits: ParseLimits = ParseLimits()) -> None:
        self.config_dir = Path(config_dir)
        self.limits = limits
        self.problems: dict[str, ConfigProblem] = {}  # file -> current problem
        self._files: dict[str, _FileEntry] = {}
        self._good: dict[str, list[Monitor]] = {}  # file -> last good monitors
        self._missing_reported = False

    def fingerprint(self) -> Any:
        """Changes when a file is added, removed or rewritten (None: cannot list now)."""
        try:
            real = os.path.realpath(self.config_dir)
            return real, tuple((str(p), st.st_mtime_ns, st.st_size)
                               for p in monitor_files(self.config_dir) for st in [p.stat()])
        except OSError:
            return None

    def reload(self) -> ReloadResult | None:
        """The monitors the folder gives now; None when nothing can be read this time (a
        missing folder keeps the current monitors, reported once)."""
        if not self.config_dir.is_dir():
            if not self._missing_reported:
                log.warning("pulse: config directory %s is missing; keeping the current monitors", self.config_dir)
                self._missing_reported = True
            return None
        self._missing_reported = False
        files: dict[str, _FileEntry] = {}
        # Resolve the sync's symlink once, so one reload reads one version of the tree.
        root = Path(os.path.realpath(self.config_dir))
        for p in monitor_files(root):
            name = str(p.relative_to(root))
            try:
                if p.stat().st_size > self.limits.max_file_bytes:
                    data = b""
                    problem = ConfigProblem(name, None, f"file is larger than {self.limits.max_file_bytes:,} bytes",
                                            "split it, or raise pulse.max_file_bytes")
                else:
                    data, problem = p.read_bytes(), None
            except OSError:
                # Vanished between listing and reading (an old version pruned): do not treat
                # it as deleted; try the whole reload again on the next scan.
                return None
            digest = hashlib.sha1(data).hexdigest() if problem is None else "too-big"
            old = self._files.get(name)
            if old is not None and old.digest == digest:
                files[name] = old
                continue
            if problem is not None:
                files[name] = _FileEntry(digest, None, problem)
                continue
            try:
                files[name] = _FileEntry(digest, parse_text(data.decode("utf-8"), name, self.limits), None)
            except UnicodeDecodeError:
                files[name] = _FileEntry(digest, None, ConfigProblem(name, None, "not UTF-8 text"))
            except ConfigProblem as exc:
                files[name] = _FileEntry(digest, None, exc)
        self._files = files
        return self._merge(files)

    def _merge(self, files: dict[str, _FileEntry]) -> ReloadResult:
        merged: dict[str, Monitor] = {}
        problems: dict[str, ConfigProblem] = {}
        for name in sorted(files):
            entry = files[name]
            cand, problem = entry.monitors, entry.problem
            if cand is not None:
                clash = next((m for m in cand if m.id in merged), None)
                if clash is not None:
                    first = merged[clash.id]
                    problem = ConfigProblem(
                        name, clash.line, f"monitor id {clash.id!r} is already defined in {first.file}:{first.line}",
                        "ids must be unique across all monitor files; rename one of them")
                    cand = None
            if cand is None:
                assert problem is not None
                problems[name] = problem
                good = self._good.get(name)
                if not good or any(m.id in merged for m in good):
                    continue
                cand = good
            else:
                self._good[name] = cand
            for m in cand:
                merged[m.id] = m
        for name in list(self._good):
            if name not in files:
                del self._good[name]  # deleted file: its monitors go (deletions propagate)
        res = ReloadResult(merged)
        for name, problem in problems.items():
            prev = self.problems.get(name)
            if prev is None or str(prev) != str(problem):
                res.new_problems.append((problem, name in self._good))
        res.fixed = [name for name in self.problems if name not in problems]
        self.problems = problems
        return res
