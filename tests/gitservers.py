"""Real git servers on 127.0.0.1 for the remote tests: git daemon, smart HTTP, ssh.

- :class:`GitDaemon` runs ``git daemon`` with receive-pack enabled.
- :class:`HttpServer` runs ``git http-backend`` as CGI behind a Python HTTP
  server that demands basic auth, and records every request line and header.
- :func:`fake_ssh` puts an ``ssh`` script on PATH that runs git-upload-pack or
  git-receive-pack locally, as sshd would on the far side.

Each starts in its constructor and stops in ``stop()``; fixtures do both.
"""

from __future__ import annotations

import base64
import os
import pathlib
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HTTP_BACKEND = next(
    (
        path
        for path in ("/usr/lib/git-core/git-http-backend", "/usr/libexec/git-core/git-http-backend")
        if os.path.exists(path)
    ),
    None,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_bare(base: pathlib.Path, name: str) -> pathlib.Path:
    """Create an empty bare repository on branch main, as a lab server would."""
    path = base / name
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    return path


def _wait_for_port(port: int, proc: subprocess.Popen | None = None, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            said = proc.stderr.read() if proc.stderr else ""
            raise RuntimeError(f"server exited with {proc.returncode}: {said}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


class GitDaemon:
    """``git daemon`` serving every repository under ``base`` at git://127.0.0.1:PORT/NAME."""

    def __init__(self, base: pathlib.Path):
        self.base = base
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                "git",
                "daemon",
                "--export-all",
                "--enable=receive-pack",
                "--informative-errors",
                "--reuseaddr",
                f"--base-path={base}",
                f"--port={self.port}",
                "--listen=127.0.0.1",
                str(base),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_for_port(self.port, self.proc)

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class HttpServer:
    """Smart HTTP through ``git http-backend``, behind basic auth (user, password)."""

    def __init__(self, base: pathlib.Path, user: str, password: str):
        self.base = base
        self.user = user
        self.password = password
        self.requests: list[str] = []  # request lines and headers, to search for secrets
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                server.requests.append(self.requestline)
                server.requests.extend(f"{k}: {v}" for k, v in self.headers.items())
                expected = "Basic " + base64.b64encode(f"{server.user}:{server.password}".encode()).decode()
                body = self._body()
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="lab"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                env = {
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "GIT_PROJECT_ROOT": str(server.base),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "REMOTE_USER": server.user,
                    "REMOTE_ADDR": "127.0.0.1",
                    "REQUEST_METHOD": self.command,
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "GATEWAY_INTERFACE": "CGI/1.1",
                    "HOME": str(server.base),
                    "GIT_CONFIG_NOSYSTEM": "1",
                }
                for header in ("Content-Encoding", "Git-Protocol"):
                    if self.headers.get(header):
                        env["HTTP_" + header.upper().replace("-", "_")] = self.headers[header]
                result = subprocess.run([HTTP_BACKEND], input=body, env=env, capture_output=True)
                head, found, payload = result.stdout.partition(b"\r\n\r\n")
                if not found:
                    head, found, payload = result.stdout.partition(b"\n\n")
                status = 200
                headers = []
                for line in head.decode("latin-1").splitlines():
                    key, _, value = line.partition(":")
                    if key.lower() == "status":
                        status = int(value.strip().split()[0])
                    elif key:
                        headers.append((key, value.strip()))
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().strip().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str, *, with_credentials: bool = False) -> str:
        auth = f"{self.user}:{self.password}@" if with_credentials else ""
        return f"http://{auth}127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


FAKE_SSH = """#!/bin/sh
# Stands in for ssh: runs the git command it is given on this machine, as sshd would.
# Arguments: [-x] [-p PORT] [-i KEY] [-o OPTION]... HOST COMMAND
while [ $# -gt 1 ]; do
  case "$1" in
    -o) case "$2" in
          "SetEnv GIT_PROTOCOL="*) export GIT_PROTOCOL="${2#SetEnv GIT_PROTOCOL=}";;
        esac
        shift 2;;
    -p|-i) shift 2;;
    -*) shift;;
    *) echo "$1" >> "$FAKE_SSH_LOG"; shift;;
  esac
done
exec sh -c "$1"
"""


def fake_ssh(bin_dir: pathlib.Path, log: pathlib.Path) -> dict[str, str]:
    """Write the fake ``ssh`` into ``bin_dir``; return the environment that puts it first on PATH."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "ssh"
    script.write_text(FAKE_SSH)
    script.chmod(0o755)
    git_dir = os.path.dirname(shutil.which("git-upload-pack") or "/usr/bin/git-upload-pack")
    return {
        "PATH": f"{bin_dir}{os.pathsep}{git_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "FAKE_SSH_LOG": str(log),
    }
