"""``expipe-git serve``: the web view over plain HTTP (read-only, 404s, traversal, snapshots).

The server is the real command (``python -m expipe_git serve DIR --port 0``)
listening on 127.0.0.1; the browser tests are in test_web_browser.py.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import signal
import subprocess
import sys
import time
import urllib.parse

import pytest
from conftest import assert_clean, git

import expipe_git

pytest.importorskip("starlette", reason="the web extra is not installed: pip install 'expipe_git[web]'")

import webkit  # noqa: E402

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A small lab project (see webkit.build_lab) and the real server on it."""
    root = tmp_path_factory.mktemp("web")
    env = webkit.isolated_env(root)
    server = webkit.Server(webkit.build_lab(root / "lab", env), env)
    yield server
    server.stop()


def test_serve_prints_the_url_and_ctrl_c_stops_it_cleanly(tmp_path):
    env = webkit.isolated_env(tmp_path)
    project_dir = webkit.build_small(tmp_path / "p", env)
    server = webkit.Server(project_dir, env)
    assert server.url.startswith("http://127.0.0.1:")
    assert webkit.get(server.url).status == 200
    server.process.send_signal(signal.SIGINT)
    out, _ = server.process.communicate(timeout=20)
    err = server.stderr_so_far()
    assert server.process.returncode == 0, err
    assert "Stopped." in out
    assert "Traceback" not in err and "rror" not in err, err


def test_home_page_links_to_every_list(lab):
    page = webkit.get(lab.url)
    assert page.status == 200
    for path, text in (("/actions", "actions"), ("/entities", "entities"), ("/history", "commits")):
        assert re.search(rf'<a [^>]*href="{path}"[^>]*>{text}</a>', page.text), path
    assert "<svg" in page.text and "<rect" in page.text


def test_every_request_but_get_is_refused_and_changes_nothing(lab):
    before = git(lab.project_dir, "rev-parse", "HEAD")
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        for path in ("/", "/actions", "/action/rec-01", "/action/rec-01/module/probe", "/nothing/here"):
            response = webkit.request(lab.url, path, method=method, body=b"tags=x")
            assert response.status == 405, (method, path, response.status)
            assert response.headers.get("allow") == "GET, HEAD"
            assert "read-only" in response.text
    assert git(lab.project_dir, "rev-parse", "HEAD") == before
    assert_clean(lab.project_dir)


@pytest.mark.parametrize(
    "path",
    [
        "/action/no-such-action",
        "/action/no-such-action/history",
        "/entity/nobody",
        "/template/none",
        "/module/none",
        "/action/rec-01/module/none",
        "/action/rec-01/message/none",
        "/action/rec-01/module/none/history",
        "/commit/0123456789abcdef0123456789abcdef01234567",
        "/commit/not-a-revision",
        "/nothing/here",
        "/action",
        "/action/rec-01/blah/x",
        "/actions?at=no-such-revision",
        "/action/rec-01?at=HEAD~999",
        "/static/missing.css",
    ],
)
def test_a_name_that_does_not_exist_is_a_404_page(lab, path):
    response = webkit.get(lab.url + path.lstrip("/"))
    assert response.status == 404, response.text
    assert "<h1>404 · Not found</h1>" in response.text
    assert "Traceback" not in response.text and "Traceback" not in lab.stderr_so_far()


@pytest.mark.parametrize(
    "raw_path",
    [
        "/..%2f..%2f..%2fetc%2fpasswd",
        "/../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/static/..%2fapp.py",
        "/static/%2e%2e%2fapp.py",
        "/static/../app.py",
        "/static/..%2f..%2f..%2fexpipe.toml",
        "/action/..%2f..%2fexpipe.toml",
        "/action/..%2f..%2f.git%2fconfig",
        "/template/..%2f..%2f.git%2fHEAD",
        "/module/%2e%2e%2fexpipe",
        "//etc/passwd",
        "/action/rec-01%00/history",
        "/static/style.css%00.py",
    ],
)
def test_no_path_outside_the_project_is_read(lab, raw_path):
    response = webkit.request(lab.url, raw_path)
    assert response.status == 404, (raw_path, response.status)
    for secret in ("root:", "import ", "storage_format", "[core]", "ref: refs/heads"):
        assert secret not in response.text, (raw_path, secret)
    assert "Traceback" not in lab.stderr_so_far()


def test_hostile_strings_are_escaped_everywhere(lab):
    for path in (
        "/",
        "/actions",
        "/actions?tags=" + urllib.parse.quote(HOSTILE),
        "/action/rec-hostile",
        "/action/rec-hostile/history",
        "/history",
        "/entity/rat1",
    ):
        text = webkit.get(lab.url + path.lstrip("/")).text
        assert "<script" not in text.lower(), path
        assert "<img" not in text.lower(), path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in webkit.get(lab.url + "action/rec-hostile").text


