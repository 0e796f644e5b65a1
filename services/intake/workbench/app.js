// The advisor's workbench (法律顾问工作台): forms drawn from /workbench/forms.json (derived from the
// contracts), records kept in IndexedDB under ids chosen here, sent through intake's /v1/batch whenever the
// network is there, each with its state. Plain JavaScript, no build step, no library.
"use strict";

const STATE_NAMES = { waiting: "等待上传", sent: "已发送，待确认", accepted: "已接收", refused: "被退回" };
const TOKEN_KEY = "vc-wb-token";
const ME_KEY = "vc-wb-me";
const VILLAGE_KEY = "vc-wb-village";
const SIGN_IN_KEYS = ["vc-wb-oidc-state", "vc-wb-oidc-nonce", "vc-wb-oidc-verifier"];
const SYNC_EVERY_MS = 15000;
const NETWORK_RETRY_MS = 5000;

const state = { config: null, forms: null, kind: null, fixing: null, syncing: false, retryAt: 0, timer: null, editing: false };
const $ = (id) => document.getElementById(id);

// --- storage: IndexedDB, one object per record, keyed by its id -------------------------------------------
let database = null;

function openDatabase() {
  if (database) return Promise.resolve(database);
  return new Promise((resolve, reject) => {
    const request = indexedDB.open("villagecounsel-workbench", 1);
    request.onupgradeneeded = () => request.result.createObjectStore("records", { keyPath: "id" });
    request.onsuccess = () => {
      database = request.result;
      resolve(database);
    };
    request.onerror = () => reject(request.error);
  });
}

async function store(mode, work) {
  const db = await openDatabase();
  return new Promise((resolve, reject) => {
    const transaction = db.transaction("records", mode);
    const result = work(transaction.objectStore("records"));
    transaction.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
    transaction.onerror = () => reject(transaction.error);
  });
}

// The signed-in advisor's records only: on a shared phone another advisor's queue stays theirs (it is sent
// when they sign in again).
async function allRecords() {
  const who = me();
  const records = await store("readonly", (kept) => kept.getAll());
  return records.filter((item) => who && item.advisor_id === who.advisor_id);
}
const putRecords = (items) => store("readwrite", (records) => items.forEach((item) => records.put(item)));

// --- who is signed in -------------------------------------------------------------------------------------
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

function me() {
  const kept = localStorage.getItem(ME_KEY);
  return kept ? JSON.parse(kept) : null;
}

// The token while it is valid; an expired one is dropped (records wait until the advisor signs in again).
function token() {
  const kept = localStorage.getItem(TOKEN_KEY);
  if (!kept) return null;
  try {
    if (claimsOf(kept).exp * 1000 > Date.now() + 30000) return kept;
  } catch (error) {
    /* not a JWT: dropped below */
  }
  localStorage.removeItem(TOKEN_KEY);
  return null;
}

function keepSignIn(accessToken, name) {
  const claims = claimsOf(accessToken);
  if (claims.role !== "advisor") throw new Error("此账号不是法律顾问账号（" + claims.role + "），工作台只供法律顾问使用。");
  const previous = me();
  localStorage.setItem(TOKEN_KEY, accessToken);
  localStorage.setItem(ME_KEY, JSON.stringify({ advisor_id: claims.sub, region: claims.region, name: name || claims.sub }));
  if (previous && previous.advisor_id !== claims.sub) [VILLAGE_KEY, MONTH_KEY].forEach((key) => localStorage.removeItem(key));
}

async function provider() {
  const oidc = state.config.oidc;
  const answer = await fetch(oidc.issuer.replace(/\/$/, "") + "/.well-known/openid-configuration");
  if (!answer.ok) throw new Error("身份认证服务无响应（" + answer.status + "）");
  const found = await answer.json();
  if (found.issuer !== oidc.issuer) throw new Error("身份认证服务的 issuer 不符");
  return found;
}

const redirectUri = () => location.origin + "/workbench/";

