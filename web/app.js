// abota-server web UI: plain JS on the management API (/rest/v1, HTTP Basic)
// plus /ui/v1/rollouts.  Every value from the server goes into the page with
// textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let auth = sessionStorage.getItem("abota-auth");
let detailTimer = null;

async function api(method, path, body, isForm) {
  const headers = { "Authorization": auth, "Accept": "application/json",
                    "X-Requested-With": "abota-ui" };
  let payload = body;
  if (body !== undefined && !isForm) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const r = await fetch(path, { method, headers, body: payload });
  if (r.status === 401) { logout(); throw new Error("not logged in"); }
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
  if (!r.ok) throw new Error((data && data.message) || ("HTTP " + r.status));
  return data;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function td(text, label, cls) {
  const c = el("td", text, cls);
  if (label) c.dataset.label = label;
  return c;
}

function ago(ms) {
  if (!ms) return "never";
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return new Date(ms).toLocaleString();
}

function show(view) {
  for (const v of ["login", "devices", "bundles"]) $(v + "-view").hidden = v !== view;
  $("nav").hidden = view === "login";
  document.querySelectorAll("nav a").forEach((a) =>
    a.classList.toggle("active", a.dataset.view === view));
  if (view === "devices") loadDevices();
  if (view === "bundles") loadBundles();
}

function logout() {
  auth = null;
  sessionStorage.removeItem("abota-auth");
  show("login");
}

async function login(ev) {
  ev.preventDefault();
  const u = $("login-user").value, p = $("login-password").value;
  auth = "Basic " + btoa(unescape(encodeURIComponent(u + ":" + p)));
  try {
    const r = await fetch("/rest/v1/targets?limit=1",
      { headers: { "Authorization": auth, "X-Requested-With": "abota-ui" } });
    if (!r.ok) throw new Error(r.status === 401 ? "wrong user or password" : "HTTP " + r.status);
    sessionStorage.setItem("abota-auth", auth);
    $("login-error").textContent = "";
    location.hash = "#devices";
    show("devices");
  } catch (e) {
    auth = null;
    $("login-error").textContent = "Login failed: " + e.message;
  }
}

// ---- devices ----
async function loadDevices() {
  const q = $("device-filter").value.trim();
  const page = await api("GET", "/rest/v1/targets?limit=200" + (q ? "&q=" + encodeURIComponent(q) : ""));
  const tbody = $("devices").querySelector("tbody");
  const rows = await Promise.all(page.content.map(async (t) => {
    const id = encodeURIComponent(t.controllerId);
    const [attrs, inst] = await Promise.all([
      api("GET", "/rest/v1/targets/" + id + "/attributes").catch(() => ({})),
      api("GET", "/rest/v1/targets/" + id + "/installedDS").catch(() => null)]);
    return { t, attrs: attrs || {}, inst };
  }));
  tbody.replaceChildren();
  for (const { t, attrs, inst } of rows) {
    const tr = el("tr");
    tr.dataset.id = t.controllerId;
    const cb = el("input");
    cb.type = "checkbox";
    cb.className = "pick";
    cb.value = t.controllerId;
    cb.setAttribute("aria-label", "select " + t.controllerId);
    cb.addEventListener("click", (e) => e.stopPropagation());
    const c0 = el("td");
    c0.append(cb);
    tr.append(c0, td(t.controllerId, "Device"));
    const st = td(null, "State");
    st.append(el("span", t.updateStatus, "state " + t.updateStatus));
    tr.append(st);
    const bank = attrs.booted_bank || attrs.booted_slot || attrs.booted || attrs.bank || "";
    tr.append(td(bank || "?", "Booted bank"));
    tr.append(td(inst ? inst.name + " " + inst.version : (attrs.version || "—"), "Installed"));
    tr.append(td(ago(t.lastControllerRequestAt), "Last seen"));
    tr.addEventListener("click", () => openDevice(t.controllerId));
    tbody.append(tr);
  }
  await loadDsOptions();
  await loadRollouts();
}

// Only the state and last-seen cells, so a check mark being set survives.
async function refreshStates() {
  const page = await api("GET", "/rest/v1/targets?limit=200");
  for (const t of page.content) {
    const tr = $("devices").querySelector(`tr[data-id="${CSS.escape(t.controllerId)}"]`);
    if (!tr) continue;
    const span = tr.children[2].firstChild;
    span.textContent = t.updateStatus;
    span.className = "state " + t.updateStatus;
    tr.children[5].textContent = ago(t.lastControllerRequestAt);
  }
}

async function loadDsOptions() {
  const sets = await api("GET", "/rest/v1/distributionsets?limit=200");
  const sel = $("assign-ds");
  const keep = sel.value;
  sel.replaceChildren();
  for (const d of sets.content) {
    const o = el("option", d.name + " " + d.version);
    o.value = d.id;
    sel.append(o);
  }
  if (keep) sel.value = keep;
}

async function assignSelected() {
  const ids = [...document.querySelectorAll("input.pick:checked")].map((c) => c.value);
  const msg = $("assign-msg");
  msg.className = "msg";
  if (!ids.length || !$("assign-ds").value) {
    msg.textContent = "Select devices and a bundle first.";
    msg.className = "msg bad";
    return;
  }
  try {
    const r = await api("POST", "/ui/v1/rollouts", {
      distributionSetId: Number($("assign-ds").value), type: $("assign-type").value,
      targets: ids, groupSize: $("rollout-group").value.trim(),
      errorThreshold: Number($("rollout-fail").value) });
    msg.textContent = "Rollout " + r.id + " started: " + r.assigned + " of " + r.total +
      " device(s) in the first group.";
    await loadDevices();
  } catch (e) {
    msg.textContent = "Assignment failed: " + e.message;
    msg.className = "msg bad";
  }
}

async function loadRollouts() {
  const list = await api("GET", "/ui/v1/rollouts");
  const box = $("rollouts");
  box.replaceChildren();
  for (const r of list.filter((x) => x.status === "running" || Date.now() - x.lastModifiedAt < 3600e3)) {
    const p = el("p", "Rollout " + r.id + " (" + r.distributionSet + "): " + r.status + " — " +
      r.finished + " done, " + r.failed + " failed, " + r.running + " running, " +
      r.waiting + " waiting" + (r.message ? " — " + r.message : ""), "muted");
    box.append(p);
  }
}

async function openDevice(cid) {
  const box = $("device-detail");
  box.hidden = false;
  clearInterval(detailTimer);
  const id = encodeURIComponent(cid);
  const render = async () => {
    const [t, attrs, acts] = await Promise.all([
      api("GET", "/rest/v1/targets/" + id),
      api("GET", "/rest/v1/targets/" + id + "/attributes"),
      api("GET", "/rest/v1/targets/" + id + "/actions?limit=10&sort=id:DESC")]);
    box.replaceChildren(el("h2", t.controllerId));
    box.append(el("p", "State: " + t.updateStatus + " · last seen " + ago(t.lastControllerRequestAt) +
      (t.ipAddress ? " from " + t.ipAddress : ""), "muted"));
    const al = el("p", Object.entries(attrs).map(([k, v]) => k + "=" + v).join(", ") || "no attributes", "muted");
    box.append(al);
    for (const a of acts.content) {
      const h = el("h3", "Action " + a.id + ": ");
      h.append(el("span", a.detailStatus, "state action-status " + a.detailStatus));
      h.dataset.action = a.id;
      box.append(h);
      if (!["finished", "error", "canceled", "canceling", "downloaded"].includes(a.status)) {
        const b = el("button", "Cancel", "danger");
        b.type = "button";
        b.addEventListener("click", async () => {
          await api("DELETE", "/rest/v1/targets/" + id + "/actions/" + a.id);
          render();
        });
        box.append(b);
      }
      const st = await api("GET", "/rest/v1/targets/" + id + "/actions/" + a.id + "/status?limit=50&sort=id:DESC");
      const ul = el("ul", null, "history");
      for (const s of st.content) {
        const li = el("li");
        li.append(el("span", new Date(s.reportedAt).toLocaleTimeString() + " " + s.type + ": ", "muted"),
                  el("span", (s.messages || []).join(" · ")));
        ul.append(li);
      }
      box.append(ul);
    }
  };
  await render();
  // live: the feedback history is polled while the detail is open
  detailTimer = setInterval(() => {
    render().catch(() => {});
    if (!$("devices-view").hidden) refreshStates().catch(() => {});
  }, 2000);
}

// ---- bundles ----
async function loadBundles() {
  const sets = await api("GET", "/rest/v1/distributionsets?limit=200");
  const tbody = $("bundles").querySelector("tbody");
  tbody.replaceChildren();
  for (const d of sets.content) {
    let b = null, size = "";
    for (const m of d.modules) {
      const arts = await api("GET", "/rest/v1/softwaremodules/" + m.id + "/artifacts");
      for (const a of arts) { if (a.bundle) b = a.bundle; size = a.size; }
    }
    const tr = el("tr");
    tr.append(td(d.name, "Name"), td(d.version, "Version"), td(b ? b.compatible : "—", "Compatible"),
              td(b ? b.signer : "not a verified bundle", "Signer"), td(size, "Size"));
    tbody.append(tr);
  }
}

async function upload(ev) {
  ev.preventDefault();
  const f = $("upload-file").files[0];
  const msg = $("upload-msg");
  msg.className = "msg";
  if (!f) return;
  msg.textContent = "Uploading and verifying " + f.name + "…";
  let sm = null;
  try {
    [sm] = await api("POST", "/rest/v1/softwaremodules",
      [{ name: f.name.replace(/\.raucb$/, ""), version: "upload-" + Date.now(), type: "os" }]);
    const fd = new FormData();
    fd.append("file", f, f.name);
    const art = await api("POST", "/rest/v1/softwaremodules/" + sm.id + "/artifacts", fd, true);
    const b = art.bundle;
    await api("POST", "/rest/v1/distributionsets",
      [{ name: b.compatible, version: b.version, type: "os", modules: [{ id: sm.id }] }]);
    msg.textContent = "Verified: " + b.compatible + " " + b.version + ", signed by " + b.signer +
      " (" + b.format + ")";
    loadBundles();
  } catch (e) {
    msg.textContent = "Refused: " + e.message;
    msg.className = "msg bad";
    if (sm) api("DELETE", "/rest/v1/softwaremodules/" + sm.id).catch(() => {});
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("upload-form").addEventListener("submit", upload);
  $("assign-btn").addEventListener("click", assignSelected);
  $("device-filter").addEventListener("input", () => loadDevices().catch(() => {}));
  $("select-all").addEventListener("change", (e) =>
    document.querySelectorAll("input.pick").forEach((c) => { c.checked = e.target.checked; }));
  window.addEventListener("hashchange", () => auth && show(location.hash.slice(1) || "devices"));
  show(auth ? (location.hash.slice(1) || "devices") : "login");
  setInterval(() => { if (auth && !$("devices-view").hidden) loadRollouts().catch(() => {}); }, 3000);
});
