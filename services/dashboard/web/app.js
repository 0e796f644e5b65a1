// The dashboard's page: five levels (省 → 市 → 县 → 乡镇 → 村), a period, the figures of the API.
// Plain JavaScript, no build step; ECharts is served by the dashboard itself (/static/echarts.min.js).
"use strict";

const LEVEL_NAMES = { country: "全国", province: "省级", prefecture: "市级", county: "县级", township: "乡镇级", village: "村级" };
const CHILD_NAMES = { country: "各省（区、市）", province: "各市", prefecture: "各县（区）", county: "各乡镇（街道）", township: "各村（社区）" };
const COUNTRY_CODE = "0"; // 全国: the Ministry's region, above every province (not a prefix of their codes)

// Whether the caller's region holds the region `code`: its code starts with the caller's, or the caller reads the country.
function within(code, region) {
  return region === COUNTRY_CODE || code.startsWith(region);
}

// The figures shown on cards and in the table: [metric, label, unit].
const KPIS = [
  ["consultation_person_times", "法律咨询", "人次"],
  ["mediations", "调解矛盾纠纷", "起"],
  ["mediations_major_or_backlog", "其中重大疑难或信访积案", "起"],
  ["lectures", "法治讲座", "场"],
  ["lecture_attendees", "讲座参加群众", "人次"],
  ["legal_aid", "法律援助", "件"],
  ["documents", "村规民约、文书和法律意见", "件"],
  ["visits", "驻村服务", "次"],
  ["on_site_hours", "驻村服务时长", "小时"],
  ["risk_reports", "风险信息上报", "件"],
  ["feedback_average", "群众评价均分", "分"],
  ["active_advisors", "在岗服务顾问", "人"],
  ["coverage", "法律顾问覆盖率", ""],
  ["compliance_share", "驻村时长达标率", ""],
];
const TABLE = [
  ["consultation_person_times", "咨询人次"],
  ["mediations", "调解纠纷"],
  ["mediations_major_or_backlog", "重大疑难/积案"],
  ["lectures", "讲座"],
  ["legal_aid", "法律援助"],
  ["documents", "文书意见"],
  ["on_site_hours", "驻村时长(小时)"],
  ["risk_reports", "风险上报"],
  ["active_advisors", "在岗顾问"],
];
const MIX = [
  ["consultations", "法律咨询"],
  ["mediations", "矛盾调解"],
  ["lectures", "法治讲座"],
  ["legal_aid", "法律援助"],
  ["documents", "文书与法律意见"],
  ["visits", "驻村服务"],
  ["risk_reports", "风险上报"],
];
const REFRESH_MS = 10000;

const ROLE_NAMES = {
  advisor: "法律顾问",
  township_office: "乡镇（街道）司法所",
  county_bureau: "县（区）司法局",
  prefecture_bureau: "市司法局",
  province_department: "省司法厅",
  ministry: "司法部",
  integration: "接入系统",
};

const state = { me: null, code: null, period: null, sort: null, timer: null, config: { oidc: null } };
const $ = (id) => document.getElementById(id);

function token() {
  return sessionStorage.getItem("vc-token");
}

// Sign-in (登录) through the province's OpenID Connect provider: the authorization code flow with PKCE
// (S256), state and nonce checked on the way back; the access token is kept in sessionStorage only.
const SIGN_IN_KEYS = ["vc-oidc-state", "vc-oidc-nonce", "vc-oidc-verifier", "vc-oidc-return"];

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomText() {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

function claimsOf(jwt) {
  const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  const text = atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "="));
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(text, (c) => c.charCodeAt(0))));
}

async function provider() {
  const oidc = state.config.oidc;
  const answer = await fetch(oidc.issuer.replace(/\/$/, "") + "/.well-known/openid-configuration");
  if (!answer.ok) throw new Error("身份认证服务无响应（" + answer.status + "）");
  const found = await answer.json();
  if (found.issuer !== oidc.issuer) throw new Error("身份认证服务的 issuer 不符");
  return found;
}

