"""`python -m dataplane comment --parts-dir review-parts`: the review as sticky comments on the pull request.

Part `i` of the review (`part-00i.md`) is one comment whose body begins with the hidden marker
`<!-- dataplane-review part i -->`; part 1 is the main comment. Each run finds its comments again by that marker:
it creates a missing part, edits a part whose text changed (in place), leaves an unchanged one alone, and
deletes the comments of parts that no longer exist (and duplicates a race left). Only comments written by the
workflow's own identity (`--author`, default `github-actions[bot]`: who writes with `secrets.GITHUB_TOKEN`) are its
own: anyone else's comment is never touched, even one that begins with the marker (it is named and left alone).
`GITHUB_TOKEN` cannot ask GitHub who it is (`GET /user` answers 403 to an Actions token), so the identity is given.

The repository, API and pull request come from GitHub Actions' environment unless given (`--repo`, `--api-url`,
`--pr`); the token only from `$GITHUB_TOKEN`, and it is never printed. GitHub's REST API, over urllib.
Exit status: 0 done, 1 the API refused or failed (one line, with the HTTP status), 2 bad input (one line).

`python -m dataplane issue --title T --body-file FILE [--close]`: one open issue per title, the same way (the drift
report's). Its body begins with the hidden marker `<!-- dataplane-issue <title as a slug> -->`; the oldest open issue
so marked and opened by `--author` is updated in place (title and body, when they changed), or, if none is open, one
is created. With `--close` (everything is fine again) it is updated and closed, and none is created. Later duplicates
a race left are closed. Issues opened by anyone else are never touched. The repository, API, token and author as for
`comment`.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from dataplane.project import (
    GITHUB_API_URL_ENV,
    GITHUB_EVENT_PATH_ENV,
    GITHUB_REPOSITORY_ENV,
    GITHUB_TOKEN_ENV,
)

DEFAULT_API_URL = "https://api.github.com"
COMMENT_LIMIT = 65_536
"""GitHub's limit on a comment body, in characters (an issue body's too)."""
TITLE_LIMIT = 256
"""GitHub's limit on an issue title, in characters."""
PER_PAGE = 100
DEFAULT_AUTHOR = "github-actions[bot]"
"""Who writes with a workflow's `secrets.GITHUB_TOKEN`: the only author whose marked comments and issues are ours."""
LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?")
TIMEOUT = 30
PART_FILE = re.compile(r"part-(\d{3,})\.md")
MARKER = re.compile(r"<!-- dataplane-review part (\d+) -->")
REPO = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/(?!\.\.?$)[A-Za-z0-9._-]{1,100}")


class InputError(Exception):
    """A missing or malformed input: token, repository, pull request, API address, author, parts, issue title or
    body."""


class GitHubError(Exception):
    """The GitHub API refused a request, answered something unexpected, or could not be reached."""


def marker(part: int) -> str:
    return f"<!-- dataplane-review part {part} -->"


def checked_author(author: str | None) -> str:
    """`author` (default `DEFAULT_AUTHOR`) when it is a GitHub login (an app's ends in `[bot]`); else `InputError`."""
    if author is None:
        return DEFAULT_AUTHOR
    if not LOGIN.fullmatch(author):
        raise InputError(f"author {author!r} is not a GitHub login (e.g. {DEFAULT_AUTHOR})")
    return author


def login(item: dict) -> str:
    """The login of who wrote a comment or opened an issue ("" when GitHub names none)."""
    user = item.get("user")
    return str(user.get("login") or "") if isinstance(user, dict) else ""


def written_by(item: dict, author: str) -> bool:
    """Whether `author` wrote the comment or opened the issue (GitHub logins ignore case)."""
    return login(item).casefold() == author.casefold()


