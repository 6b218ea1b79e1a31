"""Where a pull request's report goes on GitHub: one PR comment, updated in place on every push
(found by the report's marker), and the job summary of the workflow run."""
from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path
from typing import Any

from .report import MARKER


class GitHubError(RuntimeError):
    """The GitHub API refused or could not be reached; the message says which call."""


class PullRequest:
    """The comments of one pull request, through GitHub's REST API."""

    def __init__(self, repository: str, number: int, token: str, api_url: str = "https://api.github.com") -> None:
        self.repository, self.number, self.token, self.api_url = repository, number, token, api_url.rstrip("/")

    @classmethod
    def from_environment(cls, number: int | None = None) -> PullRequest:
        """The pull request of the running workflow: GITHUB_REPOSITORY, GITHUB_TOKEN, GITHUB_API_URL
        and the number from the event (GITHUB_EVENT_PATH) unless given."""
        missing = [k for k in ("GITHUB_REPOSITORY", "GITHUB_TOKEN") if not os.environ.get(k)]
        if missing:
            raise GitHubError(f"posting the comment needs {' and '.join(missing)} in the environment")
        if number is None:
            event_path = os.environ.get("GITHUB_EVENT_PATH")
            event = json.loads(Path(event_path).read_text()) if event_path else {}
            number = (event.get("pull_request") or {}).get("number") or event.get("number")
            if not number:
                raise GitHubError("no pull request number: pass --pr N or run on a pull_request event")
        return cls(os.environ["GITHUB_REPOSITORY"], int(number), os.environ["GITHUB_TOKEN"],
                   os.environ.get("GITHUB_API_URL", "https://api.github.com"))

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            f"{self.api_url}{path}", method=method, data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Accept": "application/vnd.github+json",
                     "X-GitHub-Api-Version": "2022-11-28", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except OSError as failure:  # HTTPError and URLError are both OSErrors
            raise GitHubError(f"{method} {path}: {failure}") from failure

    def _report_comment(self) -> dict[str, Any] | None:
        page = 1
        while True:
            comments = self._call("GET", f"/repos/{self.repository}/issues/{self.number}/comments"
                                         f"?per_page=100&page={page}")
            for comment in comments:
                if str(comment.get("body", "")).startswith(MARKER):
                    return comment
            if len(comments) < 100:
                return None
            page += 1

    def upsert_report(self, body: str) -> str:
        """Post the report, or update the comment an earlier run posted; its URL."""
        existing = self._report_comment()
        if existing is None:
            made = self._call("POST", f"/repos/{self.repository}/issues/{self.number}/comments", {"body": body})
        elif existing.get("body") == body:
            made = existing
        else:
            made = self._call("PATCH", f"/repos/{self.repository}/issues/comments/{existing['id']}", {"body": body})
        return str(made.get("html_url") or made.get("url") or "")


def append_job_summary(body: str) -> bool:
    """Add the report to the workflow run's summary page, when running in a workflow."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return False
    with open(path, "a", encoding="utf-8") as summary:
        summary.write(body)
    return True