// Renewal before expiry: while the provider's session lasts, a sign-in with prompt=none comes straight back
// with a new token (a redirect: records are in IndexedDB, and it waits while a form is being filled in).
// If the provider wants the advisor to sign in, it is not tried again for 10 minutes; records wait.
const SILENT_KEY = "vc-wb-silent";
const SILENT_FAILED_KEY = "vc-wb-silent-failed";
const RENEW_BEFORE_MS = 5 * 60 * 1000;

function renewalDue() {
  if (!state.config.oidc || !navigator.onLine || !me() || state.editing) return false;
  if (Date.now() - Number(localStorage.getItem(SILENT_FAILED_KEY) || 0) < 10 * 60 * 1000) return false;
  const kept = localStorage.getItem(TOKEN_KEY);
  try {
    return !kept || claimsOf(kept).exp * 1000 - Date.now() < RENEW_BEFORE_MS;
  } catch (error) {
    return true;
  }
}

function renewWhenDue() {
  if (renewalDue()) signIn(true).catch(() => localStorage.setItem(SILENT_FAILED_KEY, String(Date.now())));
}

// Sign-in through the province's OpenID Connect provider: authorization code with PKCE (S256), state and
// nonce checked on the way back.
async function signIn(silent) {
  const found = await provider();
  const verifier = randomText();
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const [stateValue, nonce] = [randomText(), randomText()];
  sessionStorage.setItem("vc-wb-oidc-state", stateValue);
  sessionStorage.setItem("vc-wb-oidc-nonce", nonce);
  sessionStorage.setItem("vc-wb-oidc-verifier", verifier);
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
    ...(silent ? { prompt: "none" } : {}),
  }).toString();
  if (silent) sessionStorage.setItem(SILENT_KEY, "1");
  location.assign(url.toString());
}

async function finishSignIn(params) {
  const expected = Object.fromEntries(SIGN_IN_KEYS.map((key) => [key, sessionStorage.getItem(key)]));
  SIGN_IN_KEYS.forEach((key) => sessionStorage.removeItem(key));
  const silent = sessionStorage.getItem(SILENT_KEY) === "1";
  sessionStorage.removeItem(SILENT_KEY);
  history.replaceState(null, "", "/workbench/");
  if (params.get("error") && silent) {
    localStorage.setItem(SILENT_FAILED_KEY, String(Date.now()));
    throw new Error("登录即将过期或已过期，请重新登录；记录都保存在本机，登录后上传。");
  }
  if (params.get("error")) throw new Error("身份认证服务拒绝了登录：" + (params.get("error_description") || params.get("error")));
  if (!expected["vc-wb-oidc-state"] || params.get("state") !== expected["vc-wb-oidc-state"]) {
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
      code_verifier: expected["vc-wb-oidc-verifier"],
    }),
  });
  const tokens = await answer.json();
  if (!answer.ok) throw new Error("换取令牌失败：" + (tokens.error_description || tokens.error || answer.status));
  const identity = claimsOf(tokens.id_token);
  const audiences = [].concat(identity.aud);
  if (identity.nonce !== expected["vc-wb-oidc-nonce"] || identity.iss !== found.issuer || !audiences.includes(state.config.oidc.client_id)) {
    throw new Error("身份令牌（ID token）校验失败，请重新登录。");
  }
  keepSignIn(tokens.access_token, identity.name);
}

async function signInLocally() {
  const answer = await fetch("/workbench/dev-sign-in", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ advisor_id: $("demo-advisor").value }),
  });
  const body = await answer.json();
  if (!answer.ok) throw new Error((body.error && body.error.message) || answer.statusText);
  keepSignIn(body.access_token, "演示法律顾问");
}

// Sign-out leaves none of the advisor's records on the phone: accepted ones are intake's now and go at
// once; unsent ones (waiting, sent without an answer, refused) hold residents' personal data and cannot be
// sent without this advisor, so sign-out offers 先上传 and deletes them only after a confirmation that names
// their count. Cancelling keeps the advisor signed in with the records waiting.
const UNSENT = new Set(["waiting", "sent", "refused"]);

