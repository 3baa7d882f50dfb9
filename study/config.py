"""Configuration of the study platform, read from the environment once.

    MISC_STUDY_DB            SQLAlchemy URL or SQLite file path   (default ./data/study.db)
    MISC_ADMIN_PASSWORD      admin tab password; unset = admin disabled
    MISC_STUDY_STIMULI_DIR   where imported/uploaded images are stored (default ./data/stimuli)
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

    @classmethod
    def from_env(cls) -> StudyConfig:
        password = os.environ.get("MISC_ADMIN_PASSWORD") or None
        return cls(
            db_url=os.environ.get("MISC_STUDY_DB", "data/study.db"),
            admin_password=password,
            stimuli_dir=Path(os.environ.get("MISC_STUDY_STIMULI_DIR", "data/stimuli")),
        )
