"""Demo data: enough brands, products, SKUs, channels and codes for every README query."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.campaigns import Bearer, check_public_code, code_digest
from domain.catalog import SkuKind
from domain.limits import Period
from domain.memberships import Period as MembershipPeriod
from domain.risk import VIRTUAL_OPERATOR_PREFIXES, Decision, RuleKind
from domain.slots import DEFAULT_SLOTS
from models import (
    BlindBoxItem,
    Brand,
    BundleItem,
    Campaign,
    CampaignSku,
    CardCode,
    Category,
    Channel,
    ChannelKind,
    CouponCode,
    Listing,
    MembershipPlan,
    Product,
    PurchaseLimit,
    RiskRule,
    SettlementCycle,
    Sku,
    SkuSupplier,
    StockLevel,
    Supplier,
)
from models.base import utcnow
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.draws.seeds import open_round
from services.inventory.slots import laid_out

log = logging.getLogger("quanyi.demo")

CHANNELS = [
    ("web", "Quanyi 官网", ChannelKind.OWN_SITE, 0, SettlementCycle.MONTHLY, True),
    ("mini", "微信小程序", ChannelKind.MINI_PROGRAM, 60, SettlementCycle.MONTHLY, True),
    ("h5", "H5 商城", ChannelKind.H5, 0, SettlementCycle.MONTHLY, True),
    ("taobao", "淘宝旗舰店", ChannelKind.MARKETPLACE, 500, SettlementCycle.WEEKLY, False),
    ("b2b-demo", "B2B 分销示例", ChannelKind.B2B, 200, SettlementCycle.MONTHLY, False),
]
BRANDS = [("tencent", "腾讯"), ("netease", "网易"), ("iqiyi", "爱奇艺"), ("mihoyo", "米哈游"), ("steam", "Steam")]
CATEGORIES = [
    ("game-card", "游戏点卡"),
    ("video-vip", "视频会员"),
    ("platform-card", "平台充值卡"),
    ("gift-pack", "权益礼包"),
]
SUPPLIERS = [("sim-fast", "模拟供应商 A"), ("sim-backup", "模拟供应商 B")]


@dataclass(frozen=True)
class DemoSku:
    code: str
    name: str
    kind: SkuKind
    face: int  # fen
    cost: int
    price: int
    codes: int = 0  # card codes (or serials) to create
    on_hand: int = 0  # counter stock of top-ups
    uses: int = 1
    presale_cap: int = 0
    parts: tuple[tuple[str, int], ...] = ()


# (slug, name, brand, category, description, SKUs)
PRODUCTS: list[tuple[str, str, str, str, str, list[DemoSku]]] = [
    ("qq-coins", "Q币卡", "tencent", "platform-card", "腾讯 Q 币充值卡密，官方渠道。", [
        DemoSku("QB-10", "Q币 10 元", SkuKind.CARD_CODE, 1000, 950, 990, codes=60),
        DemoSku("QB-30", "Q币 30 元", SkuKind.CARD_CODE, 3000, 2850, 2970, codes=40),
        DemoSku("QB-100", "Q币 100 元", SkuKind.CARD_CODE, 10000, 9500, 9880, codes=20, presale_cap=50),
    ]),
    ("tencent-video-vip", "腾讯视频 VIP", "tencent", "video-vip", "腾讯视频会员直充到 QQ 或微信账号。", [
        DemoSku("TXV-MONTH", "腾讯视频 VIP 月卡直充", SkuKind.DIRECT_RECHARGE, 3000, 1800, 2500, on_hand=500),
        DemoSku("TXV-SEASON", "腾讯视频 VIP 季卡直充", SkuKind.DIRECT_RECHARGE, 6800, 4600, 5800, on_hand=200),
        DemoSku("TXV-YEAR", "腾讯视频 VIP 年卡直充", SkuKind.DIRECT_RECHARGE, 25800, 16800, 21800, on_hand=80),
    ]),
    ("iqiyi-vip", "爱奇艺黄金会员", "iqiyi", "video-vip", "爱奇艺黄金会员，卡密或直充。", [
        DemoSku("IQY-MONTH-CODE", "爱奇艺月卡卡密", SkuKind.CARD_CODE, 3000, 1900, 2450, codes=50),
        DemoSku("IQY-MONTH", "爱奇艺月卡直充", SkuKind.DIRECT_RECHARGE, 3000, 1900, 2500, on_hand=300),
        DemoSku("IQY-YEAR", "爱奇艺年卡直充", SkuKind.DIRECT_RECHARGE, 24800, 16000, 19800, on_hand=60),
    ]),
    ("netease-one-card", "网易一卡通", "netease", "game-card", "网易游戏通用点卡，梦幻西游、大话西游等可用。", [
        DemoSku("NE-15", "网易一卡通 15 元", SkuKind.CARD_CODE, 1500, 1420, 1480, codes=40),
        DemoSku("NE-50", "网易一卡通 50 元", SkuKind.CARD_CODE, 5000, 4750, 4930, codes=30),
    ]),
    ("genshin-crystals", "原神创世结晶", "mihoyo", "game-card", "原神游戏账号直充创世结晶。", [
        DemoSku("GS-60", "60 创世结晶直充", SkuKind.DIRECT_RECHARGE, 600, 540, 600, on_hand=1000),
        DemoSku("GS-330", "300+30 创世结晶直充", SkuKind.DIRECT_RECHARGE, 3000, 2700, 2980, on_hand=400),
        DemoSku("GS-WELKIN", "空月祝福", SkuKind.DIRECT_RECHARGE, 3000, 2650, 2980, on_hand=400),
    ]),
    ("steam-wallet", "Steam 钱包充值码", "steam", "platform-card", "Steam 国区钱包充值码。", [
        DemoSku("STEAM-50", "Steam 钱包 50 元", SkuKind.CARD_CODE, 5000, 4800, 4990, codes=30),
        DemoSku("STEAM-100", "Steam 钱包 100 元", SkuKind.CARD_CODE, 10000, 9600, 9950, codes=20),
    ]),
    ("office-license", "正版软件序列号", "steam", "platform-card", "多次激活的序列号，每次激活消耗一次。", [
        DemoSku("SN-5USES", "序列号（5 次激活）", SkuKind.SERIAL, 9900, 3000, 6900, codes=10, uses=5),
        DemoSku("SN-1USE", "序列号（单次激活）", SkuKind.SERIAL, 1990, 600, 1590, codes=20, uses=1),
    ]),
    ("gamer-gift-pack", "玩家权益礼包", "tencent", "gift-pack", "Q币 30 元 + 腾讯视频月卡，一次到手。", [
        DemoSku("PACK-GAMER", "玩家礼包", SkuKind.BUNDLE, 6000, 4650, 5200,
                parts=(("QB-30", 1), ("TXV-MONTH", 1))),
        DemoSku("PACK-DOUBLE-VIP", "双会员礼包", SkuKind.BUNDLE, 6000, 3700, 4800,
                parts=(("TXV-MONTH", 1), ("IQY-MONTH", 1))),
    ]),
    ("netease-cloud-music", "网易云音乐黑胶 VIP", "netease", "video-vip", "网易云音乐黑胶 VIP 直充。", [
        DemoSku("NCM-MONTH", "黑胶 VIP 月卡直充", SkuKind.DIRECT_RECHARGE, 1800, 1100, 1500, on_hand=300),
    ]),
]


# A blind box (盲盒, README "Blind boxes"): one Steam wallet code drawn at reservation, its odds
# published as weights. What it holds is a product listed on no channel: the box is the only way
# to buy its items, so their stock is no public hint of what a box holds.
MYSTERY_BOX = DemoSku("BOX-STEAM", "Steam 钱包盲盒", SkuKind.BLIND_BOX, 5000, 3400, 3990)
MYSTERY_PRODUCT = ("steam-mystery-box", "Steam 钱包盲盒", "steam", "gift-pack",
                   "随机一张 Steam 钱包充值码：20 / 50 / 100 元，概率按公示权重。")
MYSTERY_ITEMS = ("steam-mystery-box-items", "盲盒奖池（不单独出售）", [
    (DemoSku("BOX-STEAM-100", "Steam 钱包 100 元（盲盒）", SkuKind.CARD_CODE, 10000, 9600, 10000, codes=5), 1),
    (DemoSku("BOX-STEAM-50", "Steam 钱包 50 元（盲盒）", SkuKind.CARD_CODE, 5000, 4800, 5000, codes=15), 3),
    (DemoSku("BOX-STEAM-20", "Steam 钱包 20 元（盲盒）", SkuKind.CARD_CODE, 2000, 1920, 2000, codes=40), 6),
])

# A flash sale (秒杀): one per buyer a day on the public storefronts, a buyer being each of
# the phone, e-mail, device and account an order names (README "Purchase limits").
FLASH_SALE = ("STEAM-100", 1, Period.DAY)
# A welcome coupon on the web shop (README "Campaigns and coupons"): 5.00 off a video month,
# once per buyer, for the first 1,000 buyers within 5,000.00, paid for by the platform.
WELCOME = ("新人立减 5 元", "web", "WELCOME5", ("TXV-MONTH", "IQY-MONTH"), 500, 1000, 1, 500_000)

# A membership (会员订阅, README "Membership subscriptions"): the music VIP month, renewed
# every month through the buyer's payment agreement, never charging more than its face value.
MEMBERSHIP = ("NCM-MONTH", MembershipPeriod.MONTH)

# Starting rules: none tight enough to trouble a demo or a test run from one address.
RISK_RULES = [
    ("virtual-operator phone", RuleKind.PHONE_SEGMENT, {"prefixes": sorted(VIRTUAL_OPERATOR_PREFIXES)}, Decision.REVIEW, 50),
    ("blacklisted device", RuleKind.BLACKLIST, {"dimension": "DEVICE", "values": ["demo-banned-device"]}, Decision.REJECT, 100),
    ("blacklisted phone", RuleKind.BLACKLIST, {"dimension": "PHONE", "values": ["13000000000"]}, Decision.REJECT, 100),
]


async def seed_demo(db: Database, box: SecretBox) -> bool:
    """Load the demo data once; returns False when the catalog already has products."""
    async with db.sessions() as session, session.begin():
        if (await session.scalar(select(func.count()).select_from(Product))) or 0:
            return False
        await _seed(session, box)
    log.debug("demo data loaded")  # the command that loaded it says so
    return True


async def _seed(session: AsyncSession, box: SecretBox) -> None:
    channels = [
        Channel(code=c, name=n, kind=k, commission_bp=bp, settlement_cycle=cycle, public=public)
        for c, n, k, bp, cycle, public in CHANNELS
    ]
    brands = {code: Brand(code=code, name=name) for code, name in BRANDS}
    categories = {code: Category(code=code, name=name) for code, name in CATEGORIES}
    suppliers = [Supplier(code=code, name=name) for code, name in SUPPLIERS]
    session.add_all([*channels, *brands.values(), *categories.values(), *suppliers])
    session.add_all(
        RiskRule(name=name, kind=kind, parameters=params, action=action, score=score, enabled=True)
        for name, kind, params, action, score in RISK_RULES
    )
    await session.flush()

    skus: dict[str, Sku] = {}
    pending_parts: list[tuple[Sku, tuple[tuple[str, int], ...]]] = []
    for position, (slug, name, brand, category, description, demo_skus) in enumerate(PRODUCTS, start=1):
        product = Product(
            slug=slug, name=name, description=description,
            brand_id=brands[brand].id, category_id=categories[category].id,
        )
        session.add(product)
        await session.flush()
        # A product sells only where it is listed: the demo lists each one on every channel.
        session.add_all(Listing(channel_id=c.id, product_id=product.id, position=position) for c in channels)
        for spec in demo_skus:
            sku = Sku(
                product_id=product.id, code=spec.code, name=spec.name, kind=spec.kind,
                face_value_fen=spec.face, supplier_cost_fen=spec.cost, base_price_fen=spec.price,
                presale_cap=spec.presale_cap,
            )
            session.add(sku)
            await session.flush()
            skus[spec.code] = sku
            _stock(session, box, sku, spec)
            if spec.parts:
                pending_parts.append((sku, spec.parts))
            if spec.kind is not SkuKind.BUNDLE:
                for priority, supplier in enumerate(suppliers, start=1):
                    session.add(SkuSupplier(sku_id=sku.id, supplier_id=supplier.id, priority=priority))
    for bundle, parts in pending_parts:
        for code, quantity in parts:
            session.add(BundleItem(bundle_sku_id=bundle.id, component_sku_id=skus[code].id, quantity=quantity))
    await _mystery_box(session, box, channels, brands, categories, suppliers, len(PRODUCTS) + 1)
    name, channel_code, coupon, sku_codes, off, uses, per_buyer_uses, budget = WELCOME
    welcome = Campaign(
        name=name, channel_id=next(c.id for c in channels if c.code == channel_code), code=coupon,
        amount_off_fen=off, max_redemptions=uses, per_buyer_limit=per_buyer_uses, budget_fen=budget,
        bearer=Bearer.PLATFORM, subsidised=False, created_by="demo",
    )
    session.add(welcome)
    await session.flush()
    session.add_all(CampaignSku(campaign_id=welcome.id, sku_id=skus[code].id) for code in sku_codes)
    session.add(CouponCode(campaign_id=welcome.id, digest=code_digest(check_public_code(coupon)), single_use=False))
    code, per_buyer, period = FLASH_SALE
    session.add_all(
        PurchaseLimit(channel_id=channel.id, sku_id=skus[code].id, per_order=None, per_buyer=per_buyer,
                      period=period, updated_by="demo")
        for channel in channels
        if channel.public
    )
    code, renews = MEMBERSHIP
    session.add(MembershipPlan(sku_id=skus[code].id, period=renews, enabled=True, cap_fen=skus[code].face_value_fen,
                               updated_at=utcnow(), updated_by="demo"))


async def _mystery_box(
    session: AsyncSession, box: SecretBox, channels: list[Channel], brands: dict[str, Brand],
    categories: dict[str, Category], suppliers: list[Supplier], position: int,
) -> None:
    """The blind box, listed everywhere; its items, on a product listed nowhere; its pool and
    first round (the seed's commitment is public before the first sale)."""
    slug, name, brand, category, description = MYSTERY_PRODUCT
    listed = Product(slug=slug, name=name, description=description, brand_id=brands[brand].id,
                     category_id=categories[category].id)
    slug, name, items = MYSTERY_ITEMS
    hidden = Product(slug=slug, name=name, description="", brand_id=brands[brand].id,
                     category_id=categories[category].id)
    session.add_all([listed, hidden])
    await session.flush()
    session.add_all(Listing(channel_id=c.id, product_id=listed.id, position=position) for c in channels)
    spec = MYSTERY_BOX
    mystery = Sku(product_id=listed.id, code=spec.code, name=spec.name, kind=spec.kind, face_value_fen=spec.face,
                  supplier_cost_fen=spec.cost, base_price_fen=spec.price)
    pool = [(Sku(product_id=hidden.id, code=item.code, name=item.name, kind=item.kind, face_value_fen=item.face,
                 supplier_cost_fen=item.cost, base_price_fen=item.price), item, weight) for item, weight in items]
    session.add_all([mystery, *(sku for sku, _, _ in pool)])
    await session.flush()
    for position_in_pool, (sku, item, weight) in enumerate(pool):
        _stock(session, box, sku, item)
        session.add_all(SkuSupplier(sku_id=sku.id, supplier_id=s.id, priority=p) for p, s in enumerate(suppliers, start=1))
        session.add(BlindBoxItem(box_sku_id=mystery.id, item_sku_id=sku.id, weight=weight, position=position_in_pool))
    await open_round(session, box, mystery.id, utcnow())


def _stock(session: AsyncSession, box: SecretBox, sku: Sku, spec: DemoSku) -> None:
    if spec.kind is SkuKind.DIRECT_RECHARGE:
        session.add_all(StockLevel(**row) for row in laid_out(sku.id, spec.on_hand, DEFAULT_SLOTS))
    context = str(sku.id).encode()
    for n in range(spec.codes):
        secret = "-".join(secrets.token_hex(2).upper() for _ in range(4))
        session.add(
            CardCode(
                sku_id=sku.id,
                secret_ciphertext=box.seal(secret, context=context),
                secret_digest=box.digest(secret),
                number=f"{spec.code}-{n + 1:06d}",
                uses_left=spec.uses,
            )
        )
