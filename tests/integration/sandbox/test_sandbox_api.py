"""The v3.1 API: the user, businesses in Sage's envelope, X-Business, and
Sage's error array for 401, 403 and 429."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sandbox_helpers import api, assert_sage_error

from sage_desktop.sandbox import DEMO, Sandbox, SandboxConfig


def token_for(sb: Sandbox, email: str = DEMO.accountant) -> str:
    return str(sb.issue_tokens(email)["access_token"])


def test_user_answers_sages_fields(sb: Sandbox) -> None:
    body = api(sb, "/user", token_for(sb, DEMO.sole_trader)).json()

    user = DEMO.user(DEMO.sole_trader)
    assert body["id"] == user.id
    assert body["email"] == DEMO.sole_trader
    assert body["displayed_as"] == "Sam Whitfield"
    assert body["locale"] == "en-GB"


def test_user_does_not_echo_x_business(sb: Sandbox) -> None:
    response = api(sb, "/user", token_for(sb))

    assert "X-Business" not in response.headers


def test_unknown_access_token_gets_sages_error_array(sb: Sandbox) -> None:
    response = api(sb, "/user", "not-a-token")

    assert_sage_error(response, 401, "AuthorizationFailure")


def test_missing_authorization_gets_401(sb: Sandbox) -> None:
    response = requests.get(sb.api_url + "/businesses", timeout=5)

    assert_sage_error(response, 401, "AuthorizationFailure")


def test_businesses_default_to_pages_of_twenty_in_sages_envelope(
    sb: Sandbox,
) -> None:
    body = api(sb, "/businesses", token_for(sb)).json()

    assert body["$total"] == 2500
    assert body["$page"] == 1
    assert body["$items_per_page"] == 20
    assert body["$back"] is None
    assert body["$next"] == "/businesses?page=2&items_per_page=20"
    assert len(body["$items"]) == 20
    assert set(body["$items"][0]) == {"id", "displayed_as", "$path"}


def test_2500_businesses_come_in_13_pages_of_200(sb: Sandbox) -> None:
    token = token_for(sb)
    ids: list[str] = []
    page, pages = 1, 0
    while True:
        body = api(sb, "/businesses", token, page=page, items_per_page=200).json()
        pages += 1
        ids += [item["id"] for item in body["$items"]]
        if body["$next"] is None:
            break
        page += 1

    assert pages == 13
    assert len(ids) == len(set(ids)) == 2500
    assert ids == sb.business_ids(DEMO.accountant)


def test_a_page_past_the_end_is_empty(sb: Sandbox) -> None:
    body = api(sb, "/businesses", token_for(sb), page=99, items_per_page=200).json()

    assert body["$items"] == []
    assert body["$next"] is None


@pytest.mark.parametrize("per_page", ["0", "201", "abc", "-5"])
def test_items_per_page_outside_1_to_200_is_refused(sb: Sandbox, per_page: str) -> None:
    response = api(sb, "/businesses", token_for(sb), items_per_page=per_page)

    assert_sage_error(response, 400, "InvalidParameter")


def test_attributes_all_carries_sages_business_fields(sb: Sandbox) -> None:
    token = token_for(sb)
    items = []
    for page in range(1, 14):
        body = api(
            sb,
            "/businesses",
            token,
            page=page,
            items_per_page=200,
            attributes="all",
        ).json()
        items += body["$items"]

    first = items[0]
    for key in ("name", "country", "subscriptions", "is_demo", "address_line_1"):
        assert key in first
    assert set(first["country"]) >= {"id", "displayed_as"}
    regions = Counter(item["country"]["id"] for item in items)
    assert set(regions) == {"GB", "IE", "CA"}
    inactive = [i for i in items if not i["subscriptions"][0]["active"]]
    assert 1 <= len(inactive) <= 20
    assert sum(item["is_demo"] for item in items) == 1


def test_attributes_may_name_single_fields(sb: Sandbox) -> None:
    body = api(sb, "/businesses", token_for(sb), attributes="name,is_demo").json()

    assert set(body["$items"][0]) == {"id", "displayed_as", "$path", "name", "is_demo"}
    assert body["$next"].endswith("attributes=name%2Cis_demo")


def test_each_attribute_list_gets_its_own_fields_however_often_asked(
    sb: Sandbox,
) -> None:
    token = token_for(sb)

    def first_keys(**params: str) -> set[str]:
        return set(api(sb, "/businesses", token, **params).json()["$items"][0])

    base = {"id", "displayed_as", "$path"}
    for _ in range(2):
        assert first_keys(attributes="name,is_demo") == base | {"name", "is_demo"}
        assert first_keys() == base
        assert first_keys(attributes="country") == base | {"country"}
        assert "address_line_1" in first_keys(attributes="all")


def test_business_names_are_deterministic(sb: Sandbox) -> None:
    with Sandbox() as other:
        assert other.business_ids(DEMO.accountant) == sb.business_ids(DEMO.accountant)


def test_lead_business_is_the_first_one(sb: Sandbox) -> None:
    token = token_for(sb)

    lead = api(sb, "/businesses/lead", token).json()

    assert lead["id"] == sb.business_ids(DEMO.accountant)[0]
    assert lead["subscriptions"][0]["active"] is True
    assert set(lead) >= {"name", "country", "is_demo", "subscriptions", "city"}


def test_one_business_by_id(sb: Sandbox) -> None:
    business_id = sb.business_ids(DEMO.accountant)[7]

    body = api(sb, f"/businesses/{business_id}", token_for(sb)).json()

    assert body["id"] == business_id
    assert body["name"] == sb.business(business_id)["name"]


def test_a_business_of_someone_else_is_403(sb: Sandbox) -> None:
    theirs = sb.business_ids(DEMO.sole_trader)[0]

    response = api(sb, f"/businesses/{theirs}", token_for(sb))

    assert_sage_error(response, 403, "MultiUserAccessDenied")


def test_an_unknown_business_is_404(sb: Sandbox) -> None:
    response = api(sb, "/businesses/" + "0" * 32, token_for(sb))

    assert_sage_error(response, 404, "RecordNotFound")


def test_developer_login_reaches_no_business(sb: Sandbox) -> None:
    token = token_for(sb, DEMO.developer)

    assert api(sb, "/businesses", token).json()["$total"] == 0
    assert_sage_error(api(sb, "/businesses/lead", token), 404, "RecordNotFound")


def test_us_user_has_one_us_business(sb: Sandbox) -> None:
    body = api(sb, "/businesses/lead", token_for(sb, DEMO.us_user)).json()

    assert body["country"]["id"] == "US"


def test_scoped_endpoints_echo_x_business(sb: Sandbox) -> None:
    business_id = sb.business_ids(DEMO.accountant)[5]
    token = token_for(sb)

    for path in ("/contacts", "/financial_settings"):
        response = api(sb, path, token, business=business_id)
        assert response.status_code == 200
        assert response.headers["X-Business"] == business_id


def test_without_x_business_the_lead_business_is_used(sb: Sandbox) -> None:
    response = api(sb, "/contacts", token_for(sb))

    assert response.headers["X-Business"] == sb.business_ids(DEMO.accountant)[0]
    assert response.json()["$total"] >= 3


def test_x_business_the_user_cannot_reach_is_multi_user_access_denied(
    sb: Sandbox,
) -> None:
    theirs = sb.business_ids(DEMO.sole_trader)[0]

    response = api(sb, "/contacts", token_for(sb), business=theirs)

    assert_sage_error(response, 403, "MultiUserAccessDenied")
    assert "X-Business" not in response.headers


def test_removing_a_user_from_a_business_takes_effect_at_once(
    sb: Sandbox,
) -> None:
    token = token_for(sb)
    business_id = sb.business_ids(DEMO.accountant)[10]

    sb.revoke_business(DEMO.accountant, business_id)

    assert_sage_error(
        api(sb, "/contacts", token, business=business_id),
        403,
        "MultiUserAccessDenied",
    )
    assert api(sb, "/businesses", token).json()["$total"] == 2499


def test_removing_the_lead_business_makes_the_next_one_lead(sb: Sandbox) -> None:
    token = token_for(sb)
    first, second = sb.business_ids(DEMO.accountant)[:2]

    sb.revoke_business(DEMO.accountant, first)

    assert api(sb, "/businesses/lead", token).json()["id"] == second


def test_adding_a_user_to_a_business_takes_effect_at_once(sb: Sandbox) -> None:
    token = token_for(sb, DEMO.sole_trader)
    extra = sb.business_ids(DEMO.accountant)[3]

    sb.grant_business(DEMO.sole_trader, extra)

    assert api(sb, "/contacts", token, business=extra).status_code == 200
    assert api(sb, "/businesses", token).json()["$total"] == 2


def test_financial_settings_follow_the_business_region(sb: Sandbox) -> None:
    token = token_for(sb)
    ids = sb.business_ids(DEMO.accountant)
    irish = next(i for i in ids if sb.business(i)["country"]["id"] == "IE")

    body = api(sb, "/financial_settings", token, business=irish).json()

    assert body["base_currency"]["id"] == "EUR"


def test_unknown_route_is_404_in_sages_shape(sb: Sandbox) -> None:
    assert_sage_error(api(sb, "/nothing_here", token_for(sb)), 404, "RouteNotFound")


def test_api_requests_are_counted(sb: Sandbox) -> None:
    token = token_for(sb)
    api(sb, "/user", token)
    api(sb, "/businesses", token)

    assert sb.counters()["api_requests"] == 2


@pytest.mark.parametrize(
    "sandbox_config", [SandboxConfig(max_concurrent=2, api_latency=0.5)]
)
def test_more_concurrent_requests_than_allowed_get_429(sb: Sandbox) -> None:
    token = token_for(sb)
    barrier = threading.Barrier(6)

    def call(_: int) -> requests.Response:
        barrier.wait(5)
        return api(sb, "/user", token)

    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(call, range(6)))

    statuses = Counter(r.status_code for r in responses)
    assert statuses[200] >= 1
    assert statuses[429] >= 1
    assert set(statuses) <= {200, 429}
    limited = next(r for r in responses if r.status_code == 429)
    assert_sage_error(limited, 429, "TooManyRequests")


@pytest.mark.parametrize("sandbox_config", [SandboxConfig(api_latency=0.05)])
def test_fifty_concurrent_clients_get_no_error(sb: Sandbox) -> None:
    token = token_for(sb)
    barrier = threading.Barrier(50)

    def client(index: int) -> list[int]:
        statuses = []
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {token}"
            barrier.wait(10)
            for page in range(1, 4):
                response = session.get(
                    sb.api_url + "/businesses",
                    params={"page": page + index % 5, "items_per_page": 200},
                    timeout=20,
                )
                statuses.append(response.status_code)
        return statuses

    with ThreadPoolExecutor(50) as pool:
        results = [s for statuses in pool.map(client, range(50)) for s in statuses]

    assert results == [200] * 150