def test_csv_holds_the_filtered_rows(lab):
    response = webkit.get(lab.url + "actions.csv?tags=place+cell&sort=-datetime")
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    expected = webkit.names_with_tag(lab.project_dir, "place cell")
    assert sorted(r["name"] for r in rows) == sorted(expected) and rows
    assert all("place cell" in r["tags"].split("; ") for r in rows)
    stamps = [r["datetime"] for r in rows]
    assert stamps == sorted(stamps, reverse=True)


@pytest.mark.parametrize(
    "query, criteria",
    [
        ("", {}),
        ("users=ana", {"users": "ana"}),
        ("type=recording", {"type": "recording"}),
        ("users=ana&type=recording", {"users": ["ana"], "type": "recording"}),
        ("tags=grid cell, baseline", {"tags": ["grid cell", "baseline"]}),
        (
            "tags=grid cell&tags=baseline&location=room 2",
            {"tags": ["grid cell", "baseline"], "location": "room 2"},
        ),
        ("entities=rat2", {"entities": "rat2"}),
        ("since=2026-01-05&until=2026-01-06", {"since": "2026-01-05", "until": "2026-01-06"}),
        ("since=2026-01-05 12:00", {"since": "2026-01-05 12:00"}),
        ("tags=no such tag", {"tags": "no such tag"}),
    ],
)
def test_the_filter_is_where(lab, query, criteria):
    """The table (and its CSV) holds exactly what project.actions.where(...) finds."""
    text = webkit.get(lab.url + "actions.csv?" + query.replace(" ", "+")).text
    shown = sorted(r["name"] for r in csv.DictReader(io.StringIO(text)))
    project = expipe_git.get_project(lab.project_dir)
    found = list(project.actions.where(**criteria)) if criteria else list(project.actions)
    assert shown == found
    if query == "since=2026-01-05&until=2026-01-06":
        assert shown == ["rec-05", "rec-06"]  # a bare date as 'to' means through that day, as in where()


def test_a_filter_that_cannot_be_read_is_a_400_page(lab):
    bad = webkit.get(lab.url + "actions?since=last+blue+moon")
    assert bad.status == 400
    assert "cannot filter the actions: since: cannot read &#39;last blue moon&#39; as a time" in bad.text


def test_time_travel_by_revision_and_by_date(lab):
    now = webkit.get(lab.url + "action/rec-01/module/probe").text
    assert "3.5" in now
    old = webkit.get(lab.url + "action/rec-01/module/probe?at=" + lab.probe_commits[0]).text
    assert "2.0" in old and "3.5" not in old
    assert "Time travel" in old
    day = webkit.get(lab.url + "action/rec-01/module/probe?at=2026-01-10").text
    assert "2.0" in day
    assert webkit.get(lab.url + "action/rec-01?at=2025-01-01").status == 404  # before the project


def test_history_page_shows_key_changes_with_units_and_blame(lab):
    text = webkit.get(lab.url + "action/rec-01/module/probe/history").text
    assert re.search(
        r'<span class="v">2.0</span> <span class="unit">um</span>.*?→.*?<span class="v">3.5</span>',
        text,
        re.S,
    )
    assert "Who set each key" in text
    for commit in lab.probe_commits:
        assert f'href="/commit/{commit}">{commit[:7]}</a>' in text


def test_a_deleted_object_keeps_its_history_page(lab):
    assert webkit.get(lab.url + "action/rec-deleted").status == 404
    history = webkit.get(lab.url + "action/rec-deleted/history")
    assert history.status == 200 and "(deleted)" in history.text


