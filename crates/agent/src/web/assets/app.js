// Flexus Autoscaler dashboard: plain JS over the agent's /v1 API (same bearer tokens).
"use strict";
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const num = (x, d = 2) => (x === null || x === undefined) ? "-" : Number(x).toFixed(d);
let token = sessionStorage.getItem("flexus-token") || "";
let timer = null;

async function api(path, opts = {}) {
  const r = await fetch(path, {...opts, headers: {"Authorization": "Bearer " + token}});
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw Object.assign(new Error((body.error && body.error.message) || r.statusText), {status: r.status});
  return body;
}

function table(headers, rows, attrs) {
  const head = "<tr>" + headers.map((h) => "<th>" + esc(h) + "</th>").join("") + "</tr>";
  const body = rows.map((r, i) => "<tr" + (attrs ? attrs(i) : "") + ">" + r.map((c) =>
    typeof c === "number" ? '<td class="num">' + c + "</td>" : "<td>" + c + "</td>").join("") + "</tr>").join("");
  return "<table>" + head + body + "</table>";
}

function show(section) {
  for (const s of ["login", "overview", "pool"]) $(s).hidden = s !== section;
  $("logout").hidden = section === "login";
}

async function login(t) {
  token = t;
  try {
    await api("/v1/namespaces");
    sessionStorage.setItem("flexus-token", t);
    $("login-error").textContent = "";
    route();
  } catch (e) {
    token = "";
    sessionStorage.removeItem("flexus-token");
    $("login-error").textContent = e.status === 401 ? "Unknown token." : "Login failed: " + e.message;
    show("login");
  }
}

async function overview() {
  show("overview");
  const nss = await api("/v1/namespaces");
  const parts = await Promise.all(nss.map(async (ns) => {
    const [pools, cost] = await Promise.all([
      api("/v1/namespaces/" + ns.name + "/pools"),
      api("/v1/namespaces/" + ns.name + "/cost").catch(() => null)]);
    const byPool = new Map((cost ? cost.pools : []).map((p) => [p.pool, p]));
    const rows = pools.map((p) => {
      const c = byPool.get(p.id) || {};
      const s = p.status;
      return ['<a href="#/pool/' + esc(p.id) + '">' + esc(p.name) + "</a>", esc(s.phase), s.desired_size ?? "-",
        s.current_size, s.ready_size, esc(p.spec.min_size + ".." + p.spec.max_size), esc(p.spec.flavor),
        num(c.cost, 3), c.idle_pct === undefined ? "-" : num(c.idle_pct, 1) + "%", num(c.violation_minutes, 1)];
    });
    const total = cost ? " — " + num(cost.totals.cost, 3) + " " + esc(cost.currency) + " over " + num(cost.window.hours, 1) + " h" : "";
    return '<h2 data-namespace="' + esc(ns.name) + '">' + esc(ns.name) + ' <span class="muted">' + pools.length + (pools.length === 1 ? " pool" : " pools") + total + "</span></h2>" +
      table(["pool", "phase", "desired", "current", "ready", "bounds", "flavor", "cost", "idle", "violation min"], rows,
        (i) => ' data-pool="' + esc(pools[i].id) + '"');
  }));
  $("namespaces").innerHTML = parts.join("") || "<p>No namespaces.</p>";
  api("/v1/advisor").then((a) => {
    $("advisor-state").textContent = "Advisor: " + a.state + (a.enabled ? " (" + a.model + ", " + a.tokens_today + " of " + a.daily_token_budget + " tokens today)" : "");
  }).catch(() => {});
}

