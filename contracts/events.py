"""The payloads of every event in the catalogue (../shared/EVENTS.md), version 1.

Each payload class names its CloudEvents `type`, its topic and its record key. Fields marked
`x-personal` in their JSON Schema hold residents' personal data or free text: they never reach
logs, metrics or statistics, and the ledger stores them apart.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from contracts.topics import ASSESSMENT, REGISTRY, VILLAGE_SERVICES

DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")
MAX_VISIT = timedelta(hours=24)

PERSONAL: dict[str, Any] = {"x-personal": True}
# C0 controls other than tab, line feed and carriage return, DEL, and lone surrogates. PostgreSQL refuses
# NUL, spreadsheets and terminals misread the rest; every consumer refuses what intake refuses, so a record
# is either in every projection or in none. A validator, not a JSON Schema pattern: the v1 schemas stay as
# they are (a new pattern would count as narrowed) and the rule is the same on both sides of Kafka.
CONTROL_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
ASCII_DIGITS = re.compile(r"[0-9]*")
TERM_YEARS = (2000, 2100)
TERM_MAX_YEARS = 10


def refuse_control_characters(value: Any) -> Any:
    """Refuse text (also inside lists and mappings) carrying a control character; other values pass."""
    if isinstance(value, str):
        found = CONTROL_CHARACTER.search(value)
        if found is not None:
            raise PydanticCustomError(
                "no_control_characters",
                "text must not contain control characters (U+0000-U+001F other than tab, line feed and "
                "carriage return, U+007F, lone surrogates): U+{code} at position {position}",
                {"code": f"{ord(found.group()):04X}", "position": found.start()},
            )
    elif isinstance(value, list | tuple):
        for item in value:
            refuse_control_characters(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_control_characters(key)
            refuse_control_characters(item)
    return value


def _ascii_digits(code: str) -> str:
    # Python's `\d` (and `str.isdigit`) match any script's digits (fullwidth, Arabic-Indic); JSON Schema's
    # regular expressions are ECMA-262, where `\d` is [0-9]. The patterns say [0-9], and this validator keeps
    # the rule even for a pattern that pydantic's regex engine would read differently.
    if not ASCII_DIGITS.fullmatch(code):
        raise PydanticCustomError("ascii_digits", "a division code is written with the ASCII digits 0-9")
    return code


def _not_a_number(kind: str, example: str) -> Any:
    def refuse(value: Any) -> Any:
        if isinstance(value, int | float):
            raise PydanticCustomError(
                f"{kind}_string", f"a {kind} is an ISO 8601 string, e.g. {example}, not a number"
            )
        return value

    return refuse


_refuse_numeric_time = _not_a_number("datetime", "2026-03-20T09:30:00+08:00")
_refuse_numeric_date = _not_a_number("date", "2026-03-20")


# An amount written as a string, as the v1 schemas say it (Yuan's JSON Schema below).
AMOUNT_TEXT_PATTERN = r"^[0-9]{1,8}(\.[0-9]{1,2})?$"
AMOUNT_TEXT = re.compile(AMOUNT_TEXT_PATTERN)
# The validation context of a producer (intake): what it accepts it publishes, so it is held to the
# published schema. A consumer reads without it, and keeps reading what was published before the rule.
PRODUCING = "producing"


def _ascii_amount(value: Any, info: ValidationInfo) -> Any:
    # Decimal() reads full-width and Arabic-Indic digits; ajv, Go and Java refuse them (the schema: [0-9]).
    if isinstance(value, str) and not value.isascii():
        raise PydanticCustomError("ascii_digits", "an amount is written with the ASCII digits 0-9")
    # Decimal() also reads "3e3", "+3000", "1_000" and digits padded with spaces or control characters;
    # "3e3" was then published as "3E+3", which the schema's pattern (and every integrator's validator)
    # refuses. A producer takes the schema's form only.
    if (
        isinstance(value, str)
        and info.context
        and info.context.get(PRODUCING)
        and not AMOUNT_TEXT.fullmatch(value)
    ):
        raise PydanticCustomError(
            "string_pattern_mismatch",
            "an amount written as a string is digits with at most two decimals, e.g. 3000 or 3000.50",
            {"pattern": AMOUNT_TEXT_PATTERN},
        )
    return value


def _ascii_digits_month(month: str) -> str:
    if not ASCII_DIGITS.fullmatch(month.replace("-", "")):
        raise PydanticCustomError("ascii_digits", "a month is written with the ASCII digits 0-9")
    return month


def _attach_default_zone(value: Any) -> Any:
    """A naive time is read as Asia/Shanghai, the zone every advisor works in."""
    value = _refuse_numeric_time(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=DEFAULT_ZONE)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=DEFAULT_ZONE)
    return value


def _village_code_is_well_formed(code: str) -> str:
    village_part = int(code[9:12])
    if not 1 <= village_part <= 599:
        raise ValueError(
            "the last three digits of a village code are 001-199 (居委会), 200-399 (村委会), "
            "400-499 (类似居委会) or 500-599 (类似村委会)"
        )
    return code


# Numbers and flags as JSON writes them: "3", true for a count, 1 or "true" for a flag are refused (the
# v1 JSON Schemas always said integer and boolean; strictness makes the models agree with them).
Whole = Annotated[int, Strict()]
Flag = Annotated[bool, Strict()]
Real = Annotated[float, Strict()]
Timestamp = Annotated[datetime, BeforeValidator(_attach_default_zone)]
Day = Annotated[date, BeforeValidator(_refuse_numeric_date)]
VillageCode = Annotated[
    str,
    Field(pattern=r"^[0-9]{12}$", description="12-digit national statistical division code of a village"),
    AfterValidator(_ascii_digits),
    AfterValidator(_village_code_is_well_formed),
]
RegionCode = Annotated[
    str,
    Field(
        pattern=r"^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{9}|[0-9]{12})$",
        description="division code: 2 (province), 4 (prefecture), 6 (county), 9 (township) or 12 (village)",
    ),
    AfterValidator(_ascii_digits),
]
# The country (全国), the level above the provinces: the Ministry's view. Not a division code of the
# statistical tables (they start at the provinces), so not a prefix of one: `region_prefix` says what a
# region's codes start with ("" for the country).
COUNTRY_CODE = "0"
DIVISION_CODE_PATTERN = r"^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{9}|[0-9]{12})$"
# A registered region's code: a division code or the country's. The schema says so as a choice (the
# division codes' pattern unchanged beside the one new value), which is how a reader of 1.2 sees it widened.
RegisteredRegionCode = Annotated[
    str,
    Field(pattern=r"^(0|[0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{9}|[0-9]{12})$"),
    AfterValidator(_ascii_digits),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DIVISION_CODE_PATTERN},
                {"type": "string", "const": COUNTRY_CODE},
            ],
            "description": "division code: 2 (province), 4 (prefecture), 6 (county), 9 (township) or 12 "
            "(village); or 0, the country (全国) above the provinces",
        }
    ),
]


def region_prefix(code: str) -> str:
    """What the codes within a region start with: the code itself, or "" for the country."""
    return "" if code == COUNTRY_CODE else code


AdvisorId = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="stable advisor identifier, e.g. the licence number or a registry id",
    ),
]
TeamId = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="stable identifier of an advisor team (律师团队), e.g. a registry id",
    ),
]
PrincipalId = Annotated[str, Field(min_length=1, max_length=128, description="authenticated principal")]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
FreeText = Annotated[str, Field(max_length=4000, json_schema_extra=PERSONAL)]
Count = Annotated[Whole, Field(ge=0, le=1_000_000)]
Minutes = Annotated[Whole, Field(ge=0, le=1440, description="minutes, at most one day")]
Month = Annotated[
    str,
    Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="YYYY-MM"),
    AfterValidator(_ascii_digits_month),
]
Yuan = Annotated[
    Decimal,
    BeforeValidator(_ascii_amount),
    Field(ge=0, le=10_000_000, decimal_places=2),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 10_000_000},
                {"type": "string", "pattern": AMOUNT_TEXT_PATTERN},
            ],
            "description": "yuan with at most two decimals; written as a string",
        }
    ),
]
Ratio = Annotated[Real, Field(ge=0, le=1)]
Tag = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]

LEVEL_DIGITS = {"country": 1, "province": 2, "prefecture": 4, "county": 6, "township": 9, "village": 12}


class Channel(StrEnum):
    on_site = "on_site"
    phone = "phone"
    wechat = "wechat"
    online = "online"
    hotline_12348 = "hotline_12348"


class LegalTopic(StrEnum):
    land = "land"
    marriage_family = "marriage_family"
    labour = "labour"
    contract_debt = "contract_debt"
    neighbour_property = "neighbour_property"
    inheritance = "inheritance"
    personal_injury = "personal_injury"
    administrative = "administrative"
    other = "other"


class MediationOutcome(StrEnum):
    resolved = "resolved"
    partially_resolved = "partially_resolved"
    unresolved = "unresolved"
    referred = "referred"


class LectureFormat(StrEnum):
    on_site = "on_site"
    online = "online"


class LegalAidKind(StrEnum):
    referral = "referral"
    application_assisted = "application_assisted"
    case_represented = "case_represented"


class VisitActivity(StrEnum):
    consultation = "consultation"
    mediation = "mediation"
    lecture = "lecture"
    document_review = "document_review"
    village_meeting = "village_meeting"
    patrol = "patrol"
    other = "other"


class DocumentKind(StrEnum):
    village_rules = "village_rules"
    contract_review = "contract_review"
    legal_document_drafted = "legal_document_drafted"
    legal_opinion = "legal_opinion"


class RiskCategory(StrEnum):
    mass_incident_risk = "mass_incident_risk"
    large_petition_risk = "large_petition_risk"
    other = "other"


class Severity(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


class ReportedTo(StrEnum):
    township = "township"
    county = "county"


class Rater(StrEnum):
    resident = "resident"
    village_cadre = "village_cadre"
    township_office = "township_office"


class AdvisorKind(StrEnum):
    lawyer = "lawyer"
    legal_service_worker = "legal_service_worker"
    other = "other"


class ReleaseReason(StrEnum):
    term_ended = "term_ended"
    replaced = "replaced"
    dismissed = "dismissed"
    other = "other"


class RegionLevel(StrEnum):
    country = "country"
    province = "province"
    prefecture = "prefecture"
    county = "county"
    township = "township"
    village = "village"


class RetireReason(StrEnum):
    merged = "merged"
    abolished = "abolished"
    renamed = "renamed"


class AlertKind(StrEnum):
    hours_at_risk = "hours_at_risk"
    hours_missed = "hours_missed"
    lecture_due = "lecture_due"
    lecture_missed = "lecture_missed"
    no_activity = "no_activity"


class Grade(StrEnum):
    excellent = "excellent"
    good = "good"
    qualified = "qualified"
    unqualified = "unqualified"
    violation = "violation"


class LecturePeriod(StrEnum):
    quarter = "quarter"
    year = "year"


class ScoreComponent(StrEnum):
    monthly_hours = "monthly_hours"
    lectures = "lectures"
    large_events = "large_events"
    feedback = "feedback"
    timely_recording = "timely_recording"


class VillageKind(StrEnum):
    """Kinds a policy may set different norms for: urban communities (居委会 001-199, 类似居委会 400-499),
    villages (村委会 200-399, 类似村委会 500-599), and villages a county marks remote."""

    urban_community = "urban_community"
    village = "village"
    remote = "remote"


class HoursBasis(StrEnum):
    """How a village served by a team meets its monthly on-site requirement: each member on their own
    (per_person, as every advisor always has), or the members' minutes together (per_team: 越秀's 社区律师
    团队化, "汇一个团队之力服务一个社区")."""

    per_person = "per_person"
    per_team = "per_team"


# The fields of the contracts' models that carry free text: the control-character rule is checked on these.
# Every other field cannot carry one: a number, a time, an enum's member, a nested model (checked by its own
# fields), or text held to a pattern whose characters exclude them (codes, ids, phones, the seal). Checked on
# each of them it was a call from pydantic's validator into Python per field, most of the rule's cost
# (about 4 µs of a record's validation, at intake and in every consumer alike; issue 17).
# `tests/unit/test_contracts_text_fields.py` walks every model's schema: a new field of free text that is
# not named here fails it.
TEXT_FIELDS = (
    "acted_by",
    "changes",
    "comment",
    "description",
    "detail",
    "erased_by",
    "licence_no",
    "name",
    "organisation",
    "reason",
    "recorded_by",
    "summary",
    "title",
)


class ContractModel(BaseModel):
    """Base of every model in the contracts: no text anywhere carries a control character."""

    @field_validator(*TEXT_FIELDS, check_fields=False)
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        return refuse_control_characters(value)


class PrincipalRole(StrEnum):
    """The role of an authenticated caller, as intake's tokens carry it."""

    advisor = "advisor"
    township_office = "township_office"
    county_bureau = "county_bureau"
    prefecture_bureau = "prefecture_bureau"
    province_department = "province_department"
    integration = "integration"
    ministry = "ministry"  # 司法部: reads every region of the country (region "0"), records nothing


