"""The review's sticky comments and the drift issue, against a small fake of GitHub's issues API on 127.0.0.1."""

from __future__ import annotations

import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from dataplane.ops import cli
from dataplane.ops.pipeline.comment import COMMENT_LIMIT, TITLE_LIMIT

TOKEN = "ghs_test-token-never-printed"
REPO = "octo-org/data-plane"
PR = 7
BOT = "github-actions[bot]"


class FakeGitHub:
    """Issue comments of `REPO`'s pull requests, and its issues, served as GitHub's REST API serves them (pages of at
    most 100; the issues list holds pull requests too, as GitHub's does)."""

    def __init__(self):
        self.comments: dict[int, dict] = {}
        self.issues: dict[int, dict] = {}
        self._numbers = iter(range(1, 10**6))
        self.requests: list[tuple[str, str]] = []
        self.refuse: tuple[int, str, str] | None = None
        """(status, message, method): GitHub's answer to every request with that method ("" for all)."""
        self._ids = iter(range(1001, 10**6))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def add(self, body: str, pr: int = PR, user: str = "someone") -> int:
        comment_id = next(self._ids)
        self.comments[comment_id] = {"id": comment_id, "pr": pr, "body": body, "user": {"login": user}}
        return comment_id

    def open_issue(self, title: str, body: str, user: str = "someone", pull_request: bool = False) -> int:
        number = next(self._numbers)
        self.issues[number] = {"number": number, "title": title, "body": body, "state": "open", "user": {"login": user}}
        if pull_request:
            self.issues[number]["pull_request"] = {"url": f"{self.url}/repos/{REPO}/pulls/{number}"}
        return number

    def bodies(self, pr: int = PR) -> list[str]:
        return [c["body"] for c in self.comments.values() if c["pr"] == pr]

    def writes(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path in self.requests if method != "GET"]

    def answer(self, method: str, path: str, query: dict, body: dict | None) -> tuple[int, object]:
        if self.refuse and self.refuse[2] in ("", method):
            return self.refuse[0], {"message": self.refuse[1]}
        if path == f"/repos/{REPO}/issues":
            if method == "GET":
                per_page, page = min(int(query.get("per_page", ["30"])[0]), 100), int(query.get("page", ["1"])[0])
                state = query.get("state", ["open"])[0]
                listed = [i for i in self.issues.values() if state in ("all", i["state"])]
                return 200, listed[(page - 1) * per_page:page * per_page]
            if method == "POST":
                return 201, self.issues[self.open_issue(body["title"], body["body"], BOT)]
        if (found := re.fullmatch(rf"/repos/{REPO}/issues/(\d+)", path)) and int(found[1]) in self.issues \
                and method == "PATCH":
            self.issues[int(found[1])].update(body)
            return 200, self.issues[int(found[1])]
        if found := re.fullmatch(rf"/repos/{REPO}/issues/(\d+)/comments", path):
            pr = int(found[1])
            if method == "GET":
                per_page, page = min(int(query.get("per_page", ["30"])[0]), 100), int(query.get("page", ["1"])[0])
                listed = [c for c in self.comments.values() if c["pr"] == pr]
                return 200, listed[(page - 1) * per_page:page * per_page]
            if method == "POST":
                comment_id = self.add(body["body"], pr, BOT)
                return 201, self.comments[comment_id]
        if (found := re.fullmatch(rf"/repos/{REPO}/issues/comments/(\d+)", path)) and int(found[1]) in self.comments:
            if method == "PATCH":
                self.comments[int(found[1])]["body"] = body["body"]
                return 200, self.comments[int(found[1])]
            if method == "DELETE":
                del self.comments[int(found[1])]
                return 204, None
        return 404, {"message": "Not Found"}

    def _handler(self):
        github = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                address = urlsplit(self.path)
                github.requests.append((self.command, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                if (self.headers["Authorization"], self.headers["Accept"], self.headers["X-GitHub-Api-Version"]) != (
                        f"Bearer {TOKEN}", "application/vnd.github+json", "2022-11-28"):
                    status, answer = 401, {"message": "Bad credentials"}
                else:
                    status, answer = github.answer(self.command, address.path, parse_qs(address.query), body)
                raw = b"" if answer is None else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PATCH = do_DELETE = _serve

            def log_message(self, *args):
                pass

        return Handler


@pytest.fixture
def github(monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    for name in ("GITHUB_REPOSITORY", "GITHUB_API_URL", "GITHUB_EVENT_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    fake = FakeGitHub()
    yield fake
    fake.stop()


def parts(directory: Path, *texts: str) -> Path:
    """`directory` holding exactly `part-001.md`, ... with `texts`."""
    directory.mkdir(exist_ok=True)
    for old in directory.iterdir():
        old.unlink()
    for number, text in enumerate(texts, 1):
        (directory / f"part-{number:03d}.md").write_text(text)
    return directory


def comment(capsys, github: FakeGitHub, parts_dir: Path, *args: str) -> tuple[int, str, str]:
    code = cli.main(["comment", "--parts-dir", str(parts_dir), *args])
    out, err = capsys.readouterr()
    assert TOKEN not in out + err
    return code, out, err


def post(capsys, github: FakeGitHub, parts_dir: Path) -> tuple[int, str, str]:
    return comment(capsys, github, parts_dir, "--repo", REPO, "--pr", str(PR), "--api-url", github.url)


def test_the_first_run_creates_one_comment_per_part_and_a_second_run_edits_nothing(capsys, github, tmp_path):
    review = parts(tmp_path / "parts", "## Data plane review\n", "### `globex`: changed\n")
    assert post(capsys, github, review) == (0, "part 1: created comment 1001\npart 2: created comment 1002\n", "")
    assert github.bodies() == ["<!-- dataplane-review part 1 -->\n## Data plane review\n",
                               "<!-- dataplane-review part 2 -->\n### `globex`: changed\n"]
    github.requests.clear()
    assert post(capsys, github, review) == (0, "part 1: unchanged comment 1001\npart 2: unchanged comment 1002\n", "")
    assert github.writes() == [] and len(github.bodies()) == 2


def test_a_changed_part_is_edited_in_place(capsys, github, tmp_path):
    post(capsys, github, parts(tmp_path / "parts", "one\n", "two\n"))
    github.requests.clear()
    assert post(capsys, github, parts(tmp_path / "parts", "one\n", "two, revised\n")) == (
        0, "part 1: unchanged comment 1001\npart 2: updated comment 1002\n", "")
    assert github.writes() == [("PATCH", f"/repos/{REPO}/issues/comments/1002")]
    assert github.bodies() == ["<!-- dataplane-review part 1 -->\none\n",
                               "<!-- dataplane-review part 2 -->\ntwo, revised\n"]


def test_parts_that_no_longer_exist_are_deleted(capsys, github, tmp_path):
    post(capsys, github, parts(tmp_path / "parts", "one\n", "two\n", "three\n"))
    assert post(capsys, github, parts(tmp_path / "parts", "just one\n")) == (
        0, "part 1: updated comment 1001\npart 2: deleted comment 1002\npart 3: deleted comment 1003\n", "")
    assert github.bodies() == ["<!-- dataplane-review part 1 -->\njust one\n"]


def test_other_comments_are_never_touched(capsys, github, tmp_path):
    others = ["LGTM", "> <!-- dataplane-review part 1 -->\n> quoting the review", " <!-- dataplane-review part 2 -->",
              "<!-- dataplane-review part one -->", "<!-- another-bot part 1 -->"]
    for body in others:
        github.add(body)
    github.add("<!-- dataplane-review part 1 -->\nanother pull request's review", pr=8, user=BOT)
    post(capsys, github, parts(tmp_path / "parts", "one\n", "two\n"))
    post(capsys, github, parts(tmp_path / "parts", "one, revised\n"))
    assert github.bodies() == [*others, "<!-- dataplane-review part 1 -->\none, revised\n"]
    assert github.bodies(pr=8) == ["<!-- dataplane-review part 1 -->\nanother pull request's review"]
    assert {path for _, path in github.writes()} <= {f"/repos/{REPO}/issues/{PR}/comments",
                                                     f"/repos/{REPO}/issues/comments/1007",
                                                     f"/repos/{REPO}/issues/comments/1008"}


def test_a_marked_comment_by_anyone_else_is_named_and_never_edited_or_deleted(capsys, github, tmp_path):
    """A forged review (someone else's comment that begins with the marker) is neither taken for the review nor
    removed; the workflow's own comments are found by marker and author, its login in any case."""
    forged = github.add("<!-- dataplane-review part 1 -->\nNo changes. Approve!\n", user="mallory")
    forged_bot = github.add("<!-- dataplane-review part 2 -->\nall fine\n", user="other-app[bot]")
    ours = github.add("<!-- dataplane-review part 2 -->\nold two\n", user="GitHub-Actions[bot]")
    left_alone = (f"part 1: left alone comment {forged} by mallory, not {BOT}\n"
                  f"part 2: left alone comment {forged_bot} by other-app[bot], not {BOT}\n")
    assert post(capsys, github, parts(tmp_path / "parts", "one\n", "two\n")) == (
        0, left_alone + f"part 1: created comment 1004\npart 2: updated comment {ours}\n", "")
    assert post(capsys, github, parts(tmp_path / "parts", "one\n")) == (
        0, left_alone + f"part 1: unchanged comment 1004\npart 2: deleted comment {ours}\n", "")
    assert github.bodies() == ["<!-- dataplane-review part 1 -->\nNo changes. Approve!\n",
                               "<!-- dataplane-review part 2 -->\nall fine\n",
                               "<!-- dataplane-review part 1 -->\none\n"]
    assert {path for _, path in github.writes()} == {f"/repos/{REPO}/issues/{PR}/comments",
                                                     f"/repos/{REPO}/issues/comments/{ours}"}


def test_another_author_is_given_with_author(capsys, github, tmp_path):
    """A workflow that writes with an app's token names the app's login; then github-actions' comments are another
    author's."""
    app = github.add("<!-- dataplane-review part 1 -->\nold\n", user="dataplane-app[bot]")
    actions = github.add("<!-- dataplane-review part 1 -->\nold\n", user=BOT)
    assert comment(capsys, github, parts(tmp_path / "parts", "new\n"), "--repo", REPO, "--pr", str(PR),
                   "--api-url", github.url, "--author", "dataplane-app[bot]") == (
        0, f"part 1: left alone comment {actions} by {BOT}, not dataplane-app[bot]\npart 1: updated comment {app}\n",
        "")
    assert github.comments[actions]["body"] == "<!-- dataplane-review part 1 -->\nold\n"


def test_every_page_of_comments_is_read(capsys, github, tmp_path):
    for n in range(250):
        github.add(f"comment {n}")
    review = parts(tmp_path / "parts", "one\n")
    post(capsys, github, review)
    for n in range(60):
        github.add(f"later comment {n}")
    github.requests.clear()
    assert post(capsys, github, parts(tmp_path / "parts", "one, revised\n"))[0] == 0
    assert [path for method, path in github.requests if method == "GET"] == [
        f"/repos/{REPO}/issues/{PR}/comments?per_page=100&page={page}" for page in (1, 2, 3, 4)]
    assert github.writes() == [("PATCH", f"/repos/{REPO}/issues/comments/1251")]
    assert len(github.bodies()) == 311


def test_duplicates_a_race_left_are_deleted(capsys, github, tmp_path):
    first = github.add("<!-- dataplane-review part 1 -->\none\n", user=BOT)
    second = github.add("<!-- dataplane-review part 1 -->\nold\n", user=BOT)
    assert post(capsys, github, parts(tmp_path / "parts", "one\n")) == (
        0, f"part 1: unchanged comment {first}\npart 1: deleted comment {second}\n", "")
    assert github.bodies() == ["<!-- dataplane-review part 1 -->\none\n"]


def test_the_repository_api_and_pull_request_come_from_github_actions(capsys, github, tmp_path, monkeypatch):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "pull_request": {"number": PR}}))
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("GITHUB_API_URL", github.url + "/")
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    assert comment(capsys, github, parts(tmp_path / "parts", "one\n")) == (0, "part 1: created comment 1001\n", "")
    assert github.bodies() == ["<!-- dataplane-review part 1 -->\none\n"]


@pytest.mark.parametrize("change, args, message", [
    ({"GITHUB_TOKEN": None}, [], "GITHUB_TOKEN is not set: the token to write comments with"),
    ({"GITHUB_TOKEN": TOKEN + "\n"}, [], "GITHUB_TOKEN holds spaces or control characters: not a token"),
    ({}, ["--pr", "7"], "no repository: pass --repo OWNER/NAME or set GITHUB_REPOSITORY"),
    ({"GITHUB_REPOSITORY": "octo-org"}, ["--pr", "7"], "repository 'octo-org' is not OWNER/NAME"),
    ({"GITHUB_REPOSITORY": "octo/../x"}, ["--pr", "7"], "repository 'octo/../x' is not OWNER/NAME"),
    ({"GITHUB_REPOSITORY": REPO}, [], "no pull request: pass --pr N or run on a pull_request event "
                                      "(GITHUB_EVENT_PATH)"),
    ({"GITHUB_REPOSITORY": REPO, "GITHUB_EVENT_PATH": "{push}"}, [],
     "{push}: not a pull_request event (no pull_request.number); pass --pr N"),
    ({"GITHUB_REPOSITORY": REPO}, ["--pr", "0"], "pull request number 0 is not positive"),
    ({"GITHUB_REPOSITORY": REPO}, ["--pr", "7", "--api-url", "file:///etc"], "API address 'file:///etc' is not an "
                                                                              "http(s) URL"),
    ({"GITHUB_REPOSITORY": REPO}, ["--pr", "7", "--author", "bot; rm -rf /"],
     "author 'bot; rm -rf /' is not a GitHub login (e.g. github-actions[bot])"),
    ({"GITHUB_REPOSITORY": REPO}, ["--pr", "7", "--parts-dir", "{missing}"], "{missing}: not a directory"),
    ({"GITHUB_REPOSITORY": REPO}, ["--pr", "7", "--parts-dir", "{empty}"],
     "{empty}: no review parts (part-001.md, ...)"),
    ({"GITHUB_REPOSITORY": REPO}, ["--pr", "7", "--parts-dir", "{gap}"],
     "{gap}: parts must be numbered part-001.md, part-002.md, ... without gaps; found part-001.md, part-003.md"),
    ({"GITHUB_REPOSITORY": REPO}, ["--pr", "7", "--parts-dir", "{long}"],
     f"{{long}}/part-001.md: {COMMENT_LIMIT + 1} characters with the marker, more than a comment's {COMMENT_LIMIT}"),
])
def test_bad_input_is_one_line_exit_2_before_any_request(capsys, github, tmp_path, monkeypatch, change, args, message):
    paths = {"missing": tmp_path / "missing", "empty": tmp_path / "empty", "gap": tmp_path / "gap",
             "long": tmp_path / "long", "push": tmp_path / "push.json"}
    paths["empty"].mkdir()
    (paths["empty"] / "README.md").write_text("not a part")
    parts(paths["gap"], "one\n", "two\n", "three\n")
    (paths["gap"] / "part-002.md").unlink()
    parts(paths["long"], "x" * (COMMENT_LIMIT - len("<!-- dataplane-review part 1 -->\n") + 1))
    paths["push"].write_text(json.dumps({"ref": "refs/heads/main"}))
    for name, value in change.items():
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value.format(**paths))
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    args = [a.format(**paths) for a in args]
    if "--parts-dir" not in args:
        args += ["--parts-dir", str(parts(tmp_path / "parts", "one\n"))]
    code = cli.main(["comment", *args])
    out, err = capsys.readouterr()
    assert (code, out, err) == (2, "", f"comment: {message.format(**paths)}\n")
    assert github.requests == []


