"""nginx from Debian in front of test servers, configured by the file docs/deployment.md prints.

The configuration is read from the deployment guide's ``nginx`` block, so the test checks
what users copy. Only what cannot run here changes: the upstream addresses become the test
servers', ``listen 443 ssl`` becomes a port on 127.0.0.1 (no certificate, so no TLS and no
HTTP/2 lines), and ``proxy_read_timeout`` may be shortened so that a test outlives it
in seconds instead of a minute.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.servers import REPOSITORY, free_port

GUIDE = REPOSITORY / "docs" / "deployment.md"


def documented_config() -> str:
    """The ``nginx`` block of the deployment guide."""
    text = GUIDE.read_text()
    blocks: list[str] = re.findall(r"```nginx\n(.*?)```", text, re.DOTALL)
    assert len(blocks) == 1, "docs/deployment.md should print one nginx configuration"
    return blocks[0]


def adapted_config(upstreams: list[int], port: int, read_timeout: str | None = None) -> str:
    """The documented server blocks, pointed at ``upstreams``, listening on ``port``."""
    config = documented_config()
    servers = [line for line in config.splitlines() if re.match(r"\s*server 127\.0\.0\.1:", line)]
    assert servers, "the documented upstream should list its servers"
    config = config.replace(servers[0], "\n".join(f"    server 127.0.0.1:{p};" for p in upstreams))
    for line in servers[1:]:
        config = config.replace(line + "\n", "")
    config = re.sub(r"listen 443 ssl;", f"listen 127.0.0.1:{port};", config)
    config = re.sub(r"\n\s*(http2 on|ssl_certificate|ssl_certificate_key)\b[^\n]*", "", config)
    if read_timeout is not None:
        config, count = re.subn(
            r"proxy_read_timeout \S+;", f"proxy_read_timeout {read_timeout};", config
        )
        assert count == 1
    return config


class Nginx:
    """An nginx master process with its own prefix, pid file and logs, on 127.0.0.1."""

    def __init__(self, directory: Path, upstreams: list[int], read_timeout: str | None = None):
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        for folder in ("logs", "temp"):
            (directory / folder).mkdir(parents=True, exist_ok=True)
        # As root, nginx's workers would switch to "nobody", who cannot enter a test's
        # private temporary folder.
        user = "user root;\n" if _is_root() else ""
        (directory / "nginx.conf").write_text(
            f"""{user}worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/logs/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {directory}/temp/body;
    proxy_temp_path {directory}/temp/proxy;
    fastcgi_temp_path {directory}/temp/fastcgi;
    uwsgi_temp_path {directory}/temp/uwsgi;
    scgi_temp_path {directory}/temp/scgi;
{adapted_config(upstreams, self.port, read_timeout)}
}}
"""
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10) -> Nginx:
        executable = shutil.which("nginx") or "/usr/sbin/nginx"
        output = self.directory / "logs" / "output.log"
        with output.open("wb") as log:
            self.process = subprocess.Popen(
                [executable, "-p", str(self.directory), "-c", "nginx.conf", "-g", "daemon off;"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {output.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # fast shutdown
            self.process.wait(10)


def _is_root() -> bool:
    import os

    return os.geteuid() == 0
