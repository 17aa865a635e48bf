"""How a channel's quota is shared out over its slots, and laid out again when releases
leave a slot over its share: the sum always stays the quota, and no slot has room while
what is used is at or above it."""

from __future__ import annotations

from domain.slots import quota_shares, relaid_quotas


def test_a_quota_lowered_below_what_is_used_leaves_no_slot_room() -> None:
    shares = quota_shares(4, dict.fromkeys(range(8), 1), 8)

    assert shares == {0: 1, 1: 1, 2: 1, 3: 1, 4: 0, 5: 0, 6: 0, 7: 0}


def test_quotas_stand_while_no_slot_is_over_its_share() -> None:
    assert relaid_quotas([2, 2, 1, 1], [1, 0, 1, 1]) == [2, 2, 1, 1]


def test_a_unit_given_back_beside_slots_over_their_share_opens_no_room() -> None:
    # Lowered to 4 with one unit used in each of 8 slots; slot 0's unit comes back.
    quotas = relaid_quotas([1, 1, 1, 1, 0, 0, 0, 0], [0, 1, 1, 1, 1, 1, 1, 1])

    assert sum(quotas) == 4
    assert all(quota <= used for quota, used in zip(quotas, [0, 1, 1, 1, 1, 1, 1, 1], strict=True))


def test_once_used_falls_under_the_quota_every_slot_keeps_its_used_and_the_room_is_spread() -> None:
    used = [0, 0, 0, 0, 0, 1, 1, 1]

    quotas = relaid_quotas([1, 1, 1, 1, 0, 0, 0, 0], used)

    assert quotas == [1, 0, 0, 0, 0, 1, 1, 1]
    assert sum(quota - taken for quota, taken in zip(quotas, used, strict=True)) == 1