function redirectUri() {
  return location.origin + "/";
}

async function signIn() {
  const found = await provider();
  const verifier = randomText();
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const [stateValue, nonce] = [randomText(), randomText()];
  sessionStorage.setItem("vc-oidc-state", stateValue);
  sessionStorage.setItem("vc-oidc-nonce", nonce);
  sessionStorage.setItem("vc-oidc-verifier", verifier);
  sessionStorage.setItem("vc-oidc-return", location.hash);
  const url = new URL(found.authorization_endpoint);
  url.search = new URLSearchParams({
    client_id: state.config.oidc.client_id,
    response_type: "code",
    scope: "openid profile api",
    redirect_uri: redirectUri(),
    code_challenge: challenge,
    code_challenge_method: "S256",
    state: stateValue,
    nonce,
  }).toString();
  location.assign(url.toString());
}

// Back from the provider with ?code=&state= (or ?error=): exchange the code, check the ID token's nonce.
async function finishSignIn(params) {
  const expected = Object.fromEntries(SIGN_IN_KEYS.map((key) => [key, sessionStorage.getItem(key)]));
  SIGN_IN_KEYS.forEach((key) => sessionStorage.removeItem(key));
  history.replaceState(null, "", "/" + (expected["vc-oidc-return"] || ""));
  if (params.get("error")) throw new Error("身份认证服务拒绝了登录：" + (params.get("error_description") || params.get("error")));
  if (!expected["vc-oidc-state"] || params.get("state") !== expected["vc-oidc-state"]) {
    throw new Error("登录状态（state）不符，请重新登录。");
  }
  const found = await provider();
  const answer = await fetch(found.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: params.get("code"),
      redirect_uri: redirectUri(),
      client_id: state.config.oidc.client_id,
      code_verifier: expected["vc-oidc-verifier"],
    }),
  });
  const tokens = await answer.json();
  if (!answer.ok) throw new Error("换取令牌失败：" + (tokens.error_description || tokens.error || answer.status));
  const identity = claimsOf(tokens.id_token);
  const audiences = [].concat(identity.aud);
  if (identity.nonce !== expected["vc-oidc-nonce"] || identity.iss !== found.issuer || !audiences.includes(state.config.oidc.client_id)) {
    throw new Error("身份令牌（ID token）校验失败，请重新登录。");
  }
  sessionStorage.setItem("vc-token", tokens.access_token);
  sessionStorage.setItem("vc-id-token", tokens.id_token);
}

async function signOut() {
  const idToken = sessionStorage.getItem("vc-id-token");
  sessionStorage.removeItem("vc-token");
  sessionStorage.removeItem("vc-id-token");
  if (!state.config.oidc || !idToken) return location.reload();
  try {
    const found = await provider();
    if (!found.end_session_endpoint) return location.reload();
    const url = new URL(found.end_session_endpoint);
    url.search = new URLSearchParams({
      id_token_hint: idToken,
      post_logout_redirect_uri: redirectUri(),
      client_id: state.config.oidc.client_id,
    }).toString();
    location.assign(url.toString());
  } catch (error) {
    location.reload();
  }
}

async function api(path) {
  const headers = {};
  if (token()) headers.Authorization = "Bearer " + token();
  const answer = await fetch(path, { headers });
  if (answer.status === 401) {
    const error = new Error("unauthenticated");
    error.status = 401;
    throw error;
  }
  const body = await answer.json();
  if (!answer.ok) {
    const error = new Error((body.error && body.error.message) || answer.statusText);
    error.status = answer.status;
    throw error;
  }
  return body;
}

// Derived figures: sums of kinds, hours from minutes, shares.
function derive(figures, coverage) {
  const f = Object.assign({}, figures);
  const sum = (prefix) => Object.keys(figures).filter((k) => k.startsWith(prefix)).reduce((t, k) => t + figures[k], 0);
  f.legal_aid = sum("legal_aid_");
  f.documents = sum("documents_");
  f.on_site_hours = (figures.on_site_minutes || 0) / 60;
  if (coverage && coverage.villages) f.coverage = coverage.villages_with_advisor / coverage.villages;
  return f;
}