async function signOut(note) {
  const mine = await allRecords();
  const unsent = mine.filter((item) => UNSENT.has(item.state)).length;
  if (!unsent) return finishSignOut(mine);
  const dialog = $("sign-out-dialog");
  dialog.dataset.count = unsent;
  $("sign-out-count").textContent =
    "还有 " + unsent + " 条记录没有上传（可能含群众的姓名、电话等个人信息）。退出会从本机删除它们：请先上传；被退回的记录请先修改。";
  $("sign-out-note").textContent = typeof note === "string" ? note : "";
  $("confirm-delete").checked = false;
  $("confirm-delete-label").textContent = "我确认删除这 " + unsent + " 条未上传的记录";
  $("delete-and-sign-out").disabled = true;
  $("delete-and-sign-out").textContent = "删除 " + unsent + " 条记录并退出";
  dialog.hidden = false;
}

async function finishSignOut(mine) {
  await store("readwrite", (records) => mine.forEach((item) => records.delete(item.id)));
  localStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(ME_KEY);
  localStorage.removeItem(MONTH_KEY);
  location.reload();
}

async function uploadFirst() {
  $("sign-out-dialog").hidden = true;
  state.retryAt = 0;
  // A sync already under way (the network just came back) is waited for, then one more is made.
  while (state.syncing) await new Promise((resolve) => setTimeout(resolve, 200));
  await sync();
  await signOut(navigator.onLine ? "有记录未能上传（被退回的请先修改，或稍后再试）。" : "现在没有网络，记录未能上传。");
}

function installSignOut() {
  $("logout").addEventListener("click", () => signOut());
  $("upload-first").addEventListener("click", uploadFirst);
  $("sign-out-cancel").addEventListener("click", () => ($("sign-out-dialog").hidden = true));
  $("confirm-delete").addEventListener("change", (event) => ($("delete-and-sign-out").disabled = !event.target.checked));
  $("delete-and-sign-out").addEventListener("click", async () => {
    if ($("confirm-delete").checked) await finishSignOut(await allRecords());
  });
}

// --- forms ------------------------------------------------------------------------------------------------
function localInputTime(date) {
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return shifted.toISOString().slice(0, 16);
}

function defaultValue(field) {
  if (field.default === "now") return localInputTime(new Date());
  if (field.default === "an_hour_ago") return localInputTime(new Date(Date.now() - 3600000));
  if (field.default === "my_village") return localStorage.getItem(VILLAGE_KEY) || "";
  return field.default;
}

function element(tag, attributes, text) {
  const made = document.createElement(tag);
  Object.entries(attributes || {}).forEach(([name, value]) => {
    if (value !== undefined && value !== null && value !== false) made.setAttribute(name, value === true ? "" : value);
  });
  if (text !== undefined) made.textContent = text;
  return made;
}

function fieldControl(field, value) {
  const id = "f-" + field.name.replace(/\./g, "-");
  const common = { id, name: field.name, "data-input": field.input, required: field.required };
  if (field.input === "choice") {
    const select = element("select", common);
    select.append(element("option", { value: "" }, "请选择"));
    field.choices.forEach((choice) => select.append(element("option", { value: choice.value }, choice.label)));
    select.value = value || "";
    return select;
  }
  if (field.input === "choices") {
    const box = element("div", { class: "options", id, "data-input": "choices", "data-name": field.name });
    field.choices.forEach((choice) => {
      const label = element("label");
      const input = element("input", { type: "checkbox", name: field.name, value: choice.value });
      input.checked = Array.isArray(value) && value.includes(choice.value);
      label.append(input, document.createTextNode(choice.label));
      box.append(label);
    });
    return box;
  }
  if (field.input === "flag") {
    const input = element("input", { ...common, type: "checkbox", required: false });
    input.checked = value === true;
    return input;
  }
  if (field.input === "text") {
    const area = element("textarea", { ...common, maxlength: field.maxLength });
    area.value = value || "";
    return area;
  }
  const attributes = { ...common, type: "text" };
  if (field.input === "integer") Object.assign(attributes, { type: "number", inputmode: "numeric", min: field.minimum, max: field.maximum, step: 1 });
  if (field.input === "datetime") attributes.type = "datetime-local";
  if (field.input === "village") Object.assign(attributes, { inputmode: "numeric", maxlength: 12, placeholder: "12 位村（社区）代码" });
  if (field.input === "string") Object.assign(attributes, { maxlength: field.maxLength });
  const input = element("input", attributes);
  input.value = value === undefined || value === null ? "" : value;
  return input;
}

