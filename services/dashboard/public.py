"""The village's public notice (公示), as the boards in the villages show it: who the legal advisor is, their
organisation and published contact, and what was done in the village this year, in counts only. No login,
no resident's data, no free text: pure functions from what the queries found to JSON and HTML. The page
prints as one A4 sheet for the board, with a QR code (segno) that opens the page on a phone."""

from __future__ import annotations

from html import escape
from typing import Any

import segno

from services.dashboard.rules import work_report

HOTLINE = "12348"
ADVISOR_KINDS = {"lawyer": "律师", "legal_service_worker": "基层法律服务工作者", "other": "其他"}


def notice(
    village: dict[str, Any],
    path: list[dict[str, Any]],
    advisors: list[dict[str, Any]],
    year: int,
    figures: dict[str, float],
    page_url: str,
    teams: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What the public page shows: names, the advisors' cards, this year's on-site hours and counts (the work
    report), and the page's own address (the QR code on the printed notice)."""
    return {
        "village": {"code": village["code"], "name": village["name"]},
        "url": page_url,
        "place": "".join(region["name"] for region in path),
        "year": year,
        "advisors": [
            {
                "advisor_id": advisor["advisor_id"],
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
        # A team serving the village (律师团队): its name, organisation, term and members (队长 first); each
        # member's contact as they publish it, the leader's as the team's.
        "teams": [
            {
                "team_id": team["team_id"],
                "name": team["name"],
                "organisation": team["organisation"],
                "term_start": team["term_start"].isoformat(),
                "term_end": team["term_end"].isoformat(),
                "members": [
                    {
                        "advisor_id": member["advisor_id"],
                        "name": member["name"],
                        "leader": member["leader"],
                        "phone": member.get("phone"),
                    }
                    for member in sorted(team["members"], key=lambda m: (not m["leader"], m["advisor_id"]))
                    if member["name"] is not None
                ],
            }
            for team in teams or []
        ],
        "hotline": HOTLINE,
        "service_hours": round(figures.get("on_site_minutes", 0) / 60, 1),
        "counts": [{"item": line["item"], "count": line["count"]} for line in work_report(figures)],
    }


def page_url(base_url: str, village_code: str) -> str:
    """The public page's absolute address under the dashboard's public base URL."""
    return f"{base_url.rstrip('/')}/public/villages/{village_code}"


def qr_code_svg(url: str) -> str:
    """The address as an SVG QR code (error correction M: still read with a scuffed corner on the board)."""
    return str(segno.make(url, error="m", micro=False).svg_inline(border=4, omitsize=True, dark="#000"))


RATING_CHOICES = {5: "很满意", 4: "满意", 3: "一般", 2: "不满意", 1: "很不满意"}


def rateable(shown: dict[str, Any]) -> list[tuple[str, str]]:
    """Whom a resident may rate: each advisor of the village and each member of a team serving it (once)."""
    found: dict[str, str] = {advisor["advisor_id"]: advisor["name"] for advisor in shown["advisors"]}
    for team in shown.get("teams", []):
        for member in team["members"]:
            found.setdefault(member["advisor_id"], f"{member['name']}（{team['name']}）")
    return list(found.items())


def team_card(team: dict[str, Any]) -> str:
    leader = next((member for member in team["members"] if member["leader"]), None)
    members = "、".join(
        escape(member["name"]) + ("（队长）" if member["leader"] else "") for member in team["members"]
    )
    phone = (leader or {}).get("phone") or "请拨打 " + HOTLINE
    return (
        "<div class='card team'>"
        f"<p class='name'>{escape(team['name'])}</p>"
        f"<p>律师团队 · {escape(team['organisation'])}</p>"
        f"<p class='members'>成员：{members}</p>"
        f"<p>联系电话：<span class='phone'>{escape(phone)}</span></p>"
        f"<p class='term'>服务期：{team['term_start']} 至 {team['term_end']}</p>"
        "</div>"
    )


def rating_form(shown: dict[str, Any], ratings_url: str) -> str:
    """The residents' rating (群众评价), on screen only: which advisor, 1-5 and an optional comment that is
    never shown publicly. `rating.js` posts it to intake with the device's id; without script, no form."""
    options = "".join(
        f"<option value='{escape(advisor_id)}'>{escape(name)}</option>"
        for advisor_id, name in rateable(shown)
    )
    scores = "".join(
        f"<label class='score'><input type='radio' name='score' value='{score}'> {score} {label}</label>"
        for score, label in RATING_CHOICES.items()
    )
    return f"""<section id="rate" class="screen-only" hidden>
<h2>为法律顾问的服务评分</h2>
<form id="rating-form" data-endpoint="{escape(ratings_url)}"
 data-village="{escape(shown["village"]["code"])}">
<label>法律顾问 <select name="advisor_id" id="rating-advisor">{options}</select></label>
<fieldset><legend>评分</legend>{scores}</fieldset>
<label for="rating-comment">意见（选填，最多 300 字；不公开，请勿填写姓名、电话等个人信息）</label>
<textarea id="rating-comment" name="comment" maxlength="300" rows="3"></textarea>
<button type="submit">提交评价</button>
<p id="rating-message" role="status"></p>
</form></section>
<script src="/static/rating.js"></script>"""


def notice_html(shown: dict[str, Any], ratings_url: str | None = None) -> str:
    """The notice as a page that prints on one A4 sheet (the print stylesheet); with intake's ratings
    address and an advisor to rate, the residents' rating form below it on screen."""
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
        + "".join(team_card(team) for team in shown.get("teams", []))
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
.hours {{ font-size: 18px; }}
table {{ border-collapse: collapse; width: 100%; }}
td {{ border: 1px solid #d9dde3; padding: 4px 8px; }}
td.number {{ text-align: right; font-weight: 600; }}
#qr {{ display: flex; align-items: center; gap: 16px; margin-top: 16px; }}
#qr svg {{ width: 160px; height: 160px; flex: none; }}
#qr p {{ margin: 4px 0; }}
.url {{ font-size: 12px; color: #52606d; word-break: break-all; }}
footer {{ color: #616e7c; font-size: 13px; margin-top: 16px; }}
#rate fieldset {{ border: none; padding: 0; margin: 8px 0; }}
#rate label.score {{ display: inline-block; margin: 4px 12px 4px 0; }}
#rate select, #rate textarea, #rate button {{ font-size: 16px; width: 100%; box-sizing: border-box; }}
#rate button {{ margin-top: 8px; padding: 10px; background: #8b1e1e; color: #fff; border: none;
               border-radius: 6px; }}
#rating-message[data-state="accepted"] {{ color: #1e7b34; }}
#rating-message[data-state="refused"] {{ color: #8b1e1e; }}
@page {{ size: A4; margin: 15mm; }}
@media print {{
  body {{ max-width: none; padding: 0; font-size: 11pt; }}
  h1 {{ font-size: 24pt; text-align: center; margin: 0 0 2mm; }}
  h2 {{ font-size: 14pt; margin: 5mm 0 2mm; }}
  td {{ padding: 1mm 2mm; }}
  .place {{ text-align: center; }}
  .card, table, #qr {{ break-inside: avoid; }}
  #qr svg {{ width: 45mm; height: 45mm; }}
  .screen-only {{ display: none; }}
}}
</style></head>
<body>
<h1>{village} 法律顾问公示</h1>
<p class="place">{escape(shown["place"])}</p>
<h2>本村（社区）法律顾问</h2>
<section id="advisors">{cards}</section>
<h2>服务时间</h2>
<p class="hours" id="service-hours">{shown["year"]}年驻村服务累计 {shown["service_hours"]} 小时；
其余时间请拨打联系电话或公共法律服务热线 {HOTLINE}。</p>
<h2>{shown["year"]}年本村法律服务情况</h2>
<table id="counts">{rows}</table>
<section id="qr">{qr_code_svg(shown["url"])}
<div><p><strong>手机扫码</strong>查看本公示，并为法律顾问的服务评分。</p>
<p class="url">{escape(shown["url"])}</p></div></section>
{rating_form(shown, ratings_url) if ratings_url and rateable(shown) else ""}
<footer>公共法律服务热线 {HOTLINE} · 数据来自法律顾问工作台账，仅公示次数，不含群众个人信息。</footer>
</body></html>"""