const RATIOS = new Set(["coverage", "compliance_share", "feedback_average"]);

function show(metric, value) {
  if (value === undefined || value === null) return RATIOS.has(metric) ? "—" : "0";
  if (metric === "coverage" || metric === "compliance_share") return (value * 100).toFixed(1) + "%";
  if (metric === "on_site_hours") return value.toFixed(1);
  if (metric === "feedback_average") return value.toFixed(2);
  return String(Math.round(value));
}

function periodLabel(period) {
  const [year, part] = period.split("-");
  if (!part) return year + "年";
  if (part.startsWith("Q")) return year + "年第" + "一二三四"[Number(part[1]) - 1] + "季度";
  return year + "年" + Number(part) + "月";
}

function complianceStatus(share, closed) {
  if (!closed) return ["none", "暂无结算"];
  if (share >= 0.9) return ["met", "达标"];
  if (share >= 0.6) return ["partly", "部分达标"];
  return ["missed", "未达标"];
}

function link(code, label) {
  const a = document.createElement("a");
  a.href = "#/" + code + "/" + state.period;
  a.textContent = label;
  a.dataset.code = code;
  return a;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function renderPath(path) {
  const nav = $("path");
  nav.replaceChildren();
  path.forEach((region, index) => {
    if (index) nav.append(" › ");
    const reachable = within(region.code, state.me.region_code);
    const item = reachable && index < path.length - 1 ? link(region.code, region.name) : document.createElement("span");
    if (!(reachable && index < path.length - 1)) item.textContent = region.name;
    nav.appendChild(item);
  });
}

function renderKpis(figures) {
  const box = $("kpis");
  box.replaceChildren();
  for (const [metric, label, unit] of KPIS) {
    const card = document.createElement("div");
    card.className = "kpi";
    card.dataset.metric = metric;
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = show(metric, figures[metric]);
    const name = document.createElement("span");
    name.className = "label";
    name.textContent = label + (unit ? "（" + unit + "）" : "");
    card.append(value, name);
    box.appendChild(card);
  }
}

function renderChildren(answer) {
  const level = answer.region.level;
  const table = $("children");
  $("children-section").hidden = level === "village";
  if (level === "village") return;
  $("children-title").textContent = CHILD_NAMES[level] + " · " + periodLabel(state.period);
  const rows = answer.children.map((child) => ({ child, f: derive(child.figures) }));
  if (state.sort) {
    const [metric, direction] = state.sort;
    rows.sort((a, b) => direction * ((a.f[metric] || 0) - (b.f[metric] || 0)));
  }
  const head = document.createElement("tr");
  const first = document.createElement("th");
  first.textContent = "地区";
  head.appendChild(first);
  for (const [metric, label] of TABLE) {
    const th = document.createElement("th");
    th.textContent = label + (state.sort && state.sort[0] === metric ? (state.sort[1] > 0 ? " ▲" : " ▼") : "");
    th.dataset.metric = metric;
    th.className = "sortable";
    th.addEventListener("click", () => {
      state.sort = state.sort && state.sort[0] === metric ? [metric, -state.sort[1]] : [metric, 1];
      renderChildren(answer);
    });
    head.appendChild(th);
  }
  table.tHead.replaceChildren(head);
  const least = {};
  for (const [metric] of TABLE) {
    const values = rows.map((r) => r.f[metric] || 0);
    // Marked only where the regions differ: "least" among equals says nothing.
    if (rows.length > 1 && Math.min(...values) < Math.max(...values)) least[metric] = Math.min(...values);
  }
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const { child, f } of rows) {
    const row = document.createElement("tr");
    row.dataset.code = child.code;
    const name = document.createElement("td");
    name.appendChild(link(child.code, child.name));
    row.appendChild(name);
    for (const [metric] of TABLE) {
      const value = f[metric] || 0;
      const td = cell(row, show(metric, value), "number");
      td.dataset.metric = metric;
      if (least[metric] !== undefined && value === least[metric]) {
        td.classList.add("least");
        td.title = "本列最少";
      }
    }
    body.appendChild(row);
  }
  const foot = document.createElement("tr");
  cell(foot, "合计（" + answer.region.name + "）");
  const total = derive(answer.figures);
  for (const [metric] of TABLE) cell(foot, show(metric, total[metric] || 0), "number").dataset.metric = metric;
  table.tFoot.replaceChildren(foot);
}