function drawForm(kind, values) {
  state.kind = kind;
  state.editing = false;
  const form = state.forms.kinds.find((item) => item.kind === kind);
  document.querySelectorAll("#kinds button").forEach((button) => button.setAttribute("aria-pressed", String(button.dataset.kind === kind)));
  $("form-title").textContent = (state.fixing ? "修改后重新上传：" : "记录") + form.label;
  $("record-form").dataset.kind = kind;
  const fields = $("fields");
  fields.replaceChildren();
  form.fields
    .filter((field) => field.input !== "signed_in")
    .forEach((field) => {
      const wrapper = element("div", { class: "field" + (field.input === "flag" ? " flag" : ""), "data-field": field.name });
      const value = values ? valueAt(values, field.name) : defaultValue(field);
      const control = fieldControl(field, value);
      const label = element(field.input === "choices" ? "span" : "label", { class: "label", for: control.id });
      label.textContent = field.label;
      if (field.required && field.input !== "flag") label.append(element("span", { class: "required" }, " *"));
      if (field.input === "flag") {
        label.prepend(control);
        wrapper.append(label);
      } else {
        wrapper.append(label, control);
      }
      if (field.personal) wrapper.append(element("p", { class: "hint" }, "个人信息：加密保存，不进入统计"));
      wrapper.append(element("p", { class: "field-error", "data-field-error": field.name }));
      fields.append(wrapper);
    });
  $("form-message").textContent = "";
  $("cancel-fix").hidden = !state.fixing;
}

function valueAt(values, path) {
  return path.split(".").reduce((found, part) => (found === undefined || found === null ? undefined : found[part]), values);
}

function setAt(values, path, value) {
  const parts = path.split(".");
  let holder = values;
  parts.slice(0, -1).forEach((part) => {
    holder[part] = holder[part] || {};
    holder = holder[part];
  });
  holder[parts[parts.length - 1]] = value;
}

// The record as intake takes it: empty optional fields left out, times as ISO 8601 with the device's offset.
function readForm() {
  const form = state.forms.kinds.find((item) => item.kind === state.kind);
  const who = me();
  const record = {};
  form.fields.forEach((field) => {
    if (field.input === "signed_in") return setAt(record, field.name, who.advisor_id);
    if (field.input === "choices") {
      const picked = [...document.querySelectorAll(`#fields input[name="${field.name}"]:checked`)].map((input) => input.value);
      return setAt(record, field.name, picked);
    }
    const control = document.querySelector(`#fields [name="${field.name}"]`);
    if (field.input === "flag") return setAt(record, field.name, control.checked);
    const raw = control.value.trim();
    if (raw === "") return undefined;
    if (field.input === "integer") return setAt(record, field.name, /^-?[0-9]+$/.test(raw) ? Number(raw) : raw);
    if (field.input === "datetime") {
      const moment = new Date(raw);
      return setAt(record, field.name, Number.isNaN(moment.getTime()) ? raw : moment.toISOString());
    }
    return setAt(record, field.name, raw);
  });
  return record;
}

function formValues(record) {
  const values = JSON.parse(JSON.stringify(record));
  const form = state.forms.kinds.find((item) => item.kind === state.kind);
  form.fields
    .filter((field) => field.input === "datetime")
    .forEach((field) => {
      const value = valueAt(values, field.name);
      if (value) setAt(values, field.name, localInputTime(new Date(value)));
    });
  return values;
}

function showFieldErrors(fields) {
  document.querySelectorAll("#fields .field").forEach((wrapper) => wrapper.classList.remove("invalid"));
  document.querySelectorAll("#fields .field-error").forEach((line) => (line.textContent = ""));
  (fields || []).forEach((problem) => {
    const line = document.querySelector(`#fields [data-field-error="${CSS.escape(problem.field)}"]`);
    if (!line) return;
    line.textContent += (line.textContent ? "；" : "") + problem.message + "（" + problem.rule + "）";
    line.closest(".field").classList.add("invalid");
  });
}