def test_an_api_refusal_is_one_line_exit_1_with_its_status(capsys, github, tmp_path):
    github.refuse = (403, "Resource not accessible\nby integration", "")
    assert post(capsys, github, parts(tmp_path / "parts", "one\n")) == (
        1, "", f"comment: GitHub API GET /repos/{REPO}/issues/{PR}/comments?per_page=100&page=1: HTTP 403 Forbidden: "
               "Resource not accessible by integration\n")


def test_what_was_done_before_a_refusal_is_printed(capsys, github, tmp_path):
    post(capsys, github, parts(tmp_path / "parts", "one\n"))
    github.refuse = (422, "Validation Failed", "POST")
    assert post(capsys, github, parts(tmp_path / "parts", "one\n", "two\n")) == (
        1, "part 1: unchanged comment 1001\n",
        f"comment: GitHub API POST /repos/{REPO}/issues/{PR}/comments: HTTP 422 Unprocessable Entity: "
        "Validation Failed\n")


def test_a_wrong_token_is_refused_without_printing_it(capsys, github, tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_wrong")
    code, out, err = post(capsys, github, parts(tmp_path / "parts", "one\n"))
    assert (code, out) == (1, "") and "HTTP 401 Unauthorized: Bad credentials" in err and "ghs_wrong" not in err


def test_an_unreachable_api_is_one_line_exit_1(capsys, github, tmp_path):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    code, out, err = comment(capsys, github, parts(tmp_path / "parts", "one\n"), "--repo", REPO, "--pr", str(PR),
                             "--api-url", f"http://127.0.0.1:{port}")
    assert (code, out) == (1, "")
    assert err.startswith(f"comment: GitHub API GET /repos/{REPO}/issues/{PR}/comments?per_page=100&page=1: ")
    assert err.count("\n") == 1 and "Connection refused" in err


# ---------------------------------------------------------------- the drift issue

TITLE = "Data plane drift"
MARKER = "<!-- dataplane-issue data-plane-drift -->"


def issue(capsys, github: FakeGitHub, body_file: Path, *args: str) -> tuple[int, str, str]:
    code = cli.main(["issue", "--title", TITLE, "--body-file", str(body_file), "--repo", REPO, "--api-url", github.url,
                     *args])
    out, err = capsys.readouterr()
    assert TOKEN not in out + err
    return code, out, err


def report(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "drift.md"
    path.write_text(text)
    return path


def test_the_first_report_opens_the_issue_and_later_ones_update_it_in_place(capsys, github, tmp_path):
    assert issue(capsys, github, report(tmp_path, "Drift: 1 drifted\n")) == (0, "issue #1: created\n", "")
    assert github.issues[1] | {"user": None} == {"number": 1, "title": TITLE, "body": f"{MARKER}\nDrift: 1 drifted\n",
                                                 "state": "open", "user": None}
    assert issue(capsys, github, report(tmp_path, "Drift: 2 drifted\n")) == (0, "issue #1: updated\n", "")
    assert github.issues[1]["body"] == f"{MARKER}\nDrift: 2 drifted\n"
    github.requests.clear()
    assert issue(capsys, github, report(tmp_path, "Drift: 2 drifted\n")) == (0, "issue #1: unchanged\n", "")
    assert github.writes() == [] and len(github.issues) == 1


def test_a_title_edited_by_hand_is_restored_with_the_body(capsys, github, tmp_path):
    number = github.open_issue("drift (looking into it)", f"{MARKER}\nDrift: 1 drifted\n", user=BOT)
    assert issue(capsys, github, report(tmp_path, "Drift: 1 drifted\n")) == (0, f"issue #{number}: updated\n", "")
    assert github.writes() == [("PATCH", f"/repos/{REPO}/issues/{number}")]
    assert github.issues[number]["title"] == TITLE


def test_close_updates_and_closes_the_open_issue_and_the_next_drift_opens_a_new_one(capsys, github, tmp_path):
    in_sync = "Drift: 0 drifted\n"
    assert issue(capsys, github, report(tmp_path, in_sync), "--close") == (
        0, "no open issue 'Data plane drift': nothing to close\n", "")
    assert github.writes() == [] and github.issues == {}
    issue(capsys, github, report(tmp_path, "Drift: 1 drifted\n"))
    assert issue(capsys, github, report(tmp_path, in_sync), "--close") == (0, "issue #1: closed\n", "")
    assert github.issues[1] | {"user": None} == {"number": 1, "title": TITLE, "body": f"{MARKER}\nDrift: 0 drifted\n",
                                                 "state": "closed", "state_reason": "completed", "user": None}
    assert issue(capsys, github, report(tmp_path, "Drift: 3 drifted\n")) == (0, "issue #2: created\n", "")


def test_other_issues_and_pull_requests_are_never_touched_and_duplicates_are_closed(capsys, github, tmp_path):
    others = [("Drift in staging", "<!-- dataplane-issue drift-in-staging -->\nmine"),
              ("Quoting it", f"> {MARKER}\n> quoted"), ("Unrelated", "hello")]
    numbers = [github.open_issue(title, body) for title, body in others]
    pull = github.open_issue("A pull request", f"{MARKER}\nnot an issue", pull_request=True)
    first = github.open_issue(TITLE, f"{MARKER}\nold", user=BOT)
    second = github.open_issue(TITLE, f"{MARKER}\nrace", user=BOT)
    assert issue(capsys, github, report(tmp_path, "new\n")) == (
        0, f"issue #{first}: updated\nissue #{second}: closed, a duplicate of #{first}\n", "")
    assert [(github.issues[n]["title"], github.issues[n]["body"]) for n in numbers] == others
    assert github.issues[pull]["body"] == f"{MARKER}\nnot an issue" and github.issues[pull]["state"] == "open"
    assert (github.issues[second]["state"], github.issues[second]["state_reason"]) == ("closed", "not_planned")
    assert {path for _, path in github.writes()} == {f"/repos/{REPO}/issues/{first}", f"/repos/{REPO}/issues/{second}"}


def test_a_marked_issue_opened_by_anyone_else_is_never_updated_or_closed(capsys, github, tmp_path):
    """Someone's issue that begins with the drift marker (to be edited into a fake report, or closed to hide drift)
    is named and left alone; the workflow opens and closes its own."""
    forged = github.open_issue(TITLE, f"{MARKER}\nNo drift.", user="mallory")
    left_alone = f"issue #{forged}: left alone, opened by mallory, not {BOT}\n"
    assert issue(capsys, github, report(tmp_path, "Drift: 1 drifted\n")) == (0, left_alone + "issue #2: created\n", "")
    assert issue(capsys, github, report(tmp_path, "in sync\n"), "--close") == (0, left_alone + "issue #2: closed\n", "")
    assert github.issues[forged] | {"user": None} == {"number": forged, "title": TITLE, "body": f"{MARKER}\nNo drift.",
                                                      "state": "open", "user": None}
    assert {path for _, path in github.writes()} == {f"/repos/{REPO}/issues", f"/repos/{REPO}/issues/2"}


def test_every_page_of_open_issues_is_read(capsys, github, tmp_path):
    for n in range(230):
        github.open_issue(f"issue {n}", "text")
    assert issue(capsys, github, report(tmp_path, "one\n")) == (0, "issue #231: created\n", "")
    github.requests.clear()
    assert issue(capsys, github, report(tmp_path, "two\n")) == (0, "issue #231: updated\n", "")
    assert [path for method, path in github.requests if method == "GET"] == [
        f"/repos/{REPO}/issues?state=open&sort=created&direction=asc&per_page=100&page={page}" for page in (1, 2, 3)]


@pytest.mark.parametrize("title, body, message", [
    ("", "x", f"issue title '' is not 1-{TITLE_LIMIT} printable characters"),
    ("   ", "x", f"issue title '   ' is not 1-{TITLE_LIMIT} printable characters"),
    ("Drift\n", "x", f"issue title 'Drift\\n' is not 1-{TITLE_LIMIT} printable characters"),
    ("x" * (TITLE_LIMIT + 1), "x", f"issue title '{'x' * (TITLE_LIMIT + 1)}' is not 1-{TITLE_LIMIT} printable "
                                   "characters"),
    ("!!!", "x", "issue title '!!!' has no letter or digit to find its issue by"),
    (TITLE, None, "{body}: cannot be read ([Errno 2] No such file or directory: '{body}')"),
    (TITLE, "x" * (COMMENT_LIMIT - len(MARKER)), f"{{body}}: {COMMENT_LIMIT + 1} characters with the marker, more "
                                                 f"than an issue's {COMMENT_LIMIT}"),
])
def test_bad_issue_input_is_one_line_exit_2_before_any_request(capsys, github, tmp_path, title, body, message):
    path = tmp_path / "drift.md"
    if body is not None:
        path.write_text(body)
    code = cli.main(["issue", "--title", title, "--body-file", str(path), "--repo", REPO, "--api-url", github.url])
    assert (code, *capsys.readouterr()) == (2, "", f"issue: {message.format(body=path)}\n")
    assert github.requests == []


def test_the_issue_needs_the_token_and_repository_as_comments_do(capsys, github, tmp_path, monkeypatch):
    monkeypatch.delenv("GITHUB_TOKEN")
    assert issue(capsys, github, report(tmp_path, "x\n")) == (
        2, "", "issue: GITHUB_TOKEN is not set: the token to write comments with\n")
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    code = cli.main(["issue", "--title", TITLE, "--body-file", str(tmp_path / "drift.md"), "--api-url", github.url])
    assert (code, *capsys.readouterr()) == (
        2, "", "issue: no repository: pass --repo OWNER/NAME or set GITHUB_REPOSITORY\n")
    assert github.requests == []


def test_an_issue_api_refusal_is_one_line_exit_1_with_its_status(capsys, github, tmp_path):
    github.refuse = (403, "Resource not accessible by integration", "POST")
    assert issue(capsys, github, report(tmp_path, "x\n")) == (
        1, "", f"issue: GitHub API POST /repos/{REPO}/issues: HTTP 403 Forbidden: Resource not accessible by "
               "integration\n")