def test_each_request_reads_one_snapshot_while_the_project_is_written(tmp_path):
    """Pages served while another process commits show exactly the state of the commit they name."""
    env = webkit.isolated_env(tmp_path)
    project_dir = webkit.build_small(tmp_path / "busy", env)
    server = webkit.Server(project_dir, env)
    writer = subprocess.Popen(
        [sys.executable, "-c", webkit.WRITER, str(project_dir), "60"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen = set()
        deadline = time.monotonic() + 60
        while writer.poll() is None and time.monotonic() < deadline:
            response = webkit.get(server.url + "actions.csv")
            commit = response.headers["x-expipe-commit"]
            rows = list(csv.DictReader(io.StringIO(response.text)))
            expected = webkit.action_names(project_dir, commit)
            assert sorted(r["name"] for r in rows) == expected, commit
            for r in rows:  # every row as it is at that commit, not later
                assert r["tags"] == "; ".join(webkit.tags_at(project_dir, commit, r["name"]))
            home = webkit.get(server.url)
            count = re.search(
                r'<span class="count">([\d,]+)</span><span class="what">actions</span>', home.text
            )
            assert int(count.group(1).replace(",", "")) == len(
                webkit.action_names(project_dir, home.headers["x-expipe-commit"])
            )
            seen.add(commit)
        out, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
        assert len(seen) >= 3, "the writer was too fast to be read in between"
    finally:
        if writer.poll() is None:
            writer.kill()
        server.stop()
    assert_clean(project_dir)


def test_a_missing_web_extra_is_one_error_line(tmp_path):
    env = webkit.isolated_env(tmp_path)
    project_dir = webkit.build_small(tmp_path / "p", env)
    code = (
        "import sys; sys.modules['starlette'] = None; sys.modules['uvicorn'] = None\n"
        "from expipe_git import cli; sys.exit(cli.main(['serve', sys.argv[1], '--port', '0']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(project_dir)], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "expipe-git: error: the web view needs starlette, uvicorn, which are not installed; "
        "install the web extra: pip install 'expipe_git[web]'"
    )


def test_a_port_in_use_is_one_error_line(lab, tmp_path):
    port = urllib.parse.urlsplit(lab.url).port
    result = subprocess.run(
        [sys.executable, "-m", "expipe_git", "serve", str(lab.project_dir), "--port", str(port)],
        env=lab.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("expipe-git: error: cannot listen on 127.0.0.1:"), (
        result.stderr
    )
    assert "--port" in lines[0]


def test_serve_outside_a_project_is_one_error_line(tmp_path):
    env = webkit.isolated_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "expipe_git", "serve", str(tmp_path), "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert (
        result.stderr.startswith("expipe-git: error: no expipe_git project in")
        and result.stderr.count("\n") == 1
    )


def test_head_requests_answer_like_get(lab):
    response = webkit.request(lab.url, "/actions", method="HEAD")
    assert response.status == 200 and response.text == ""


def test_the_page_of_each_kind_of_object(lab):
    for path, expected in (
        ("template/hardware_daq", "sample_rate"),
        ("module/settings", "lab_name"),
        ("entity/rat1", "rec-02"),
        ("action/rec-01", "probe"),
        ("entities", "rat2"),
        ("templates", "hardware_daq"),
        ("modules", "settings"),
        ("history", "project: create"),
    ):
        response = webkit.get(lab.url + path)
        assert response.status == 200, path
        assert expected in response.text, path


def test_the_timeline_draws_weeks_over_long_spans_and_escapes_authors():
    from expipe_git.web import timeline

    start = dt.datetime(2025, 1, 1, 12, tzinfo=dt.timezone.utc)
    events = [
        timeline.Event(start + dt.timedelta(days=3 * i), "<b>Eve</b>" if i % 2 else "Dan", f"{i:040x}")
        for i in range(200)  # 600 days
    ]
    svg = timeline.draw(events, lambda commit_id: f"/?at={commit_id}")
    assert 'aria-label="commits per week"' in svg
    weeks = {(e.when.date() - start.date()).days // 7 for e in events}
    assert len(re.findall(r"<a href=", svg)) == len(weeks)
    assert "<b>" not in svg and "&lt;b&gt;Eve&lt;/b&gt;" in svg
    assert f'href="/?at={events[-1].commit_id}"' in svg  # a bar leads to the state after its newest commit
    short = timeline.draw(events[:5], lambda commit_id: "#")
    assert 'aria-label="commits per day"' in short
    assert "no commits" in timeline.draw([], lambda commit_id: "#")


def test_a_hand_edit_that_does_not_parse_hides_nothing_else(tmp_path):
    env = webkit.isolated_env(tmp_path)
    project_dir = webkit.build_small(tmp_path / "p", env)
    (broken,) = [p for p in project_dir.glob("actions/*/a-1/attributes.toml")]
    broken.write_text("tags = [unclosed\n")
    git(project_dir, "commit", "-q", "-am", "a hand edit gone wrong")
    server = webkit.Server(project_dir, env)
    try:
        table = webkit.get(server.url + "actions")
        assert table.status == 200
        assert "a-0" in table.text and "a-2" in table.text
        assert re.search(
            r'a-1</a> <span class="badge removed" title="[^"]*attributes.toml[^"]*">unreadable', table.text
        )
        page = webkit.get(server.url + "action/a-1")
        assert (
            page.status == 500
            and "The project cannot be read" in page.text
            and "attributes.toml" in page.text
        )
        assert "Traceback" not in page.text + server.stderr_so_far()
    finally:
        server.stop()


def test_pages_of_a_project_with_files_that_are_not_records(tmp_path):
    env = webkit.isolated_env(tmp_path)
    project_dir = webkit.build_small(tmp_path / "p", env)
    (project_dir / "README.md").write_text(f"# lab {HOSTILE}\n")
    subprocess.run(
        [sys.executable, "-m", "expipe_git", "-C", str(project_dir), "commit", "-m", "README", "README.md"],
        env=env,
        check=True,
        capture_output=True,
    )
    commit = git(project_dir, "rev-parse", "HEAD").strip()
    names = webkit.action_names(project_dir)
    server = webkit.Server(project_dir, env)
    base = server.url.rstrip("/")
    try:
        for path in ("/", "/actions", "/history", f"/commit/{commit}"):
            page = webkit.get(base + path)
            assert page.status == 200, path
            assert HOSTILE not in page.text
        assert "README.md" in webkit.get(f"{base}/commit/{commit}").text
        assert all(name in webkit.get(base + "/actions").text for name in names)
        assert "README" not in webkit.get(base + "/actions").text
    finally:
        server.stop()
    assert "Traceback" not in server.stderr_so_far()
