"""A bundle sells only as many times as its scarcest component allows."""

from __future__ import annotations

import pytest

from domain.catalog import NO_STOCK, StockFigures, bundle_stock, channel_bundle_stock


def test_a_bundle_of_one_each_sells_as_often_as_its_scarcest_component() -> None:
    qq_coins, video_month = (
        StockFigures(available=40, reserved=3),
        StockFigures(available=500, reserved=0),
    )

    assert bundle_stock([(qq_coins, 1), (video_month, 1)]) == StockFigures(
        available=40, reserved=0, presale=0
    )


def test_a_component_used_twice_per_bundle_halves_what_it_allows() -> None:
    assert bundle_stock([(StockFigures(available=9, reserved=0), 2)]) == StockFigures(4, 0, 0)


def test_the_scarcest_component_is_found_after_dividing_by_its_quantity() -> None:
    plenty_but_used_five_times = (StockFigures(available=20, reserved=0), 5)
    fewer_but_used_once = (StockFigures(available=7, reserved=0), 1)

    assert bundle_stock([fewer_but_used_once, plenty_but_used_five_times]).available == 4


def test_a_bundle_with_a_sold_out_component_cannot_be_sold() -> None:
    assert bundle_stock([(StockFigures(100, 0), 1), (NO_STOCK, 1)]) == NO_STOCK


def test_a_bundle_with_too_few_of_a_component_for_one_set_cannot_be_sold() -> None:
    assert bundle_stock([(StockFigures(100, 0), 1), (StockFigures(2, 0), 3)]) == NO_STOCK


def test_a_bundle_with_no_components_cannot_be_sold() -> None:
    assert bundle_stock([]) == NO_STOCK


def test_component_presale_does_not_make_a_bundle_sellable() -> None:
    preorderable_but_empty = StockFigures(available=0, reserved=0, presale=50)

    assert bundle_stock([(preorderable_but_empty, 1)]) == NO_STOCK


@pytest.mark.parametrize("quantity", [0, -1])
def test_a_component_quantity_must_be_positive(quantity: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        bundle_stock([(StockFigures(10, 0), quantity)])


def test_a_channel_sells_a_bundle_only_as_often_as_its_component_quotas_allow() -> None:
    plenty = StockFigures(available=100, reserved=0)

    assert channel_bundle_stock([(plenty, 2, 1), (plenty, None, 1)], None) == StockFigures(2, 0, 0)


def test_a_component_quota_is_divided_by_what_one_bundle_uses() -> None:
    assert channel_bundle_stock([(StockFigures(100, 0), 5, 2)], None).available == 2


def test_the_bundles_own_quota_caps_it_too() -> None:
    assert channel_bundle_stock([(StockFigures(100, 0), 50, 1)], 3).available == 3


def test_the_shared_pool_still_caps_a_bundle_under_generous_quotas() -> None:
    assert channel_bundle_stock([(StockFigures(4, 0), 50, 1)], 10).available == 4


def test_a_used_up_component_quota_stops_the_bundle() -> None:
    assert channel_bundle_stock([(StockFigures(100, 0), 0, 1), (StockFigures(100, 0), None, 1)], None) == NO_STOCK
