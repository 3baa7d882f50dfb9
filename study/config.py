"""Configuration of the study platform, read from the environment once.

    MISC_STUDY_DIR           the study's own folder: database, stimuli, backup staging
                             (default: /data/misc-study when a persistent volume is mounted
                             at /data, as on a Hugging Face Space with storage; else ./data)
    MISC_STUDY_DB            SQLAlchemy URL or SQLite file path   (default MISC_STUDY_DIR/study.db)
    MISC_ADMIN_PASSWORD      admin tab password; unset = admin disabled
    MISC_STUDY_STIMULI_DIR   where imported/uploaded images are stored (default MISC_STUDY_DIR/stimuli)
    MISC_STUDY_BACKUP_REPO   a Hub dataset repo (e.g. user/misc-study-votes) that receives a
                             consistent snapshot of the database on a schedule (study/backup.py);
                             unset = no backup
    MISC_STUDY_BACKUP_EVERY  minutes between snapshots (default 10)
    MISC_STUDY_HF_LOGIN      the "Sign in with Hugging Face" button for studies that use it:
                             auto (default: on where the Space has OAuth, i.e. ``hf_oauth: true``
                             sets OAUTH_CLIENT_ID) | 1 (always; off a Space Gradio mocks the
                             sign-in with the machine's own Hugging Face login) | 0 (never)
    MISC_STUDY_MTURK_LOOPBACK  1: MTurk's ``turkSubmitTo`` may also be http://127.0.0.1 or
                             http://localhost (tests and local development; never on a live study)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class StudyConfig:
    db_url: str = "data/study.db"
    admin_password: str | None = None
    stimuli_dir: Path = field(default_factory=lambda: Path("data/stimuli"))
    # Upload limits (the Admin tab refuses anything above them).
    max_image_bytes: int = 20 * 1024 * 1024
    max_images: int = 2000
    max_csv_bytes: int = 1024 * 1024
    max_image_pixels: int = 4096 * 4096
    # Analysis.
    bootstrap_samples: int = 200
    seed: int = 0
    # Backup of the database to a Hub dataset repo (None: off).
    backup_repo: str | None = None
    backup_every_min: float = 10.0
    # The Hugging Face sign-in button (studies with rater_login hf / hf-optional need it).
    hf_login: bool = False
    # MTurk's external-HIT form may post to a loopback host (tests, local development).
    mturk_loopback: bool = False

    @classmethod
    def from_env(cls) -> StudyConfig:
        password = os.environ.get("MISC_ADMIN_PASSWORD") or None
        folder = study_dir()
        return cls(
            db_url=os.environ.get("MISC_STUDY_DB", str(folder / "study.db")),
            admin_password=password,
            stimuli_dir=Path(os.environ.get("MISC_STUDY_STIMULI_DIR", str(folder / "stimuli"))),
            backup_repo=os.environ.get("MISC_STUDY_BACKUP_REPO") or None,
            backup_every_min=float(os.environ.get("MISC_STUDY_BACKUP_EVERY", "10")),
            hf_login=hf_login_enabled(os.environ.get("MISC_STUDY_HF_LOGIN", "auto")),
            mturk_loopback=os.environ.get("MISC_STUDY_MTURK_LOOPBACK", "").strip().lower() in ("1", "true", "yes"),
        )


def study_dir(persistent: Path = Path("/data")) -> Path:
    """MISC_STUDY_DIR, else the persistent volume when one is mounted (it survives restarts), else ./data."""
    if env := os.environ.get("MISC_STUDY_DIR"):
        return Path(env)
    if persistent.is_dir() and os.access(persistent, os.W_OK):
        return persistent / "misc-study"
    return Path("data")


def hf_login_enabled(setting: str) -> bool:
    """MISC_STUDY_HF_LOGIN: auto means "where the Space has OAuth".

    Gradio attaches its OAuth routes as soon as a ``LoginButton`` exists; off a Space those
    routes log in the machine's own Hugging Face account (a token and the hub are needed at
    start), and without ``gradio[oauth]``'s packages the app does not start. So the button
    is built only where a sign-in can work.
    """
    value = (setting or "auto").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return os.environ.get("SYSTEM") == "spaces" and bool(os.environ.get("OAUTH_CLIENT_ID"))