function renderCompliance(answer, series) {
  const table = $("compliance");
  const head = document.createElement("tr");
  const level = answer.region.level;
  const columns = [level === "village" ? "月份" : "地区", "已结算村·月", "达标村·月", "达标率", "状态"];
  for (const label of columns) {
    const th = document.createElement("th");
    th.textContent = label;
    head.appendChild(th);
  }
  table.tHead.replaceChildren(head);
  const rows =
    level === "village"
      ? series.months.map((m) => [periodLabel(m.period), m.figures])
      : answer.children.map((child) => [child.name, child.figures]);
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const [name, f] of rows) {
    const closed = f.village_months_closed || 0;
    const met = f.village_months_met || 0;
    const share = closed ? met / closed : null;
    const [status, label] = complianceStatus(share, closed);
    const row = document.createElement("tr");
    row.className = "status-" + status;
    cell(row, name);
    cell(row, String(closed), "number");
    cell(row, String(met), "number");
    cell(row, share === null ? "—" : (share * 100).toFixed(1) + "%", "number");
    cell(row, label, "status " + status);
    body.appendChild(row);
  }
}

function renderCharts(answer, series) {
  if (!window.echarts) return;
  const months = series.months.map((m) => Number(m.period.slice(5)) + "月");
  const line = (metric, name) => ({ name, type: "line", data: series.months.map((m) => derive(m.figures)[metric] || 0) });
  const trend = echarts.getInstanceByDom($("trend")) || echarts.init($("trend"));
  trend.setOption({
    animation: false,
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { top: 40, left: 40, right: 20, bottom: 30 },
    xAxis: { type: "category", data: months },
    yAxis: { type: "value" },
    series: [
      line("consultation_person_times", "咨询人次"),
      line("mediations", "调解纠纷"),
      line("lectures", "法治讲座"),
      line("visits", "驻村服务"),
    ],
  });
  const f = derive(answer.figures);
  const mix = echarts.getInstanceByDom($("mix")) || echarts.init($("mix"));
  mix.setOption({
    animation: false,
    tooltip: { trigger: "item" },
    series: [
      {
        type: "pie",
        radius: ["35%", "65%"],
        data: MIX.map(([metric, name]) => ({ name, value: f[metric] || 0 })).filter((d) => d.value > 0),
      },
    ],
  });
}

function renderFreshness(freshness) {
  const newest = freshness.newest_event_time
    ? new Date(freshness.newest_event_time).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false })
    : "本次启动后尚无新事件";
  const lag = freshness.lag === null || freshness.lag === undefined ? "未知" : freshness.lag + " 条";
  $("freshness").textContent =
    "数据新鲜度：最新事件 " + newest + " · 待处理（消费延迟）" + lag +
    " · 页面更新于 " + new Date().toLocaleTimeString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false });
}

