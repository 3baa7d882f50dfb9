"""The stimulus route: the stored bytes in one immutable response, nothing else reachable."""

from __future__ import annotations

from pathlib import Path

import httpx
from study_helpers import open_study
from study_http import serve_study

from study.importer import StudyOptions
from study.serving import StimulusStore, stimulus_url


def test_route_serves_stored_bytes_immutably_and_nothing_else(tmp_path: Path) -> None:
    service, sid, config = open_study(tmp_path, StudyOptions(pairs_per_session=4, golden_every=0))
    stored = [Path(st.path) for st, _ in service.stimuli(sid)]
    (Path(config.stimuli_dir) / "notes.txt").write_text("not a stimulus")
    with serve_study(config, service) as url, httpx.Client(base_url=url, timeout=30) as http:
        for path in stored[:3]:
            r = http.get(stimulus_url(path))
            assert r.status_code == 200 and r.content == path.read_bytes()
            assert r.headers["content-type"] == "image/png"
            assert "immutable" in r.headers["cache-control"] and r.headers["etag"] == f'"{path.stem}"'
            again = http.get(stimulus_url(path), headers={"If-None-Match": r.headers["etag"]})
            assert again.status_code == 304 and not again.content
            head = http.head(stimulus_url(path))
            assert head.status_code == 200 and int(head.headers["content-length"]) == len(r.content)
        name = stored[0].name
        for bad in ("notes.txt", name.upper(), name[:-4] + ".jpg", "..%2F..%2Fstudy.db", f"..%2F{name[:2]}%2F{name}",
                    "0" * 64 + ".png"):
            assert http.get(f"study-stimuli/{bad}").status_code == 404, bad
    service.db.dispose()


def test_store_keeps_at_most_its_budget(tmp_path: Path) -> None:
    store = StimulusStore(tmp_path, max_bytes=10)
    names = [f"{c * 64}.png" for c in "abc"]
    store.keep(names[0], b"12345")
    store.keep(names[1], b"12345")
    assert store.cached(names[0]) == b"12345"  # now the most recent
    store.keep(names[2], b"123")  # over budget: the least recent (names[1]) goes
    assert store.cached(names[1]) is None and store.cached(names[0]) and store.cached(names[2])
    store.keep("d" * 64 + ".png", b"x" * 11)  # larger than the whole budget: not kept
    assert store.cached("d" * 64 + ".png") is None
    assert store.path("../x.png") is None and store.path(names[0]) == tmp_path.resolve() / "aa" / names[0]


def test_stage_links_hashed_files_by_hash_and_older_files_by_path(tmp_path: Path) -> None:
    from study.ui import _url

    name = "ab" + "0" * 62 + ".png"
    assert _url(str(tmp_path / "ab" / name)) == f"study-stimuli/{name}"
    old = tmp_path / "src0_c1.png"  # a stimulus stored by an importer before content addressing
    assert _url(str(old)) == f"gradio_api/file={old.resolve()}"
    assert _url(str(tmp_path / "cd" / name)).startswith("gradio_api/file=")  # not where its hash puts it
