"""The Docker path of the local target: run the release's image when a daemon answers.

No Docker daemon runs on the machine these tests run on, so only the command is tested
(tests/photon/test_local_docker.py); docs/photon.md says so. Secrets are passed as `-e NAME`
with the value in docker's own environment, so they never appear on a command line (`ps`).
"""

from __future__ import annotations

import shutil
import subprocess


def daemon_answers(binary: str = "docker", timeout: float = 3.0) -> bool:
    found = shutil.which(binary)
    if not found:
        return False
    try:
        res = subprocess.run([found, "info", "--format", "{{.ServerVersion}}"], capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


def container_name(service: str, env: str, release_id: str) -> str:
    return f"photon-{service}-{env}-{release_id}"


def run_argv(*, binary: str, service: str, env: str, release_id: str, image: str, host_port: int,
             container_port: int, env_names: list[str]) -> list[str]:
    """`docker run` in the foreground (the supervisor logs it; SIGTERM stops it via --init/--rm)."""
    argv = [binary, "run", "--rm", "--init", "--name", container_name(service, env, release_id),
            "-p", f"127.0.0.1:{host_port}:{container_port}",
            "--label", f"shipyard.service={service}", "--label", f"shipyard.env={env}",
            "--label", f"shipyard.release={release_id}", "-e", f"PORT={container_port}"]
    for name in sorted(env_names):
        argv += ["-e", name]  # value taken from docker's environment, not the command line
    return argv + [image]


def rm_argv(binary: str, service: str, env: str, release_id: str) -> list[str]:
    return [binary, "rm", "-f", container_name(service, env, release_id)]
