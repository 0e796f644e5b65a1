// The residents' rating on a village's public notice (群众评价): no login; the device keeps a random id so
// that intake takes one rating per device per advisor per day. Nothing about the resident is asked for.
"use strict";

const DEVICE_KEY = "villagecounsel-device";

function deviceId() {
  let id = localStorage.getItem(DEVICE_KEY);
  if (!id) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
    id = [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
    localStorage.setItem(DEVICE_KEY, id);
  }
  return id;
}

const FIELD_NAMES = { score: "评分", comment: "意见", advisor_id: "法律顾问", village_code: "村（社区）", device_id: "设备" };

function say(state, text) {
  const message = document.getElementById("rating-message");
  message.dataset.state = state;
  message.textContent = text;
}

async function submitRating(event) {
  event.preventDefault();
  const form = event.target;
  const chosen = form.querySelector("input[name=score]:checked");
  if (!chosen) {
    say("refused", "请选择 1 到 5 分。");
    return;
  }
  const comment = form.comment.value.trim();
  const rating = {
    device_id: deviceId(),
    advisor_id: form.advisor_id.value,
    village_code: form.dataset.village,
    score: Number(chosen.value),
    ...(comment ? { comment } : {}),
  };
  say("sending", "正在提交……");
  let answer;
  try {
    answer = await fetch(form.dataset.endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(rating),
    });
  } catch {
    say("refused", "网络不通，请稍后再试。");
    return;
  }
  if (answer.status === 202) {
    form.comment.value = "";
    say("accepted", "感谢您的评价！");
  } else if (answer.status === 409) {
    say("already", "您今天已经评价过这位法律顾问，明天可以再评。");
  } else if (answer.status === 429) {
    say("refused", "提交太频繁，请 " + (answer.headers.get("Retry-After") || "60") + " 秒后再试。");
  } else if (answer.status === 422) {
    const fields = ((await answer.json()).error || {}).fields || [];
    say("refused", "请检查：" + fields.map((field) => (FIELD_NAMES[field.field] || field.field) + "（" + field.message + "）").join("；"));
  } else {
    say("refused", "暂时无法提交，请稍后再试。");
  }
}

const form = document.getElementById("rating-form");
if (form) {
  form.addEventListener("submit", submitRating);
  document.getElementById("rate").hidden = false;
}
