"""Helpers of the web view's tests: lab projects, the real server, plain HTTP, and git as the judge."""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import pathlib
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

REPO = pathlib.Path(__file__).resolve().parent.parent
HOSTILE_TAGS = ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>"]
ANA = ("Ana Lopez", "ana@lab.org")
BEN = ("Ben Okafor", "ben@lab.org")
CAROL = ("Carol Wu", "carol@lab.org")

# Builds the lab project through the API, each commit re-dated with stock git
# (`commit --amend --date`) so that the history spans two weeks of January 2026.
LAB_SCRIPT = r"""
import datetime as dt, json, os, pathlib, subprocess, sys
import quantities as pq
import expipe_git

root = pathlib.Path(sys.argv[1])
people = json.loads(sys.argv[2])
hostile = json.loads(sys.argv[3])
config = pathlib.Path.home() / ".config" / "expipe" / "config.yaml"

def as_user(who, open_project=True):
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("username: %s\nemail: %s\n" % tuple(people[who]))
    # git's identity comes before expipe's username: name the author as git would be told
    os.environ["GIT_AUTHOR_NAME"], os.environ["GIT_AUTHOR_EMAIL"] = people[who]
    return expipe_git.get_project(root) if open_project else None

def dated(day, hour):
    stamp = "2026-01-%02dT%02d:%02d:00+01:00" % (day, hour, day % 60)
    env = dict(os.environ, GIT_COMMITTER_DATE=stamp)
    subprocess.run(["git", "commit", "-q", "--amend", "--no-edit", "--allow-empty", "--date", stamp],
                   cwd=root, env=env, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    return head.stdout.strip()

as_user("ana", False)
expipe_git.create_project(root, name="grid-cells-2026").close()
dated(1, 9)
project = as_user("ana")
settings = {"lab_name": "Grid cell lab", "room_temperature": 21.5 * pq.degC}
project.require_module("settings", contents=settings)
dated(1, 11)
daq = {"model": "NI USB-6008", "sample_rate": 10000 * pq.Hz, "channels": 8}
project.require_template("hardware_daq", contents=daq)
dated(1, 12)
with project.transaction("register subjects"):
    for i, sex in ((1, "female"), (2, "male"), (3, "female")):
        rat = project.require_entity("rat%d" % i)
        rat.type = "subject"
        rat.tags = ["rat", "Long Evans"]
        rat.users = ["ana"]
        subject = {"sex": sex, "weight": (310 + 12 * i) * pq.g, "birthday": dt.date(2025, 9, i)}
        rat.require_module("subject", contents=subject)
dated(1, 14)
probe_commits = []
for i in range(1, 13):
    who = "ana" if i % 3 else "ben"
    project = as_user(who)
    name = "rec-%02d" % i
    with project.transaction("register " + name):
        action = project.require_action(name)
        action.type = "recording" if i % 4 else "surgery"
        action.location = "rig A" if i % 2 else "room 2"
        action.users = [who]
        action.entities = ["rat%d" % (1 + i % 2)]
        action.tags = (["place cell"] if i % 3 == 1 else ["grid cell"]) + (["baseline"] if i < 6 else [])
        action.datetime = dt.datetime(2026, 1, i, 10, 0)
        action.require_module("probe", contents={
            "depth": 2.0 * pq.um, "impedance": 1.2 * pq.MOhm, "site": {"x": 1, "y": 2, "shank": "A"},
            "channels": [1, 2, 3, 4]})
        action.create_message("Session went well, rat calm." if i % 2 else "Noise on channel 3 after 20 min.",
                              user=who, datetime=dt.datetime(2026, 1, i, 11, 30))
    commit = dated(i, 16 + i % 5)
    if i == 1:
        probe_commits.append(commit)
project = as_user("ben")
project.actions["rec-01"].modules["probe"]["depth"] = 3.5 * pq.um
probe_commits.append(dated(12, 21))
project = as_user("carol")
action = project.require_action("rec-hostile")
dated(13, 9)
action.tags = hostile
dated(13, 10)
action.create_message(hostile[0], user=hostile[1], datetime=dt.datetime(2026, 1, 13, 10, 5))
dated(13, 11)
action.require_module("notes & checks", contents={hostile[1]: hostile[0]})
dated(13, 12)
doomed = project.require_action("rec-deleted")
dated(14, 8)
doomed.tags = ["mistake"]
dated(14, 9)
project.delete_action("rec-deleted")
dated(14, 10)
print(json.dumps({"probe_commits": probe_commits}))
"""

SMALL_SCRIPT = r"""
import sys, expipe_git
project = expipe_git.create_project(sys.argv[1])
for i in range(3):
    project.require_action("a-%d" % i).tags = ["start"]
"""

