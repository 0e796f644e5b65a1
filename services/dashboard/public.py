"""The village's public notice (公示), as the boards in the villages show it: who the legal advisor is, their
organisation and published contact, and what was done in the village this year, in counts only. No login,
no resident's data, no free text: pure functions from what the queries found to JSON and HTML."""

from __future__ import annotations

from html import escape
from typing import Any

from services.dashboard.rules import work_report

HOTLINE = "12348"
ADVISOR_KINDS = {"lawyer": "律师", "legal_service_worker": "基层法律服务工作者", "other": "其他"}


def notice(
    village: dict[str, Any],
    path: list[dict[str, Any]],
    advisors: list[dict[str, Any]],
    year: int,
    figures: dict[str, float],
) -> dict[str, Any]:
    """What the public page shows: names, the advisors' cards and the year's counts (the work report)."""
    return {
        "village": {"code": village["code"], "name": village["name"]},
        "place": "".join(region["name"] for region in path),
        "year": year,
        "advisors": [
            {
                "name": advisor["name"],
                "kind": ADVISOR_KINDS.get(advisor["kind"] or "", ""),
                "organisation": advisor["organisation"],
                "phone": advisor["phone"],
                "term_start": advisor["term_start"].isoformat(),
                "term_end": advisor["term_end"].isoformat(),
            }
            for advisor in advisors
            if advisor["name"] is not None
        ],
        "hotline": HOTLINE,
        "counts": [{"item": line["item"], "count": line["count"]} for line in work_report(figures)],
    }


def notice_html(shown: dict[str, Any]) -> str:
    """The notice as a page that prints on one sheet and needs no script."""
    village = escape(shown["village"]["name"])
    cards = (
        "".join(
            "<div class='card'>"
            f"<p class='name'>{escape(advisor['name'])}</p>"
            f"<p>{escape(advisor['kind'])} · {escape(advisor['organisation'])}</p>"
            f"<p>联系电话：<span class='phone'>{escape(advisor['phone'] or '请拨打 ' + HOTLINE)}</span></p>"
            f"<p class='term'>服务期：{advisor['term_start']} 至 {advisor['term_end']}</p>"
            "</div>"
            for advisor in shown["advisors"]
        )
        or "<p>本村（社区）暂未配备法律顾问，请拨打公共法律服务热线 12348。</p>"
    )
    rows = "".join(
        f"<tr><td>{escape(str(line['item']))}</td><td class='number'>{line['count']}</td></tr>"
        for line in shown["counts"]
    )
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{village} · 法律顾问公示</title>
<style>
body {{ font-family: "PingFang SC", "Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif; margin: 0 auto;
       max-width: 720px; padding: 16px; color: #1f2933; }}
h1 {{ color: #8b1e1e; font-size: 24px; margin-bottom: 4px; }}
.place {{ color: #52606d; margin-top: 0; }}
.card {{ border: 2px solid #8b1e1e; border-radius: 8px; padding: 8px 16px; margin: 8px 0; }}
.card .name {{ font-size: 22px; font-weight: 600; margin: 4px 0; }}
.card p {{ margin: 4px 0; }}
table {{ border-collapse: collapse; width: 100%; }}
td {{ border: 1px solid #d9dde3; padding: 4px 8px; }}
td.number {{ text-align: right; font-weight: 600; }}
footer {{ color: #616e7c; font-size: 13px; margin-top: 16px; }}
</style></head>
<body>
<h1>{village} 法律顾问公示</h1>
<p class="place">{escape(shown["place"])}</p>
<h2>本村（社区）法律顾问</h2>
<section id="advisors">{cards}</section>
<h2>{shown["year"]}年本村法律服务情况</h2>
<table id="counts">{rows}</table>
<footer>公共法律服务热线 {HOTLINE} · 数据来自法律顾问工作台账，仅公示次数，不含群众个人信息。</footer>
</body></html>"""