# Who may void a record somebody else recorded: the offices that supervise the village (司法所 and up).
SUPERVISING_ROLES = frozenset(
    {
        PrincipalRole.township_office,
        PrincipalRole.county_bureau,
        PrincipalRole.prefecture_bureau,
        PrincipalRole.province_department,
    }
)


class SealedPersonal(ContractModel):
    """A record's personal fields, sealed by intake with a data key of their own (AES-256-GCM). The key
    lives in the key store, never on a topic: erasing it makes every copy unreadable, in Kafka, in
    rebuilds, in retired schemas and in backups (crypto-shredding)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: UUID = Field(description="the data key in the key store; erased keys are gone for good")
    algorithm: Literal["AES-256-GCM"] = "AES-256-GCM"
    nonce: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{16}$", description="12 bytes, base64url")]
    ciphertext: Annotated[
        str,
        Field(
            pattern=r"^[A-Za-z0-9_-]+$",
            max_length=65_536,
            description="base64url of the encrypted JSON object of the personal fields, with its tag",
        ),
    ]


SEALED_PERSONAL_FIELD = "sealed_personal"
SealedPersonalField = Annotated[
    SealedPersonal | None,
    Field(
        description="set by intake: the personal fields, sealed; the plain personal fields are then absent"
    ),
]


def _personal_value(value: Any, info: ValidationInfo, required: bool) -> Any:
    """A personal field travels either plain (as a client sends it) or inside `sealed_personal`."""
    sealed = info.data.get(SEALED_PERSONAL_FIELD)
    if sealed is not None and value is not None:
        raise PydanticCustomError(
            "sealed_or_plain", "personal fields travel sealed: leave this out when sealed_personal is set"
        )
    if required and value is None and sealed is None:
        raise PydanticCustomError("missing", "Field required")
    return value


class EventPayload(ContractModel):
    """Base of every payload: unknown fields are refused, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)

    event_type: ClassVar[str]
    kafka_topic: ClassVar[str]

    def record_key(self) -> str:
        raise NotImplementedError


