"""A client clock of ``inf`` / ``1e400`` / NaN is refused in plain words, never an OverflowError."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from study_helpers import open_study
from study_http import serve_study

from bench.study_load import StudyClient, images_of
from db import Vote
from study.errors import VoteError
from study.service import parse_client_time

BAD = ["inf", "-inf", "1e400", "-1e400", "nan", "Infinity", "1e20", "soon"]


@pytest.mark.parametrize("value", [*BAD, float("inf"), float("nan"), 1e300, 10**400])
def test_parse_client_time_refuses_with_a_vote_error(value: object) -> None:
    with pytest.raises(VoteError, match="client time"):
        parse_client_time(value)


def test_parse_client_time_reads_epoch_text_and_iso() -> None:
    assert parse_client_time("1700000000000").year == 2023  # type: ignore[union-attr]
    assert parse_client_time(1700000000000.0) == parse_client_time("1700000000000")
    assert parse_client_time("2026-12-02T06:00:00Z").hour == 6  # type: ignore[union-attr]
    assert parse_client_time("") is None


async def _votes(url: str, sid: int) -> list[list]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        client = StudyClient(http)
        outs = [await client.start(sid)]
        for value in [*BAD, "1700000000000"]:
            outs.append(await client.vote("left", value))
        return outs


def test_vote_endpoint_with_an_infinite_client_time_says_so_and_stores_nothing(tmp_path: Path) -> None:
    service, sid, config = open_study(tmp_path)
    with serve_study(config, service) as url:
        outs = asyncio.run(_votes(url, sid))  # an error event would raise CallError here
    first = images_of(outs[0])
    for out in outs[1:-1]:  # refused: the same pair again, and a message naming the client time
        assert images_of(out) == first
        assert any(isinstance(o, str) and "client time" in o for o in out)
    assert images_of(outs[-1]) != first  # the good one was taken
    with service.db.read() as s:
        assert s.scalar(select(func.count(Vote.id))) == 1
    service.db.dispose()