async function renderVillage(code) {
  $("village-section").hidden = false;
  $("public-link").href = "/public/villages/" + code;
  const box = $("ledger");
  box.textContent = "读取台账中……";
  try {
    const summary = await api("/v1/villages/" + code + "/ledger-summary");
    $("ledger-link").href = summary.ledger_url;
    box.replaceChildren();
    const facts = document.createElement("p");
    facts.textContent = "台账共 " + summary.entries + " 条记录；法律顾问：" +
      (summary.advisors.map((a) => (a.name || a.advisor_id) + "（" + (a.organisation || "") + "，" + a.term_start + " 至 " + a.term_end + "）").join("；") || "无");
    box.appendChild(facts);
    const table = document.createElement("table");
    table.id = "ledger-recent";
    const head = document.createElement("tr");
    for (const label of ["时间", "类别", "法律顾问", "状态"]) {
      const th = document.createElement("th");
      th.textContent = label;
      head.appendChild(th);
    }
    table.appendChild(head);
    for (const entry of summary.recent) {
      const row = document.createElement("tr");
      cell(row, new Date(entry.occurred_at).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false }));
      cell(row, entry.kind);
      cell(row, entry.advisor_id);
      cell(row, entry.voided ? "已作废" : "有效");
      table.appendChild(row);
    }
    box.appendChild(table);
  } catch (error) {
    box.textContent = "台账暂不可用：" + error.message;
  }
}

// Year-end approval (年度考核审批): where each county stands, and the one action the signed-in official may
// take — the county bureau submits its own county, the prefecture bureau accepts or returns a county below it.
const APPROVAL_NAMES = { not_started: "未提交", submitted: "已提交待审", returned: "已退回", accepted: "已通过(锁定)" };

async function approve(county, year, what, body) {
  const headers = { "Content-Type": "application/json" };
  if (token()) headers.Authorization = "Bearer " + token();
  const url = state.config.assessment_url + "/v1/regions/" + county + "/approvals/" + year + "/" + what;
  const answer = await fetch(url, { method: "POST", headers, body: JSON.stringify(body || {}) });
  const result = await answer.json().catch(() => ({}));
  if (!answer.ok) throw new Error((result.error && result.error.message) || answer.statusText);
  return result;
}

function actionButton(row, label, act) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = label;
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const result = await act();
      // The assessment answers with where the approval now stands; the dashboard's own figures follow.
      const status = result.approval ? result.approval.status : null;
      if (status) {
        const shown = row.children[1];
        shown.textContent = APPROVAL_NAMES[status] || status;
        shown.className = "approval " + status;
        row.children[2].textContent = String(result.approval.submission);
        row.lastChild.replaceChildren();
      }
      $("approval-message").textContent = label + "：已完成" + (status ? "（" + APPROVAL_NAMES[status] + "）" : "") + "。";
    } catch (error) {
      $("approval-message").textContent = label + "未完成：" + error.message;
      button.disabled = false;
    }
  });
  row.lastChild.appendChild(button);
}

async function renderApprovals() {
  const level = $("title").dataset.level;
  const section = $("approval-section");
  if (!["province", "prefecture", "county"].includes(level)) {
    section.hidden = true;
    return;
  }
  const year = state.period.slice(0, 4);
  const answer = await api("/v1/regions/" + state.code + "/approvals?year=" + year);
  section.hidden = answer.counties.length === 0;
  $("approval-title").textContent = year + "年度考核审批";
  const body = $("approvals").querySelector("tbody");
  body.replaceChildren();
  const me = state.me;
  for (const county of answer.counties) {
    const row = document.createElement("tr");
    row.dataset.code = county.county_code;
    cell(row, county.name);
    cell(row, APPROVAL_NAMES[county.status] || county.status, "approval " + county.status);
    cell(row, String(county.submission));
    cell(row, county.acted_by || "");
    cell(row, county.acted_at ? new Date(county.acted_at).toLocaleString("zh-CN") : "");
    cell(row, county.reason || "");
    cell(row, "");
    if (me.role === "county_bureau" && me.region_code === county.county_code && county.status !== "submitted") {
      actionButton(row, "提交审批", () => approve(county.county_code, year, "submission"));
    }
    if (me.role === "prefecture_bureau" && county.county_code.startsWith(me.region_code) && county.status === "submitted") {
      actionButton(row, "通过", () => approve(county.county_code, year, "acceptance", { submission: county.submission }));
      actionButton(row, "退回", async () => {
        const reason = window.prompt("退回理由（必填）：");
        if (!reason) throw new Error("请填写退回理由");
        return approve(county.county_code, year, "return", { submission: county.submission, reason });
      });
    }
    body.appendChild(row);
  }
}

