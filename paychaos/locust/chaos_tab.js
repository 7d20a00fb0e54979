// The controls of paychaos's Chaos tab in Locust's web UI (served as /paychaos/chaos-tab.js,
// added to Locust's index page by paychaos.locust.chaos_tab).
//
// Locust draws the tab (its own table of the faults in force); while that tab is shown,
// this script puts the controls above the table: a fault, its parameters and TTL,
// Inject; a fault in force, Revert, Revert all; a message line. Colours and type come
// from Locust's own theme (light or dark) as the page renders it.
(() => {
  "use strict";
  const TAB = "paychaos-chaos";
  // Under Locust's --web-base-path (e.g. /locust) the API is too: beside this script's
  // own address (<base>/paychaos/chaos-tab.js).
  const SCRIPT = document.currentScript ? new URL(document.currentScript.src) : null;
  const BASE = SCRIPT ? SCRIPT.pathname.replace(/\/paychaos\/chaos-tab\.js$/, "") : "";
  const API = BASE + "/chaos/api/";
  let panel = null;
  let faults = null;
  let loading = false;

  const onTab = () => new URLSearchParams(window.location.search).get("tab") === TAB;

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  }

  function theme() {
    // Locust's MUI theme as rendered: the selected tab carries the primary colour
    const body = getComputedStyle(document.body);
    const tab = document.querySelector(".MuiTab-root.Mui-selected");
    const paper = document.querySelector(".MuiTableContainer-root"); // the tab's own paper
    return {
      primary: tab ? getComputedStyle(tab).color : "rgb(25, 118, 210)",
      text: body.color,
      font: body.fontFamily,
      paper: paper ? getComputedStyle(paper).backgroundColor : body.backgroundColor,
    };
  }

  function style() {
    if (document.getElementById("paychaos-chaos-style")) return;
    const css = `
#paychaos-chaos-panel{font-family:var(--pc-font);color:var(--pc-text);margin:16px 0;
  padding:16px;border-radius:4px;background:var(--pc-paper);
  box-shadow:0 2px 1px -1px rgba(0,0,0,.2),0 1px 1px 0 rgba(0,0,0,.14),0 1px 3px 0 rgba(0,0,0,.12)}
#paychaos-chaos-panel h6{margin:0 0 12px;font-size:1.25rem;font-weight:500;line-height:1.6}
#paychaos-chaos-panel .pc-row{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-end;margin-bottom:12px}
#paychaos-chaos-panel label{display:flex;flex-direction:column;font-size:.75rem;gap:4px;opacity:.87}
#paychaos-chaos-panel input,#paychaos-chaos-panel select{font:inherit;font-size:1rem;color:inherit;
  background:transparent;border:1px solid rgba(127,127,127,.5);border-radius:4px;padding:0 14px;
  height:40px;box-sizing:border-box;min-width:8em}
#paychaos-chaos-panel input:focus,#paychaos-chaos-panel select:focus{outline:2px solid var(--pc-primary);border-color:transparent}
#paychaos-chaos-panel option{color:#000}
#paychaos-chaos-panel button{font:inherit;font-size:.875rem;font-weight:500;letter-spacing:.02857em;
  text-transform:uppercase;border:0;border-radius:4px;padding:0 22px;height:40px;cursor:pointer;
  background:var(--pc-primary);color:#fff;
  box-shadow:0 3px 1px -2px rgba(0,0,0,.2),0 2px 2px 0 rgba(0,0,0,.14),0 1px 5px 0 rgba(0,0,0,.12)}
#paychaos-chaos-panel button.pc-outlined{background:transparent;color:var(--pc-primary);
  border:1px solid var(--pc-primary);box-shadow:none}
#paychaos-chaos-panel button:disabled{opacity:.5;cursor:default}
#paychaos-chaos-panel .pc-hint{font-size:.75rem;opacity:.7}
#paychaos-chaos-message{min-height:1.5em;padding:6px 16px;border-radius:4px;font-size:.875rem}
#paychaos-chaos-message.pc-ok{background:rgba(46,125,50,.12);color:inherit}
#paychaos-chaos-message.pc-error{background:rgba(211,47,47,.12);color:rgb(211,47,47);font-weight:500}`;
    document.head.append(el("style", { id: "paychaos-chaos-style" }, css));
  }

  function say(text, ok) {
    const box = panel.querySelector("#paychaos-chaos-message");
    box.textContent = text;
    box.className = ok ? "pc-ok" : "pc-error";
  }

  async function call(path, body) {
    const init = body === undefined ? {} : {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    };
    const resp = await fetch(API + path, init);
    let data = null;
    try {
      data = await resp.json();
    } catch (e) {
      throw new Error(`${path}: the server answered ${resp.status} without JSON`);
    }
    if (!resp.ok) throw new Error(data && data.error ? data.error : `${path}: HTTP ${resp.status}`);
    return data;
  }

  function drawParams() {
    const box = panel.querySelector("#paychaos-params");
    const fault = faults.find((f) => f.name === panel.querySelector("#paychaos-fault").value);
    box.replaceChildren();
    if (!fault) return;
    panel.querySelector("#paychaos-fault-help").textContent =
      `${fault.description} (TTL at most ${fault.max_duration_s}s)`;
    for (const p of fault.params) {
      let control;
      if (p.choices.length) {
        control = el("select", { name: p.name, "data-param": p.name });
        for (const c of p.choices) {
          const option = el("option", { value: c }, c);
          if (c === p.default) option.selected = true;
          control.append(option);
        }
      } else {
        control = el("input", { name: p.name, "data-param": p.name, value: p.default, size: "8" });
      }
      box.append(el("label", { title: p.help }, `${p.name} (${p.range})`, control));
    }
  }

  async function refreshActive() {
    if (!panel) return;
    const select = panel.querySelector("#paychaos-active");
    let rows = [];
    try {
      rows = (await call("active")).filter((r) => r.id && r.id !== "-");
    } catch (e) {
      return;
    }
    const chosen = select.value;
    select.replaceChildren(
      ...(rows.length
        ? rows.map((r) => el("option", { value: r.id }, `${r.id}: ${r.fault} on ${r.target} (${r.remaining})`))
        : [el("option", { value: "" }, "no fault in force")]),
    );
    if (rows.some((r) => r.id === chosen)) select.value = chosen;
    panel.querySelector("#paychaos-revert").disabled = !rows.length;
  }

  async function inject(event) {
    event.preventDefault();
    const body = {
      fault: panel.querySelector("#paychaos-fault").value,
      for: panel.querySelector("#paychaos-for").value.trim(),
    };
    for (const input of panel.querySelectorAll("[data-param]")) body[input.name] = input.value.trim();
    try {
      say((await call("inject", body)).message, true);
    } catch (e) {
      say(`Not injected: ${e.message}`, false);
    }
    refreshActive();
  }

  async function revert(id) {
    if (!id) {
      say("Choose a fault in force to revert.", false);
      return;
    }
    try {
      say((await call("revert", { id })).message, true);
    } catch (e) {
      say(`Not reverted: ${e.message}`, false);
    }
    refreshActive();
  }

  function build() {
    style();
    const faultSelect = el("select", { id: "paychaos-fault", name: "fault", onchange: () => drawParams() });
    for (const f of faults) faultSelect.append(el("option", { value: f.name }, f.name));
    panel = el(
      "div",
      { id: "paychaos-chaos-panel" },
      el("h6", {}, "Inject a fault"),
      el(
        "form",
        { id: "paychaos-inject-form", onsubmit: inject },
        el(
          "div",
          { class: "pc-row" },
          el("label", {}, "fault", faultSelect),
          el("label", { title: "how long it stays (e.g. 30s, 2m); it expires by itself" }, "for",
            el("input", { id: "paychaos-for", name: "for", value: "60s", size: "6" })),
          el("span", { id: "paychaos-params", class: "pc-row", style: "margin:0" }),
          el("button", { id: "paychaos-inject", type: "submit" }, "Inject"),
        ),
        el("div", { id: "paychaos-fault-help", class: "pc-hint" }),
      ),
      el("h6", { style: "margin-top:16px" }, "Revert"),
      el(
        "div",
        { class: "pc-row" },
        el("label", {}, "fault in force", el("select", { id: "paychaos-active" })),
        el("button", { id: "paychaos-revert", type: "button",
          onclick: () => revert(panel.querySelector("#paychaos-active").value) }, "Revert"),
        el("button", { id: "paychaos-revert-all", class: "pc-outlined", type: "button",
          onclick: () => revert("all") }, "Revert all"),
      ),
      el("div", { id: "paychaos-chaos-message", role: "status" }),
    );
    drawParams();
    refreshActive();
    return panel;
  }

  async function ensure() {
    const table = document.querySelector(".MuiTableContainer-root");
    if (!onTab() || !table) {
      if (panel && panel.isConnected) panel.remove(); // another tab: the controls go too
      return;
    }
    if (faults === null) {
      if (loading) return;
      loading = true;
      try {
        faults = await call("faults");
      } catch (e) {
        faults = [];
        build();
        say(`The fault list is not available: ${e.message}`, false);
      } finally {
        loading = false;
      }
    }
    if (!panel) build();
    const t = theme();
    panel.style.setProperty("--pc-primary", t.primary);
    panel.style.setProperty("--pc-text", t.text);
    panel.style.setProperty("--pc-font", t.font);
    panel.style.setProperty("--pc-paper", t.paper);
    if (panel.nextElementSibling !== table) table.parentNode.insertBefore(panel, table);
  }

  setInterval(ensure, 300);
  setInterval(() => onTab() && panel && panel.isConnected && refreshActive(), 2000);
})();
