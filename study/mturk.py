"""Amazon Mechanical Turk: the external-HIT hand-back, and the preview that must not start.

MTurk shows an external HIT's page in an iframe and appends its parameters to the URL:

    preview:   ?study=…&assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=…   (no session is started)
    accepted:  ?study=…&assignmentId=A…&hitId=H…&workerId=W…&turkSubmitTo=https://www.mturk.com
        ─► the session (workerId is the participant id) ─► … ─► done page
        ─► form POST <turkSubmitTo>/mturk/externalSubmit  {assignmentId, completionCode}

``turkSubmitTo`` comes from the link, so anyone can write any address there: the form is
offered only for MTurk's two hosts (live and sandbox), or a loopback host when a test or
development setting allows it, never an arbitrary one (a crafted link must not make the
study page post a code to someone else's server).
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

PREVIEW_ASSIGNMENT = "ASSIGNMENT_ID_NOT_AVAILABLE"
SUBMIT_PATH = "/mturk/externalSubmit"
MTURK_ORIGINS = ("https://www.mturk.com", "https://workersandbox.mturk.com")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
CODE_FIELD = "completionCode"
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?/?$")
_ASSIGNMENT = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def is_preview(params: dict[str, str] | None) -> bool:
    """The HIT is being previewed (not accepted): the worker cannot submit anything yet."""
    return (params or {}).get("assignmentId", "").strip() == PREVIEW_ASSIGNMENT


def submit_url(turk_submit_to: str | None, allow_loopback: bool = False) -> str | None:
    """``<turkSubmitTo>/mturk/externalSubmit`` for an allowed host, else None.

    Allowed: exactly https://www.mturk.com and https://workersandbox.mturk.com (no port,
    path, query, user or fragment); with ``allow_loopback``, http(s)://127.0.0.1[:port] and
    http(s)://localhost[:port].
    """
    text = (turk_submit_to or "").strip()
    if not _ORIGIN.match(text):
        return None
    parts = urlsplit(text)
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    if origin in MTURK_ORIGINS:
        return origin + SUBMIT_PATH
    if allow_loopback and (parts.hostname or "").lower() in LOOPBACK_HOSTS:
        return origin + SUBMIT_PATH
    return None


def submit_form(params: dict[str, str] | None, code: str | None, allow_loopback: bool = False) -> str | None:
    """The done page's form that hands the assignment back to MTurk, or None if none applies.

    None without an accepted assignment id or without an allowed ``turkSubmitTo``. MTurk
    wants at least one field besides ``assignmentId``: ``completionCode`` carries the
    study's completion code ("completed" when the study has none).
    """
    params = params or {}
    assignment = params.get("assignmentId", "").strip()
    if not _ASSIGNMENT.match(assignment) or assignment == PREVIEW_ASSIGNMENT:
        return None
    action = submit_url(params.get("turkSubmitTo"), allow_loopback)
    if action is None:
        return None
    return (f'<form id="study-mturk" method="POST" action="{html.escape(action)}">'
            f'<input type="hidden" name="assignmentId" value="{html.escape(assignment)}">'
            f'<input type="hidden" name="{CODE_FIELD}" value="{html.escape(code or "completed")}">'
            '<p>Press the button to hand your work back to Mechanical Turk.</p>'
            '<button type="submit" id="study-mturk-submit" class="lg primary">Submit the HIT</button></form>')
