"""The providers' daily statements, read: WeChat Pay's trade bill (CSV, every field after a
backtick, totals after the lines) and Alipay's business details (a zip holding a GBK CSV
between `#` comment lines). Pure functions, shared with the simulators, which write them.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable

from providers import alipay_wire
from providers.base import ProviderError, StatementLine

WECHAT_HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
                 "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,"
                 "商户数据包,手续费,费率,订单金额,申请退款金额,费率备注").split(",")
ALIPAY_HEADER = ("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,"
                 "商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,"
                 "商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注").split(",")
_REFUND_STATES = {"SUCCESS": "REFUNDED", "PROCESSING": "PROCESSING"}


def _fen(text: str, where: str) -> int:
    fen = alipay_wire.fen(text.strip().removeprefix("-"))
    if fen is None:
        raise ProviderError(f"{where}: {text!r} is not an amount")
    return fen


def read_wechat_bill(text: str) -> list[StatementLine]:
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    if not rows or [c.strip() for c in rows[0]] != WECHAT_HEADER:
        raise ProviderError("the trade bill does not start with WeChat Pay's header")
    lines: list[StatementLine] = []
    for cells in rows[1:]:
        if cells and cells[0].startswith("总交易单数"):
            break  # the totals follow the lines
        if len(cells) != len(WECHAT_HEADER):
            raise ProviderError(f"a trade bill line has {len(cells)} fields, not {len(WECHAT_HEADER)}")
        row = dict(zip(WECHAT_HEADER, (c.strip().removeprefix("`") for c in cells), strict=True))
        if row["交易状态"] == "REFUND":
            lines.append(StatementLine(row["商户退款单号"], "REFUND", _fen(row["退款金额"], "退款金额"),
                                       _REFUND_STATES.get(row["退款状态"], row["退款状态"]), row["微信订单号"]))
        elif row["交易状态"] == "SUCCESS":
            lines.append(StatementLine(row["商户订单号"], "PAYMENT", _fen(row["应结订单金额"], "应结订单金额"), "PAID",
                                       row["微信订单号"]))
    return lines


def write_wechat_bill(rows: Iterable[dict[str, str]]) -> str:
    """The bill as WeChat Pay writes it (the simulator's side); `rows` by header name."""
    rows = list(rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(WECHAT_HEADER)
    for row in rows:
        writer.writerow(["`" + row.get(name, "") for name in WECHAT_HEADER])
    writer.writerow(["总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额", "订单总金额", "申请退款总金额"])
    paid = sum(alipay_wire.fen(r["应结订单金额"]) or 0 for r in rows if r["交易状态"] == "SUCCESS")
    back = sum(alipay_wire.fen(r["退款金额"]) or 0 for r in rows if r["交易状态"] == "REFUND")
    writer.writerow(["`" + str(len(rows)), "`" + alipay_wire.yuan(paid), "`" + alipay_wire.yuan(back), "`0.00", "`0.00",
                     "`" + alipay_wire.yuan(paid), "`" + alipay_wire.yuan(back)])
    return out.getvalue()


def read_alipay_bill(archive: bytes) -> list[StatementLine]:
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
            names = [n for n in bundle.namelist() if n.endswith("业务明细.csv")]
            if len(names) != 1:
                raise ProviderError("the bill archive holds no business details")
            text = bundle.read(names[0]).decode("gbk")
    except (zipfile.BadZipFile, UnicodeDecodeError):
        raise ProviderError("the bill is not a zip of GBK CSV") from None
    body = [line for line in text.splitlines() if line and not line.startswith("#")]
    rows = list(csv.reader(body))
    if not rows or [c.strip() for c in rows[0]] != ALIPAY_HEADER:
        raise ProviderError("the business details do not start with Alipay's header")
    lines: list[StatementLine] = []
    for cells in rows[1:]:
        if len(cells) != len(ALIPAY_HEADER):
            raise ProviderError(f"a business details line has {len(cells)} fields, not {len(ALIPAY_HEADER)}")
        row = dict(zip(ALIPAY_HEADER, (c.strip() for c in cells), strict=True))
        if row["业务类型"] == "退款":
            lines.append(StatementLine(row["退款批次号/请求号"], "REFUND", _fen(row["商家实收（元）"], "商家实收"), "REFUNDED",
                                       row["支付宝交易号"]))
        elif row["业务类型"] == "交易":
            lines.append(StatementLine(row["商户订单号"], "PAYMENT", _fen(row["订单金额（元）"], "订单金额"), "PAID",
                                       row["支付宝交易号"]))
    return lines


def write_alipay_bill(account: str, day: str, rows: Iterable[dict[str, str]]) -> bytes:
    """The bill archive as Alipay publishes it (the simulator's side)."""
    out = io.StringIO()
    out.write(f"#支付宝业务明细查询\r\n#账号：[{account}]\r\n#起始日期：[{day} 00:00:00]\r\n"
              "#-----------------------------------------业务明细列表----------------------------------------\r\n")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(ALIPAY_HEADER)
    for row in rows:
        writer.writerow([row.get(name, "") + "\t" for name in ALIPAY_HEADER])
    out.write("#-----------------------------------------业务明细列表结束------------------------------------\r\n")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        compact = day.replace("-", "")
        bundle.writestr(f"{account}_{compact}_业务明细.csv", out.getvalue().encode("gbk"))
        bundle.writestr(f"{account}_{compact}_业务明细(汇总).csv", "#汇总\r\n".encode("gbk"))
    return archive.getvalue()
