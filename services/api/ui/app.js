// The jaseci-like dashboard: plain JavaScript over the /v1 API, signed in by a
// session cookie. Everything shown is built with textContent (never innerHTML),
// so no value from the server is ever read as markup.
"use strict";

(function () {
  // The API sits where the page is mounted, minus "/ui/" (a proxy's root_path kept).
  const BASE = location.pathname.slice(0, location.pathname.lastIndexOf("/ui/"));
  // Milliseconds between two looks at the current page; one request at a time.
  const POLL_MS = 1000;
  const DONE = new Set(["SUCCESS", "FAILURE", "REVOKED"]);
  const OPERATOR = new Set(["admin", "superadmin"]);

  let session = null; // {user_id, role, domain, csrf_token}
  let pollTimer = null;
  let polling = false;
  let pollFailed = false;
  const lastDrawn = {}; // view -> JSON text last drawn, so an unchanged answer keeps focus

  const $ = (id) => document.getElementById(id);

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function call(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && session) headers["X-CSRF-Token"] = session.csrf_token;
    const response = await fetch(BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
    if (response.status === 204) return null;
    let data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (!response.ok) {
      const code = data && data.code ? data.code : "http_" + response.status;
      const message = data && data.message ? data.message : response.statusText;
      throw new ApiError(response.status, code, message);
    }
    return data;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function table(caption, headers, rows, attrs) {
    const head = el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { scope: "col", text: h }))));
    return el("table", attrs || {}, caption ? el("caption", { text: caption }) : null, head, el("tbody", {}, ...rows));
  }

  function say(text) {
    $("status").textContent = text || "";
  }

  function fmtSeconds(value) {
    if (value === null || value === undefined) return "—";
    return value < 1 ? "now" : value.toFixed(1) + " s";
  }

  // -- pages -----------------------------------------------------------------------
  const VIEWS = ["signin", "services", "config", "tasks", "dotfiles"];

  function currentView() {
    if (!session) return "signin";
    const wanted = location.hash.replace("#", "");
    const operator = OPERATOR.has(session.role);
    if ((wanted === "services" || wanted === "config") && operator) return wanted;
    if (wanted === "tasks" || wanted === "dotfiles") return wanted;
    return operator ? "services" : "tasks";
  }

  function show() {
    const view = currentView();
    for (const name of VIEWS) $("view-" + name).hidden = name !== view;
    $("nav").hidden = !session;
    $("who").hidden = !session;
    for (const a of document.querySelectorAll("#nav a")) {
      if (a.getAttribute("href") === "#" + view) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    const operator = session && OPERATOR.has(session.role);
    for (const li of document.querySelectorAll("#nav [data-operator]")) li.hidden = !operator;
    document.body.dataset.view = view;
    return view;
  }

  async function refresh() {
    if (polling) return;
    polling = true;
    const view = show();
    try {
      if (view === "services") await drawServices();
      else if (view === "config") await drawConfig();
      else if (view === "tasks") await drawTasks();
      else if (view === "dotfiles") await drawDotfiles();
      // A poll that works again clears the poll's own error, not what an action said.
      if (pollFailed) say("");
      pollFailed = false;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        signedOut(e.message);
      } else {
        pollFailed = true;
        say(e instanceof ApiError ? e.message + " (" + e.code + ")" : "cannot reach the API: " + e.message);
      }
    } finally {
      polling = false;
      schedule();
    }
  }

  function schedule() {
    clearTimeout(pollTimer);
    if (!session) return;
    // A hidden tab polls nothing; it looks again as soon as it is shown.
    if (document.hidden) return;
    pollTimer = setTimeout(refresh, POLL_MS);
  }

  function changed(view, data) {
    const text = JSON.stringify(data);
    if (lastDrawn[view] === text) return false;
    lastDrawn[view] = text;
    return true;
  }

  // -- services and graph ------------------------------------------------------------
  async function drawServices() {
    const data = await call("GET", "/v1/instances");
    if (!changed("services", data)) return;
    const box = $("instances");
    const parts = [];
    if (data.problem) parts.push(el("p", { class: "error", role: "alert", text: data.problem }));
    for (const inst of data.items) {
      const lead = inst.leader === null ? "no lease kept" : inst.leader ? "leader" : "follower";
      parts.push(
        el("h3", { text: "Instance " + inst.id + " on " + inst.host }),
        el("p", { class: "hint", text: "pid " + inst.pid + " · version " + inst.version + " · role " + inst.role +
          " · " + lead + (inst.api_url ? " · API " + inst.api_url : "") +
          (inst.last_seen >= 1 ? " · last heard " + fmtSeconds(inst.last_seen) + " ago" : "") }),
      );
      if (inst.lost) parts.push(el("p", { class: "error", role: "status", "data-lost": inst.id,
        text: "Lost: silent for " + fmtSeconds(inst.last_seen) + "; its services are shown as it last reported them." }));
      const rows = inst.services.map((s) =>
        el("tr", { "data-service": s.name, "data-instance": inst.id },
          el("th", { scope: "row", text: s.name }),
          el("td", { class: "state state-" + s.state, "data-state": s.state, text: s.state + (s.enabled ? "" : " (disabled)") }),
          el("td", { "data-health": String(s.healthy), text: s.healthy === null ? "—" : s.healthy ? "healthy" : "unhealthy" }),
          el("td", { class: "num", text: s.restarts }),
          el("td", { text: s.gave_up ? "gave up" : s.waiting_for ? "waits for " + s.waiting_for : fmtSeconds(s.retry_in) }),
          el("td", { class: "wrap", text: s.error || s.last_error || "—" }),
        ));
      parts.push(table("Services of " + inst.id,
        ["Service", "State", "Health", "Restarts", "Next retry", "Error / last error"], rows,
        { "aria-label": "Services of instance " + inst.id }));
    }
    box.replaceChildren(...parts);
    if (data.items.length) drawGraph(data.items[0].services);
    // For the ui.load_ms benchmark: when the first data was drawn, in page time.
    if (!performance.getEntriesByName("jl:services-drawn").length) performance.mark("jl:services-drawn");
  }

  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  function drawGraph(services) {
    // Columns by start level (what a service needs is always to its left).
    const W = 130, H = 34, GX = 70, GY = 18, PAD = 16;
    const columns = [];
    for (const s of services) (columns[s.level] = columns[s.level] || []).push(s);
    const at = {};
    columns.forEach((col, x) => (col || []).forEach((s, y) => {
      at[s.name] = { x: PAD + x * (W + GX), y: PAD + y * (H + GY), s };
    }));
    const width = PAD * 2 + columns.length * (W + GX) - GX;
    const height = PAD * 2 + Math.max(1, ...columns.map((c) => (c || []).length)) * (H + GY) - GY;
    const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7,
      markerHeight: 7, orient: "auto-start-reverse" }, svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#57606a" }));
    const root = svg("svg", { viewBox: "0 0 " + width + " " + height, width, height, role: "img",
      "aria-labelledby": "graph-title graph-desc" }, svg("desc", { id: "graph-desc" },
      services.map((s) => s.name + " " + s.state + (s.requires.length ? " needs " + s.requires.join(", ") : "")).join("; ")),
      svg("defs", {}, marker));
    for (const s of services) {
      for (const dep of s.requires) {
        const a = at[s.name], b = at[dep];
        if (!a || !b) continue;
        const x1 = a.x, y1 = a.y + H / 2, x2 = b.x + W, y2 = b.y + H / 2, mid = (x1 + x2) / 2;
        root.append(svg("path", { class: "edge", d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`,
          "marker-end": "url(#arrow)" }));
      }
    }
    for (const { x, y, s } of Object.values(at)) {
      root.append(svg("g", { class: "node state-" + s.state, "data-node": s.name, "data-state": s.state },
        svg("title", {}, s.name + ": " + s.state),
        svg("rect", { x, y, width: W, height: H, rx: 6 }),
        svg("text", { x: x + 8, y: y + 14 }, s.name),
        svg("text", { x: x + 8, y: y + 28 }, s.state)));
    }
    $("graph").replaceChildren(root);
  }

  // -- config ------------------------------------------------------------------------
  async function drawConfig() {
    const data = await call("GET", "/v1/config");
    if (!changed("config", data)) return;
    const parts = data.items.map((svc) => {
      const rows = svc.entries.map((e) => el("tr", { "data-key": e.key },
        el("th", { scope: "row", text: e.key }),
        el("td", { class: "wrap", text: JSON.stringify(e.value) }),
        el("td", { text: e.origin })));
      return el("div", { "data-config": svc.service },
        svc.error ? el("p", { class: "error", text: svc.service + ": " + svc.error }) : null,
        table(svc.service, ["Key", "Value", "Origin"], rows));
    });
    $("config").replaceChildren(...parts);
  }

  // -- tasks -------------------------------------------------------------------------
  async function drawTasks() {
    const data = await call("GET", "/v1/tasks?limit=100");
    if (!changed("tasks", data)) return;
    if (!data.items.length) {
      $("tasks").replaceChildren(el("p", { text: "No tasks submitted yet." }));
      return;
    }
    const rows = data.items.map((t) => {
      const st = t.status;
      const state = st ? st.state : "EXPIRED";
      const progress = st && st.progress !== null ? st.progress : state === "SUCCESS" ? 1 : null;
      const label = "Progress of " + t.name + " " + t.task_id;
      const bar = progress === null
        ? el("progress", { max: 1, "aria-label": label, "data-task-id": t.task_id })
        : el("progress", { max: 1, value: progress, "aria-label": label, "data-task-id": t.task_id },
          Math.round(progress * 100) + "%");
      const detail = st ? st.error || st.message || (st.result !== null && st.result !== undefined ? JSON.stringify(st.result) : "") : "record expired";
      const cancel = st && !DONE.has(st.state)
        ? el("button", { type: "button", "data-cancel": t.task_id, "aria-label": "Cancel " + t.name + " " + t.task_id,
          onclick: () => cancelTask(t.task_id) }, "Cancel")
        : null;
      return el("tr", { "data-task": t.task_id },
        el("th", { scope: "row", text: t.name }),
        el("td", { text: t.task_id }),
        el("td", { text: new Date(t.submitted_at).toLocaleString() }),
        el("td", { class: "state", "data-state": state, text: state }),
        el("td", {}, bar, " ", progress === null ? "" : Math.round(progress * 100) + "%"),
        el("td", { class: "wrap", text: detail }),
        el("td", {}, cancel));
    });
    $("tasks").replaceChildren(table(null, ["Task", "ID", "Submitted", "State", "Progress", "Detail", "Actions"], rows,
      { "aria-label": "Tasks" }));
  }

  async function cancelTask(id) {
    try {
      await call("POST", "/v1/tasks/" + encodeURIComponent(id) + "/cancel");
      say("Cancel asked for task " + id + ".");
    } catch (e) {
      say(e.message);
    }
    lastDrawn.tasks = null;
    refresh();
  }

  // -- dotfiles ----------------------------------------------------------------------
  let groups = [];
  let editing = null; // path being edited, or null for a new dotfile

  function canEdit(group) {
    if (!session || !group) return false;
    return session.role === "superadmin" || (session.role === "admin" && group.domain === session.domain);
  }

  function selectedGroup() {
    return groups.find((g) => g.id === $("group-select").value) || null;
  }

  function dotfileUrl(group, path) {
    const base = "/v1/groups/" + encodeURIComponent(group.id) + "/dotfiles";
    return path === undefined ? base : base + "/" + path.split("/").map(encodeURIComponent).join("/");
  }

  async function drawDotfiles() {
    const listing = await call("GET", "/v1/groups?limit=1000");
    if (changed("groups", listing)) {
      const keep = $("group-select").value;
      groups = listing.items;
      $("group-select").replaceChildren(...groups.map((g) =>
        el("option", { value: g.id, selected: g.id === keep }, g.domain + " / " + g.name)));
    }
    const group = selectedGroup();
    $("dotfile-form").hidden = !canEdit(group);
    if (!group) {
      lastDrawn.dotfiles = null;
      $("dotfiles").replaceChildren(el("p", { text: "You belong to no group." }));
      return;
    }
    const data = await call("GET", dotfileUrl(group) + "?limit=100&order=path");
    if (!changed("dotfiles", [group.id, data])) return;
    const editable = canEdit(group);
    const rows = data.items.map((d) => el("tr", { "data-path": d.path },
      el("th", { scope: "row", text: d.path }),
      el("td", { text: d.permission }),
      el("td", {}, el("pre", { text: d.data })),
      el("td", { text: new Date(d.updated_at).toLocaleString() }),
      editable ? el("td", {},
        el("button", { type: "button", "data-edit": d.path, "aria-label": "Edit " + d.path, onclick: () => startEdit(d) }, "Edit"),
        " ",
        el("button", { type: "button", "data-delete": d.path, "aria-label": "Delete " + d.path, onclick: () => removeDotfile(d.path) }, "Delete"))
        : null));
    const headers = ["Path", "Permission", "Contents", "Updated"].concat(editable ? ["Actions"] : []);
    $("dotfiles").replaceChildren(
      table("Dotfiles of " + group.domain + " / " + group.name + (editable ? "" : " (read-only)"), headers, rows,
        { "data-group": group.id }),
      el("p", { class: "hint", text: data.leftover_space + " bytes left in the group." }));
  }

  function startEdit(d) {
    editing = d.path;
    $("dotfile-form-title").textContent = "Edit " + d.path;
    $("dotfile-path").value = d.path;
    $("dotfile-path").readOnly = true;
    $("dotfile-permission").value = d.permission;
    $("dotfile-data").value = d.data;
    $("dotfile-save").textContent = "Save";
    $("dotfile-data").focus();
  }

  function resetForm() {
    editing = null;
    $("dotfile-form").reset();
    $("dotfile-form-title").textContent = "New dotfile";
    $("dotfile-path").readOnly = false;
    $("dotfile-save").textContent = "Create";
    $("dotfile-error").textContent = "";
  }

  async function saveDotfile(event) {
    event.preventDefault();
    const group = selectedGroup();
    if (!group) return;
    const path = $("dotfile-path").value;
    const body = { data: $("dotfile-data").value, permission: $("dotfile-permission").value };
    try {
      if (editing === null) await call("PUT", dotfileUrl(group, path), body);
      else await call("PATCH", dotfileUrl(group, editing), body);
      say("Saved " + path + ".");
      resetForm();
    } catch (e) {
      $("dotfile-error").textContent = e.message;
    }
    lastDrawn.dotfiles = null;
    refresh();
  }

  async function removeDotfile(path) {
    const group = selectedGroup();
    if (!group) return;
    try {
      await call("DELETE", dotfileUrl(group, path));
      say("Deleted " + path + ".");
    } catch (e) {
      say(e.message);
    }
    lastDrawn.dotfiles = null;
    refresh();
  }

  // -- signing in and out --------------------------------------------------------------
  function signedIn(body) {
    session = body;
    for (const key of Object.keys(lastDrawn)) delete lastDrawn[key];
    $("who-text").textContent = "Signed in as " + body.role + " of " + body.domain;
    $("signin-error").textContent = "";
    $("signin-key").value = "";
    show();
    $("main").focus();
    refresh();
  }

  function signedOut(message) {
    session = null;
    clearTimeout(pollTimer);
    show();
    $("signin-error").textContent = message || "";
    $("signin-key").focus();
  }

  async function signIn(event) {
    event.preventDefault();
    $("signin-error").textContent = "";
    try {
      signedIn(await call("POST", "/ui/session", { key: $("signin-key").value.trim() }));
    } catch (e) {
      $("signin-error").textContent = e instanceof ApiError ? e.message : "cannot reach the API: " + e.message;
    }
  }

  async function signOut() {
    try {
      await call("DELETE", "/ui/session");
    } catch (e) {
      say(e.message);
    }
    signedOut("Signed out.");
  }

  async function start() {
    $("signin-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", signOut);
    $("dotfile-form").addEventListener("submit", saveDotfile);
    $("dotfile-reset").addEventListener("click", resetForm);
    $("group-select").addEventListener("change", () => { resetForm(); lastDrawn.dotfiles = null; refresh(); });
    window.addEventListener("hashchange", () => refresh());
    document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
    try {
      session = await call("GET", "/ui/session");
      signedIn(session);
    } catch (e) {
      signedOut("");
    }
  }

  document.addEventListener("DOMContentLoaded", start);
})();