function chart(points) {
  if (!points.length) return '<p class="muted">No usage samples yet.</p>';
  const W = 1000, H = 240, L = 40, B = 20;
  const t0 = Date.parse(points[0].at), t1 = Math.max(Date.parse(points[points.length - 1].at), t0 + 1);
  const ymax = Math.max(1, ...points.map((p) => Math.max(p.ready, p.billed, p.desired || 0, p.demand || 0, p.forecast_capacity || 0))) * 1.15;
  const x = (p) => (L + (W - L - 8) * (Date.parse(p.at) - t0) / (t1 - t0)).toFixed(1);
  const y = (v) => (H - B - (H - B - 8) * v / ymax).toFixed(1);
  const line = (f, color, dash) => {
    const pts = points.filter((p) => f(p) !== undefined && f(p) !== null).map((p) => x(p) + "," + y(f(p))).join(" ");
    return pts ? '<polyline fill="none" stroke="' + color + '" stroke-width="2"' + (dash ? ' stroke-dasharray="5 4"' : "") + ' points="' + pts + '"/>' : "";
  };
  const fc = points.filter((p) => p.forecast_capacity !== undefined && p.desired !== undefined);
  const band = fc.length ? '<polygon fill="#7f56d9" fill-opacity="0.15" points="' +
    fc.map((p) => x(p) + "," + y(Math.max(p.forecast_capacity, p.desired))).join(" ") + " " +
    fc.slice().reverse().map((p) => x(p) + "," + y(Math.min(p.forecast_capacity, p.desired))).join(" ") + '"/>' : "";
  let grid = "";
  for (let v = 0; v <= ymax; v += Math.max(1, Math.ceil(ymax / 5))) {
    grid += '<line x1="' + L + '" x2="' + W + '" y1="' + y(v) + '" y2="' + y(v) + '" stroke="#e3e6ea"/><text x="4" y="' + y(v) + '" font-size="11">' + v + "</text>";
  }
  return '<svg viewBox="0 0 ' + W + " " + H + '" preserveAspectRatio="none" role="img" aria-label="load and capacity">' + grid + band +
    line((p) => p.demand, "#d92d20") + line((p) => p.ready, "#1570ef") + line((p) => p.desired, "#101828", true) +
    line((p) => p.forecast_capacity, "#7f56d9", true) + "</svg>" +
    '<p class="legend"><span><i class="sw" style="background:#d92d20"></i>load (instances needed)</span><span><i class="sw" style="background:#1570ef"></i>ready</span>' +
    '<span><i class="sw" style="background:#101828"></i>desired</span><span><i class="sw" style="background:#7f56d9"></i>forecast band</span>' +
    '<span class="muted">last load ' + num(points[points.length - 1].load_rps, 1) + " req/s</span></p>";
}

function proposals(d) {
  const ps = (d.detail && d.detail.proposals) || [];
  return ps.map((p) => esc(p.metric) + "=" + (p.value === null || p.value === undefined ? "none" : num(p.value, 1)) +
    " → " + (p.proposal ?? "-")).join("<br>");
}

function effect(e) {
  if (!e) return "";
  return "replayed " + num(e.hours, 1) + " h: cost " + num(e.before.cost, 3) + " → " + num(e.after.cost, 3) +
    ", violation " + num(e.before.violation_minutes, 0) + " → " + num(e.after.violation_minutes, 0) + " min, instance-hours " +
    num(e.before.instance_hours, 1) + " → " + num(e.after.instance_hours, 1);
}

function renderCost(r) {
  const p = r.pools[0];
  if (!p) return '<p class="muted">No usage recorded in the window yet.</p>';
  const rows = p.by_purchase.map((b) => [esc(b.flavor), esc(b.purchase), num(b.instance_hours, 2), num(b.cost, 3)]);
  let html = "<p>" + num(p.cost, 3) + " " + esc(r.currency) + " over " + num(r.window.hours, 1) + " h; spot savings " + num(p.spot_savings, 3) +
    "; idle " + (p.idle_pct === undefined ? "-" : num(p.idle_pct, 1) + "%") + "; per 1,000 requests " + num(p.cost_per_1k_requests, 4) +
    "; SLO violation " + num(p.violation_minutes, 1) + " min; " + p.scaling_actions + " scaling actions.</p>" +
    table(["flavor", "purchase", "instance-hours", "cost"], rows);
  if (p.recommendations && p.recommendations.length) {
    html += table(["change", "from", "to", "effect"], p.recommendations.map((c) => [esc(c.setting), esc(c.current), esc(c.proposed), esc(effect(c.effect))]));
  } else if (p.recommendation_note) html += '<p class="muted">' + esc(p.recommendation_note) + "</p>";
  return html;
}

// The tuner's recommendation beside the model's proposal, both replayed on the same window.
function tunerHtml(a) {
  const t = a.tuner;
  if (!t) return '<p class="muted tuner">tuner: ' + (a.state === "pending" ? "runs when the model has answered" : "not run for this answer") + "</p>";
  if (!t.outcome) return '<p class="muted tuner">tuner: no recommendation (' + esc(t.reason) + ")</p>";
  const o = t.outcome;
  const row = (name, m) => [esc(name), m ? num(m.violation_min, 1) : "-", m ? num(m.violation_share * 100, 2) + "%" : "-",
    m ? num(m.instance_hours, 2) : "-", m ? num(m.cost, 3) : "-"];
  const changes = o.changes.length ? o.changes.map((c) => esc(c.field) + ": " + num(c.before, 3) + " → " + num(c.after, 3)).join("<br>")
    : "no change: nothing beat the current policy on the tuning window";
  return '<div class="tuner"><p><strong>Tuner</strong> <span class="muted">same history, tuned on ' + num(o.tune_hours, 1) + " h, " +
    o.evaluations + " replays</span><br>" + changes + '</p><p class="muted">Replayed on the validation window (the last ' +
    num(o.validation_hours, 1) + " h, which the tuner never saw):</p>" +
    table(["policy", "violation min", "violation", "instance-hours", "cost"],
      [row("current", o.before), row("model's proposal", t.model), row("tuner's recommendation", o.after)]
        .concat((o.baselines || []).map((b) => row(b.name + " (default target)", b.validation)))) +
    (t.reason ? '<p class="muted">' + esc(t.reason) + "</p>" : "") + "</div>";
}

