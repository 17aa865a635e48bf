"""Global IDs and cursors: opaque to clients, one spelling per object, malformed ones refused."""

from __future__ import annotations

import base64

import pytest

from schema.errors import BadUserInput, ErrorCode
from schema.relay import decode_cursor, decode_id, encode_cursor, encode_id, page_size


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_a_product_id_is_the_base64_of_its_type_and_key() -> None:
    assert encode_id("Product", 7) == _b64("Product:7") == "UHJvZHVjdDo3"


@pytest.mark.parametrize(("type_name", "pk"), [("Product", 1), ("Sku", 42), ("Channel", 2**31 - 1)])
def test_an_id_decodes_to_the_type_and_key_it_was_made_from(type_name: str, pk: int) -> None:
    assert decode_id(encode_id(type_name, pk)) == (type_name, pk)


def test_a_cursor_decodes_to_the_position_it_was_made_from() -> None:
    assert decode_cursor(encode_cursor("Product", 9), "Product") == 9


@pytest.mark.parametrize(
    "global_id",
    [
        "",
        "not base64!",
        "UHJvZHVjdDo3\n",  # a stray newline
        "UHJv ZHVjdDo3",  # a space inside
        "UHJvZHVjdDo3==",  # extra padding
        "Ojc=",  # ":7", no type
        "Ojd=",  # ":7" again, with stray padding bits
        _b64("Product"),  # no key
        _b64("Product:"),
        _b64("Product:abc"),
        _b64("Product:0"),
        _b64("Product:-7"),
        _b64("Product:+7"),
        _b64("Product:007"),  # the same product as "Product:7" would be
        _b64("Product: 7"),
        _b64("Product:7 "),
        _b64("Product:1_000"),
        _b64("Product:٧"),  # an Arabic-Indic seven
        _b64("Product:7.0"),
        _b64("Pro duct:7"),
        _b64(f"Product:{2**31}"),  # beyond any row's key
        base64.b64encode(b"\xff\xfe:7").decode(),  # not UTF-8
        "UHJvZHVjdDo3".replace("U", "Ü"),
    ],
)
def test_a_malformed_id_is_bad_user_input(global_id: str) -> None:
    with pytest.raises(BadUserInput) as raised:
        decode_id(global_id, field="skuId")

    assert raised.value.extensions == {"code": ErrorCode.BAD_USER_INPUT.value, "field": "skuId"}


def test_an_id_that_is_not_a_string_is_bad_user_input() -> None:
    with pytest.raises(BadUserInput):
        decode_id(7)  # type: ignore[arg-type]


def test_a_malformed_cursor_is_bad_user_input_on_after() -> None:
    with pytest.raises(BadUserInput) as raised:
        decode_cursor("garbage", "Product")

    assert raised.value.extensions == {"code": "BAD_USER_INPUT", "field": "after"}


def test_an_object_id_is_not_accepted_as_a_cursor() -> None:
    with pytest.raises(BadUserInput, match="not a cursor of this list"):
        decode_cursor(encode_id("Product", 3), "Product")


def test_a_cursor_of_another_list_is_refused() -> None:
    with pytest.raises(BadUserInput, match="not a cursor of this list"):
        decode_cursor(encode_cursor("Order", 3), "Product")


@pytest.mark.parametrize(("first", "size"), [(None, 20), (0, 0), (1, 1), (100, 100)])
def test_a_page_size_within_bounds_is_taken_as_given(first: int | None, size: int) -> None:
    assert page_size(first, default=20, maximum=100) == size


@pytest.mark.parametrize("first", [-1, 101, 10_000])
def test_a_page_size_out_of_bounds_is_bad_user_input_on_first(first: int) -> None:
    with pytest.raises(BadUserInput, match="between 0 and 100") as raised:
        page_size(first, default=20, maximum=100)

    assert raised.value.extensions == {"code": "BAD_USER_INPUT", "field": "first"}