def read_parts(parts_dir: Path) -> list[str]:
    """The comment bodies, marker first, of `part-001.md`, `part-002.md`, ... in `parts_dir` (numbered without gaps)."""
    if not parts_dir.is_dir():
        raise InputError(f"{parts_dir}: not a directory")
    files = {int(m[1]): path for path in parts_dir.iterdir() if (m := PART_FILE.fullmatch(path.name))}
    if not files:
        raise InputError(f"{parts_dir}: no review parts (part-001.md, ...)")
    if sorted(files) != list(range(1, len(files) + 1)):
        raise InputError(f"{parts_dir}: parts must be numbered part-001.md, part-002.md, ... without gaps; found "
                         + ", ".join(files[n].name for n in sorted(files)))
    bodies = []
    for number in range(1, len(files) + 1):
        try:
            body = f"{marker(number)}\n{files[number].read_text(encoding='utf-8')}"
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{files[number]}: cannot be read ({e})") from None
        if len(body) > COMMENT_LIMIT:
            raise InputError(f"{files[number]}: {len(body)} characters with the marker, more than a comment's "
                             f"{COMMENT_LIMIT}")
        bodies.append(body)
    return bodies


@dataclass(frozen=True)
class Repository:
    """A repository's REST API, and the token that may write to it."""

    api_url: str
    repo: str
    token: str

    @classmethod
    def from_environment(cls, repo: str | None, api_url: str | None) -> Repository:
        """The given values, else GitHub Actions' environment; an `InputError` for anything missing or malformed."""
        token = os.environ.get(GITHUB_TOKEN_ENV)
        if not token:
            raise InputError(f"{GITHUB_TOKEN_ENV} is not set: the token to write comments with")
        if not token.isprintable() or " " in token:
            raise InputError(f"{GITHUB_TOKEN_ENV} holds spaces or control characters: not a token")
        repo = repo or os.environ.get(GITHUB_REPOSITORY_ENV)
        if not repo:
            raise InputError(f"no repository: pass --repo OWNER/NAME or set {GITHUB_REPOSITORY_ENV}")
        if not REPO.fullmatch(repo):
            raise InputError(f"repository {repo!r} is not OWNER/NAME")
        api_url = (api_url or os.environ.get(GITHUB_API_URL_ENV) or DEFAULT_API_URL).rstrip("/")
        address = urllib.parse.urlsplit(api_url)
        if address.scheme not in ("http", "https") or not address.hostname or address.query or address.fragment:
            raise InputError(f"API address {api_url!r} is not an http(s) URL")
        return cls(api_url, repo, token)

    def _call(self, method: str, path: str, body: dict | None = None) -> Any:
        """One REST call; its JSON answer (None when empty)."""
        request = urllib.request.Request(
            self.api_url + path, method=method, data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Accept": "application/vnd.github+json",
                     "X-GitHub-Api-Version": "2022-11-28", "Content-Type": "application/json",
                     "User-Agent": "dataplane-review"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            raise GitHubError(f"{method} {path}: HTTP {e.code} {e.reason}{_message(e)}") from None
        except urllib.error.URLError as e:
            raise GitHubError(f"{method} {path}: {e.reason}") from None
        except (OSError, http.client.HTTPException) as e:
            raise GitHubError(f"{method} {path}: {e or type(e).__name__}") from None
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise GitHubError(f"{method} {path}: the answer is not JSON") from None

    def open_issues(self) -> list[dict]:
        """Every open issue (pull requests left out), oldest first, following the pages."""
        issues: list[dict] = []
        for page in itertools.count(1):
            path = f"/repos/{self.repo}/issues?state=open&sort=created&direction=asc&per_page={PER_PAGE}&page={page}"
            batch = self._call("GET", path)
            if not isinstance(batch, list) or not all(isinstance(i, dict) and isinstance(i.get("number"), int)
                                                      for i in batch):
                raise GitHubError(f"GET {path}: the answer is not a list of issues")
            issues += [i for i in batch if "pull_request" not in i]
            if len(batch) < PER_PAGE:
                break
        return issues

    def create_issue(self, title: str, body: str) -> int:
        path = f"/repos/{self.repo}/issues"
        answer = self._call("POST", path, {"title": title, "body": body})
        if not isinstance(answer, dict) or not isinstance(answer.get("number"), int):
            raise GitHubError(f"POST {path}: the answer is not an issue")
        return answer["number"]

    def update_issue(self, number: int, fields: dict) -> None:
        self._call("PATCH", f"/repos/{self.repo}/issues/{number}", fields)


@dataclass(frozen=True)
class PullRequest(Repository):
    """Where the comments go, and the token that may write them."""

    number: int

    @classmethod
    def from_environment(cls, repo: str | None, number: int | None, api_url: str | None) -> PullRequest:
        """The given values, else GitHub Actions' environment; an `InputError` for anything missing or malformed."""
        repository = Repository.from_environment(repo, api_url)
        number = _event_pull_request() if number is None else number
        if number < 1:
            raise InputError(f"pull request number {number} is not positive")
        return cls(repository.api_url, repository.repo, repository.token, number)

    def comments(self) -> list[dict]:
        """Every comment on the pull request, oldest first, following the pages."""
        comments: list[dict] = []
        for page in itertools.count(1):
            path = f"/repos/{self.repo}/issues/{self.number}/comments?per_page={PER_PAGE}&page={page}"
            batch = self._call("GET", path)
            if not isinstance(batch, list) or not all(isinstance(c, dict) and isinstance(c.get("id"), int)
                                                      for c in batch):
                raise GitHubError(f"GET {path}: the answer is not a list of comments")
            comments += batch
            if len(batch) < PER_PAGE:
                break
        return comments

    def create(self, body: str) -> int:
        path = f"/repos/{self.repo}/issues/{self.number}/comments"
        answer = self._call("POST", path, {"body": body})
        if not isinstance(answer, dict) or not isinstance(answer.get("id"), int):
            raise GitHubError(f"POST {path}: the answer is not a comment")
        return answer["id"]

    def update(self, comment_id: int, body: str) -> None:
        self._call("PATCH", f"/repos/{self.repo}/issues/comments/{comment_id}", {"body": body})

    def delete(self, comment_id: int) -> None:
        self._call("DELETE", f"/repos/{self.repo}/issues/comments/{comment_id}")


def sync(pull_request: PullRequest, bodies: list[str], author: str) -> Iterator[str]:
    """Make `author`'s marked comments on the pull request exactly `bodies` (part 1 first), saying what is done as it
    is done; a marked comment by anyone else is named and left alone."""
    ours: dict[int, list[dict]] = {}
    for comment in pull_request.comments():
        if not (found := MARKER.match(str(comment.get("body") or ""))):
            continue
        if written_by(comment, author):
            ours.setdefault(int(found[1]), []).append(comment)
        else:
            yield f"part {found[1]}: left alone comment {comment['id']} by {login(comment) or 'unknown'}, not {author}"
    stale = []
    for part, body in enumerate(bodies, 1):
        if part not in ours:
            yield f"part {part}: created comment {pull_request.create(body)}"
            continue
        first, *duplicates = ours.pop(part)
        stale += [(part, comment) for comment in duplicates]
        if first.get("body") != body:
            pull_request.update(first["id"], body)
            yield f"part {part}: updated comment {first['id']}"
        else:
            yield f"part {part}: unchanged comment {first['id']}"
    stale += [(part, comment) for part in sorted(ours) for comment in ours[part]]
    for part, comment in stale:
        pull_request.delete(comment["id"])
        yield f"part {part}: deleted comment {comment['id']}"


def run(parts_dir: Path, repo: str | None, number: int | None, api_url: str | None, author: str | None) -> int:
    """Post the parts in `parts_dir` as `author`; print what was done. 0 done, 1 an API failure, 2 bad input."""
    try:
        pull_request = PullRequest.from_environment(repo, number, api_url)
        author = checked_author(author)
        bodies = read_parts(parts_dir)
    except InputError as e:
        print(f"comment: {e}", file=sys.stderr)
        return 2
    try:
        for done in sync(pull_request, bodies, author):
            print(done, flush=True)
    except GitHubError as e:
        print(f"comment: GitHub API {e}", file=sys.stderr)
        return 1
    return 0


def issue_marker(title: str) -> str:
    """The hidden marker that begins the body of the issue titled `title`."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return f"<!-- dataplane-issue {slug} -->"


def read_issue(title: str, body_file: Path) -> str:
    """The issue's body, marker first, from `body_file`; an `InputError` for a bad title or body."""
    if not title.strip() or not title.isprintable() or len(title) > TITLE_LIMIT:
        raise InputError(f"issue title {title!r} is not 1-{TITLE_LIMIT} printable characters")
    if not re.search(r"[A-Za-z0-9]", title):
        raise InputError(f"issue title {title!r} has no letter or digit to find its issue by")
    try:
        body = f"{issue_marker(title)}\n{body_file.read_text(encoding='utf-8')}"
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{body_file}: cannot be read ({e})") from None
    if len(body) > COMMENT_LIMIT:
        raise InputError(f"{body_file}: {len(body)} characters with the marker, more than an issue's {COMMENT_LIMIT}")
    return body


def upsert_issue(repository: Repository, title: str, body: str, author: str, close: bool = False) -> Iterator[str]:
    """Make `author`'s open issue marked for `title` hold `body` (closed with `close`), saying what is done as it is
    done; a marked issue opened by anyone else is named and left alone."""
    marker = issue_marker(title)
    ours = []
    for issue in repository.open_issues():
        if not str(issue.get("body") or "").startswith(marker):
            continue
        if written_by(issue, author):
            ours.append(issue)
        else:
            yield f"issue #{issue['number']}: left alone, opened by {login(issue) or 'unknown'}, not {author}"
    if not ours:
        if close:
            yield f"no open issue {title!r}: nothing to close"
        else:
            yield f"issue #{repository.create_issue(title, body)}: created"
        return
    first, *duplicates = ours
    fields = {key: value for key, value in (("title", title), ("body", body)) if first.get(key) != value}
    if close:
        fields |= {"state": "closed", "state_reason": "completed"}
    if fields:
        repository.update_issue(first["number"], fields)
    yield f"issue #{first['number']}: {'closed' if close else 'updated' if fields else 'unchanged'}"
    for duplicate in duplicates:
        repository.update_issue(duplicate["number"], {"state": "closed", "state_reason": "not_planned"})
        yield f"issue #{duplicate['number']}: closed, a duplicate of #{first['number']}"


def run_issue(title: str, body_file: Path, close: bool, repo: str | None, api_url: str | None,
              author: str | None) -> int:
    """Open, update or close `author`'s issue titled `title`; print what was done. 0 done, 1 an API failure, 2 bad
    input."""
    try:
        repository = Repository.from_environment(repo, api_url)
        author = checked_author(author)
        body = read_issue(title, body_file)
    except InputError as e:
        print(f"issue: {e}", file=sys.stderr)
        return 2
    try:
        for done in upsert_issue(repository, title, body, author, close):
            print(done, flush=True)
    except GitHubError as e:
        print(f"issue: GitHub API {e}", file=sys.stderr)
        return 1
    return 0


def _event_pull_request() -> int:
    """The pull request number of the event that started the workflow."""
    path = os.environ.get(GITHUB_EVENT_PATH_ENV)
    if not path:
        raise InputError(f"no pull request: pass --pr N or run on a pull_request event ({GITHUB_EVENT_PATH_ENV})")
    try:
        number = json.loads(Path(path).read_text(encoding="utf-8"))["pull_request"]["number"]
    except (OSError, ValueError, KeyError, TypeError):
        number = None
    if not isinstance(number, int) or isinstance(number, bool):
        raise InputError(f"{path}: not a pull_request event (no pull_request.number); pass --pr N")
    return number


def event_labels() -> set[str]:
    """The labels of the pull request whose event started the workflow (`$GITHUB_EVENT_PATH`); an InputError if none."""
    path = os.environ.get(GITHUB_EVENT_PATH_ENV)
    if not path:
        raise InputError(f"no pull request: run on a pull_request event ({GITHUB_EVENT_PATH_ENV})")
    try:
        return {label["name"] for label in json.loads(Path(path).read_text(encoding="utf-8"))["pull_request"]["labels"]}
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(f"{path}: not a pull_request event (no pull_request.labels)") from None


def _message(error: urllib.error.HTTPError) -> str:
    """GitHub's own explanation of a refusal (`message` of its JSON answer), on one line."""
    try:
        message = json.loads(error.read()).get("message")
    except (OSError, ValueError, AttributeError, http.client.HTTPException):
        return ""
    return f": {' '.join(str(message).split())[:200]}" if message else ""
