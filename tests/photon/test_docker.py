"""The Docker path of the local target: no daemon runs here, so the command it sends is checked."""

from __future__ import annotations

from shipyard.photon.targets.local import docker


def test_run_argv_maps_the_port_labels_and_passes_secrets_by_name_only():
    argv = docker.run_argv(binary="docker", service="hello", env="dev", release_id="r3",
                           image="registry.example.com/hello:1.4.2", host_port=41000, container_port=8080,
                           env_names=["API_KEY", "GREETING"])
    assert argv[:5] == ["docker", "run", "--rm", "--init", "--name"]
    assert argv[5] == "photon-hello-dev-r3"
    assert argv[argv.index("-p") + 1] == "127.0.0.1:41000:8080"
    assert "shipyard.service=hello" in argv and "shipyard.env=dev" in argv
    # -e NAME without a value: docker reads the value from its own environment, never argv.
    assert ["-e", "API_KEY"] == argv[argv.index("API_KEY") - 1: argv.index("API_KEY") + 1]
    assert not any("=" in a and a.startswith("API_KEY") for a in argv)
    assert argv[-1] == "registry.example.com/hello:1.4.2"
    assert docker.rm_argv("docker", "hello", "dev", "r3") == ["docker", "rm", "-f", "photon-hello-dev-r3"]


def test_no_daemon_here_means_the_process_path():
    assert docker.daemon_answers("docker-binary-that-does-not-exist") is False