async function save(event) {
  event.preventDefault();
  const record = readForm();
  if (record.village_code) localStorage.setItem(VILLAGE_KEY, record.village_code);
  const now = new Date().toISOString();
  const fixing = state.fixing;
  const kept = fixing
    ? { ...fixing, record, state: "waiting", error: null, updated_at: now }
    : { id: crypto.randomUUID(), advisor_id: me().advisor_id, kind: state.kind, record, state: "waiting", error: null, created_at: now, updated_at: now };
  await putRecords([kept]);
  state.fixing = null;
  drawForm(state.kind);
  $("form-message").textContent = (fixing ? "已修改，" : "已保存，") + (navigator.onLine ? "正在上传。" : "当前离线，来网后自动上传。");
  await render();
  sync();
}

async function fix(id) {
  const found = (await allRecords()).find((item) => item.id === id);
  if (!found) return;
  state.fixing = found;
  state.kind = found.kind;
  drawForm(found.kind, formValues(found.record));
  showFieldErrors(found.error && found.error.fields);
  $("record-form").scrollIntoView();
}

// 更正: a correction is a void of one's own record (plus a new record); the void form is filled in with it.
function voidOf(item) {
  state.fixing = null;
  drawForm("void", { target_event_id: item.id, village_code: item.record.village_code, occurred_at: localInputTime(new Date()) });
  $("record-form").scrollIntoView();
}

// --- the list of records and their states -----------------------------------------------------------------
function labelOf(kind, fieldName) {
  const form = state.forms.kinds.find((item) => item.kind === kind);
  const field = form && form.fields.find((item) => item.name === fieldName);
  return field ? field.label : fieldName;
}

async function render() {
  const records = (await allRecords()).sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  const counts = { waiting: 0, sent: 0, accepted: 0, refused: 0 };
  records.forEach((item) => (counts[item.state] += 1));
  $("counts").replaceChildren(
    ...Object.entries(counts).map(([name, count]) => element("span", { "data-state": name, "data-count": count }, STATE_NAMES[name] + " " + count)),
  );
  const list = $("records");
  list.replaceChildren();
  records.forEach((item) => {
    const form = state.forms.kinds.find((entry) => entry.kind === item.kind);
    const row = element("li", { class: "record", "data-id": item.id, "data-state": item.state, "data-kind": item.kind });
    row.append(element("span", { class: "state" }, STATE_NAMES[item.state]));
    row.append(element("div", { class: "title" }, form ? form.label : item.kind));
    const when = item.record.occurred_at ? new Date(item.record.occurred_at).toLocaleString("zh-CN") : "";
    row.append(element("div", { class: "meta" }, [when, item.record.village_code, "编号 " + item.id].filter(Boolean).join(" · ")));
    if (item.state === "refused" && item.error) {
      const fields = item.error.fields && item.error.fields.length ? item.error.fields : [{ field: "", rule: item.error.code, message: item.error.message }];
      fields.forEach((problem) => {
        row.append(
          element(
            "p",
            { class: "refusal", "data-field": problem.field, "data-rule": problem.rule },
            (problem.field ? labelOf(item.kind, problem.field) + "：" : "") + problem.message + "（" + problem.rule + "）",
          ),
        );
      });
      const button = element("button", { type: "button", class: "fix secondary", "data-id": item.id }, "修改后重新上传");
      button.addEventListener("click", () => fix(item.id));
      row.append(button);
    }
    if (item.state === "accepted" && item.kind !== "void") {
      const button = element("button", { type: "button", class: "void secondary", "data-id": item.id }, "作废此记录");
      button.addEventListener("click", () => voidOf(item));
      row.append(button);
    }
    list.append(row);
  });
  document.body.dataset.waiting = String(counts.waiting + counts.sent);
}

// --- sending: /v1/batch, per-row results, Retry-After honoured --------------------------------------------
function schedule(delay) {
  clearTimeout(state.timer);
  state.timer = setTimeout(sync, Math.max(delay, 0));
}

