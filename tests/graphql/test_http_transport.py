"""Clients talk GraphQL over HTTP to /graphql, as the GraphQL-over-HTTP spec and our contract say.

Three kinds of answer: a request that is not well-formed gets its 4xx status whatever
the media type; a well-formed request that cannot run (parse, validation, operation,
variables) gets 400 with application/graphql-response+json and 200 with application/json;
an operation that ran gets 200, field errors beside the data.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from config import Limits, Settings
from gateway import create_app
from services.catalog import reads
from tests.support import without_cost
from transport import graphql_http

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"

PRODUCTS = """
query Products($channel: String!, $first: Int) {
  products(channel: $channel, first: $first) { edges { node { name } } }
}
"""
TWO_WEB_PRODUCTS = {
    "data": {
        "products": {"edges": [{"node": {"name": "Q币卡"}}, {"node": {"name": "腾讯视频 VIP"}}]}
    }
}
TYPENAME = "{ __typename }"
NODE = '{ node(id: "not-an-id") { id } }'
MUTATION = "mutation { __typename }"
INVALID_MUTATION = "mutation { noSuchMutation }"

# A gateway with small limits, so that over-limit documents stay readable.
SMALL_LIMITS = Limits(max_depth=3, max_aliases=2, max_tokens=40, max_body_bytes=1024)
TOO_DEEP = '{ products(channel: "web") { edges { node { brand { name } } } } }'
TOO_MANY_ALIASES = "{ a: __typename b: __typename c: __typename }"
AT_THE_ALIAS_LIMIT = "{ a: __typename b: __typename }"
TOO_MANY_TOKENS = "{ " + "__typename " * 40 + "}"

ERROR_CODES = {
    "BAD_USER_INPUT",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "RATE_LIMITED",
    "GRAPHQL_VALIDATION_FAILED",
    "GRAPHQL_PARSE_FAILED",
    "INTERNAL_SERVER_ERROR",
}


def error(
    message: str, code: str = "BAD_USER_INPUT", *, field: str | None = None, **members: Any
) -> dict[str, Any]:
    """One entry of `errors`: `members` are locations and path, `field` goes in extensions."""
    extensions = {"code": code} if field is None else {"code": code, "field": field}
    return {"message": message, **members, "extensions": extensions}


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"]


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as client:
            yield client


@pytest.fixture(scope="module")
async def limited(settings: Settings, db: object) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(replace(settings, limits=SMALL_LIMITS)) as client:
        yield client


@pytest.fixture(scope="module")
async def debugging(settings: Settings, db: object) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(replace(settings, debug=True)) as client:
        yield client


async def post(
    client: httpx.AsyncClient,
    body: Any,
    accept: str = GRAPHQL_RESPONSE_JSON,
    **headers: str,
) -> httpx.Response:
    return await client.post("/graphql", json=body, headers={"accept": accept, **headers})


# --- transport and media types ---


async def test_post_runs_a_query_and_answers_in_graphql_response_json(
    http: httpx.AsyncClient,
) -> None:
    response = await post(http, {"query": PRODUCTS, "variables": {"channel": "web", "first": 2}})

    assert (response.status_code, media_type(response)) == (
        200,
        f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8",
    )
    assert without_cost(response.json()) == TWO_WEB_PRODUCTS


async def test_get_runs_a_query_with_url_encoded_json_variables(http: httpx.AsyncClient) -> None:
    params = {"query": PRODUCTS, "variables": json.dumps({"channel": "web", "first": 2})}

    response = await http.get("/graphql", params=params, headers={"accept": GRAPHQL_RESPONSE_JSON})

    assert (response.status_code, media_type(response)) == (
        200,
        f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8",
    )
    assert without_cost(response.json()) == TWO_WEB_PRODUCTS


@pytest.mark.parametrize(
    ("accept", "served"),
    [
        (GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON),
        (JSON, JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        (f"{JSON}, {GRAPHQL_RESPONSE_JSON}", GRAPHQL_RESPONSE_JSON),
        (f"{GRAPHQL_RESPONSE_JSON};q=0.5, {JSON}", JSON),
        (f"{JSON};q=0.9, {GRAPHQL_RESPONSE_JSON}", GRAPHQL_RESPONSE_JSON),
        (f"{JSON};q=0, */*", GRAPHQL_RESPONSE_JSON),
        ("text/html, application/xhtml+xml, */*;q=0.8", JSON),
    ],
)
async def test_accept_header_picks_the_response_media_type(
    http: httpx.AsyncClient, accept: str, served: str
) -> None:
    response = await post(http, {"query": TYPENAME}, accept=accept)

    assert (response.status_code, media_type(response)) == (200, f"{served}; charset=utf-8")
    assert without_cost(response.json()) == {"data": {"__typename": "Query"}}


async def test_a_client_without_accept_gets_application_json(http: httpx.AsyncClient) -> None:
    request = http.build_request("POST", "/graphql", json={"query": TYPENAME})
    del request.headers["accept"]

    response = await http.send(request)

    assert (response.status_code, media_type(response)) == (200, f"{JSON}; charset=utf-8")
    assert without_cost(response.json()) == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("accept", ["text/csv", f"{JSON};q=0", "application/xml, text/*"])
async def test_accept_with_nothing_we_serve_is_refused_with_406(
    http: httpx.AsyncClient, accept: str
) -> None:
    response = await post(http, {"query": TYPENAME}, accept=accept)

    assert response.status_code == 406
    assert response.text == f"Responses are {GRAPHQL_RESPONSE_JSON} or {JSON}."


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", '"utf-8"'])
async def test_an_explicit_utf8_charset_is_accepted(http: httpx.AsyncClient, charset: str) -> None:
    body = json.dumps({"query": '{ product(channel: "web", slug: "Run🏃Swim🏊") { name } }'}, ensure_ascii=False)

    response = await http.post(
        "/graphql",
        content=body.encode(),
        headers={"content-type": f"{JSON}; charset={charset}", "accept": GRAPHQL_RESPONSE_JSON},
    )

    assert (response.status_code, without_cost(response.json())) == (200, {"data": {"product": None}})


# --- requests that are not well-formed: 400 whatever the media type ---


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE_JSON, JSON])
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"query":', "the request body is not valid JSON"),
        (b"", "the request body is not valid JSON"),
        (b"\xff\xfe{}", "the request body is not valid JSON"),
        (b"null", "the request body must be a JSON object"),
        (b'[{"query": "{ __typename }"}]', "batched requests are not supported"),
        (b'{"qeury": "{ __typename }"}', "the request has no query"),
        (b'{"query": 7}', "query must be a string"),
        (b'{"query": {"text": "{ __typename }"}}', "query must be a string"),
        (b'{"query": "{ __typename }", "variables": [7]}', "variables must be an object or null"),
        (b'{"query": "{ __typename }", "variables": "{}"}', "variables must be an object or null"),
        (
            b'{"query": "{ __typename }", "operationName": 1}',
            "operationName must be a string or null",
        ),
        (
            b'{"query": "{ __typename }", "extensions": "on"}',
            "extensions must be an object or null",
        ),
    ],
)
async def test_a_request_that_is_not_well_formed_is_400(
    http: httpx.AsyncClient, content: bytes, message: str, accept: str
) -> None:
    response = await http.post(
        "/graphql", content=content, headers={"content-type": JSON, "accept": accept}
    )

    assert (response.status_code, media_type(response)) == (400, f"{accept}; charset=utf-8")
    assert without_cost(response.json()) == {"errors": [error(message)]}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"variables": "{}"}, "the request has no query"),
        ({"query": PRODUCTS, "variables": "{channel: web}"}, "variables must be JSON-encoded"),
        ({"query": PRODUCTS, "variables": "[1]"}, "variables must be an object or null"),
        ({"query": TYPENAME, "extensions": "{"}, "extensions must be JSON-encoded"),
    ],
)
async def test_a_get_that_is_not_well_formed_is_400(
    http: httpx.AsyncClient, params: dict[str, str], message: str
) -> None:
    response = await http.get("/graphql", params=params, headers={"accept": JSON})

    assert (response.status_code, without_cost(response.json())) == (400, {"errors": [error(message)]})


# --- well-formed requests that cannot run: 400 in graphql-response+json, 200 in json ---

REQUEST_ERRORS = [
    pytest.param(
        {"query": "{"},
        error(
            "Syntax Error: Expected Name, found <EOF>.",
            "GRAPHQL_PARSE_FAILED",
            locations=[{"line": 1, "column": 2}],
        ),
        id="document does not parse",
    ),
    pytest.param(
        {"query": "{ nope }"},
        error(
            "Cannot query field 'nope' on type 'Query'.",
            "GRAPHQL_VALIDATION_FAILED",
            locations=[{"line": 1, "column": 3}],
        ),
        id="document does not validate",
    ),
    pytest.param(
        {"query": PRODUCTS, "variables": {"channel": "web", "first": "two"}},
        error(
            "Variable '$first' has invalid value: Int cannot represent non-integer value (value not shown).",
            locations=[{"line": 2, "column": 35}],
        ),
        id="variable does not coerce",
    ),
    pytest.param(
        {"query": PRODUCTS, "variables": {"first": 2}},
        error(
            "Variable '$channel' has invalid value: Expected a value of non-null type 'String!' to be provided.",
            locations=[{"line": 2, "column": 16}],
        ),
        id="required variable missing",
    ),
    pytest.param(
        {"query": "query A { __typename } query B { __typename }"},
        error("the document has several operations: give operationName"),
        id="operation not given",
    ),
    pytest.param(
        {"query": "query A { __typename }", "operationName": "B"},
        error("no operation named 'B'"),
        id="operation not found",
    ),
    pytest.param(
        {"query": '{ product(channel: "web", slug: "q\\u0000") { id } }'},
        error(
            "strings may not contain the character U+0000", locations=[{"line": 1, "column": 33}]
        ),
        id="NUL in a string literal",
    ),
    pytest.param(
        {"query": PRODUCTS, "variables": {"channel": "we\x00b", "first": 2}},
        error("variables: strings may not contain the character U+0000"),
        id="NUL in a variable",
    ),
    pytest.param(
        {"query": PRODUCTS, "variables": {"channel": "web", "first": 2, "extra": [{"k\x00": "v"}]}},
        error("variables: strings may not contain the character U+0000"),
        id="NUL in a nested variable's key",
    ),
    pytest.param(
        {"query": "subscription { __typename }"},
        error("subscriptions are served over WebSocket on /graphql"),
        id="subscription over HTTP",
    ),
]


async def test_a_variable_spelling_the_nul_escape_as_text_is_not_refused(http: httpx.AsyncClient) -> None:
    # The six characters \u0000 (the body holds "\\u0000"): text, not U+0000.
    response = await post(http, {"query": PRODUCTS, "variables": {"channel": "\\u0000", "first": 2}})

    assert response.status_code == 200
    # The channel is looked up as the text it is, past the check for U+0000.
    assert [e["message"] for e in response.json()["errors"]] == ["unknown channel '\\\\u0000'"]


@pytest.mark.parametrize(("body", "expected"), REQUEST_ERRORS)
async def test_a_request_error_in_graphql_response_json_is_400_without_data(
    http: httpx.AsyncClient, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    response = await post(http, body, accept=GRAPHQL_RESPONSE_JSON)

    assert (response.status_code, without_cost(response.json())) == (400, {"errors": [expected]})


@pytest.mark.parametrize(("body", "expected"), REQUEST_ERRORS)
async def test_a_request_error_in_json_is_200_with_errors(
    http: httpx.AsyncClient, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    response = await post(http, body, accept=JSON)

    assert (response.status_code, without_cost(response.json())) == (200, {"errors": [expected]})


# --- methods and bodies ---


@pytest.mark.parametrize("query", [MUTATION, INVALID_MUTATION])
async def test_a_mutation_over_get_is_405(http: httpx.AsyncClient, query: str) -> None:
    response = await http.get(
        "/graphql", params={"query": query}, headers={"accept": GRAPHQL_RESPONSE_JSON}
    )

    assert (response.status_code, response.headers["allow"]) == (405, "POST")
    assert without_cost(response.json()) == {"errors": [error("mutations are sent with POST")]}


async def test_the_405_for_a_mutation_over_get_comes_before_validation(
    http: httpx.AsyncClient,
) -> None:
    over_get = await http.get("/graphql", params={"query": INVALID_MUTATION})
    over_post = await post(http, {"query": INVALID_MUTATION})

    assert over_get.status_code == 405
    assert (over_post.status_code, without_cost(over_post.json())) == (
        400,
        {
            "errors": [
                error(
                    "Cannot query field 'noSuchMutation' on type 'Mutation'.",
                    "GRAPHQL_VALIDATION_FAILED",
                    locations=[{"line": 1, "column": 12}],
                )
            ]
        },
    )


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_methods_other_than_get_and_post_are_405(
    http: httpx.AsyncClient, method: str
) -> None:
    response = await http.request(method, "/graphql", json={"query": TYPENAME})

    assert (response.status_code, response.headers["allow"]) == (405, "GET, POST")


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        (None, "POST requests need Content-Type: application/json"),
        ("text/plain", "POST requests need Content-Type: application/json"),
        ("application/x-www-form-urlencoded", "POST requests need Content-Type: application/json"),
        (f"{JSON}; charset=latin-1", "request bodies must be UTF-8"),
        (f"{JSON}; charset=utf-16", "request bodies must be UTF-8"),
    ],
)
async def test_a_post_we_cannot_read_is_415(
    http: httpx.AsyncClient, content_type: str | None, message: str
) -> None:
    headers = {"accept": GRAPHQL_RESPONSE_JSON}
    if content_type is not None:
        headers["content-type"] = content_type

    response = await http.post("/graphql", content=b'{"query": "{ __typename }"}', headers=headers)

    assert (response.status_code, without_cost(response.json())) == (415, {"errors": [error(message)]})


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 256):
        yield body[start : start + 256]


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_body_over_the_limit_is_413(limited: httpx.AsyncClient, declared: bool) -> None:
    body = json.dumps({"query": TYPENAME, "variables": {"padding": "x" * 2000}}).encode()
    content = body if declared else _chunks(body)

    response = await limited.post(
        "/graphql", content=content, headers={"content-type": JSON, "accept": GRAPHQL_RESPONSE_JSON}
    )

    assert (response.status_code, without_cost(response.json())) == (
        413,
        {"errors": [error("request bodies are limited to 1024 bytes")]},
    )


# --- protection: depth, alias and token limits ---


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            TOO_DEEP,
            error(
                "'anonymous' exceeds maximum operation depth of 3",
                "GRAPHQL_VALIDATION_FAILED",
                locations=[{"line": 1, "column": 53}],
            ),
        ),
        (TOO_MANY_ALIASES, error("3 aliases found. Allowed: 2", "GRAPHQL_VALIDATION_FAILED")),
        (
            TOO_MANY_TOKENS,
            error(
                "Syntax Error: Document contains more than 40 tokens. Parsing aborted.",
                "GRAPHQL_PARSE_FAILED",
                locations=[{"line": 1, "column": 432}],
            ),
        ),
    ],
    ids=["depth", "aliases", "tokens"],
)
async def test_a_document_over_a_limit_is_refused(
    limited: httpx.AsyncClient, query: str, expected: dict[str, Any]
) -> None:
    response = await post(limited, {"query": query})

    assert (response.status_code, without_cost(response.json())) == (400, {"errors": [expected]})


async def test_a_document_at_the_limits_runs(limited: httpx.AsyncClient) -> None:
    response = await post(limited, {"query": AT_THE_ALIAS_LIMIT})

    assert (response.status_code, without_cost(response.json())) == (200, {"data": {"a": "Query", "b": "Query"}})


# --- errors: codes, masking ---


async def test_a_failure_outside_any_resolver_is_a_masked_500(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("executor state at 0x7f3a")

    monkeypatch.setattr(graphql_http, "execute", broken)

    response = await post(http, {"query": TYPENAME}, **{"x-request-id": "outside-1"})

    assert (response.status_code, without_cost(response.json())) == (
        500,
        {
            "errors": [
                {
                    "message": "Internal server error",
                    "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": "outside-1"},
                }
            ]
        },
    )


async def test_an_unexpected_failure_is_masked_and_logged_with_the_request_id(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("could not reach db.internal as quanyi:hunter2")

    monkeypatch.setattr(reads, "page_query", broken)

    with caplog.at_level(logging.ERROR, logger="quanyi.errors"):
        response = await post(
            http,
            {"query": PRODUCTS, "variables": {"channel": "mini", "first": 3}},
            **{"x-request-id": "masked-1"},
        )

    assert (response.status_code, without_cost(response.json())) == (
        200,
        {
            "data": None,
            "errors": [
                {
                    "message": "Internal server error",
                    "locations": [{"line": 3, "column": 3}],
                    "path": ["products"],
                    "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": "masked-1"},
                }
            ],
        },
    )
    assert "hunter2" not in response.text
    [record] = [r for r in caplog.records if "masked-1" in r.getMessage()]
    assert record.exc_info is not None and "hunter2" in str(record.exc_info[1])


async def test_an_unexpected_failure_shows_its_message_in_debug(
    debugging: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("catalog store is down")

    monkeypatch.setattr(reads, "page_query", broken)

    response = await post(
        debugging,
        {"query": PRODUCTS, "variables": {"channel": "h5", "first": 3}},
        **{"x-request-id": "debug-1"},
    )

    assert without_cost(response.json())["errors"] == [
        {
            "message": "catalog store is down",
            "locations": [{"line": 3, "column": 3}],
            "path": ["products"],
            "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": "debug-1"},
        }
    ]


async def test_a_malformed_global_id_is_bad_user_input(http: httpx.AsyncClient) -> None:
    response = await post(http, {"query": NODE})

    assert (response.status_code, without_cost(response.json())) == (
        200,
        {
            "data": {"node": None},
            "errors": [
                error(
                    "'not-an-id' is not a valid ID",
                    field="id",
                    locations=[{"line": 1, "column": 3}],
                    path=["node"],
                )
            ],
        },
    )


async def test_an_unknown_channel_is_bad_user_input(http: httpx.AsyncClient) -> None:
    response = await post(http, {"query": PRODUCTS, "variables": {"channel": "nope", "first": 2}})

    assert (response.status_code, without_cost(response.json())) == (
        200,
        {
            "data": None,
            "errors": [
                error(
                    "unknown channel 'nope'",
                    field="channel",
                    locations=[{"line": 3, "column": 3}],
                    path=["products"],
                )
            ],
        },
    )


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        ("Bearer something", "unknown or revoked key"),
        ("Basic cXVhbnlpOnF1YW55aQ==", "use Authorization: Bearer <key>"),
    ],
)
async def test_a_credential_we_cannot_verify_is_401(
    http: httpx.AsyncClient, authorization: str, message: str
) -> None:
    response = await post(http, {"query": TYPENAME}, authorization=authorization)

    assert (response.status_code, response.headers["www-authenticate"]) == (
        401,
        'Bearer realm="quanyi"',
    )
    assert without_cost(response.json()) == {"errors": [error(message, "UNAUTHENTICATED")]}


# --- request ids ---


async def test_a_sane_request_id_is_echoed(http: httpx.AsyncClient) -> None:
    response = await post(http, {"query": TYPENAME}, **{"x-request-id": "checkout-7f3a-01"})

    assert response.headers["x-request-id"] == "checkout-7f3a-01"


@pytest.mark.parametrize("given_id", [None, b"has spaces", b"x" * 65, b"a;b", "ünïcode".encode()])
async def test_a_missing_or_odd_request_id_is_replaced(
    http: httpx.AsyncClient, given_id: bytes | None
) -> None:
    headers = [] if given_id is None else [(b"x-request-id", given_id)]

    first = await http.post("/graphql", json={"query": TYPENAME}, headers=headers)
    second = await http.post("/graphql", json={"query": TYPENAME}, headers=headers)

    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_refusals_carry_a_request_id_too(http: httpx.AsyncClient) -> None:
    response = await http.put("/graphql", headers={"x-request-id": "put-1"})

    assert (response.status_code, response.headers["x-request-id"]) == (405, "put-1")


# --- never a 5xx for bad input ---

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
WORDS = """
{ } ( ) [ ] : $ ... @ ! = | & # query mutation subscription fragment on Query __typename __schema
products product node channels edges name id skus price amount channel first after filter kind slug
1 -1 1e9 2147483648 true null CARD_CODE $first $channel Int String! ID types a:
"""
GRAPHQL_WORDS = [
    *WORDS.split(),
    '"web"',
    '"UHJvZHVjdDox"',
    '"""',
    '"\\u0000"',
    "\x00",
    "@skip(if: true)",
]
graphql_like = st.lists(st.sampled_from(GRAPHQL_WORDS), max_size=40).map(" ".join) | st.text(
    max_size=200
)
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "query": graphql_like | json_values,
            "variables": st.dictionaries(st.text(max_size=8), json_values, max_size=4)
            | json_values,
            "operationName": st.none() | st.text(max_size=10) | json_values,
            "extensions": st.none() | st.dictionaries(st.text(max_size=8), json_values, max_size=3),
        },
    ),
)
VARIABLES_QUERY = """
query ($channel: String!, $first: Int, $after: String, $filter: ProductFilter, $id: ID!) {
  products(channel: $channel, first: $first, after: $after, filter: $filter) { edges { cursor node { name } } }
  node(id: $id) { id }
}
"""
variables = st.dictionaries(
    st.sampled_from(["channel", "first", "after", "filter", "id", "extra"]),
    json_values | st.fixed_dictionaries({}, optional={"kind": json_values, "text": json_values}),
)
fuzzing = hypothesis_settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def assert_graphql_answer(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert media_type(response).split(";")[0] in (GRAPHQL_RESPONSE_JSON, JSON)
    body = without_cost(response.json())
    assert isinstance(body, dict) and body and set(body) <= {"data", "errors"}, body
    for entry in body.get("errors", []):
        # Bad input is the client's error, never ours.
        assert entry["extensions"]["code"] in ERROR_CODES - {"INTERNAL_SERVER_ERROR"}, entry


@fuzzing
@given(body=bodies, accept=st.sampled_from([GRAPHQL_RESPONSE_JSON, JSON]))
async def test_random_json_bodies_never_cause_a_server_error(
    http: httpx.AsyncClient, body: Any, accept: str
) -> None:
    assert_graphql_answer(await post(http, body, accept=accept))


@fuzzing
@given(content=st.binary(max_size=300))
async def test_random_bytes_never_cause_a_server_error(
    http: httpx.AsyncClient, content: bytes
) -> None:
    response = await http.post("/graphql", content=content, headers={"content-type": JSON})

    assert_graphql_answer(response)


@fuzzing
@given(query=graphql_like, method=st.sampled_from(["GET", "POST"]))
async def test_random_documents_never_cause_a_server_error(
    http: httpx.AsyncClient, query: str, method: str
) -> None:
    if method == "GET":
        response = await http.get("/graphql", params={"query": query})
    else:
        response = await post(http, {"query": query})

    assert_graphql_answer(response)


@pytest.mark.parametrize("depth", [200, 900, 2000])
async def test_deeply_nested_variables_are_not_a_server_error(
    http: httpx.AsyncClient, depth: int
) -> None:
    nested = "[" * depth + '"x"' + "]" * depth
    content = '{"query": "{ __typename }", "variables": {"deep": ' + nested + "}}"

    response = await http.post(
        "/graphql", content=content.encode(), headers={"content-type": JSON, "accept": JSON}
    )

    assert_graphql_answer(response)


@fuzzing
@given(values=variables)
async def test_random_variables_never_cause_a_server_error(
    http: httpx.AsyncClient, values: dict[str, Any]
) -> None:
    assert_graphql_answer(await post(http, {"query": VARIABLES_QUERY, "variables": values}))


IMPORT_CODES = """
mutation Import($sku: ID!, $codes: [CardCodeInput!]!) {
  importCardCodes(skuId: $sku, codes: $codes) { imported }
}
"""


async def test_an_invalid_input_is_explained_without_echoing_its_values(http: httpx.AsyncClient) -> None:
    secret = "SECRET-VALUE-7731"
    variables = {"sku": "U2t1OjE=", "codes": [{"secret": secret, "unknownField": 1}]}
    inline = '{ importCardCodes(skuId: "U2t1OjE=", codes: [{secret: "%s", bogus: 1}]) { imported } }' % secret

    for body in ({"query": IMPORT_CODES, "variables": variables}, {"query": "mutation " + inline}):
        response = await http.post("/graphql", json=body, headers={"accept": "application/graphql-response+json"})
        assert response.status_code == 400
        assert secret not in response.text
        assert "unknownField" in response.text or "bogus" in response.text


async def test_an_empty_selection_set_is_a_parse_error(http: httpx.AsyncClient) -> None:
    response = await post(http, {"query": "{ }"})

    assert response.status_code == 400
    assert [e["extensions"]["code"] for e in without_cost(response.json())["errors"]] == ["GRAPHQL_PARSE_FAILED"]