class ServiceRecord(EventPayload):
    """Common fields of everything an advisor does in a village (topic village-services)."""

    kafka_topic: ClassVar[str] = VILLAGE_SERVICES

    advisor_id: AdvisorId
    village_code: VillageCode
    occurred_at: Timestamp = Field(description="when it happened; a naive time is read as Asia/Shanghai")
    recorded_by: PrincipalId = Field(description="set by intake from the authenticated principal")
    recorded_by_role: PrincipalRole | None = Field(
        default=None, description="set by intake: the role of the principal who recorded it"
    )
    imported: Flag | None = Field(
        default=None,
        description="set by intake: true when the record came from a bulk import of history (an old "
        "ledger), which keeps the original recorded_by and recorded_at; absent for records sent as they "
        "happened. Not part of what the fact is: left out of the content fingerprint",
    )
    team_id: TeamId | None = Field(
        default=None,
        description="the team (team.registered) the advisor served the village with (团队化服务); "
        "advisor_id is then the member who served. Absent for an advisor's own work",
    )

    def record_key(self) -> str:
        return self.village_code


class ConsultationRequester(ContractModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str | None, Field(max_length=100, json_schema_extra=PERSONAL)] = None
    phone: Annotated[str | None, Field(pattern=r"^\+?[0-9 -]{5,20}$", json_schema_extra=PERSONAL)] = None