function renderAdvice(list) {
  if (!list.length) return '<p class="muted">No advice asked yet.</p>';
  return list.map((a) => '<div class="card" data-advice="' + esc(a.state) + '"><strong>' + esc(a.state) + "</strong> " + esc(a.created_at) +
    " <span class=\"muted\">" + esc(a.model) + ", " + a.tokens + " tokens</span>" +
    (a.explanation ? "<p>" + esc(a.explanation) + "</p>" : "") +
    (a.policy_patch && Object.keys(a.policy_patch).length ? "<pre>" + esc(JSON.stringify(a.policy_patch)) + "</pre>" : "") +
    (a.effect ? '<p class="ok">' + esc(effect(a.effect)) + "</p>" : "") +
    tunerHtml(a) +
    (a.rejected ? '<p class="warn">rejected: ' + esc(a.rejected) + "</p>" : "") +
    (a.error ? '<p class="error">' + esc(a.error) + "</p>" : "") + "</div>").join("");
}

async function poolView(ns, name, withCost) {
  show("pool");
  const base = "/v1/namespaces/" + ns + "/pools/" + name;
  $("pool-title").textContent = ns + "/" + name;
  const [pool, usage, decisions, ops, advice] = await Promise.all([api(base), api(base + "/usage"),
    api(base + "/decisions?limit=20"), api(base + "/operations"), api(base + "/advice")]);
  const s = pool.status;
  $("pool-status").textContent = s.phase + " — desired " + (s.desired_size ?? "-") + ", current " + s.current_size +
    ", ready " + s.ready_size + ", flavor " + pool.spec.flavor + ", bounds " + pool.spec.min_size + ".." + pool.spec.max_size;
  $("chart").innerHTML = chart(usage.points);
  $("decisions").innerHTML = table(["at", "count", "action", "outcome", "signals", "bound by", "explanation"],
    decisions.items.map((d) => [esc(d.at), d.current + " → " + d.desired, esc(d.action), esc(d.outcome), proposals(d), esc(d.bound_by || "-"), esc(d.explanation)]));
  $("operations").innerHTML = table(["id", "kind", "state", "count", "created", "error"],
    ops.slice(0, 20).map((o) => [esc(o.id.slice(0, 8)), esc(o.kind), esc(o.state), o.count, esc(o.created_at), esc(o.error || "")]));
  $("advice").innerHTML = renderAdvice(advice);
  if (withCost) $("cost").innerHTML = renderCost(await api(base + "/cost" + (withCost === "recommend" ? "?recommend=true" : "")));
}

async function route() {
  clearInterval(timer);
  if (!token) { show("login"); return; }
  $("who").textContent = "";
  const m = location.hash.match(/^#\/pool\/([a-z0-9-]+)\/([a-z0-9-]+)$/);
  try {
    if (m) {
      await poolView(m[1], m[2], "plain");
      timer = setInterval(() => poolView(m[1], m[2], false).catch(() => {}), 5000);
    } else {
      await overview();
      timer = setInterval(() => overview().catch(() => {}), 10000);
    }
  } catch (e) {
    if (e.status === 401) { token = ""; sessionStorage.removeItem("flexus-token"); show("login"); return; }
    const where = m ? $("pool-status") : $("namespaces");
    where.innerHTML = '<p class="error" role="alert">' + esc(e.message) + "</p>";
  }
}

$("login-form").addEventListener("submit", (ev) => { ev.preventDefault(); login($("token").value.trim()); });
$("logout").addEventListener("click", () => { token = ""; sessionStorage.removeItem("flexus-token"); location.hash = "#/"; show("login"); });
$("recommend").addEventListener("click", () => {
  const m = location.hash.match(/^#\/pool\/([a-z0-9-]+)\/([a-z0-9-]+)$/);
  if (m) { $("cost").innerHTML = '<p class="muted">Replaying…</p>'; poolView(m[1], m[2], "recommend").catch((e) => { $("cost").textContent = e.message; }); }
});
$("ask-advice").addEventListener("click", async () => {
  const m = location.hash.match(/^#\/pool\/([a-z0-9-]+)\/([a-z0-9-]+)$/);
  if (!m) return;
  try { await api("/v1/namespaces/" + m[1] + "/pools/" + m[2] + "/advice", {method: "POST"}); await poolView(m[1], m[2], false); }
  catch (e) { $("advice").insertAdjacentHTML("afterbegin", '<p class="error">' + esc(e.message) + "</p>"); }
});
window.addEventListener("hashchange", route);
route();
