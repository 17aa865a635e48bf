"""Who may read a channel's catalog: operators all, keys their own, anyone the public ones."""

from __future__ import annotations

import pytest

from domain.access import ANONYMOUS, Principal, Role, may_read_channel

ADMIN = Principal(Role.ADMIN)
TAOBAO_PARTNER = Principal(Role.PARTNER, channel="taobao")
MINI_STOREFRONT = Principal(Role.STOREFRONT, channel="mini")


@pytest.mark.parametrize("principal", [ANONYMOUS, ADMIN, TAOBAO_PARTNER, MINI_STOREFRONT])
def test_everyone_reads_a_public_storefront(principal: Principal) -> None:
    assert may_read_channel(principal, "web", public=True)


def test_an_anonymous_caller_cannot_read_a_partner_channel() -> None:
    assert not may_read_channel(ANONYMOUS, "taobao", public=False)


def test_a_partner_reads_its_own_channel() -> None:
    assert may_read_channel(TAOBAO_PARTNER, "taobao", public=False)


def test_a_partner_cannot_read_another_partners_channel() -> None:
    assert not may_read_channel(TAOBAO_PARTNER, "b2b-demo", public=False)


def test_a_storefront_key_does_not_open_partner_channels() -> None:
    assert not may_read_channel(MINI_STOREFRONT, "taobao", public=False)


def test_a_key_bound_to_no_channel_reads_no_private_channel() -> None:
    assert not may_read_channel(Principal(Role.PARTNER), "taobao", public=False)


def test_an_operator_reads_every_channel() -> None:
    assert may_read_channel(ADMIN, "taobao", public=False)
    assert may_read_channel(ADMIN, "b2b-demo", public=False)


def test_only_an_admin_principal_is_an_operator() -> None:
    assert [p.is_admin for p in (ANONYMOUS, ADMIN, TAOBAO_PARTNER, MINI_STOREFRONT)] == [
        False,
        True,
        False,
        False,
    ]
