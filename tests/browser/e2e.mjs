// End-to-end tests of the churnguard web app in Debian's headless Chromium,
// driven by playwright-core against the real server on loopback.
//
//   node tests/browser/e2e.mjs
//
// Environment: CHURNGUARD_BIN (the binary), CHROMIUM (default /usr/bin/chromium),
// CHURNGUARD_TEST_OUTPUT (screenshots; default test-output/browser).
// It builds its own small fixture: generate, features, train, score.

import { spawn, execFileSync } from "node:child_process";
import { createHash, createHmac } from "node:crypto";
import { createServer } from "node:http";
import { mkdtempSync, mkdirSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const BIN = process.env.CHURNGUARD_BIN;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const OUT = resolve(process.env.CHURNGUARD_TEST_OUTPUT || "test-output/browser");
const READER = "reader-key-browser-0000001";
const ADMIN = "admin-key-browser-00000002";
const CSM = "csm-key-browser-000000003";
const HOOK_SECRET = "browser-webhook-secret";

if (!BIN || !existsSync(BIN)) {
  console.error(`CHURNGUARD_BIN must name the churnguard binary (got ${BIN})`);
  process.exit(2);
}
mkdirSync(OUT, { recursive: true });
const work = mkdtempSync(join(tmpdir(), "cg-browser-"));
const cg = (...args) => execFileSync(BIN, args, { cwd: work, stdio: ["ignore", "pipe", "inherit"] }).toString();

let failures = 0;
let passed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed += 1;
    console.log(`ok   ${name}`);
  } catch (e) {
    failures += 1;
    console.log(`FAIL ${name}\n     ${e && e.stack ? e.stack.split("\n").slice(0, 3).join("\n     ") : e}`);
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

// Fixture: a small company, a model, a scored run with interventions.
console.log(`fixture in ${work}`);
cg("generate", "--customers", "800", "--seed", "5", "--out", "co");
cg("features", "--data", "co", "--out", "f.parquet");
cg("train", "--data", "f.parquet", "--families", "logistic", "--registry", "models");
cg("score", "--data", "co", "--registry", "models", "--snapshot", "2024-12-01", "--out", "r", "--store", "sqlite://cg.db");

// A CSV file as objects (quoted fields may hold commas).
function readCsv(path) {
  const text = readFileSync(path, "utf8");
  const rows = [];
  let row = [], field = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(field); field = ""; }
    else if (c === "\n") { row.push(field); rows.push(row); row = []; field = ""; }
    else if (c !== "\r") field += c;
  }
  if (field || row.length) { row.push(field); rows.push(row); }
  const [head, ...body] = rows;
  return body.map((r) => Object.fromEntries(head.map((h, i) => [h, r[i]])));
}

// The CSM of the morning walk: the account manager whose customer with a
// treated intervention has the largest expected loss.
const loss = new Map(readCsv(join(work, "r/scores.csv")).map((r) => [r.customer_id, Number(r.expected_loss)]));
const mine = readCsv(join(work, "r/interventions.csv"))
  .filter((i) => i.arm === "treated" && /^\d+$/.test(i.owner))
  .sort((a, b) => (loss.get(b.customer_id) || 0) - (loss.get(a.customer_id) || 0));
if (!mine.length) throw new Error("the fixture run made no treated intervention for an account manager");
const CSM_OWNER = mine[0].owner;

// A webhook receiver that refuses each intervention's first attempt (so
// the retry path runs), checks every signature, and applies each key once.
const hook = { requests: [], applied: new Map(), badSignatures: 0 };
const receiver = createServer((req, res) => {
  let body = "";
  req.on("data", (d) => (body += d));
  req.on("end", () => {
    const key = req.headers["idempotency-key"] || "";
    const [t, v1] = String(req.headers["churnguard-signature"] || "").split(",").map((p) => p.split("=")[1]);
    const want = createHmac("sha256", HOOK_SECRET).update(`${t}.${body}`).digest("hex");
    if (want !== v1) hook.badSignatures += 1;
    const seen = hook.requests.filter((r) => r.key === key).length;
    hook.requests.push({ key, body: JSON.parse(body) });
    if (seen === 0) {
      res.writeHead(503).end();
      return;
    }
    if (!hook.applied.has(key)) hook.applied.set(key, JSON.parse(body));
    res.writeHead(200).end();
  });
});
await new Promise((ok) => receiver.listen(0, "127.0.0.1", ok));
const hookUrl = `http://127.0.0.1:${receiver.address().port}/churnguard`;
writeFileSync(
  join(work, "churnguard.toml"),
  `[[serve.keys]]
name = "csm-${CSM_OWNER}"
role = "reader"
sha256 = "${createHash("sha256").update(CSM).digest("hex")}"
owner = "${CSM_OWNER}"

[serve.delivery]
poll_secs = 1
first_retry_secs = 1
max_retry_secs = 2
timeout_secs = 5

[[serve.delivery.webhooks]]
name = "crm"
url = "${hookUrl}"
secret_env = "CG_BROWSER_HOOK_SECRET"
`,
);