class ConsultationRecorded(ServiceRecord):
    """法律咨询."""

    event_type: ClassVar[str] = "consultation.recorded"

    channel: Channel
    person_times: Annotated[Whole, Field(ge=1, le=10_000, description="人次")]
    topic: LegalTopic
    duration_minutes: Minutes | None = None
    sealed_personal: SealedPersonalField = None
    summary: FreeText | None = None
    requester: Annotated[ConsultationRequester | None, Field(json_schema_extra=PERSONAL)] = None

    @field_validator("summary", "requester")
    @classmethod
    def _plain_or_sealed(cls, value: Any, info: ValidationInfo) -> Any:
        return _personal_value(value, info, required=False)


class MediationRecorded(ServiceRecord):
    """矛盾纠纷调解."""

    event_type: ClassVar[str] = "mediation.recorded"

    dispute_type: LegalTopic
    parties: Annotated[Whole, Field(ge=2, le=10_000)]
    outcome: MediationOutcome
    major_or_difficult: Flag = Field(description="重大疑难")
    petition_backlog: Flag = Field(description="信访积案")
    agreement_signed: Flag
    duration_minutes: Minutes | None = None


class LectureHeld(ServiceRecord):
    """法治讲座."""

    event_type: ClassVar[str] = "lecture.held"

    title: ShortText
    attendees: Count
    evening_or_holiday: Flag
    format: LectureFormat
    large_event: Flag = Field(description="大型法律服务进村活动")
    duration_minutes: Minutes | None = None


class LegalAidAssisted(ServiceRecord):
    """法律援助 / 代理案件."""

    event_type: ClassVar[str] = "legal_aid.assisted"

    kind: LegalAidKind
    case_category: LegalTopic
    applicants: Annotated[Whole, Field(ge=1, le=10_000)]