async function load() {
  const [code, period] = location.hash.replace(/^#\/?/, "").split("/");
  state.code = code && within(code, state.me.region_code) ? code : state.me.region_code;
  state.period = period && /^\d{4}(-Q[1-4]|-\d{2})?$/.test(period) ? period : String(new Date().getFullYear());
  $("year").value = state.period.slice(0, 4);
  $("part").value = state.period.slice(4);
  try {
    const year = state.period.slice(0, 4);
    const [answer, path, series] = await Promise.all([
      api("/v1/regions/" + state.code + "/figures?period=" + state.period),
      api("/v1/regions/" + state.code + "/path"),
      api("/v1/regions/" + state.code + "/series?year=" + year),
    ]);
    $("error").hidden = true;
    renderPath(path.path);
    $("title").textContent = answer.region.name + " · " + LEVEL_NAMES[answer.region.level] + " · " + periodLabel(state.period);
    $("title").dataset.code = answer.region.code;
    $("title").dataset.level = answer.region.level;
    renderKpis(Object.assign(derive(answer.figures, answer.coverage), {}));
    renderChildren(answer);
    renderCompliance(answer, series);
    renderCharts(answer, series);
    renderFreshness(answer.freshness);
    await renderApprovals();
    if (answer.region.level === "village") await renderVillage(answer.region.code);
    else $("village-section").hidden = true;
    document.body.dataset.loaded = state.code + "/" + state.period;
  } catch (error) {
    if (error.status === 401) return showLogin("登录已过期，请重新登录。");
    $("error").hidden = false;
    $("error").textContent = "读取失败：" + error.message;
  }
}

function showLogin(message) {
  $("main").hidden = true;
  $("login").hidden = false;
  $("sign-in").disabled = !state.config.oidc;
  $("login-error").textContent = message || (state.config.oidc ? "" : "本服务未配置身份认证（VC_OIDC_ISSUER）。");
}

async function start() {
  const thisYear = new Date().getFullYear();
  for (let year = thisYear; year >= thisYear - 6; year -= 1) {
    const option = document.createElement("option");
    option.value = option.textContent = String(year);
    $("year").appendChild(option);
  }
  const onPeriod = () => { location.hash = "#/" + state.code + "/" + $("year").value + $("part").value; };
  $("year").addEventListener("change", onPeriod);
  $("part").addEventListener("change", onPeriod);
  const begin = () => signIn().catch((error) => showLogin("无法登录：" + error.message));
  $("sign-in").addEventListener("click", begin);
  $("sign-in-local").addEventListener("click", begin);
  $("logout").addEventListener("click", signOut);
  window.addEventListener("hashchange", () => { state.sort = null; load(); });
  try {
    state.config = await (await fetch("/config.json")).json();
  } catch (error) {
    state.config = { oidc: null };
  }
  const params = new URLSearchParams(location.search);
  if (params.has("code") || params.has("error")) {
    try {
      await finishSignIn(params);
    } catch (error) {
      return showLogin(error.message);
    }
  }
  await start2();
}

async function start2() {
  try {
    state.me = await api("/v1/me");
  } catch (error) {
    if (error.status === 401) return showLogin(token() ? "登录已过期，请重新登录。" : "");
    return showLogin("无法连接统计服务：" + error.message);
  }
  $("login").hidden = true;
  $("main").hidden = false;
  const role = ROLE_NAMES[state.me.role] || state.me.role;
  $("who").textContent = state.me.local_mode
    ? "本地模式（无需登录）：" + state.me.region_name
    : "当前用户：" + state.me.subject + "（" + role + "）· " + state.me.region_name + "（" + state.me.region_code + "）";
  $("who").dataset.role = state.me.role;
  $("who").dataset.region = state.me.region_code;
  $("logout").hidden = !token();
  $("sign-in-local").hidden = Boolean(token()) || !state.config.oidc;
  await load();
  clearInterval(state.timer);
  state.timer = setInterval(load, REFRESH_MS);
}

start();
