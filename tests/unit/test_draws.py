"""The draw rules: a pure function of the seed, the label and what is eligible; odds follow the
published weights over what remains; a recorded draw that the seed does not give is caught."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from domain.draws import Attempt, Weighted, commitment, eligible_of, opens, pick, recheck, uniform, unit_label, winners

SEED = bytes.fromhex("9f1c" * 16)
POOL = (Weighted("GOLD", 1), Weighted("SILVER", 3), Weighted("BRONZE", 6))


def test_the_commitment_is_the_sha256_of_the_seed_and_only_that_seed_opens_it() -> None:
    assert commitment(SEED) == hashlib.sha256(SEED).hexdigest()
    assert opens(SEED, commitment(SEED))
    assert not opens(b"\x00" * 32, commitment(SEED))


def test_a_draw_is_the_same_for_the_same_inputs_and_moves_with_each_of_them() -> None:
    label = unit_label("QY2612060000000001", 0)
    assert pick(SEED, label, 0, POOL) == pick(SEED, label, 0, POOL)
    picks = {pick(SEED, unit_label(f"QY26120600000000{n:02d}", 0), 0, POOL) for n in range(40)}
    assert picks == {"GOLD", "SILVER", "BRONZE"}


def test_draws_follow_the_published_weights_with_a_fixed_seed() -> None:
    drawn = Counter(pick(SEED, unit_label(f"QY{n:016d}", 0), 0, POOL) for n in range(20_000))
    # Expected 2,000 / 6,000 / 12,000; four standard deviations either side.
    assert 1_830 <= drawn["GOLD"] <= 2_170
    assert 5_740 <= drawn["SILVER"] <= 6_260
    assert 11_730 <= drawn["BRONZE"] <= 12_270


def test_an_item_out_of_stock_is_never_drawn_and_the_rest_keep_their_ratio() -> None:
    remaining = eligible_of(POOL, {"GOLD", "SILVER"})
    drawn = Counter(pick(SEED, unit_label(f"QY{n:016d}", 0), 0, remaining) for n in range(8_000))
    assert set(drawn) == {"GOLD", "SILVER"}
    assert 1_830 <= drawn["GOLD"] <= 2_170  # 1 : 3 of 8,000, re-normalised


def test_uniform_has_no_modulo_bias_at_a_bound_that_does_not_divide_2_to_the_64() -> None:
    bound = 3 * 2**62  # 2**64 mod bound = 2**62: a plain modulo would favour the low quarter 2:1
    low = sum(uniform(SEED, f"u{n}", 0, bound) < 2**62 for n in range(6_000))
    assert 1_800 <= low <= 2_200  # a third, not a half
    with pytest.raises(ValueError):
        uniform(SEED, "x", 0, 0)


def test_recheck_accepts_the_seeds_draws_and_catches_any_other() -> None:
    label = unit_label("QY2612060000000042", 1)
    first = pick(SEED, label, 0, POOL)
    rest = tuple(w for w in POOL if w.item != first)
    attempts = [Attempt(POOL, first), Attempt(rest, pick(SEED, label, 1, rest))]
    assert recheck(SEED, label, attempts) is None

    other = next(w.item for w in POOL if w.item != first)
    assert recheck(SEED, label, [Attempt(POOL, other)]) is not None  # not what the seed draws
    assert recheck(SEED, label, [attempts[0], Attempt(POOL, attempts[1].picked)]) is not None  # redraw kept the gone item
    assert recheck(SEED, label, []) == "no draw recorded"


def test_winners_are_distinct_and_each_entry_equally_likely() -> None:
    entries = [f"E{n}" for n in range(10)]
    assert len(set(winners(SEED, "lottery:1", entries, 4))) == 4
    assert winners(SEED, "lottery:1", entries, 4) == winners(SEED, "lottery:1", entries, 4)
    assert sorted(winners(SEED, "lottery:1", entries, 50)) == sorted(entries)
    firsts = Counter(winners(SEED, f"lottery:{n}", entries, 1)[0] for n in range(10_000))
    assert all(850 <= firsts[entry] <= 1_150 for entry in entries)
