from __future__ import annotations

import re
from pathlib import Path

from yunhu.codes import (
    CALL_STATE_CODES,
    ERROR_CODES,
    RET_CODES,
    call_state_code,
    error_code,
    ret_code,
)

API_DOC = Path(__file__).resolve().parents[3] / "docs" / "platform" / "common-api.txt"


def _doc_codes(first: str, last: str) -> set[int]:
    text = API_DOC.read_text()
    section = text[text.index(first) : text.index(last)]
    return {int(m) for m in re.findall(r"^(\d{3,5}) ", section, flags=re.MULTILINE)}


def test_every_ret_code_of_the_document_is_known() -> None:
    documented = _doc_codes("ret msg illustrate", "The interface request is normal")
    assert documented == {400, 500, 600, 601, 602, 603, 604}
    assert documented <= set(RET_CODES)


def test_every_status_and_call_state_code_of_the_document_is_known() -> None:
    documented = _doc_codes("code codemsg illustrate", "Extension call state callback")
    assert len(documented) == 59
    assert documented == set(ERROR_CODES) | set(CALL_STATE_CODES)
    assert all(1001 <= c <= 1218 for c in ERROR_CODES)
    assert all(10001 <= c <= 10041 for c in CALL_STATE_CODES)


def test_lookups_name_and_explain() -> None:
    assert ret_code(600).name == "token invalid"
    assert error_code(1010).description.startswith("It may be a newly added extension")
    assert call_state_code(10040).name == "caller"
    assert call_state_code(10041).name == "callee"
    assert call_state_code(10006).name == "user busy"


def test_an_unknown_code_is_kept_and_marked() -> None:
    unknown = call_state_code(10010)
    assert (unknown.code, unknown.known, unknown.description) == (
        10010,
        False,
        "unknown code 10010",
    )
    assert not ret_code(999).known
    assert not error_code(1).known
