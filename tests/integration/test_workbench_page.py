"""The advisor's workbench (issue 18) on a phone's screen in a real browser (Debian's Chromium driven by
Playwright), served by the real intake on a real socket, signed in through the devstack's real OpenID
Connect provider, records landing in the real ledger through the real broker: two records online, three
offline (the page reloaded with no network, served by its service worker), all accepted once the network
is back and each in the advisor's work log exactly once, also when sent again; a refused record shows the
field and the rule, is fixed and sent again. Screenshots: test-artifacts/screenshots/workbench-*.png."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
from aiokafka import AIOKafkaProducer
from playwright.async_api import ConsoleMessage, Page, Route, ViewportSize

from contracts.events import DEFAULT_ZONE
from devstack.identity import DEMO_PASSWORD, IdentityProfile
from plumbing.auth import Role, mint_token
from plumbing.clock import SystemClock
from plumbing.settings import TokenSettings
from services.assessment.app import create_app as create_assessment
from services.assessment.settings import AssessmentSettings
from services.dashboard.app import create_app as create_dashboard
from services.dashboard.regions import publish_events, region_event
from services.dashboard.settings import DashboardSettings
from services.intake.app import create_app as create_intake
from services.intake.settings import IntakeSettings
from services.ledger.app import create_app as create_ledger
from services.ledger.settings import LedgerSettings
from tests.integration.test_dashboard_page import IDENTITY, REGIONS, SHOTS, TODAY, chromium, served
from tests.support.infrastructure import Infrastructure
from tests.support.kafka_io import send_all
from tests.support.samples import sample_event
from tests.support.waiting import eventually

SECRET = "workbench-page-integration-secret-long-enough"
ADVISOR = "demo-lawyer-01"  # the provider's demo advisor (region 370402, 市中区)
VILLAGE = "370402001013"
THIS_YEAR = datetime.now(DEFAULT_ZONE).year  # the dashboard's year is Shanghai's
# The workbench's address is registered with the provider as a redirect URI (devstack/identity.py).
WORKBENCH = IDENTITY.workbench_origins[0]
PHONE: ViewportSize = {"width": 390, "height": 844}
# A record as the page keeps it in IndexedDB and sends it.
KEPT_RECORD = """(id) => new Promise((resolve, reject) => {
  const opened = indexedDB.open("villagecounsel-workbench");
  opened.onsuccess = () => {
    const read = opened.result.transaction("records").objectStore("records").get(id);
    read.onsuccess = () => resolve({ id: read.result.id, ...read.result.record });
    read.onerror = () => reject(read.error);
  };
})"""

# How many records the phone keeps, whoever's.
KEPT_COUNT = """() => new Promise((resolve, reject) => {
  const opened = indexedDB.open("villagecounsel-workbench");
  opened.onsuccess = () => {
    const counting = opened.result.transaction("records").objectStore("records").count();
    counting.onsuccess = () => resolve(counting.result);
    counting.onerror = () => reject(counting.error);
  };
})"""

# An accepted record, as the page keeps one once intake has taken it.
KEEP_ACCEPTED = """([id, advisor, village]) => new Promise((resolve, reject) => {
  const opened = indexedDB.open("villagecounsel-workbench");
  opened.onsuccess = () => {
    const writing = opened.result.transaction("records", "readwrite");
    const now = new Date().toISOString();
    writing.objectStore("records").put({
      id, advisor_id: advisor, kind: "consultation", state: "accepted", error: null, created_at: now,
      updated_at: now, record: { advisor_id: advisor, village_code: village, occurred_at: now },
    });
    writing.oncomplete = resolve;
    writing.onerror = () => reject(writing.error);
  };
})"""


@pytest.fixture
async def services(
    infrastructure: Infrastructure, topics: None, identity: IdentityProfile, producer: AIOKafkaProducer
) -> AsyncIterator[tuple[str, str, str]]:
    """Intake (serving the workbench), the ledger and the assessment; the demo advisor assigned to VILLAGE
    this year (the assessment reports an advisor's assigned villages)."""
    year = datetime.now(UTC).year
    term = sample_event(
        "advisor.assigned",
        event_id=uuid.uuid4(),
        advisor_id=ADVISOR,
        village_code=VILLAGE,
        term_start=f"{year}-01-01",
        term_end=f"{year}-12-31",
    )
    # An alert the assessment raised for the advisor in the village (shown under 提醒 in 我的本月).
    alert = sample_event(
        "compliance.alert_raised",
        event_id=uuid.uuid4(),
        advisor_id=ADVISOR,
        village_code=VILLAGE,
        kind="lecture_due",
        as_of=datetime.now(UTC).date().isoformat(),
    )
    await send_all(producer, [term, alert])
    common: dict[str, Any] = {
        "database_url": infrastructure.database_url,
        "jwt_secret": SECRET,
        "jwt_jwks_url": identity.jwks_url,
        "jwt_issuer": identity.issuer,
    }
    browser_origins: dict[str, Any] = {"cors_origins": [WORKBENCH], "poll_timeout_ms": 100}
    ledger = create_ledger(
        LedgerSettings(**common, **infrastructure.kafka_settings("ledger"), **browser_origins), SystemClock()
    )
    assessment = create_assessment(
        AssessmentSettings(**common, **infrastructure.kafka_settings("assessment"), **browser_origins),
        SystemClock(),
    )
    dashboard = create_dashboard(
        DashboardSettings(**common, **infrastructure.kafka_settings("dashboard"), poll_timeout_ms=100),
        SystemClock(),
    )
    # The village and the regions above it, as the dashboard page's test registers them.
    path = (region_event(region, TODAY) for region in REGIONS if VILLAGE.startswith(region.code))
    await publish_events(infrastructure.kafka, path, 1)
    async with served(ledger) as ledger_url, served(assessment) as assessment_url, served(dashboard) as board:
        intake = create_intake(
            IntakeSettings(
                **common,
                **infrastructure.kafka_settings("intake"),
                oidc_issuer=identity.issuer,
                assessment_public_url=assessment_url,
                ledger_url=ledger_url,
                retry_after_seconds=2,
            ),
            SystemClock(),
        )
        async with served(intake, urlsplit(WORKBENCH).port) as intake_url:
            yield intake_url, ledger_url, board


async def village_year(board: str) -> dict[str, Any]:
    """The village's figures this year on the dashboard, and how far its projection lags behind."""
    bearer = mint_token(
        TokenSettings(jwt_secret=SECRET, jwt_issuer=IDENTITY.issuer),
        subject="province-37",
        role=Role.province_department,
        region_code="37",
        now=datetime.now(UTC),
    )
    async with httpx.AsyncClient(base_url=board, headers={"Authorization": f"Bearer {bearer}"}) as client:
        answer = await client.get(f"/v1/regions/{VILLAGE}/figures", params={"period": str(THIS_YEAR)})
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def caught_up_figures(board: str) -> dict[str, float]:
    found = await eventually(
        lambda: village_year(board), lambda shown: shown["freshness"]["lag"] == 0, what="the dashboard"
    )
    figures: dict[str, float] = found["figures"]
    return figures


async def counts(page: Page) -> dict[str, int]:
    found = {}
    for name in ("waiting", "sent", "accepted", "refused"):
        found[name] = int(await page.get_attribute(f'#counts span[data-state="{name}"]', "data-count") or "0")
    return found


async def until_counts(page: Page, **expected: int) -> None:
    for name, count in expected.items():
        await page.wait_for_selector(
            f'#counts span[data-state="{name}"][data-count="{count}"]', timeout=30_000
        )


async def choose(page: Page, kind: str) -> None:
    await page.click(f'#kinds button[data-kind="{kind}"]')
    await page.wait_for_selector(f'#record-form[data-kind="{kind}"]')


async def consultation(page: Page, person_times: str = "2", village: str | None = None) -> None:
    await choose(page, "consultation")
    if village is not None:
        await page.fill("#f-village_code", village)
    await page.select_option("#f-channel", "on_site")
    await page.fill("#f-person_times", person_times)
    await page.select_option("#f-topic", "land")
    await page.fill("#f-summary", "承包地边界争议")
    await page.click("#save")


async def worklog(ledger_url: str, bearer: str) -> Counter[str]:
    async with httpx.AsyncClient(base_url=ledger_url, timeout=10) as ledger:
        answer = await ledger.get(
            f"/v1/advisors/{ADVISOR}/worklog",
            params={"limit": 500},
            headers={"Authorization": f"Bearer {bearer}", "X-Access-Purpose": "case_handling"},
        )
    assert answer.status_code == 200, answer.text
    return Counter(entry["event_id"] for entry in answer.json()["entries"])


async def test_an_advisor_records_online_and_offline_and_every_record_is_counted_once(
    services: tuple[str, str, str], identity: IdentityProfile
) -> None:
    url, ledger_url, board = services
    before = await caught_up_figures(board)
    SHOTS.mkdir(parents=True, exist_ok=True)
    # A resident rates the advisor from the village's notice (as its form does): 我的本月 shows the average.
    rating = {"device_id": str(uuid.uuid4()), "advisor_id": ADVISOR, "village_code": VILLAGE, "score": 4}
    async with httpx.AsyncClient(base_url=url) as resident:
        rated = await resident.post("/v1/public/ratings", json=rating)
    assert rated.status_code == 202, rated.text
    async with chromium() as browser:
        context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN")
        page = await context.new_page()
        errors: list[str] = []
        blocked: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))

        def note_blocked(message: ConsoleMessage) -> None:
            if "Content Security Policy" in message.text:
                blocked.append(message.text)

        page.on("console", note_blocked)

        # Sign in (登录) through the provider: authorization code with PKCE, back to /workbench/.
        await page.goto(f"{url}/workbench/")
        await page.wait_for_selector('body[data-ready="signed-out"]')
        assert await page.locator("#local-sign-in").is_hidden(), "no development sign-in outside local mode"
        await page.screenshot(path=str(SHOTS / "workbench-1-sign-in.png"), full_page=True)
        await page.click("#sign-in")
        await page.wait_for_url(f"{identity.issuer}/interaction/**")
        await page.fill("#username", ADVISOR)
        await page.fill("#password", DEMO_PASSWORD)
        await page.click("#sign-in")
        await page.wait_for_selector('body[data-ready="signed-in"]', timeout=20_000)
        assert "code" not in urlsplit(page.url).query
        assert await page.get_attribute("#who", "data-advisor") == ADVISOR
        await page.wait_for_selector('body[data-offline-ready="yes"]', timeout=20_000)
        bearer = await page.evaluate("localStorage.getItem('vc-wb-token')")

        # Online: a consultation and a visit with its start and end, both accepted by intake.
        await consultation(page, village=VILLAGE)
        await until_counts(page, accepted=1)
        await choose(page, "visit")
        assert await page.input_value("#f-village_code") == VILLAGE, "my village is the default"
        assert await page.input_value("#f-started_at") < await page.input_value("#f-ended_at")
        await page.check('#f-activities input[value="consultation"]')
        await page.check('#f-activities input[value="patrol"]')
        await page.click("#save")
        await until_counts(page, accepted=2)
        await page.screenshot(path=str(SHOTS / "workbench-2-online.png"), full_page=True)

        # Offline: three more, then the page reloaded with no network (its service worker serves it).
        await context.set_offline(True)
        await page.wait_for_selector('#net[data-online="no"]')
        await consultation(page, "5")
        await choose(page, "mediation")
        await page.select_option("#f-dispute_type", "neighbour_property")
        await page.fill("#f-parties", "2")
        await page.select_option("#f-outcome", "resolved")
        await page.check("#f-agreement_signed")
        await page.click("#save")
        await choose(page, "document")
        await page.select_option("#f-kind", "village_rules")
        await page.fill("#f-title", "村规民约修订")
        await page.click("#save")
        await until_counts(page, accepted=2, waiting=3)
        reloaded = await page.reload()
        assert reloaded is not None
        assert reloaded.from_service_worker, "offline, the page comes from the service worker's cache"
        await page.wait_for_selector('body[data-ready="signed-in"]')
        assert await counts(page) == {"waiting": 3, "sent": 0, "accepted": 2, "refused": 0}, "kept"
        await page.screenshot(path=str(SHOTS / "workbench-3-offline.png"), full_page=True)

        # Back online: the three go through /v1/batch; intake stores them but its answer is lost on the way
        # back, so they stay "sent" and go again with the same ids, and are accepted.
        lost: list[dict[str, Any]] = []

        async def lose_the_first_answer(route: Route) -> None:
            if lost:
                await route.continue_()
                return
            answer = await route.fetch()
            lost.append(await answer.json())
            await route.abort("internetdisconnected")

        await context.route("**/v1/batch", lose_the_first_answer)
        await context.set_offline(False)
        await until_counts(page, sent=3, accepted=2)
        await page.screenshot(path=str(SHOTS / "workbench-3b-answer-lost.png"), full_page=True)
        await until_counts(page, accepted=5, waiting=0, sent=0)
        assert [lost[0]["accepted"], len(lost)] == [3, 1], "intake had stored the three the first time"
        resent = {result["id"] for result in lost[0]["results"]}
        await context.unroute("**/v1/batch", lose_the_first_answer)

        # A refused record shows the field and the rule; fixed and sent again, it is accepted.
        await consultation(page, "0")
        refusal = '.record[data-state="refused"] .refusal[data-field="person_times"]'
        await page.wait_for_selector(refusal, timeout=30_000)
        assert await page.get_attribute(refusal, "data-rule") == "greater_than_equal"
        assert "咨询人次" in await page.inner_text(refusal)
        refused_id = await page.get_attribute('.record[data-state="refused"]', "data-id")
        await page.screenshot(path=str(SHOTS / "workbench-4-refused.png"), full_page=True)
        await page.click('.record[data-state="refused"] button.fix')
        await page.wait_for_selector('.field.invalid[data-field="person_times"]')
        assert "greater_than_equal" in await page.inner_text('[data-field-error="person_times"]')
        await page.fill("#f-person_times", "1")
        await page.click("#save")
        await until_counts(page, accepted=6, refused=0)
        await page.screenshot(path=str(SHOTS / "workbench-5-fixed.png"), full_page=True)
        ids = {
            str(await row.get_attribute("data-id"))
            for row in await page.locator('.record[data-state="accepted"]').all()
        }
        assert refused_id in ids, "the fixed record kept its id"
        fixed = await page.evaluate(KEPT_RECORD, refused_id)

        # My month (我的本月): the visit's hour against the requirement, from the assessment's API; this
        # month's work log from the ledger's; both called by the page with the advisor's token.
        async def month_shown() -> tuple[int, int, int]:
            await page.reload()
            await page.wait_for_selector('body[data-ready="signed-in"]')
            await page.wait_for_selector("#month-worklog[data-count]", timeout=10_000)
            row = f'#month-villages tr[data-village="{VILLAGE}"] td.hours'
            minutes = (
                await page.get_attribute(row, "data-minutes") if await page.locator(row).count() else None
            )
            worklog = await page.get_attribute("#month-worklog", "data-count")
            ratings = await page.get_attribute("#month-rating", "data-count")
            return int(minutes or 0), int(worklog or 0), int(ratings or 0)

        await eventually(
            month_shown,
            lambda shown: shown[0] >= 60 and shown[1] >= 6 and shown[2] >= 1,
            seconds=60,
            what="my month",
        )
        assert "今年群众评价：平均" in await page.inner_text("#month-rating")
        assert "小时" in await page.inner_text("#month-villages")
        year = datetime.now(UTC).year
        terms = await page.inner_text(f'#month-villages tr[data-village="{VILLAGE}"] td.terms')
        assert terms == f"{year}-01-01 至 {year}-12-31", terms
        alert = f'#month-alerts li[data-kind="lecture_due"][data-village="{VILLAGE}"]'
        assert "本期法治讲座尚未开展" in await page.inner_text(alert)
        await page.screenshot(path=str(SHOTS / "workbench-7-my-month.png"), full_page=True)

        # The other kinds: a lecture, legal aid and a risk report, each accepted; the lecture then voided
        # (更正) from its own record, the void accepted too.
        accepted_before = (await counts(page))["accepted"]
        await choose(page, "lecture")
        await page.fill("#f-title", "土地承包法律知识讲座")
        await page.fill("#f-attendees", "40")
        await page.select_option("#f-format", "on_site")
        await page.click("#save")
        await choose(page, "legal_aid")
        await page.select_option("#f-kind", "application_assisted")
        await page.select_option("#f-case_category", "labour")
        await page.fill("#f-applicants", "1")
        await page.click("#save")
        await choose(page, "risk_report")
        await page.select_option("#f-category", "large_petition_risk")
        await page.select_option("#f-severity", "medium")
        await page.fill("#f-people_involved", "12")
        await page.fill("#f-description", "征地补偿分配有争议")
        await page.select_option("#f-reported_to", "township")
        await page.click("#save")
        await until_counts(page, accepted=accepted_before + 3, refused=0)
        kinds = {
            str(await row.get_attribute("data-kind")): str(await row.get_attribute("data-id"))
            for row in await page.locator('.record[data-state="accepted"]').all()
        }
        await page.click(f'.record[data-id="{kinds["lecture"]}"] button.void')
        await page.wait_for_selector('#record-form[data-kind="void"]')
        await page.fill("#f-reason", "讲座时间记错，重新记录")
        await page.click("#save")
        await until_counts(page, accepted=accepted_before + 4, refused=0)
        ids |= {kinds["legal_aid"], kinds["risk_report"]}
        await page.screenshot(path=str(SHOTS / "workbench-7b-every-kind.png"), full_page=True)

        # Renewal before expiry: a token about to expire is replaced from the provider's session
        # (prompt=none) with no sign-in form; nothing recorded is lost on the way.
        expiring = ".".join(
            base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
            for part in ({"alg": "none"}, {"sub": ADVISOR, "role": "advisor", "exp": int(time.time()) + 60})
        )
        await page.evaluate("(kept) => localStorage.setItem('vc-wb-token', kept)", f"{expiring}.x")
        kept_before = await counts(page)
        await page.reload()
        await page.wait_for_selector('body[data-ready="signed-in"]', timeout=20_000)
        renewed = await page.evaluate("localStorage.getItem('vc-wb-token')")
        claims = jwt.decode(renewed, options={"verify_signature": False})
        assert claims["iss"] == identity.issuer
        assert claims["sub"] == ADVISOR
        assert claims["exp"] > time.time() + 600
        assert await counts(page) == kept_before

        # Sign-out with a record not yet sent (offline): it offers 先上传 and deletes nothing unasked;
        # offline the upload cannot happen and the advisor stays signed in; online, 先上传 sends it and signs
        # out, and nothing of the advisor's is left on the phone.
        await context.set_offline(True)
        await page.wait_for_selector('#net[data-online="no"]')
        await consultation(page, "3")
        await until_counts(page, waiting=1)
        last = str(await page.get_attribute('.record[data-state="waiting"]', "data-id"))
        await page.click("#logout")
        await page.wait_for_selector('#sign-out-dialog[data-count="1"]:not([hidden])')
        assert await page.is_disabled("#delete-and-sign-out")
        assert "删除 1 条记录并退出" in await page.inner_text("#delete-and-sign-out")
        await page.click("#upload-first")
        await page.wait_for_selector('#sign-out-dialog[data-count="1"]:not([hidden])')
        assert "没有网络" in await page.inner_text("#sign-out-note")
        await page.screenshot(path=str(SHOTS / "workbench-8-sign-out-offline.png"), full_page=True)
        await context.set_offline(False)
        await page.click("#upload-first")
        await page.wait_for_selector('body[data-ready="signed-out"]', timeout=30_000)
        assert await page.evaluate(KEPT_COUNT) == 0, "no record, sent or not, stays after sign-out"
        ids.add(last)

        # Signed in again, a record made offline, sign-out confirmed: deleted, as the dialog said.
        await page.click("#sign-in")
        await page.wait_for_url(lambda address: "/interaction/" in address or address.startswith(url))
        if "/interaction/" in page.url:
            await page.fill("#username", ADVISOR)
            await page.fill("#password", DEMO_PASSWORD)
            await page.click("#sign-in")
        await page.wait_for_selector('body[data-ready="signed-in"]', timeout=20_000)
        await context.set_offline(True)
        await page.wait_for_selector('#net[data-online="no"]')
        await consultation(page, "4")
        await until_counts(page, waiting=1)
        await page.click("#logout")
        await page.wait_for_selector('#sign-out-dialog[data-count="1"]:not([hidden])')
        await page.check("#confirm-delete")
        await page.click("#delete-and-sign-out")
        await page.wait_for_selector('body[data-ready="signed-out"]')
        assert await page.evaluate(KEPT_COUNT) == 0
        await context.set_offline(False)
        assert errors == []
        assert blocked == [], "the page broke its Content-Security-Policy"

    # Every record is in the advisor's work log once.
    found = await eventually(
        lambda: worklog(ledger_url, bearer), lambda log: ids <= set(log), seconds=60, what="the work log"
    )
    assert all(found[event_id] == 1 for event_id in ids)

    # And counted on the dashboard, each once: what the browser recorded, less the voided lecture and the
    # consultation deleted at sign-out unsent, plus the resident's rating.
    recorded = {
        "consultations": 4,
        "consultation_person_times": 2 + 5 + 1 + 3,
        "visits": 1,
        "mediations": 1,
        "documents_village_rules": 1,
        "lectures": 0,
        "legal_aid_application_assisted": 1,
        "risk_reports": 1,
        "feedback": 1,
    }

    def counted(after: dict[str, Any]) -> dict[str, float]:
        return {name: after["figures"].get(name, 0) - before.get(name, 0) for name in recorded}

    shown = await eventually(
        lambda: village_year(board),
        lambda after: counted(after) == recorded,
        seconds=60,
        what="the dashboard",
    )
    assert counted(shown) == recorded
    assert resent <= ids, "the three sent twice are each in the work log once"

    # Sent again after a lost answer (same id, same content): intake takes it, the ledger counts it once.
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {bearer}"}) as intake:
        batch = {"records": [{"kind": "consultation", "record": fixed}]}
        again = await intake.post("/v1/batch", json=batch)
        assert again.status_code == 200, again.text
        assert again.json()["accepted"] == 1
        marker = str(uuid.uuid4())
        later = {**batch["records"][0]["record"], "id": marker}
        assert (
            await intake.post("/v1/batch", json={"records": [{"kind": "consultation", "record": later}]})
        ).json()["accepted"] == 1
    found = await eventually(
        lambda: worklog(ledger_url, bearer), lambda log: marker in log, seconds=60, what="the marker"
    )
    assert found[str(refused_id)] == 1, "the duplicate is counted once"