# Writes to a project for a while (argv: project folder, number of steps): each
# step one commit that creates an action or changes the tags of an existing one.
WRITER = r"""
import sys, time, expipe_git
project = expipe_git.get_project(sys.argv[1])
for i in range(int(sys.argv[2])):
    if i % 2:
        project.actions["a-%d" % (i % 3)].tags = ["step %d" % i]
    else:
        project.require_action("w-%03d" % i).tags = ["new", "step %d" % i]
    time.sleep(0.03)
"""


def isolated_env(root: pathlib.Path) -> dict[str, str]:
    """An environment with its own HOME and git identity, importing this checkout."""
    home = root / "home"
    home.mkdir(exist_ok=True)
    (home / ".gitconfig").write_text("[user]\n\tname = Test Researcher\n\temail = researcher@example.org\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "EXPIPE_GIT_"))}
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", PYTHONPATH=str(REPO), NO_COLOR="1")
    return env


def _python(script: str, *args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        raise AssertionError(f"building the project failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


@dataclasses.dataclass
class Lab:
    path: pathlib.Path
    probe_commits: list[str]


def build_lab(path: pathlib.Path, env: dict[str, str]) -> Lab:
    people = {"ana": ANA, "ben": BEN, "carol": CAROL}
    out = _python(LAB_SCRIPT, str(path), json.dumps(people), json.dumps(HOSTILE_TAGS), env=env)
    return Lab(path, json.loads(out.strip().splitlines()[-1])["probe_commits"])


def build_small(path: pathlib.Path, env: dict[str, str]) -> pathlib.Path:
    _python(SMALL_SCRIPT, str(path), env=env)
    return path


class Server:
    """``expipe-git serve DIR --port 0`` as a subprocess: ``url``, ``stderr_so_far()``, ``stop()``."""

    def __init__(self, project: Lab | pathlib.Path, env: dict[str, str]):
        self.lab = project if isinstance(project, Lab) else None
        self.project_dir = project.path if isinstance(project, Lab) else project
        self.env = env
        self._stderr = self.project_dir.parent / f"serve-{self.project_dir.name}.err"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "expipe_git", "serve", str(self.project_dir), "--port", "0"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._stderr.open("w"),
            text=True,
        )
        first: list[str] = []
        reader = threading.Thread(target=lambda: first.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=60)
        if not first or "http://" not in first[0]:
            self.process.kill()
            raise AssertionError(f"the server did not start: {first} {self._stderr.read_text()}")
        self.url = first[0].split(" at ", 1)[1].strip()

    @property
    def probe_commits(self) -> list[str]:
        assert self.lab is not None
        return self.lab.probe_commits

    def stderr_so_far(self) -> str:
        return self._stderr.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(2)  # SIGINT, as Ctrl-C
            try:
                self.process.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.communicate()


@dataclasses.dataclass
class Response:
    status: int
    headers: dict[str, str]  # names in lower case
    text: str


def _lower(headers) -> dict[str, str]:
    return {name.lower(): value for name, value in headers}


def get(url: str) -> Response:
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:
            return Response(answer.status, _lower(answer.headers.items()), answer.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        return Response(error.code, _lower(error.headers.items()), error.read().decode("utf-8"))


def request(base: str, raw_path: str, method: str = "GET", body: bytes | None = None) -> Response:
    """Send ``raw_path`` exactly as given (no normalising, no quoting)."""
    parts = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.putrequest(method, raw_path, skip_accept_encoding=True)
        connection.putheader("Content-Length", str(len(body or b"")))
        connection.endheaders(body)
        answer = connection.getresponse()
        return Response(answer.status, _lower(answer.getheaders()), answer.read().decode("utf-8", "replace"))
    finally:
        connection.close()


# -- git as the judge of what a page should show ------------------------------


def _git(project_dir: pathlib.Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=project_dir, capture_output=True, text=True, check=True).stdout


def _attribute_files(project_dir: pathlib.Path, commit: str) -> dict[str, str]:
    paths = _git(project_dir, "ls-tree", "-r", "--name-only", commit, "actions/").split()
    return {p.split("/")[2]: p for p in paths if p.count("/") == 3 and p.endswith("/attributes.toml")}


def action_names(project_dir: pathlib.Path, commit: str = "HEAD") -> list[str]:
    return sorted(_attribute_files(project_dir, commit))


def attributes_at(project_dir: pathlib.Path, commit: str, name: str) -> dict:
    path = _attribute_files(project_dir, commit)[name]
    return tomllib.loads(_git(project_dir, "show", f"{commit}:{path}"))


def tags_at(project_dir: pathlib.Path, commit: str, name: str) -> list[str]:
    return attributes_at(project_dir, commit, name).get("tags", [])


def names_with(project_dir: pathlib.Path, key: str, value: str, commit: str = "HEAD") -> list[str]:
    return [
        n
        for n in action_names(project_dir, commit)
        if value in attributes_at(project_dir, commit, n).get(key, [])
    ]


def names_with_tag(project_dir: pathlib.Path, tag: str) -> list[str]:
    return names_with(project_dir, "tags", tag)