class VisitLogged(ServiceRecord):
    """驻村服务 (一次一记): on-site time that counts towards the monthly hours."""

    event_type: ClassVar[str] = "visit.logged"

    started_at: Timestamp
    ended_at: Timestamp
    activities: Annotated[list[VisitActivity], Field(min_length=1, max_length=20)]

    @field_validator("ended_at")
    @classmethod
    def _visit_is_one_stretch_of_under_a_day(cls, ended_at: datetime, info: ValidationInfo) -> datetime:
        started_at = info.data.get("started_at")
        if started_at is None:
            return ended_at
        if ended_at <= started_at:
            raise ValueError("ended_at must be after started_at")
        if ended_at - started_at >= MAX_VISIT:
            raise ValueError("a visit must be shorter than 24 hours")
        return ended_at

    @property
    def on_site_minutes(self) -> int:
        return int((self.ended_at - self.started_at).total_seconds() // 60)


class DocumentReviewed(ServiceRecord):
    """文书 / 村规民约 / 法律意见."""

    event_type: ClassVar[str] = "document.reviewed"

    kind: DocumentKind
    title: ShortText


class RiskReported(ServiceRecord):
    """社情民意 / 风险上报."""

    event_type: ClassVar[str] = "risk.reported"

    category: RiskCategory
    severity: Severity
    people_involved: Count
    sealed_personal: SealedPersonalField = None
    description: Annotated[FreeText | None, Field(validate_default=True)] = None
    reported_to: ReportedTo

    @field_validator("description")
    @classmethod
    def _plain_or_sealed(cls, value: Any, info: ValidationInfo) -> Any:
        return _personal_value(value, info, required=True)


class FeedbackSubmitted(ServiceRecord):
    """群众 / 干部评价."""

    event_type: ClassVar[str] = "feedback.submitted"

    rater: Rater
    score: Annotated[Whole, Field(ge=1, le=5)]
    sealed_personal: SealedPersonalField = None
    comment: FreeText | None = None

    @field_validator("comment")
    @classmethod
    def _plain_or_sealed(cls, value: Any, info: ValidationInfo) -> Any:
        return _personal_value(value, info, required=False)


class RecordVoided(ServiceRecord):
    """更正: a correction is a void plus a new record; nothing is updated in place."""

    event_type: ClassVar[str] = "record.voided"

    target_event_id: UUID
    sealed_personal: SealedPersonalField = None
    reason: Annotated[
        str | None, Field(min_length=1, max_length=500, json_schema_extra=PERSONAL, validate_default=True)
    ] = None

    @field_validator("reason")
    @classmethod
    def _plain_or_sealed(cls, value: Any, info: ValidationInfo) -> Any:
        return _personal_value(value, info, required=True)


def void_permitted(void: RecordVoided, target_advisor_id: str, target_recorded_by: str | None) -> bool:
    """Whether a void may take its target back (every consumer applies this one rule): the advisor whose
    work it is or whoever recorded it, or an office that supervises the village (司法所 and up; intake has
    checked that the office's region covers the village). A void from before roles travelled with records
    (no role) keeps the earlier rule, so old history replays as it was counted."""
    if void.recorded_by_role is None or target_recorded_by is None:
        return True
    if void.recorded_by_role in SUPERVISING_ROLES:
        return True
    if void.recorded_by_role is PrincipalRole.advisor and void.recorded_by == target_advisor_id:
        return True
    return void.recorded_by == target_recorded_by


class ErasureReason(StrEnum):
    data_subject_request = "data_subject_request"
    recorded_in_error = "recorded_in_error"
    retention_expired = "retention_expired"
    other = "other"


class PersonalErased(EventPayload):
    """个人信息删除 (PIPL Art. 47): the personal fields of one record were erased. Its data key was
    destroyed before this was published, so every sealed copy is unreadable; consumers forget any plain
    copy they hold, and a rebuild applies it again."""

    event_type: ClassVar[str] = "personal.erased"
    kafka_topic: ClassVar[str] = VILLAGE_SERVICES

    target_event_id: UUID = Field(description="the record whose personal fields were erased")
    village_code: VillageCode = Field(description="the target's village (the record key: per-village order)")
    erased_at: Timestamp
    erased_by: PrincipalId
    reason: ErasureReason

    def record_key(self) -> str:
        return self.village_code


class RegistryEvent(EventPayload):
    kafka_topic: ClassVar[str] = REGISTRY


class PublicContact(ContractModel):
    """A contact the advisor chose to publish on the village notice board (公示), with the day they agreed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    phone: Annotated[str, Field(pattern=r"^\+?[0-9 -]{5,20}$")]
    consented_on: Day


def registration_permitted(owner_region: str | None, registration: AdvisorRegistered) -> bool:
    """Whether a registration may change an advisor already registered (every consumer applies this one
    rule): only the region that owns it, or one above it. A registration from before regions travelled
    with them changes only an advisor nobody owns yet."""
    if owner_region is None:
        return True
    if registration.region_code is None:
        return False
    return owner_region.startswith(registration.region_code)


def registrations_permitted(
    owners: dict[str, str | None], registrations: Iterable[AdvisorRegistered]
) -> tuple[dict[str, tuple[AdvisorRegistered, str | None]], int]:
    """A run of registrations as one by one under `registration_permitted`, for one write: for each advisor
    the last registration that was permitted and the owner it leaves (a registration naming no region keeps
    the owner), and how many were refused. `owners`: the advisors already registered, with their owners."""
    known = dict(owners)
    kept: dict[str, tuple[AdvisorRegistered, str | None]] = {}
    refused = 0
    for registration in registrations:
        advisor = registration.advisor_id
        if advisor in known and not registration_permitted(known[advisor], registration):
            refused += 1
            continue
        owner = registration.region_code if registration.region_code is not None else known.get(advisor)
        known[advisor] = owner
        kept[advisor] = (registration, owner)
    return kept, refused


class AdvisorRegistered(RegistryEvent):
    event_type: ClassVar[str] = "advisor.registered"

    advisor_id: AdvisorId
    name: Annotated[str, Field(min_length=1, max_length=100)]
    kind: AdvisorKind
    organisation: ShortText
    licence_no: Annotated[str, Field(min_length=1, max_length=64)]
    sealed_personal: SealedPersonalField = None
    phone: Annotated[str | None, Field(pattern=r"^\+?[0-9 -]{5,20}$", json_schema_extra=PERSONAL)] = None
    recorded_by: PrincipalId | None = None
    region_code: RegionCode | None = Field(
        default=None,
        description="the region that owns this registration (intake sets the caller's region when left "
        "out); only that region or one above it may change the advisor afterwards",
    )
    public_contact: PublicContact | None = Field(
        default=None,
        description="the one contact shown on the village notice (公示), by the advisor's choice",
    )

    @field_validator("phone")
    @classmethod
    def _plain_or_sealed(cls, value: Any, info: ValidationInfo) -> Any:
        return _personal_value(value, info, required=False)

    def record_key(self) -> str:
        return self.advisor_id


def _term_in_sane_years(day: date) -> date:
    first, last = TERM_YEARS
    if not first <= day.year <= last:
        raise PydanticCustomError(
            "term_years", "a term lies within the years {first}-{last}", {"first": first, "last": last}
        )
    return day


def _term_ends_after_it_starts(term_end: date, info: ValidationInfo) -> date:
    term_start = info.data.get("term_start")
    if term_start is not None and term_end < term_start:
        raise ValueError("term_end must not be before term_start")
    if term_start is not None and term_end.year - term_start.year > TERM_MAX_YEARS:
        raise PydanticCustomError(
            "term_length", "a term lasts at most {years} years", {"years": TERM_MAX_YEARS}
        )
    return term_end


class AdvisorAssigned(RegistryEvent):
    event_type: ClassVar[str] = "advisor.assigned"

    advisor_id: AdvisorId
    village_code: VillageCode
    term_start: Day
    term_end: Day
    annual_subsidy_yuan: Yuan
    recorded_by: PrincipalId | None = None

    _term_in_sane_years = field_validator("term_start", "term_end")(_term_in_sane_years)
    _term_ends_after_it_starts = field_validator("term_end")(_term_ends_after_it_starts)

    def record_key(self) -> str:
        return self.village_code


class AdvisorReleased(RegistryEvent):
    event_type: ClassVar[str] = "advisor.released"

    advisor_id: AdvisorId
    village_code: VillageCode
    effective_date: Day
    reason: ReleaseReason
    recorded_by: PrincipalId | None = None

    def record_key(self) -> str:
        return self.village_code


class TeamRegistered(RegistryEvent):
    """An advisor team (律师团队): a law firm's group serving a village, or a firm serving a whole township
    (南沙: 1个律师事务所+1个镇街). A team is registered and assigned like an advisor; registering it again
    changes its name and organisation, and its members from `effective_from` on. Its members are
    registered advisors; records name the member who served (`advisor_id`) and the team (`team_id`)."""

    event_type: ClassVar[str] = "team.registered"

    team_id: TeamId
    name: Annotated[str, Field(min_length=1, max_length=100)]
    organisation: ShortText
    members: Annotated[
        list[AdvisorId],
        Field(min_length=1, max_length=100, description="the advisors (advisor_id) in the team, each once"),
    ]
    leader_id: AdvisorId | None = Field(default=None, description="the team's leader (队长), one of members")
    effective_from: Day | None = Field(
        default=None,
        description="the first day these members serve as the team (absent: from the start); a member's "
        "team records count for the team on the days the registration in force lists them",
    )
    recorded_by: PrincipalId | None = None
    region_code: RegionCode | None = Field(
        default=None, description="the region that registered the team (intake sets the caller's region)"
    )

    @field_validator("members")
    @classmethod
    def _each_member_once(cls, members: list[str]) -> list[str]:
        repeated = sorted({member for member in members if members.count(member) > 1})
        if repeated:
            raise PydanticCustomError(
                "unique_members", "each member is listed once: {repeated}", {"repeated": ", ".join(repeated)}
            )
        return members

    @field_validator("leader_id")
    @classmethod
    def _leader_is_a_member(cls, leader_id: str | None, info: ValidationInfo) -> str | None:
        members = info.data.get("members")
        if leader_id is not None and members is not None and leader_id not in members:
            raise PydanticCustomError("leader_is_member", "the leader is one of the team's members")
        return leader_id

    def record_key(self) -> str:
        return self.team_id


class TeamAssigned(RegistryEvent):
    """A team assigned to a village for a term, as `advisor.assigned` assigns an advisor
    (`contracts.assignment` says which days a term covers)."""

    event_type: ClassVar[str] = "team.assigned"

    team_id: TeamId
    village_code: VillageCode
    term_start: Day
    term_end: Day
    annual_subsidy_yuan: Yuan
    recorded_by: PrincipalId | None = None

    _term_in_sane_years = field_validator("term_start", "term_end")(_term_in_sane_years)
    _term_ends_after_it_starts = field_validator("term_end")(_term_ends_after_it_starts)

    def record_key(self) -> str:
        return self.village_code


class TeamReleased(RegistryEvent):
    """A team released from a village; `effective_date` is the last day served, as for an advisor."""

    event_type: ClassVar[str] = "team.released"

    team_id: TeamId
    village_code: VillageCode
    effective_date: Day
    reason: ReleaseReason
    recorded_by: PrincipalId | None = None

    def record_key(self) -> str:
        return self.village_code


class ViolationRecorded(RegistryEvent):
    """A violation of law or discipline: forces the year's grade to `violation` (subsidy 0)."""

    event_type: ClassVar[str] = "violation.recorded"

    advisor_id: AdvisorId
    village_code: VillageCode | None = None
    date: Day
    sealed_personal: SealedPersonalField = None
    description: Annotated[FreeText | None, Field(validate_default=True)] = None
    recorded_by: PrincipalId

    @field_validator("description")
    @classmethod
    def _plain_or_sealed(cls, value: Any, info: ValidationInfo) -> Any:
        return _personal_value(value, info, required=True)

    def record_key(self) -> str:
        return self.advisor_id


class RegionRegistered(RegistryEvent):
    event_type: ClassVar[str] = "region.registered"

    code: RegisteredRegionCode
    name: Annotated[str, Field(min_length=1, max_length=100)]
    level: RegionLevel
    parent_code: RegionCode | None = Field(default=None, validate_default=True)
    recorded_by: PrincipalId | None = None

    @field_validator("level")
    @classmethod
    def _code_fits_level(cls, level: RegionLevel, info: ValidationInfo) -> RegionLevel:
        code = info.data.get("code")
        if code is not None and len(code) != LEVEL_DIGITS[level]:
            raise ValueError(f"a {level} code has {LEVEL_DIGITS[level]} digits")
        if code is not None and level is RegionLevel.village:
            _village_code_is_well_formed(code)
        return level

    @field_validator("parent_code")
    @classmethod
    def _parent_is_the_level_above(cls, parent_code: str | None, info: ValidationInfo) -> str | None:
        code, level = info.data.get("code"), info.data.get("level")
        if code is None or level is None:
            return parent_code
        if level in (RegionLevel.country, RegionLevel.province):
            # a province keeps no parent_code (as in 1.2): the country is above every province anyway
            if parent_code is not None:
                raise ValueError(f"a {level} has no parent_code")
        elif parent_code is None or not code.startswith(parent_code):
            raise ValueError("parent_code must be the code's prefix of the level above")
        elif len(parent_code) != max(d for d in LEVEL_DIGITS.values() if d < len(code)):
            raise ValueError("parent_code must be of the level directly above")
        return parent_code

    def record_key(self) -> str:
        return self.code


class RegionRetired(RegistryEvent):
    event_type: ClassVar[str] = "region.retired"

    code: RegionCode
    effective_date: Day
    reason: RetireReason
    successor_code: RegionCode | None = Field(default=None, validate_default=True)
    recorded_by: PrincipalId | None = None

    @field_validator("successor_code")
    @classmethod
    def _merged_into_a_region_of_the_same_level(
        cls, successor: str | None, info: ValidationInfo
    ) -> str | None:
        if info.data.get("reason") is RetireReason.merged and successor is None:
            raise ValueError("a merged region names its successor_code")
        code = info.data.get("code")
        if successor is not None and code is not None and len(successor) != len(code):
            raise ValueError("successor_code must be of the same level as code")
        return successor

    def record_key(self) -> str:
        return self.code


class RegionClassified(RegistryEvent):
    event_type: ClassVar[str] = "region.classified"

    code: RegionCode
    tags: Annotated[list[Tag], Field(max_length=20, description="e.g. remote, mountain, suburban")]
    effective_from: Day
    recorded_by: PrincipalId

    def record_key(self) -> str:
        return self.code


class VillageNorms(ContractModel):
    """Monthly on-site norms for one kind of village."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    on_site_minutes_per_month: Annotated[Whole, Field(ge=0, le=44_640)] = 480
    offsite_credit_rate: Ratio = Field(
        default=0.0, description="非现场服务折抵: minutes credited per off-site minute"
    )
    offsite_credit_cap_minutes: Annotated[Whole, Field(ge=0, le=44_640)] = 0


class GradeThresholds(ContractModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    excellent: Annotated[Real, Field(ge=0, le=100)] = 90
    good: Annotated[Real, Field(ge=0, le=100)] = 80
    qualified: Annotated[Real, Field(ge=0, le=100)] = 60

    @field_validator("qualified")
    @classmethod
    def _thresholds_descend(cls, qualified: float, info: ValidationInfo) -> float:
        excellent, good = info.data.get("excellent"), info.data.get("good")
        if excellent is not None and good is not None and not excellent >= good >= qualified:
            raise ValueError("thresholds must satisfy excellent >= good >= qualified")
        return qualified


def _default_weights() -> dict[ScoreComponent, float]:
    return {
        ScoreComponent.monthly_hours: 0.35,
        ScoreComponent.lectures: 0.15,
        ScoreComponent.large_events: 0.1,
        ScoreComponent.feedback: 0.25,
        ScoreComponent.timely_recording: 0.15,
    }


def _default_subsidy_ratios() -> dict[Grade, float]:
    return {
        Grade.excellent: 1.0,
        Grade.good: 1.0,
        Grade.qualified: 0.7,
        Grade.unqualified: 0.5,
        Grade.violation: 0.0,
    }


class PolicyRules(ContractModel):
    """What a region's assessment policy sets; defaults are Zaozhuang's (2017)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    norms: VillageNorms = VillageNorms()
    norms_by_village_kind: dict[VillageKind, VillageNorms] = Field(
        default_factory=dict, description="overrides of `norms`; remote wins over the code's kind"
    )
    lectures_required: Annotated[Whole, Field(ge=0, le=100)] = 1
    lecture_period: LecturePeriod = LecturePeriod.quarter
    evening_or_holiday_lectures_per_year: Annotated[Whole, Field(ge=0, le=100)] = 0
    large_events_per_year: Annotated[Whole, Field(ge=0, le=100)] = 1
    score_weights: dict[ScoreComponent, Annotated[Real, Field(ge=0, le=1)]] = Field(
        default_factory=_default_weights
    )
    grade_thresholds: GradeThresholds = GradeThresholds()
    subsidy_ratios: dict[Grade, Ratio] = Field(default_factory=_default_subsidy_ratios)
    grace_days: Annotated[Whole, Field(ge=0, le=90)] = 10
    timely_recording_days: Annotated[Whole, Field(ge=0, le=90)] = 7
    hours_at_risk_after_day: Annotated[Whole, Field(ge=1, le=31)] = 20
    lecture_due_days_before_end: Annotated[Whole, Field(ge=0, le=90)] = 14
    no_activity_days: Annotated[Whole, Field(ge=1, le=365)] = 30
    hours_basis: HoursBasis = Field(
        default=HoursBasis.per_person,
        description="a village served by a team (team.assigned) meets its monthly on-site norm when each "
        "member meets it (per_person) or when the members' minutes together do (per_team)",
    )

    @field_validator("score_weights")
    @classmethod
    def _weights_sum_to_one(cls, weights: dict[ScoreComponent, float]) -> dict[ScoreComponent, float]:
        total = sum(weights.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"score_weights must add up to 1 (they add up to {total:g})")
        return weights


class PolicyPublished(RegistryEvent):
    """Assessment rules are events too, so every grade can say which rules produced it."""

    event_type: ClassVar[str] = "policy.published"

    region_code: RegionCode
    effective_from: Day
    rules: PolicyRules
    recorded_by: PrincipalId

    def record_key(self) -> str:
        return self.region_code


class AssessmentEvent(EventPayload):
    kafka_topic: ClassVar[str] = ASSESSMENT

    advisor_id: AdvisorId
    village_code: VillageCode

    def record_key(self) -> str:
        return self.village_code


class MonthClosed(AssessmentEvent):
    event_type: ClassVar[str] = "compliance.month_closed"

    month: Month
    on_site_minutes: Annotated[Whole, Field(ge=0)]
    credited_offsite_minutes: Annotated[Whole, Field(ge=0)]
    required_minutes: Annotated[Whole, Field(ge=0)]
    met: Flag
    revision: Annotated[Whole, Field(ge=1)] = 1
    changes: Annotated[str | None, Field(max_length=1000)] = None


class AlertRaised(AssessmentEvent):
    event_type: ClassVar[str] = "compliance.alert_raised"

    kind: AlertKind
    as_of: Day
    detail: Annotated[str, Field(max_length=1000)]


class PolicyReference(ContractModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    region_code: RegionCode
    effective_from: Day
    event_id: UUID


class AssessmentGraded(AssessmentEvent):
    event_type: ClassVar[str] = "assessment.graded"

    year: Annotated[Whole, Field(ge=2000, le=2100)]
    score: Annotated[Real, Field(ge=0, le=100)]
    grade: Grade
    subsidy_ratio: Ratio
    subsidy_yuan: Yuan
    components: dict[ScoreComponent, Annotated[Real, Field(ge=0, le=100)]]
    policy: PolicyReference
    revision: Annotated[Whole, Field(ge=1)] = 1
    changes: Annotated[str | None, Field(max_length=1000)] = None


CountyCode = Annotated[
    str,
    Field(pattern=r"^[0-9]{6}$", description="6-digit division code of a county (县级): it grades and pays"),
    AfterValidator(_ascii_digits),
]
Reason = Annotated[str, Field(min_length=1, max_length=1000, description="written by the official who acts")]


class ApprovalEvent(EventPayload):
    """A step of a county's year-end approval (数据审批: the county assesses, the prefecture accepts). Every
    step of one county and year is keyed by the county, so they stay in order on one partition."""

    kafka_topic: ClassVar[str] = ASSESSMENT

    county_code: CountyCode
    year: Annotated[Whole, Field(ge=2000, le=2100)]
    acted_by: PrincipalId
    acted_at: Timestamp

    def record_key(self) -> str:
        return self.county_code


class GradeAdjusted(ApprovalEvent):
    """The county bureau changes one computed grade, with a written reason, before it submits."""

    event_type: ClassVar[str] = "approval.grade_adjusted"

    advisor_id: AdvisorId
    village_code: VillageCode
    based_on_revision: Annotated[Whole, Field(ge=1, description="the computed grade's revision it replaces")]
    grade: Grade
    subsidy_ratio: Ratio
    subsidy_yuan: Yuan
    reason: Reason


class SubmittedGrade(ContractModel):
    """One grade as the county submitted it: what is paid once the prefecture accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    advisor_id: AdvisorId
    village_code: VillageCode
    revision: Annotated[Whole, Field(ge=1, description="the computed grade's revision")]
    adjustment_id: UUID | None = Field(
        default=None, description="the approval.grade_adjusted applied, if any"
    )
    grade: Grade
    subsidy_ratio: Ratio
    subsidy_yuan: Yuan


class GradesSubmitted(ApprovalEvent):
    """The county bureau submits its year's grades (after any adjustments) to the prefecture."""

    event_type: ClassVar[str] = "approval.submitted"

    submission: Annotated[Whole, Field(ge=1, description="1 for the first, +1 for each re-submission")]
    grades: Annotated[list[SubmittedGrade], Field(min_length=1, max_length=20_000)]
    total_yuan: Yuan


class GradesReturned(ApprovalEvent):
    """The prefecture bureau sends a submission back with a reason; the county may adjust and re-submit."""

    event_type: ClassVar[str] = "approval.returned"

    submission: Annotated[Whole, Field(ge=1)]
    reason: Reason


class GradesAccepted(ApprovalEvent):
    """The prefecture bureau accepts a submission: its grades are locked and payable."""

    event_type: ClassVar[str] = "approval.accepted"

    submission: Annotated[Whole, Field(ge=1)]


PAYLOAD_TYPES: tuple[type[EventPayload], ...] = (
    ConsultationRecorded,
    MediationRecorded,
    LectureHeld,
    LegalAidAssisted,
    VisitLogged,
    DocumentReviewed,
    RiskReported,
    FeedbackSubmitted,
    RecordVoided,
    PersonalErased,
    AdvisorRegistered,
    AdvisorAssigned,
    AdvisorReleased,
    ViolationRecorded,
    RegionRegistered,
    RegionRetired,
    RegionClassified,
    PolicyPublished,
    TeamRegistered,
    TeamAssigned,
    TeamReleased,
    MonthClosed,
    AlertRaised,
    AssessmentGraded,
    GradeAdjusted,
    GradesSubmitted,
    GradesReturned,
    GradesAccepted,
)
PAYLOAD_BY_TYPE: dict[str, type[EventPayload]] = {cls.event_type: cls for cls in PAYLOAD_TYPES}
EVENT_TYPE_PATTERN = re.compile(r"^[a-z_]+\.[a-z_]+$")
# What the service records are called in ledgers, reports and notices (Chinese).
SERVICE_RECORD_NAMES: dict[str, str] = {
    "consultation.recorded": "法律咨询",
    "mediation.recorded": "矛盾纠纷调解",
    "lecture.held": "法治讲座",
    "legal_aid.assisted": "法律援助",
    "visit.logged": "驻村服务",
    "document.reviewed": "文书审查",
    "risk.reported": "风险上报",
    "feedback.submitted": "群众评价",
    "record.voided": "更正(作废)",
}

SchemaVersion = Literal[1]
SCHEMA_VERSION: SchemaVersion = 1


@functools.cache
def personal_field_names(payload_type: type[EventPayload]) -> frozenset[str]:
    """Top-level payload fields that carry personal data or free text (marked `x-personal`). Cached: the
    JSON schema it reads costs milliseconds, and the ledger asks for every entry."""
    properties: dict[str, Any] = payload_type.model_json_schema()["properties"]

    def marked(schema: dict[str, Any]) -> bool:
        return bool(schema.get("x-personal")) or any(marked(alt) for alt in schema.get("anyOf", ()))

    return frozenset(name for name, schema in properties.items() if marked(schema))
