"""Record frames are read without msgpack (their ciphertext a view, not a copy): for any
bytes, `decode_frame` must decide exactly as the general decoder does.

The general decoder is what a bytearray gets (the fast path takes only immutable
bytes); valid frames in every uint width, frames past each field's limit, and cut,
extended or altered frames are compared: the same frame, or the same error word for
word.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pmsg.errors import RemoteProtocolError
from p2pmsg.protocol.limits import MAX_COUNTER, MAX_EPOCH
from p2pmsg.protocol.wire import RecordFrame, decode_frame, encode_record

_WIDTHS = {None: 0, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
_LIMITS = {None: 0x7F, 0xCC: 0xFF, 0xCD: 0xFFFF, 0xCE: 0xFFFFFFFF, 0xCF: 2**64 - 1}


def _both_ways(body: bytes) -> tuple[object, object]:
    def decide(data: bytes | bytearray) -> object:
        try:
            return decode_frame(data)  # type: ignore[arg-type]
        except RemoteProtocolError as exc:
            return f"error: {exc}"

    return decide(body), decide(bytearray(body))


def _uint(value: int, tag: int | None) -> bytes:
    if tag is None:
        return bytes([value])
    return bytes([tag]) + value.to_bytes(_WIDTHS[tag], "big")


def _body(numbers: list[tuple[int, int | None]], sealed: bytes, bin_tag: int = 0xC6) -> bytes:
    width = {0xC4: 1, 0xC5: 2, 0xC6: 4}[bin_tag]
    head = b"\x96\x02" + b"".join(_uint(v, t) for v, t in numbers)
    return head + bytes([bin_tag]) + len(sealed).to_bytes(width, "big") + sealed


def test_a_real_record_frame_is_read_as_a_view_of_its_bytes() -> None:
    frame = encode_record(1, 7, 123456, 2, bytes(range(256)) * 800)
    body = frame[4:]  # after the length prefix
    fast, general = _both_ways(body)
    assert fast == general == RecordFrame(1, 7, 123456, 2, bytes(range(256)) * 800)
    assert isinstance(fast, RecordFrame) and isinstance(fast.sealed, memoryview)
    assert fast.sealed.obj is body


_tag = st.sampled_from(list(_WIDTHS))


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2**64 - 1), _tag), min_size=4, max_size=4),
    st.binary(max_size=64),
    st.sampled_from([0xC4, 0xC5, 0xC6]),
)
def test_any_record_form_decodes_as_msgpack_decodes_it(
    numbers: list[tuple[int, int | None]], sealed: bytes, bin_tag: int
) -> None:
    fitted = [(value % (_LIMITS[tag] + 1), tag) for value, tag in numbers]
    fast, general = _both_ways(_body(fitted, sealed, bin_tag))
    assert fast == general


@pytest.mark.parametrize(
    "numbers",
    [
        [(256, 0xCD), (0, None), (0, None), (0, None)],  # version past 255
        [(0, None), (MAX_EPOCH + 1, 0xCF), (0, None), (0, None)],
        [(0, None), (0, None), (MAX_COUNTER, 0xCF), (0, None)],
        [(0, None), (0, None), (0, None), (256, 0xCD)],  # suite past 255
    ],
)
def test_fields_at_and_past_their_limits(numbers: list[tuple[int, int | None]]) -> None:
    fast, general = _both_ways(_body(numbers, b"sealed"))
    assert fast == general


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=1, max_size=40), st.data())
def test_broken_record_frames_are_refused_as_msgpack_refuses_them(
    sealed: bytes, draw: st.DataObject
) -> None:
    body = bytearray(_body([(1, None), (3, 0xCC), (70000, 0xCE), (2, None)], sealed))
    mutation = draw.draw(st.sampled_from(["cut", "extend", "flip"]))
    if mutation == "cut":
        del body[draw.draw(st.integers(1, len(body) - 1)) :]
    elif mutation == "extend":
        body += draw.draw(st.binary(min_size=1, max_size=4))
    else:
        at = draw.draw(st.integers(0, len(body) - 1))
        body[at] = draw.draw(st.integers(0, 255))
    fast, general = _both_ways(bytes(body))
    assert fast == general
