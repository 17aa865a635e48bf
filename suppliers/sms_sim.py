"""A simulated Aliyun SMS service (SendSms) for tests and demos: it checks what Aliyun checks.

The access key and its secret, the signature over the request (suppliers/aliyun_sms_wire.py states the
scheme), a timestamp within 15 minutes, a nonce used once, an approved sign name, an
approved template and every parameter the template names; it answers in Aliyun's codes and keeps
what it accepted in `sent`.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from suppliers.aliyun_sms_wire import signature

CLOCK_SKEW = timedelta(minutes=15)
_VARIABLE = re.compile(r"\$\{(\w+)\}")


@dataclass
class Sent:
    phone: str
    sign_name: str
    template_code: str
    params: dict[str, str]
    text: str


@dataclass
class SmsSimulator:
    key_id: str
    secret: str
    sign_names: set[str]
    templates: dict[str, str]  # code -> text with ${variables}
    sent: list[Sent] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/", self.send_sms, methods=["GET", "POST"])])

    async def send_sms(self, request: Request) -> JSONResponse:
        if request.method == "GET":
            params = dict(request.query_params)
        else:  # application/x-www-form-urlencoded, as Aliyun's SDKs post it
            params = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        code, message = self._check(params, request.method)
        if code != "OK":
            return JSONResponse({"Code": code, "Message": message, "RequestId": "sim"}, status_code=400 if
                                code.startswith(("Signature", "InvalidAccessKeyId", "InvalidTimeStamp")) else 200)
        template = self.templates[params["TemplateCode"]]
        values = json.loads(params["TemplateParam"])
        text = f"【{params['SignName']}】" + _VARIABLE.sub(lambda m: str(values[m.group(1)]), template)
        self.sent.append(Sent(params["PhoneNumbers"], params["SignName"], params["TemplateCode"], values, text))
        return JSONResponse({"Code": "OK", "Message": "OK", "BizId": f"sim-{len(self.sent)}", "RequestId": "sim"})

    def _check(self, params: dict[str, str], method: str) -> tuple[str, str]:
        given = params.pop("Signature", "")
        if params.get("AccessKeyId") != self.key_id:
            return "InvalidAccessKeyId.NotFound", "Specified access key is not found."
        if params.get("SignatureMethod") != "HMAC-SHA1" or params.get("SignatureVersion") != "1.0":
            return "SignatureDoesNotMatch", "unsupported signature method"
        if given != signature(params, self.secret, method):
            return "SignatureDoesNotMatch", "Specified signature is not matched with our calculation."
        try:
            at = datetime.strptime(params.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted."
        if abs(datetime.now(UTC) - at) > CLOCK_SKEW:
            return "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
        nonce = params.get("SignatureNonce", "")
        if not nonce or nonce in self.nonces:
            return "SignatureNonceUsed", "Specified signature nonce was used already."
        self.nonces.add(nonce)
        if params.get("Action") != "SendSms":
            return "InvalidAction.NotFound", "Specified api is not found."
        if not re.fullmatch(r"1[3-9][0-9]{9}", params.get("PhoneNumbers", "")):
            return "isv.MOBILE_NUMBER_ILLEGAL", "invalid mobile number"
        if params.get("SignName") not in self.sign_names:
            return "isv.SMS_SIGNATURE_ILLEGAL", "the sign name is not approved"
        template = self.templates.get(params.get("TemplateCode", ""))
        if template is None:
            return "isv.SMS_TEMPLATE_ILLEGAL", "the template is not approved"
        try:
            values = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            return "isv.INVALID_JSON_PARAM", "TemplateParam is not JSON"
        missing = [name for name in _VARIABLE.findall(template) if not isinstance(values, dict) or name not in values]
        if missing:
            return "isv.TEMPLATE_MISSING_PARAMETERS", f"missing template parameters: {', '.join(missing)}"
        return "OK", "OK"