async def test_in_local_mode_a_demo_advisor_signs_in_and_the_page_waits_as_retry_after_says() -> None:
    """No broker and no key store behind intake: every batch is answered 503 with `Retry-After` (intake's own
    answer); the page keeps the record waiting and asks again no sooner than it was told."""
    nowhere = "127.0.0.1:9"  # the discard port: nothing listens
    settings = IntakeSettings(
        open_region="370402",
        kafka_bootstrap_servers=nowhere,
        database_url=f"postgresql://nobody@{nowhere}/none",
        kafka_timeout_seconds=0.5,
        publish_timeout_seconds=0.5,
        keystore_timeout_seconds=0.5,
        retry_after_seconds=3,
    )
    async with served(create_intake(settings, SystemClock())) as url, chromium() as browser:
        page = await browser.new_page(viewport=PHONE)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        asked: list[float] = []
        page.on(
            "request", lambda request: asked.append(time.monotonic()) if "/v1/batch" in request.url else None
        )
        await page.goto(f"{url}/workbench/")
        await page.wait_for_selector('body[data-ready="signed-out"]')
        await page.select_option("#demo-advisor", "demo-lawyer-02")
        await page.click("#sign-in-local")
        await page.wait_for_selector('body[data-ready="signed-in"]', timeout=20_000)
        assert await page.get_attribute("#who", "data-advisor") == "demo-lawyer-02"
        await consultation(page, village=VILLAGE)
        await eventually(
            lambda: asyncio.sleep(0.2, len(asked)), lambda count: count >= 2, seconds=20, what="a retry"
        )
        assert asked[1] - asked[0] >= 3.0, "the page waited as Retry-After said"
        waiting = await counts(page)
        assert waiting["waiting"] + waiting["sent"] == 1, "the record waits; nothing is lost"
        assert waiting["accepted"] == 0
        assert "3 秒后重试" in await page.inner_text("#sync-message")
        await page.screenshot(path=str(SHOTS / "workbench-6-retry-after.png"), full_page=True)

        # The first advisor's sign-in lapses (not signed out: the record waits for them). Another advisor on
        # the same phone neither sees nor sends the first one's queue, and signs out with nothing to ask
        # about; the queue is still there when the first signs in again.
        await page.evaluate("localStorage.removeItem('vc-wb-token')")
        await page.reload()
        await page.wait_for_selector("#login:not([hidden])")
        await page.select_option("#demo-advisor", "demo-lawyer-03")
        await page.click("#sign-in-local")
        await page.wait_for_selector('body[data-ready="signed-in"]', timeout=20_000)
        assert await page.get_attribute("#who", "data-advisor") == "demo-lawyer-03"
        assert await page.locator(".record").count() == 0
        assert sum((await counts(page)).values()) == 0
        await page.click("#logout")
        await page.wait_for_selector('body[data-ready="signed-out"]')
        await page.select_option("#demo-advisor", "demo-lawyer-02")
        await page.click("#sign-in-local")
        await page.wait_for_selector('body[data-ready="signed-in"]', timeout=20_000)
        assert await page.locator(".record").count() == 1

        # 更正: an accepted record offers its void, the form filled in with its id and village.
        accepted = str(uuid.uuid4())
        await page.evaluate(KEEP_ACCEPTED, [accepted, "demo-lawyer-02", VILLAGE])
        await page.reload()
        await page.wait_for_selector('body[data-ready="signed-in"]')
        await page.click(f'.record[data-id="{accepted}"] button.void')
        await page.wait_for_selector('#record-form[data-kind="void"]')
        assert await page.input_value("#f-target_event_id") == accepted
        assert await page.input_value("#f-village_code") == VILLAGE
        assert errors == []
