"""Typed errors raised at the study's edges.

Every way a rater, an admin or a manifest can hand the study something bad ends in one
of these, with a message a person can act on. The operation that raised stored nothing.
"""

from __future__ import annotations

from db import StorageError


class StudyError(Exception):
    """Base of every error the study raises on purpose."""


class ManifestError(StudyError, ValueError):
    """A manifest or uploaded CSV is malformed, incomplete, or points at missing images."""


class UploadError(StudyError, ValueError):
    """An upload is too large, has too many files, or is not an image."""


class VoteError(StudyError, ValueError):
    """A vote names an unknown or foreign assignment, a bad choice, or repeats a vote."""


class DuplicateVoteError(VoteError):
    """This rater already answered this pair: the first answer stands."""


class StudyClosedError(StudyError):
    """The study is not open: no new sessions and no votes."""


class NotFoundError(StudyError, LookupError):
    """A study, rater or stimulus id that does not exist."""


class AuthError(StudyError, PermissionError):
    """The admin password is wrong, or admin is disabled because none is configured."""


class LoginRequiredError(StudyError, PermissionError):
    """The study asks raters to sign in (with Hugging Face) before they start."""


class StudyStorageError(StudyError, StorageError):
    """The database failed (disk full, read-only file, I/O error): nothing was stored.

    Raised by ``db.Database`` for a study service (``StudyService`` sets it); its message
    is meant for raters and the admin as it is.
    """
