// The devstack's OpenID Connect provider: the certified `oidc-provider` package with the demo officials of
// users.json, a sign-in page in Chinese, and JWT access tokens (RS256) for the services' audience carrying
// the claims they need (`role`, `region`). Local development and tests only: the accounts and their
// password are public (see docs/security-signin.md).
//
//   node server.js CONFIG.json          serve (devstack/identity.py writes the config and starts it)
//   node server.js --new-key KEYS.json  put a new signing key first in KEYS.json (rotation; old keys kept)
//   node server.js --drop-key KID KEYS.json
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";

import Provider, { errors } from "oidc-provider";

function newSigningKey() {
  const { privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = privateKey.export({ format: "jwk" });
  return { ...jwk, kid: "vc-" + crypto.randomBytes(6).toString("hex"), use: "sig", alg: "RS256" };
}

function readKeys(path) {
  if (fs.existsSync(path)) return JSON.parse(fs.readFileSync(path, "utf8"));
  return { keys: [newSigningKey()], cookieKeys: [crypto.randomBytes(32).toString("base64url")] };
}

function writeKeys(path, keys) {
  fs.writeFileSync(path + ".tmp", JSON.stringify(keys, null, 2), { mode: 0o600 });
  fs.renameSync(path + ".tmp", path);
}

const html = (text) =>
  String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

const ROLE_NAMES = {
  advisor: "法律顾问",
  township_office: "乡镇（街道）司法所",
  county_bureau: "县（区）司法局",
  prefecture_bureau: "市司法局",
  province_department: "省司法厅",
  ministry: "司法部",
};

const STYLE = `body{font-family:"PingFang SC","Microsoft YaHei","WenQuanYi Micro Hei","Noto Sans CJK SC",sans-serif;
background:#f5f7fa;color:#1f2933;margin:0}header{background:#8b1e1e;color:#fff;padding:12px 24px}
header h1{font-size:20px;margin:0}main{max-width:560px;margin:24px auto;background:#fff;padding:16px 24px;
border-radius:6px;box-shadow:0 1px 2px rgba(0,0,0,.08)}label{display:block;margin:10px 0}
input{font-size:16px;padding:6px;width:100%;box-sizing:border-box}button{font-size:16px;padding:6px 24px;
background:#8b1e1e;color:#fff;border:0;border-radius:4px;cursor:pointer}.error{color:#b42318}
table{border-collapse:collapse;font-size:13px;width:100%}td,th{border:1px solid #e4e7eb;padding:3px 6px;text-align:left}
.hint{color:#616e7c;font-size:13px}`;

function page(title, body) {
  return `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>${html(title)}</title>
<style>${STYLE}</style></head><body><header><h1>司法行政统一身份认证（本地演示）</h1></header>
<main>${body}</main></body></html>`;
}

function loginPage(uid, users, { error = "", username = "" } = {}) {
  const rows = users
    .map((u) => `<tr><td>${html(u.username)}</td><td>${html(ROLE_NAMES[u.role])}</td><td>${html(u.name)}</td></tr>`)
    .join("");
  return page(
    "登录",
    `<h2>登录</h2>
<form method="post" action="/interaction/${html(uid)}/login" autocomplete="off">
  <label>用户名 <input id="username" name="username" required value="${html(username)}" autofocus></label>
  <label>密码 <input id="password" name="password" type="password" required></label>
  <p class="error" id="login-error">${html(error)}</p>
  <button id="sign-in" type="submit">登录</button>
</form>
<h3>本地演示账号</h3>
<p class="hint">仅供本机开发和测试使用，密码见 docs/security-signin.md。</p>
<table><tr><th>用户名</th><th>角色</th><th>单位</th></tr>${rows}</table>`,
  );
}

async function formBody(req) {
  let size = 0;
  const chunks = [];
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16 * 1024) throw new errors.InvalidRequest("the form is too large");
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

function samePassword(given, expected) {
  const digest = (text) => crypto.createHash("sha256").update(String(text)).digest();
  return crypto.timingSafeEqual(digest(given), digest(expected));
}

function serve(config) {
  const users = JSON.parse(fs.readFileSync(config.users, "utf8")).accounts;
  const byName = new Map(users.map((u) => [u.username, u]));
  const keys = readKeys(config.keys);
  writeKeys(config.keys, keys);
  const dashboard = config.client;

  const provider = new Provider(config.issuer, {
    clients: [
      {
        client_id: dashboard.client_id,
        client_name: "一村(社区)一法律顾问 · 工作统计",
        token_endpoint_auth_method: "none",
        application_type: "web",
        grant_types: ["authorization_code"],
        response_types: ["code"],
        redirect_uris: dashboard.redirect_uris,
        post_logout_redirect_uris: dashboard.redirect_uris,
      },
    ],
    jwks: { keys: keys.keys },
    cookies: { keys: keys.cookieKeys },
    claims: { openid: ["sub"], profile: ["name", "role", "region"] },
    async findAccount(ctx, sub) {
      const account = byName.get(sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        async claims() {
          return { sub, name: account.name, role: account.role, region: account.region };
        },
      };
    },
    // The services need `role` and `region` in the access token itself.
    async extraTokenClaims(ctx, token) {
      const account = byName.get(token.accountId);
      return account ? { role: account.role, region: account.region } : undefined;
    },
    features: {
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        async defaultResource(ctx, client, oneOf) {
          return oneOf || config.resource;
        },
        async useGrantedResource() {
          return true;
        },
        async getResourceServerInfo(ctx, indicator) {
          if (indicator !== config.resource) throw new errors.InvalidTarget();
          return {
            scope: "api",
            audience: config.audience,
            accessTokenTTL: config.access_token_seconds,
            accessTokenFormat: "jwt",
            jwt: { sign: { alg: "RS256" } },
          };
        },
      },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          ctx.body = page(
            "退出登录",
            `<h2>退出登录</h2><p>确定要退出统一身份认证吗？</p>${form}
<button id="confirm-sign-out" autofocus type="submit" form="op.logoutForm" value="yes" name="logout">确定退出</button>`,
          );
        },
        async postLogoutSuccessSource(ctx) {
          ctx.body = page("已退出", "<h2>已退出登录</h2>");
        },
      },
    },
    clientBasedCORS(ctx, origin, client) {
      return client.redirectUris.some((uri) => new URL(uri).origin === origin);
    },
    pkce: { required: () => true },
    ttl: {
      AccessToken: config.access_token_seconds,
      AuthorizationCode: 60,
      IdToken: config.access_token_seconds,
      Interaction: 600,
      Session: 8 * 3600,
      Grant: 8 * 3600,
    },
    async renderError(ctx, out) {
      ctx.type = "html";
      ctx.body = page(
        "出错了",
        `<h2>登录出错</h2><p class="error" id="oidc-error">${html(out.error)}: ${html(out.error_description || "")}</p>`,
      );
    },
  });

  // The first-party page gets what it asks for without a consent screen: the sign-in is the consent.
  async function grantEverything(details) {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    const missing = details.prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(" "));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(" "));
    }
    const grantId = await grant.save();
    return details.grantId ? {} : { grantId };
  }

  async function interaction(req, res, uid, action) {
    res.setHeader("Cache-Control", "no-store");
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) throw new errors.SessionNotFound("interaction session id mismatch");
    if (details.prompt.name === "consent") {
      const consent = await grantEverything(details);
      return provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
    }
    if (action !== "login") {
      res.setHeader("Content-Type", "text/html; charset=utf-8");
      return res.end(loginPage(uid, users));
    }
    if (req.method !== "POST") throw new errors.InvalidRequest("the sign-in form is sent with POST");
    const form = await formBody(req);
    const account = byName.get(form.get("username") || "");
    if (!account || !samePassword(form.get("password") || "", account.password)) {
      res.statusCode = 200;
      res.setHeader("Content-Type", "text/html; charset=utf-8");
      return res.end(loginPage(uid, users, { error: "用户名或密码错误", username: form.get("username") || "" }));
    }
    return provider.interactionFinished(
      req,
      res,
      { login: { accountId: account.username } },
      { mergeWithLastSubmission: false },
    );
  }

  const callback = provider.callback();
  const server = http.createServer((req, res) => {
    const match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login))?$/.exec(new URL(req.url, config.issuer).pathname);
    if (!match) return callback(req, res);
    interaction(req, res, match[1], match[2]).catch((error) => {
      res.statusCode = error.status || 500;
      res.setHeader("Content-Type", "text/html; charset=utf-8");
      res.end(page("出错了", `<p class="error" id="oidc-error">${html(error.message)}</p>`));
    });
  });
  server.listen(config.port, "127.0.0.1", () => {
    console.log(`identity provider listening: ${config.issuer} (kid ${keys.keys[0].kid})`);
  });
  for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.close(() => process.exit(0)));
}

const [first, ...rest] = process.argv.slice(2);
if (first === "--new-key") {
  const keys = readKeys(rest[0]);
  keys.keys.unshift(newSigningKey());
  writeKeys(rest[0], keys);
  console.log(keys.keys[0].kid);
} else if (first === "--drop-key") {
  const keys = readKeys(rest[1]);
  keys.keys = keys.keys.filter((key) => key.kid !== rest[0]);
  writeKeys(rest[1], keys);
} else if (first) {
  serve(JSON.parse(fs.readFileSync(first, "utf8")));
} else {
  console.error("usage: node server.js CONFIG.json | --new-key KEYS.json | --drop-key KID KEYS.json");
  process.exit(2);
}
