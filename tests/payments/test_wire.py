"""The providers' protocols, side by side with what their documentation specifies."""

from __future__ import annotations

import base64
import time

import pytest

from providers import alipay_wire, keys
from providers import wechatpay_wire as wire
from providers.base import NotificationRejected

PRIVATE, PUBLIC = keys.new_pair()
API_V3_KEY = "0123456789abcdef0123456789abcdef"


def test_a_wechat_pay_request_is_signed_over_method_url_time_nonce_and_body() -> None:
    header = wire.authorization("1900000109", "SERIAL1", PRIVATE, "POST", "/v3/pay/transactions/jsapi", '{"a":1}',
                                timestamp="1554208460", nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242")
    fields = wire.parse_authorization(header)
    assert header.startswith('WECHATPAY2-SHA256-RSA2048 mchid="1900000109",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",signature="')
    assert (fields["timestamp"], fields["serial_no"]) == ("1554208460", "SERIAL1")
    signed = b'POST\n/v3/pay/transactions/jsapi\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n{"a":1}\n'
    assert keys.verify(PUBLIC, signed, fields["signature"])
    assert not keys.verify(PUBLIC, signed.replace(b"POST", b"GET"), fields["signature"])


def test_pay_sign_covers_app_id_time_nonce_and_package() -> None:
    params = {"appId": "wx1", "timeStamp": "1414561699", "nonceStr": "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
              "package": "prepay_id=wx2017", "signType": "RSA"}
    params["paySign"] = wire.pay_sign(PRIVATE, params["appId"], params["timeStamp"], params["nonceStr"], params["package"])
    assert keys.verify(PUBLIC, b"wx1\n1414561699\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\nprepay_id=wx2017\n", params["paySign"])
    assert wire.verify_pay_sign(PUBLIC, params)
    assert not wire.verify_pay_sign(PUBLIC, {**params, "package": "prepay_id=wx2018"})
    assert not wire.verify_pay_sign(PUBLIC, {**params, "signType": "MD5"})


def test_a_notification_resource_opens_only_with_its_key_nonce_and_associated_data() -> None:
    resource = wire.encrypt_resource(API_V3_KEY, b'{"out_trade_no":"QY1"}', "transaction", "transaction")
    assert wire.decrypt_resource(API_V3_KEY, resource) == b'{"out_trade_no":"QY1"}'
    for broken in ({**resource, "associated_data": "refund"}, {**resource, "nonce": "000000000000"},
                   {**resource, "algorithm": "AES_128"},
                   {**resource, "ciphertext": base64.b64encode(b"x" * 40).decode()}):
        with pytest.raises(NotificationRejected):
            wire.decrypt_resource(API_V3_KEY, broken)
    with pytest.raises(NotificationRejected):
        wire.decrypt_resource("f" * 32, resource)


def test_signed_answers_are_checked_for_key_time_and_body() -> None:
    now = time.time()
    headers = wire.signed_headers(PRIVATE, "PUB_KEY_ID_1", b"{}", now)
    wire.verify_signed(headers, b"{}", PUBLIC, "PUB_KEY_ID_1", now + 299)
    for body, key_id, at in ((b"{} ", "PUB_KEY_ID_1", now), (b"{}", "PUB_KEY_ID_2", now), (b"{}", "PUB_KEY_ID_1", now + 301),
                             (b"{}", "PUB_KEY_ID_1", now - 301)):
        with pytest.raises(NotificationRejected):
            wire.verify_signed(headers, body, PUBLIC, key_id, at)


def test_alipay_signs_the_sorted_non_empty_parameters() -> None:
    params = {"method": "alipay.trade.refund", "app_id": "2021", "sign_type": "RSA2", "notify_url": "", "charset": "utf-8"}
    assert alipay_wire.content(params) == b"app_id=2021&charset=utf-8&method=alipay.trade.refund&sign_type=RSA2"
    assert alipay_wire.content(params, exclude=("sign", "sign_type")) == b"app_id=2021&charset=utf-8&method=alipay.trade.refund"
    params["sign"] = alipay_wire.sign(PRIVATE, params)
    assert alipay_wire.verify_request(PUBLIC, params)
    assert not alipay_wire.verify_request(PUBLIC, {**params, "app_id": "2022"})


@pytest.mark.parametrize(("text", "fen"), [
    ("0.01", 1), ("9.9", 990), ("9.90", 990), ("100", 10000), ("0", 0), ("99999999999.99", 9999999999999),
    ("9.999", None), ("-1.00", None), ("01.00", None), ("1e2", None), (" 1.00", None), ("1.", None), ("", None),
    ("１.00", None),
])
def test_alipay_yuan_are_read_as_exact_fen(text: str, fen: int | None) -> None:
    assert alipay_wire.fen(text) == fen
    if fen is not None and text == alipay_wire.yuan(fen):
        assert alipay_wire.yuan(fen) == text