function retryAfter(answer, fallbackSeconds) {
  const header = answer.headers.get("Retry-After");
  const seconds = header && /^[0-9]+$/.test(header) ? Number(header) : fallbackSeconds;
  state.retryAt = Date.now() + seconds * 1000;
  $("sync-message").textContent = "服务器繁忙，" + seconds + " 秒后重试。";
  schedule(seconds * 1000);
}

async function sync() {
  if (state.syncing || !navigator.onLine || !me()) return;
  if (Date.now() < state.retryAt) return schedule(state.retryAt - Date.now());
  const bearer = token();
  if (!bearer) {
    $("sync-message").textContent = "登录已过期：记录已保存在本机，重新登录后上传。";
    $("sync-message").classList.add("bad");
    $("login").hidden = false;
    return;
  }
  const pending = (await allRecords()).filter((item) => item.state === "waiting" || item.state === "sent");
  if (!pending.length) return;
  const chunk = pending.slice(0, state.config.batch_max_records);
  state.syncing = true;
  $("sync-message").classList.remove("bad");
  try {
    chunk.forEach((item) => (item.state = "sent"));
    await putRecords(chunk);
    await render();
    let answer;
    try {
      answer = await fetch("/v1/batch", {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: "Bearer " + bearer },
        body: JSON.stringify({ records: chunk.map((item) => ({ kind: item.kind, record: { id: item.id, ...item.record } })) }),
      });
    } catch (error) {
      // No answer (offline, or the answer was lost): the records stay "sent" and go again with the same ids.
      $("sync-message").textContent = "网络中断，稍后用同样的编号重新上传。";
      return schedule(NETWORK_RETRY_MS);
    }
    if (answer.status === 401) {
      localStorage.removeItem(TOKEN_KEY);
      $("sync-message").textContent = "登录已过期：记录已保存在本机，重新登录后上传。";
      $("sync-message").classList.add("bad");
      $("login").hidden = false;
      return;
    }
    if (answer.status === 429 || (answer.status === 503 && !(answer.headers.get("content-type") || "").includes("json"))) {
      return retryAfter(answer, 5);
    }
    const body = await answer.json();
    if (!Array.isArray(body.results)) {
      if (answer.status === 503 || answer.status === 429) return retryAfter(answer, 5);
      $("sync-message").textContent = "上传失败：" + ((body.error && body.error.message) || answer.status);
      $("sync-message").classList.add("bad");
      return schedule(SYNC_EVERY_MS);
    }
    const now = new Date().toISOString();
    body.results.forEach((result) => {
      const item = chunk[result.index];
      if (!item) return;
      item.updated_at = now;
      if (result.status === "accepted") {
        item.state = "accepted";
        item.error = null;
      } else if (result.status === "rejected") {
        item.state = "refused";
        item.error = result.error;
      } else {
        item.state = "waiting";
      }
    });
    await putRecords(chunk);
    $("sync-message").textContent = "已上传 " + body.accepted + " 条" + (body.rejected ? "，退回 " + body.rejected + " 条" : "") + "。";
    if (answer.status === 503) return retryAfter(answer, 5);
    if (pending.length > chunk.length) schedule(0);
    else if (body.accepted) setTimeout(refreshMonth, 3000);
  } finally {
    state.syncing = false;
    await render();
  }
}

// --- my month: on-site hours against the requirement (assessment), my work log (ledger) ------------------
const MONTH_KEY = "vc-wb-month";
const GRADE_NAMES = { excellent: "优秀", good: "良好", qualified: "合格", unqualified: "不合格", violation: "违纪" };
const ALERT_NAMES = {
  hours_at_risk: "本月驻村时长可能不足",
  hours_missed: "上月驻村时长未达标",
  lecture_due: "本期法治讲座尚未开展",
  lecture_missed: "上期法治讲座未开展",
  no_activity: "长期没有服务记录",
};
// A village's terms: start to end (or the day released), e.g. "2026-01-01 至 2026-12-31".
const termsText = (terms) =>
  (terms || []).map((term) => term.term_start + " 至 " + (term.released_on ? term.released_on + "（已解聘）" : term.term_end)).join("；") || "—";
