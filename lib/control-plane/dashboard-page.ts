/**
 * The dashboard: one self-contained page (inline CSS and JS, SVG drawn by the script), served at GET /
 * by the control plane. It reads one SSE stream (/v1/dashboard/stream) and redraws on each event.
 * Everything from reports reaches the page through textContent and setAttribute, never as markup.
 */
export const DASHBOARD_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>meshfetch</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
  header { display: flex; gap: 24px; align-items: baseline; padding: 12px 20px; background: #1d2330; color: #fff; }
  header h1 { font-size: 18px; margin: 0; }
  main { padding: 16px 20px; display: grid; gap: 16px; grid-template-columns: minmax(300px, 1fr) minmax(0, 1.5fr); }
  section { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: 12px; overflow-x: auto; }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size: 14px; margin: 0 0 8px; }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
  th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid #eef0f3; white-space: nowrap; }
  td.n { text-align: right; }
  .ok { color: #2e7d32; } .warn { color: #b26a00; } .bad { color: #c62828; } .none { color: #7a8190; }
  #status { margin-left: auto; font-size: 12px; }
  svg text { font-size: 11px; }
</style>
</head>
<body>
<header><h1>meshfetch</h1><span>policy revision <b id="revision">…</b></span><span id="instances"></span><span id="status">connecting</span></header>
<main>
  <section><h2>Service graph</h2><svg id="graph" width="100%" viewBox="0 0 480 360" role="img" aria-label="service graph"></svg></section>
  <section><h2>Edges</h2><table id="edges"><thead><tr><th>FROM</th><th>TO</th><th>SUCCESS</th><th>RPS</th><th>P50</th><th>P95</th><th>P99</th><th>RETRIES</th><th>BREAKER</th><th>INSTANCES</th></tr></thead><tbody></tbody></table></section>
  <section class="wide"><h2>Clients</h2><table id="clients"><thead><tr><th>SERVICE</th><th>INSTANCE</th><th>APPLIED</th><th>REJECTED</th><th>LAST ERROR</th></tr></thead><tbody></tbody></table></section>
</main>
<script>
"use strict";
const SVG = "http://www.w3.org/2000/svg";
const percent = (r) => r === null ? "-" : (Math.floor(r * 1000) / 10).toFixed(1) + "%";
const millis = (ms) => ms >= 1000 ? (ms / 1000).toFixed(ms >= 10000 ? 0 : 1) + "s" : ms >= 10 ? Math.round(ms) + "ms" : ms.toFixed(1) + "ms";
const rps = (r) => r >= 100 ? String(Math.round(r)) : r >= 10 ? r.toFixed(1) : r.toFixed(2);
const tone = (r) => r === null ? "none" : r >= 0.99 ? "ok" : r >= 0.95 ? "warn" : "bad";
const COLOUR = { ok: "#2e7d32", warn: "#e0a000", bad: "#c62828", none: "#9aa1ad" };

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
}

function fillTable(id, items, columns) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren();
  for (const item of items) {
    const row = document.createElement("tr");
    for (const [value, className] of columns(item)) cell(row, value, className);
    body.appendChild(row);
  }
}

function svg(name, attributes, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  parent.appendChild(node);
  return node;
}

function drawGraph(edges) {
  const graph = document.getElementById("graph");
  graph.replaceChildren();
  const defs = svg("defs", {}, graph);
  for (const [name, colour] of Object.entries(COLOUR)) {
    const marker = svg("marker", { id: "arrow-" + name, viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" }, defs);
    svg("path", { d: "M0,0 L10,5 L0,10 z", fill: colour }, marker);
  }
  const names = [...new Set(edges.flatMap((e) => [e.from, e.to]))].sort();
  const place = new Map(names.map((name, i) => {
    const angle = (2 * Math.PI * i) / names.length - Math.PI / 2;
    return [name, { x: 240 + 140 * Math.cos(angle), y: 180 + 130 * Math.sin(angle) }];
  }));
  const R = 36;
  for (const edge of edges) {
    const a = place.get(edge.from), b = place.get(edge.to);
    const dx = b.x - a.x, dy = b.y - a.y, length = Math.hypot(dx, dy) || 1;
    const ux = dx / length, uy = dy / length, t = tone(edge.successRate);
    const line = svg("line", { x1: a.x + ux * R, y1: a.y + uy * R, x2: b.x - ux * R, y2: b.y - uy * R, stroke: COLOUR[t], "stroke-width": 3, "marker-end": "url(#arrow-" + t + ")", "data-edge": edge.from + " -> " + edge.to }, graph);
    svg("title", {}, line).textContent = edge.from + " → " + edge.to + ": " + percent(edge.successRate);
    const label = svg("text", { x: (a.x + b.x) / 2 - uy * 12, y: (a.y + b.y) / 2 + ux * 12, "text-anchor": "middle", fill: COLOUR[t] }, graph);
    label.textContent = percent(edge.successRate) + " · " + rps(edge.rate) + " rps";
  }
  for (const [name, at] of place) {
    svg("circle", { cx: at.x, cy: at.y, r: R, fill: "#fff", stroke: "#1d2330", "stroke-width": 1.5 }, graph);
    svg("text", { x: at.x, y: at.y + 4, "text-anchor": "middle" }, graph).textContent = name.length > 12 ? name.slice(0, 11) + "…" : name;
  }
}

function render(state) {
  document.getElementById("revision").textContent = state.revision;
  document.getElementById("instances").textContent = state.stats.instances + " reporting instances";
  drawGraph(state.stats.edges);
  fillTable("edges", state.stats.edges, (e) => [
    [e.from], [e.to], [percent(e.successRate), tone(e.successRate)], [rps(e.rate), "n"],
    [e.latency ? millis(e.latency.p50) : "-", "n"], [e.latency ? millis(e.latency.p95) : "-", "n"], [e.latency ? millis(e.latency.p99) : "-", "n"],
    [String(e.retries), "n"], [e.breaker, e.breaker === "closed" ? "" : "bad"], [String(e.instances), "n"],
  ]);
  fillTable("clients", state.clients, (c) => [
    [c.service], [c.instance], [c.revision || "-", c.revision === state.revision ? "ok" : "warn"],
    [c.rejectedRevision || "", c.rejectedRevision ? "bad" : ""], [(c.lastError || "").slice(0, 160)],
  ]);
  document.body.dataset.updated = String(state.stats.at);
}

const stream = new EventSource("v1/dashboard/stream");
const status = document.getElementById("status");
stream.addEventListener("state", (event) => {
  render(JSON.parse(event.data));
  status.textContent = "live · " + new Date().toLocaleTimeString();
});
stream.onerror = () => { status.textContent = "reconnecting…"; };
</script>
</body>
</html>
`;