// The server, on an ephemeral port.
const server = spawn(
  BIN,
  ["serve", "--listen", "127.0.0.1:0", "--registry", "models", "--store", "sqlite://cg.db", "--data", "co"],
  {
    cwd: work,
    env: { ...process.env, CHURNGUARD_API_KEYS: `reader:${READER},admin:${ADMIN}`, CG_BROWSER_HOOK_SECRET: HOOK_SECRET },
  },
);
const base = await new Promise((ok, fail) => {
  const timer = setTimeout(() => fail(new Error("server did not start in 30 s")), 30000);
  server.stdout.on("data", (d) => {
    const m = d.toString().match(/serving on (http:\/\/[0-9.:]+)/);
    if (m) {
      clearTimeout(timer);
      ok(m[1]);
    }
  });
  server.on("exit", (code) => fail(new Error(`server exited with ${code}`)));
});
console.log(`server at ${base}`);

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

async function signIn(context, key) {
  const page = await context.newPage();
  page.on("dialog", (d) => d.accept());
  await page.goto(`${base}/login`);
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/`);
  return page;
}

try {
  const readerCtx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await signIn(readerCtx, READER);

  await check("sign-in sets an HttpOnly, SameSite=Strict session cookie", async () => {
    const cookies = await readerCtx.cookies();
    const c = cookies.find((x) => x.name === "cg_session");
    assert(c, "no session cookie");
    assert(c.httpOnly, "cookie is not HttpOnly");
    assert(c.sameSite === "Strict", `SameSite is ${c.sameSite}`);
  });

  await check("the risk list shows customers sorted by expected loss", async () => {
    await page.getByRole("heading", { name: "Risk list" }).waitFor();
    const rows = await page.locator("table.risk tbody tr").count();
    assert(rows > 10, `only ${rows} rows`);
    const th = page.locator('th[aria-sort="descending"]');
    assert((await th.innerText()).includes("Expected loss"), "not sorted by expected loss");
    await page.screenshot({ path: join(OUT, "risk-list.png"), fullPage: true });
  });

  await check("filtering by band keeps only that band", async () => {
    await page.getByLabel("Band").selectOption("yellow");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/band=yellow/);
    const bands = await page.locator("table.risk tbody td .band").allInnerTexts();
    assert(bands.length > 0, "no yellow customers");
    assert(bands.every((b) => b === "yellow"), `bands: ${[...new Set(bands)]}`);
    await page.screenshot({ path: join(OUT, "risk-list-yellow.png"), fullPage: true });
  });

  await check("sorting by a column and exporting the view as CSV", async () => {
    await page.getByRole("link", { name: "Health", exact: true }).click();
    await page.waitForURL(/sort=health/);
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("link", { name: "Export CSV" }).click(),
    ]);
    const path = join(OUT, "risk-list.csv");
    await download.saveAs(path);
    const text = (await import("node:fs")).readFileSync(path, "utf8");
    const lines = text.trim().split("\n");
    assert(lines[0].startsWith("customer_id,name,owner"), "no CSV header");
    assert(lines.length > 1 && lines.slice(1).every((l) => l.includes(",yellow,")), "export ignores the filter");
  });

  let customerUrl;
  await check("a customer page explains the score", async () => {
    await page.goto(`${base}/`);
    await page.locator("table.risk tbody tr a").first().click();
    await page.waitForURL(/\/customers\//);
    customerUrl = page.url();
    assert(await page.locator("svg.gauge").isVisible(), "no gauge");
    assert(await page.locator("svg.bars").isVisible(), "no component bars");
    assert(await page.locator("svg.history").isVisible(), "no history chart");
    assert(await page.getByRole("heading", { name: "Top reasons" }).isVisible(), "no reasons");
    assert(await page.getByText("CLV / CAC").isVisible(), "no CLV/CAC");
    // The serving model's lifetime curve: how long the customer may stay,
    // and the CLV formula in a sentence.
    assert(await page.getByRole("heading", { name: "How long they may stay" }).isVisible(), "no survival section");
    assert(await page.getByRole("img", { name: /still being a customer/ }).isVisible(), "no survival curve");
    assert(/Expected to stay about \d+ more months/.test(await page.locator("#h-stay + p").innerText()), "no expected months");
    await page.screenshot({ path: join(OUT, "customer.png"), fullPage: true });
  });

  await check("a reader sees no admin buttons, and the server refuses a reader's post", async () => {
    const buttons = await page.getByRole("button", { name: "Record outcome" }).count();
    assert(buttons === 0, "reader sees Record outcome");
    // With the reader's own, valid CSRF token: the role check must refuse it.
    // (page.request shares the session cookie; in-page fetch is blocked by the CSP.)
    const token = await page.locator("input[name=csrf]").first().inputValue();
    const r = await page.request.post(`${base}/interventions/1/done`, { form: { csrf: token } });
    const text = await r.text();
    assert(r.status() === 403 && text.includes("own account manager"), `reader's post answered ${r.status()}: ${text.slice(0, 200)}`);
    // And a forged token is refused before anything else.
    const f = await page.request.post(`${base}/logout`, { form: { csrf: "forged" } });
    const forged = f.status();
    assert(forged === 403, `forged CSRF token answered ${forged}`);
  });

  await check("pages carry the security headers", async () => {
    const r = await page.request.get(`${base}/`);
    const h = r.headers();
    const csp = h["content-security-policy"] || "";
    assert(csp.includes("frame-ancestors 'none'"), `CSP: ${csp}`);
    assert(!csp.includes("unsafe-inline"), `CSP allows inline: ${csp}`);
    assert(h["x-content-type-options"] === "nosniff", "no nosniff");
  });

  await check("basic accessibility: labels, language, keyboard", async () => {
    await page.goto(`${base}/`);
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll("input:not([type=hidden]), select")].filter(
        (el) => !(el.id && document.querySelector(`label[for="${el.id}"]`)) && !el.getAttribute("aria-label"),
      ).length,
    );
    assert(unlabelled === 0, `${unlabelled} unlabelled fields`);
    assert((await page.getAttribute("html", "lang")) === "en", "no lang");
    await page.keyboard.press("Tab");
    const first = await page.evaluate(() => document.activeElement && document.activeElement.textContent);
    assert(first && first.includes("Skip to content"), `first tab stop: ${first}`);
    const svgs = await page.evaluate(() => [...document.querySelectorAll("svg")].filter((s) => !s.getAttribute("aria-label")).length);
    assert(svgs === 0, "an svg without aria-label");
  });

  await check("the KPI page switches role and stage", async () => {
    await page.goto(`${base}/kpi`);
    await page.getByLabel("Role").selectOption("acquisition");
    await page.getByLabel("Business stage").selectOption("mature");
    await page.getByRole("button", { name: "Show" }).click();
    await page.waitForURL(/stage=mature/);
    assert(await page.getByRole("columnheader", { name: "Renewals" }).isVisible(), "no renewals column");
    assert(await page.getByRole("heading", { name: "Configured and data-driven weights" }).isVisible(), "no weights");
    await page.screenshot({ path: join(OUT, "kpi.png"), fullPage: true });
    // Account managers: regions by name (not "na"), rates as percentages,
    // and metrics shown but not counted say so.
    await page.goto(`${base}/kpi?role=account_manager&stage=balanced`);
    const table = await page.locator("table.kpi").innerText();
    assert(/North America|Europe, Middle East, Africa|Asia-Pacific|Latin America|whole role/.test(table), "no peer group names");
    assert(!/\tna\t/.test(table), "a region code is shown");
    assert(table.includes("not scored") && /\d+\.\d%/.test(table), "no 'not scored' or percentages");
    assert(!table.includes("reported"), "the old 'reported' label");
    await page.screenshot({ path: join(OUT, "kpi-account-managers.png"), fullPage: true });
  });

  await check("the models page lists the champion and opens its report", async () => {
    await page.goto(`${base}/models`);
    assert(await page.getByText("champion").first().isVisible(), "no champion tag");
    await page.getByRole("link", { name: "Training report" }).first().click();
    await page.waitForURL(/\/report$/);
    assert((await page.locator("svg").count()) > 0, "report has no charts");
    await page.screenshot({ path: join(OUT, "report.png"), fullPage: true });
  });

  await check("the retention page draws cohorts, observed against projected", async () => {
    await page.goto(`${base}/`);
    await page.getByRole("link", { name: "Retention" }).click();
    await page.waitForURL(/\/retention$/);
    assert(await page.getByRole("img", { name: /observed and projected/ }).isVisible(), "no cohort chart");
    assert((await page.locator("svg.cohorts polyline").count()) >= 2, "no cohort curves");
    assert((await page.locator("table tbody tr").count()) > 3, "no cohort rows");
    await page.screenshot({ path: join(OUT, "retention.png"), fullPage: true });
  });

  await check("the monitoring page shows drift against the training baseline", async () => {
    await page.goto(`${base}/monitoring`);
    assert(await page.getByRole("heading", { name: /^Verdict: / }).isVisible(), "no verdict");
    assert(await page.getByRole("heading", { name: "Drift against the training baseline" }).isVisible(), "no drift table");
    assert((await page.locator("svg.drift").count()) > 1, "no baseline-against-now charts");
    await page.screenshot({ path: join(OUT, "monitoring.png"), fullPage: true });
  });

  await check("the interventions board groups open work by owner", async () => {
    await page.goto(`${base}/interventions`);
    assert(await page.getByRole("heading", { name: "Treated against control" }).isVisible(), "no save rate section");
    assert((await page.locator("section.owner").count()) > 0, "no owners");
    // Account managers by name, with the id beside it; team queues as they are.
    const heads = await page.locator("section.owner h2").allInnerTexts();
    assert(heads.some((h) => /^[A-Z][a-z]+ [A-Z][a-z]+ \(#\d+\)/.test(h)), `no owner names: ${heads.join(" | ")}`);
    assert(!heads.some((h) => /^\d+ \(/.test(h)), `an owner shown as a bare id: ${heads.join(" | ")}`);
    await page.screenshot({ path: join(OUT, "interventions.png"), fullPage: true });
  });

  await check("a CSM's morning: my accounts, the riskiest one, a reason, an override, the CRM, the outcome", async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const c = await signIn(ctx, CSM);
    // My accounts: the risk list of this account manager's customers.
    await c.getByRole("link", { name: "My accounts" }).click();
    await c.waitForURL(new RegExp(`owner=${CSM_OWNER}`));
    assert((await c.locator("table.risk tbody tr").count()) > 0, "no accounts of mine");
    await c.screenshot({ path: join(OUT, "csm-1-my-accounts.png"), fullPage: true });
    // My open interventions, most value at risk first; open the top one.
    await c.goto(`${base}/interventions?mine=1&sort=value`);
    const owners = await c.locator("section.owner").count();
    assert(owners === 1, `"mine" shows ${owners} owners`);
    await c.screenshot({ path: join(OUT, "csm-2-my-interventions.png"), fullPage: true });
    await c.locator("section.owner tbody tr a").first().click();
    await c.waitForURL(/\/customers\//);
    const customerId = decodeURIComponent(c.url().split("/customers/")[1].split("?")[0]);
    // A reason with a direction, in words.
    const reasons = await c.locator("#h-risk ~ ol li").allInnerTexts();
    assert(reasons.length > 0, "no reasons");
    assert(reasons.some((r) => /(raises|lowers) risk/.test(r)), `no direction in: ${reasons.join(" | ")}`);
    await c.screenshot({ path: join(OUT, "csm-3-customer.png"), fullPage: true });
    // Override the band, with a reason and an expiry a week ahead.
    const until = new Date(Date.now() + 7 * 86400e3).toISOString().slice(0, 10);
    await c.getByLabel("Band", { exact: true }).selectOption("green");
    await c.getByLabel("Reason").fill("Renewal signed on the phone; paperwork follows");
    await c.getByLabel("Until (last day)").fill(until);
    await c.getByRole("button", { name: "Save override" }).click();
    await c.waitForURL(/done=override/);
    const status = await c.locator("#h-override ~ p[role=status]").innerText();
    assert(/Band set to\s+green/.test(status) && status.includes(until), `override not shown: ${status}`);
    await c.screenshot({ path: join(OUT, "csm-4-override.png"), fullPage: true });
    // The intervention reached the CRM webhook (after one refused attempt).
    let delivered = "";
    for (let i = 0; i < 60 && !delivered.includes("crm: delivered"); i++) {
      await new Promise((ok) => setTimeout(ok, 500));
      await c.reload();
      delivered = (await c.locator("td.delivery").allInnerTexts()).join(" | ");
    }
    assert(delivered.includes("crm: delivered"), `not delivered: ${delivered}`);
    const forCustomer = hook.requests.filter((r) => r.body.customer.id === customerId);
    assert(forCustomer.length >= 2, `the receiver saw ${forCustomer.length} requests for ${customerId}`);
    assert(new Set(forCustomer.map((r) => r.key)).size === 1, "attempts under different keys");
    assert([...hook.applied.values()].filter((b) => b.customer.id === customerId).length === 1, "applied twice");
    assert(hook.badSignatures === 0, `${hook.badSignatures} bad signatures`);
    await c.screenshot({ path: join(OUT, "csm-5-delivered.png"), fullPage: true });
    // Record the outcome of the call.
    const form = c.locator("form.inline").filter({ has: c.getByRole("button", { name: "Record outcome" }) }).first();
    await form.getByLabel("Outcome").selectOption("retained");
    await form.getByRole("button", { name: "Record outcome" }).click();
    await c.waitForURL(/done=outcome/);
    assert(await c.getByText("Outcome recorded.").isVisible(), "no confirmation");
    await c.screenshot({ path: join(OUT, "csm-6-outcome.png"), fullPage: true });
    await ctx.close();
  });

  await check("a phone-sized screen still shows the risk list", async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    const p = await signIn(phone, READER);
    assert((await p.locator("table.risk tbody tr").count()) > 0, "no rows on a phone");
    await p.screenshot({ path: join(OUT, "risk-list-phone.png"), fullPage: true });
    await phone.close();
  });

  await check("an admin records an outcome from the customer page", async () => {
    const adminCtx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const a = await signIn(adminCtx, ADMIN);
    await a.goto(`${base}/interventions`);
    await a.locator("section.owner tbody tr a").first().click();
    await a.waitForURL(/\/customers\//);
    const form = a.locator("form.inline").filter({ has: a.getByRole("button", { name: "Record outcome" }) }).first();
    await form.getByLabel("Outcome").selectOption("retained");
    await form.getByRole("button", { name: "Record outcome" }).click();
    await a.waitForURL(/done=outcome/);
    assert(await a.getByText("Outcome recorded.").isVisible(), "no confirmation");
    assert((await a.locator("td", { hasText: "retained" }).count()) > 0, "outcome not shown");
    await a.screenshot({ path: join(OUT, "customer-outcome.png"), fullPage: true });
    await adminCtx.close();
  });

  await check("signing out ends the session", async () => {
    await page.goto(`${base}/`);
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/\/login/);
    const r = await page.goto(`${base}/`);
    assert(r.url().endsWith("/login"), "still signed in");
  });

  await check("a wrong key is refused", async () => {
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    await p.goto(`${base}/login`);
    await p.getByLabel("API key").fill("not-a-real-key");
    await p.getByRole("button", { name: "Sign in" }).click();
    assert(await p.getByRole("alert").isVisible(), "no error shown");
    await ctx.close();
  });
} finally {
  await browser.close();
  server.kill("SIGTERM");
  receiver.close();
}

console.log(`\n${passed} passed, ${failures} failed; screenshots in ${OUT}`);
process.exit(failures ? 1 : 0);
