"""minidock's benchmark suite (not tests): latency, scale, data path and memory against
Docker and Podman measured in the same run. Entry point: `python -m bench`."""
