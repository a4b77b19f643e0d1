"""A real OpenSSH server on 127.0.0.1 for the ssh tests, made and removed by them.

Everything is the test's own: the sshd_config, the host key, the user's key
pair, a known-hosts file and an ssh client config. The client is pointed at
them with ``GIT_SSH_COMMAND`` (``ssh -F FILE``), so neither the machine's
``/etc/ssh/ssh_config`` nor anyone's ``~/.ssh`` is read. The login user is
the one running the tests; sshd runs as that user too (as root, it needs
``/run/sshd``, which is made if missing).
"""

from __future__ import annotations

import getpass
import os
import pathlib
import shlex
import socket
import subprocess
import time

SSHD = "/usr/sbin/sshd"
HOST_ALIAS = "lab-ssh"  # the client config's name for the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_key(path: pathlib.Path) -> pathlib.Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


class SshServer:
    """sshd on a free port of 127.0.0.1, accepting one user key."""

    def __init__(self, base: pathlib.Path):
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.user = getpass.getuser()
        self.host_key = make_key(base / "host_key")
        self.user_key = make_key(base / "user key")  # a space: the client must quote it
        self.wrong_key = make_key(base / "wrong key")
        authorized = base / "authorized_keys"
        authorized.write_text((base / "user key.pub").read_text())
        authorized.chmod(0o600)
        self.log = base / "sshd.log"
        config = base / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f'HostKey "{self.host_key}"',
                    f'PidFile "{base / "sshd.pid"}"',
                    f'AuthorizedKeysFile "{authorized}"',
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",  # the test's files are under /tmp
                    "PermitRootLogin prohibit-password",
                    "AcceptEnv GIT_PROTOCOL",
                    "PrintMotd no",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("wb"),
        )
        self._wait_until_listening()
        host_public = (base / "host_key.pub").read_text().split()
        self.known_hosts = base / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_public[0]} {host_public[1]}\n")

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd did not listen on port {self.port}: {self.log.read_text()}")

    def client_command(
        self, *, key: pathlib.Path | None = None, known_hosts: pathlib.Path | None = None, batch: bool = True
    ) -> str:
        """A ``GIT_SSH_COMMAND`` reading only this test's client config."""
        config = self.base / f"ssh config {free_port()}"
        config.write_text(
            "\n".join(
                [
                    f"Host {HOST_ALIAS} 127.0.0.1",
                    "  HostName 127.0.0.1",
                    f"  Port {self.port}",
                    f"  User {self.user}",
                    f'  IdentityFile "{key or self.user_key}"',
                    "  IdentitiesOnly yes",
                    "  IdentityAgent none",
                    f'  UserKnownHostsFile "{known_hosts or self.known_hosts}"',
                    "  GlobalKnownHostsFile /dev/null",
                    "  StrictHostKeyChecking ask",
                    "  ConnectTimeout 10",
                    "",
                ]
            )
        )
        words = ["ssh", "-F", str(config)] + (["-o", "BatchMode=yes"] if batch else [])
        return shlex.join(words)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