const hours = (minutes) => (minutes / 60).toFixed(1) + " 小时";
const rating = (feedback) => (feedback && feedback.count_this_year ? "平均 " + feedback.average_this_year.toFixed(2) + " 分（" + feedback.count_this_year + " 条）" : "暂无");

async function readApi(base, path, bearer) {
  const answer = await fetch(base + path, { headers: { Authorization: "Bearer " + bearer, "X-Access-Purpose": "case_handling" } });
  if (!answer.ok) throw new Error(path + " " + answer.status);
  return answer.json();
}

function drawMonth(kept) {
  if (!kept) return;
  $("month").hidden = false;
  $("month-freshness").textContent = "数据更新于 " + new Date(kept.fetched_at).toLocaleString("zh-CN") + (navigator.onLine ? "" : "（离线，显示上次的数据）");
  const rows = (kept.villages || []).map((village) => {
    const month = village.month;
    const credited = month.on_site_minutes + month.credited_offsite_minutes;
    const row = element("tr", { "data-village": village.village_code, "data-status": month.status });
    row.append(
      element("td", {}, village.village_code),
      element("td", { class: "hours", "data-minutes": credited }, hours(credited) + (month.credited_offsite_minutes ? "（含折抵 " + hours(month.credited_offsite_minutes) + "）" : "")),
      element("td", { "data-minutes": month.required_minutes }, hours(month.required_minutes)),
      element("td", {}, village.lectures.held_in_period + " / " + village.lectures.required_in_period),
      element("td", { class: "rating" }, rating(village.feedback)),
      element("td", {}, GRADE_NAMES[village.year_to_date.provisional_grade] || village.year_to_date.provisional_grade),
      element("td", { class: "terms" }, termsText(village.terms)),
    );
    return row;
  });
  $("month-villages").querySelector("tbody").replaceChildren(...rows);
  // My alerts (the assessment's, last 90 days): hours at risk or missed, a lecture due or missed, no activity.
  const alerts = (kept.alerts || []).map((alert) =>
    element("li", { "data-kind": alert.kind, "data-village": alert.village_code }, alert.as_of + " " + alert.village_code + " " + (ALERT_NAMES[alert.kind] || alert.kind)),
  );
  $("month-alerts").replaceChildren(...(alerts.length ? alerts : [element("li", { class: "hint" }, "近 90 天没有提醒")]));
  // This year's ratings over every village (residents' from the notices' QR code, and cadres'), weighted.
  const rated = (kept.villages || []).map((village) => village.feedback).filter((found) => found && found.count_this_year);
  const count = rated.reduce((sum, found) => sum + found.count_this_year, 0);
  const average = count ? rated.reduce((sum, found) => sum + found.average_this_year * found.count_this_year, 0) / count : null;
  $("month-rating").textContent = "今年群众评价：" + rating({ count_this_year: count, average_this_year: average });
  $("month-rating").dataset.count = count;
  $("month-rating").dataset.average = average === null ? "" : average.toFixed(2);
  if (kept.worklog !== null && kept.worklog !== undefined) {
    $("month-worklog").textContent = "本月工作日志 " + kept.worklog + " 条（台账已收录）";
    $("month-worklog").dataset.count = kept.worklog;
  }
}

async function refreshMonth() {
  const who = me();
  const bearer = token();
  const { assessment_url: assessment, ledger_url: ledger } = state.config;
  if (!who || (!assessment && !ledger)) return;
  drawMonth(JSON.parse(localStorage.getItem(MONTH_KEY) || "null"));
  if (!bearer || !navigator.onLine) return;
  const now = new Date();
  const monthStart = new Date(now.getFullYear(), now.getMonth(), 1).toISOString();
  const kept = { fetched_at: now.toISOString(), villages: [], alerts: [], worklog: null };
  try {
    if (assessment) {
      const mine = await readApi(assessment, "/v1/advisors/" + encodeURIComponent(who.advisor_id) + "/compliance", bearer);
      kept.villages = mine.villages;
      kept.alerts = mine.alerts;
    }
    if (ledger) {
      const log = await readApi(ledger, "/v1/advisors/" + encodeURIComponent(who.advisor_id) + "/worklog?limit=500&since=" + encodeURIComponent(monthStart), bearer);
      kept.worklog = log.entries.length;
    }
  } catch (error) {
    $("month-freshness").textContent = "本月数据暂时无法更新（" + error.message + "）";
    return;
  }
  localStorage.setItem(MONTH_KEY, JSON.stringify(kept));
  if (!localStorage.getItem(VILLAGE_KEY) && kept.villages.length) localStorage.setItem(VILLAGE_KEY, kept.villages[0].village_code);
  drawMonth(kept);
}

