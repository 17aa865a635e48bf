"""Labelled order attempts to train and measure risk scoring on: honest buyers and the attacks this market sees.

    python bench/fraud_data.py --out attempts.jsonl [--seed 7] [--buyers 12000] [--days 14]

Each line is one attempt as the gateway's risk check sees it (channel, time, amount, units per
SKU, client address, device, phone, e-mail, recharge account, coupon) with its label (`fraud`)
and its kind. Seeded: the same seed and sizes give the same file, byte for byte.

Honest buyers order a few times over the days, in waking hours (Beijing time), mostly one unit,
from a home or mobile address of their own; some share an office or campus address, some have
no device ID (H5), a few have numbers in virtual-operator segments, and many buy at the flash
sale on the evening of the 10th day. The attacks:

- bot farms: batches of accounts on virtual-operator segments (not all), a few data-centre
  addresses, emulated devices, bursts at night, resaleable mid-to-high value cards, coupons;
- device farms: a handful of devices behind dozens of new accounts each, rotating proxy addresses;
- coupon harvesting: a new account and a new device for every order, a small pool of addresses,
  the cheapest SKUs, always a coupon;
- card testing: a few accounts trying small amounts again and again within minutes;
- scalping: at the flash sale, accounts buying the most units allowed, several accounts per
  device, a few addresses.

Attackers are not all careless: some rotate addresses, pace themselves or use real segments,
which is what rules alone miss.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

START = datetime(2026, 6, 1, tzinfo=UTC) - timedelta(hours=8)  # midnight, Beijing time
CHANNELS = ("web", "mini", "h5", "taobao")
CHANNEL_WEIGHTS = (30, 35, 20, 15)
PRICES = {  # SKU id -> price in fen
    1: 600, 2: 1000, 3: 1500, 4: 1800, 5: 2500, 6: 3000, 7: 5000, 8: 6800, 9: 10000, 10: 19800, 11: 32800, 12: 64800,
}
SMALL = (101, 102, 103)  # 1, 2 and 5 yuan test cards
PRICES.update({101: 100, 102: 200, 103: 500})
HOT_SKU = 9  # the flash sale's SKU (100 yuan)
SALE_AT = timedelta(days=10, hours=20)  # 20:00 Beijing time on the 11th day
REAL_SEGMENTS = ("134", "135", "136", "137", "138", "139", "150", "151", "158", "159", "186", "187", "188", "189", "199")
VIRTUAL_SEGMENTS = ("162", "165", "167", "170", "171")


class World:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.serial = 0

    def ident(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial:07d}"

    def phone(self, segments: tuple[str, ...]) -> str:
        return self.r.choice(segments) + f"{self.r.randrange(10**8):08d}"

    def residential_ip(self) -> str:
        r = self.r
        return f"{r.choice((58, 60, 112, 113, 117, 119, 180, 183, 220, 223))}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"

    def datacenter_ip(self) -> str:
        r = self.r
        return f"{r.choice((47, 101, 106, 118, 139))}.{r.randrange(90, 110)}.{r.randrange(256)}.{r.randrange(1, 255)}"

    def waking(self, day: int) -> datetime:
        hour = self.r.choices(range(24), weights=(1, 1, 1, 1, 1, 1, 2, 4, 6, 7, 8, 8, 9, 8, 7, 7, 8, 9, 10, 12, 13, 12, 9, 4))[0]
        return START + timedelta(days=day, hours=hour, seconds=self.r.randrange(3600))

    def night(self, day: int) -> datetime:
        return START + timedelta(days=day, hours=self.r.choice((0, 1, 2, 3, 4, 5, 23)), seconds=self.r.randrange(3600))


def attempt(at: datetime, *, channel: str, sku: int, units: int, ip: str, device: str | None, phone: str | None,
            email: str | None, account: str, coupon: str | None, fraud: bool, kind: str) -> dict[str, Any]:
    amount = PRICES[sku] * units
    return {
        "at": at.isoformat(), "channel": channel, "amount": f"{amount // 100}.{amount % 100:02d}",
        "quantities": {str(sku): units}, "clientIp": ip, "deviceId": device, "phone": phone, "email": email,
        "account": account, "coupon": coupon, "fraud": fraud, "kind": kind,
    }


def honest(w: World, buyers: int, days: int) -> Iterator[dict[str, Any]]:
    r = w.r
    offices = [w.residential_ip() for _ in range(max(1, buyers // 60))]
    for _ in range(buyers):
        phone = w.phone(VIRTUAL_SEGMENTS if r.random() < 0.008 else REAL_SEGMENTS) if r.random() < 0.85 else None
        email = None if phone and r.random() < 0.7 else f"{w.ident('u')}@mail.example"
        account = phone or email
        device = w.ident("dev-") if r.random() < 0.8 else None
        home = r.choice(offices) if r.random() < 0.08 else w.residential_ip()
        channel = r.choices(CHANNELS, weights=CHANNEL_WEIGHTS)[0]
        favourite = r.choice(list(PRICES)[:12])
        orders = 1 + min(int(r.expovariate(0.7)), 12)
        for _ in range(orders):
            at = w.waking(r.randrange(days))
            sku = favourite if r.random() < 0.6 else r.choice(list(PRICES)[:12])
            ip = home if r.random() < 0.7 else w.residential_ip()
            units = r.choices((1, 2, 3), weights=(85, 12, 3))[0]
            coupon = "WELCOME" if r.random() < 0.15 else None
            yield attempt(at, channel=channel, sku=sku, units=units, ip=ip, device=device, phone=phone, email=email,
                          account=account, coupon=coupon, fraud=False, kind="honest")
            if r.random() < 0.15:  # a second item a few minutes later
                yield attempt(at + timedelta(minutes=r.randrange(1, 20)), channel=channel, sku=r.choice(list(PRICES)[:12]),
                              units=1, ip=ip, device=device, phone=phone, email=email, account=account, coupon=None,
                              fraud=False, kind="honest")
        if days > 10 and r.random() < 0.12:  # the flash sale
            at = START + SALE_AT + timedelta(seconds=r.expovariate(1 / 90))
            yield attempt(at, channel=channel, sku=HOT_SKU, units=1, ip=home, device=device, phone=phone, email=email,
                          account=account, coupon=None, fraud=False, kind="honest")


def bot_farm(w: World, days: int) -> Iterator[dict[str, Any]]:
    r = w.r
    careful = r.random() < 0.4
    ips = [w.datacenter_ip() for _ in range(r.randint(3, 10) * (4 if careful else 1))]
    day = r.randrange(days)
    segments = REAL_SEGMENTS if careful else VIRTUAL_SEGMENTS
    for _ in range(r.randint(40, 160)):
        phone = w.phone(segments)
        at = w.night(day) if r.random() < 0.7 else w.waking(day)
        yield attempt(at, channel=r.choice(CHANNELS[:3]), sku=r.choice((9, 10, 11)), units=1, ip=r.choice(ips),
                      device=w.ident("emu-") if r.random() < 0.6 else None, phone=phone, email=None, account=phone,
                      coupon="WELCOME" if r.random() < 0.5 else None, fraud=True, kind="bot_farm")


def device_farm(w: World, days: int) -> Iterator[dict[str, Any]]:
    r = w.r
    devices = [w.ident("dev-") for _ in range(r.randint(1, 5))]
    day = r.randrange(days)
    for device in devices:
        for _ in range(r.randint(8, 40)):
            phone = w.phone(REAL_SEGMENTS)
            yield attempt(w.waking(day), channel=r.choice(CHANNELS[:3]), sku=r.choice((2, 3, 5, 7)), units=1,
                          ip=w.residential_ip(), device=device, phone=phone, email=None, account=phone,
                          coupon="WELCOME" if r.random() < 0.8 else None, fraud=True, kind="device_farm")


def coupon_harvest(w: World, days: int) -> Iterator[dict[str, Any]]:
    r = w.r
    ips = [w.residential_ip() for _ in range(r.randint(10, 30))]
    day = r.randrange(days)
    for _ in range(r.randint(30, 120)):
        phone = w.phone(REAL_SEGMENTS)
        yield attempt(w.waking(day), channel=r.choice(CHANNELS[:3]), sku=r.choice((1, 2)), units=1, ip=r.choice(ips),
                      device=w.ident("dev-"), phone=phone, email=None, account=phone, coupon="WELCOME",
                      fraud=True, kind="coupon_harvest")


def card_testing(w: World, days: int) -> Iterator[dict[str, Any]]:
    r = w.r
    day = r.randrange(days)
    for _ in range(r.randint(1, 4)):
        account = f"{w.ident('t')}@mail.example"
        device, ip = w.ident("dev-"), (w.datacenter_ip() if r.random() < 0.5 else w.residential_ip())
        at = w.waking(day)
        for _ in range(r.randint(4, 25)):
            at += timedelta(seconds=r.randint(5, 120))
            yield attempt(at, channel=r.choice(CHANNELS[:3]), sku=r.choice(SMALL), units=1, ip=ip, device=device,
                          phone=None, email=account, account=account, coupon=None, fraud=True, kind="card_testing")


def scalping(w: World) -> Iterator[dict[str, Any]]:
    r = w.r
    ips = [w.residential_ip() for _ in range(r.randint(1, 4))]
    for _ in range(r.randint(2, 6)):
        device = w.ident("dev-")
        for _ in range(r.randint(3, 12)):
            phone = w.phone(REAL_SEGMENTS)
            at = START + SALE_AT + timedelta(seconds=r.uniform(0, 8))
            yield attempt(at, channel=r.choice(CHANNELS[:3]), sku=HOT_SKU, units=r.randint(2, 5), ip=r.choice(ips),
                          device=device, phone=phone, email=None, account=phone, coupon=None, fraud=True, kind="scalping")


def generate(seed: int = 7, buyers: int = 12_000, days: int = 14) -> list[dict[str, Any]]:
    """Every attempt, in time order (ties by their content, so the order is the seed's alone)."""
    w = World(seed)
    found = list(honest(w, buyers, days))
    campaigns = max(1, buyers // 1000)
    for _ in range(campaigns):
        found += bot_farm(w, days)
        found += device_farm(w, days)
        found += coupon_harvest(w, days)
        found += card_testing(w, days)
    if days > 10:
        for _ in range(campaigns):
            found += scalping(w)
    found.sort(key=lambda a: (a["at"], json.dumps(a, sort_keys=True)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--buyers", type=int, default=12_000)
    parser.add_argument("--days", type=int, default=14)
    args = parser.parse_args()
    attempts = generate(args.seed, args.buyers, args.days)
    with args.out.open("w", encoding="utf-8") as out:
        for item in attempts:
            out.write(json.dumps(item, ensure_ascii=False, sort_keys=True) + "\n")
    fraud = sum(a["fraud"] for a in attempts)
    print(f"{len(attempts):,} attempts, {fraud:,} fraudulent ({fraud / len(attempts):.1%}) -> {args.out}")


if __name__ == "__main__":
    main()