// --- start ------------------------------------------------------------------------------------------------
function showNetwork() {
  const online = navigator.onLine;
  $("net").dataset.online = online ? "yes" : "no";
  $("net").textContent = online ? "在线" : "离线";
}

async function readJson(path) {
  const answer = await fetch(path);
  if (!answer.ok) throw new Error(path + " " + answer.status);
  return answer.json();
}

async function start() {
  showNetwork();
  window.addEventListener("online", () => {
    showNetwork();
    state.retryAt = 0;
    sync();
    refreshMonth();
  });
  window.addEventListener("offline", showNetwork);
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/workbench/sw.js", { scope: "/workbench/" }).catch(() => {});
    navigator.serviceWorker.ready.then(() => {
      if (navigator.serviceWorker.controller) document.body.dataset.offlineReady = "yes";
    });
    navigator.serviceWorker.addEventListener("controllerchange", () => (document.body.dataset.offlineReady = "yes"));
  }
  [state.config, state.forms] = await Promise.all([readJson("/workbench/config.json"), readJson("/workbench/forms.json")]);
  $("sign-in").hidden = !state.config.oidc;
  $("sign-in").addEventListener("click", () => signIn().catch((error) => ($("login-message").textContent = error.message)));
  if (state.config.local_sign_in) {
    $("local-sign-in").hidden = false;
    $("demo-advisor").replaceChildren(...state.config.demo_advisors.map((id) => element("option", { value: id }, id)));
    $("sign-in-local").addEventListener("click", () =>
      signInLocally()
        .then(() => location.reload())
        .catch((error) => ($("login-message").textContent = error.message)),
    );
  }
  installSignOut();
  const params = new URLSearchParams(location.search);
  if (params.get("code") || params.get("error")) {
    try {
      await finishSignIn(params);
    } catch (error) {
      $("login-message").textContent = error.message;
    }
  }
  const who = me();
  if (!who) {
    $("login").hidden = false;
    document.body.dataset.ready = "signed-out";
    return;
  }
  if (renewalDue()) {
    document.body.dataset.ready = "renewing";
    return signIn(true);
  }
  setInterval(renewWhenDue, 60000);
  $("who").textContent = who.name + "（" + who.advisor_id + "）";
  $("who").dataset.advisor = who.advisor_id;
  $("logout").hidden = false;
  $("work").hidden = false;
  $("login").hidden = !!token() || !navigator.onLine;
  const kinds = $("kinds");
  state.forms.kinds.forEach((form) => {
    const button = element("button", { type: "button", "data-kind": form.kind }, form.label);
    button.addEventListener("click", () => {
      state.fixing = null;
      drawForm(form.kind);
    });
    kinds.append(button);
  });
  $("record-form").addEventListener("submit", save);
  $("record-form").addEventListener("input", () => (state.editing = true));
  $("cancel-fix").addEventListener("click", () => {
    state.fixing = null;
    drawForm(state.kind);
  });
  $("sync").addEventListener("click", () => {
    state.retryAt = 0;
    sync();
  });
  drawForm(state.forms.kinds[0].kind);
  // Records "sent" when the page last closed had no answer: they go again, with the same ids.
  await render();
  setInterval(sync, SYNC_EVERY_MS);
  document.body.dataset.ready = "signed-in";
  sync();
  refreshMonth();
  setInterval(refreshMonth, 60000);
}

start().catch((error) => {
  document.body.dataset.ready = "failed";
  $("login-message").textContent = "工作台无法启动：" + error.message;
  $("login").hidden = false;
});
