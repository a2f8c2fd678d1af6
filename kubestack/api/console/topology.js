// KubeStack-AI console: the topology of one incident, drawn as a small SVG. Nodes are the incident's resources and
// the resources the learned graph links them to (GET /api/v1/topology/neighbours: observed peers, same host,
// service, depends_on); the ranked causes of its root-cause report carry their rank. The incident shown is the one
// of the page's address (#/incidents/<id>, the link notifications carry), else the first open one. Uses api() and
// el() of app.js, which is loaded first; it watches the incident list rather than hooking into its rendering.
"use strict";

(() => {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const WIDTH = 720, HEIGHT = 380, NODE_W = 150, NODE_H = 38;
  const MAX_NEIGHBOURS = 12;
  const STALE_MS = 15000;
  const box = document.getElementById("topology");
  const list = document.getElementById("incidents");
  let drawn = { id: null, at: 0, stamp: "" };
  let busy = null;      // the drawing under way, if any
  let again = false;    // asked for while one was under way (a click on a card's link): draw once more after it

  // ResourceRef.key of kubestack/contract/base.py: the API sends the parts, the graph speaks in keys
  const keyOf = (r) => `${r.cluster || "-"}/${r.namespace || r.host || "-"}/${r.kind}/${r.name}`;
  const partsOf = (key) => { const p = key.split("/"); return { kind: p[p.length - 2], name: p[p.length - 1] }; };
  const short = (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "text") node.textContent = value; else node.setAttribute(key, value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function selectedId() {
    const match = location.hash.match(/^#\/incidents\/([^/?#]+)/);
    if (match) return decodeURIComponent(match[1]);
    const first = list.querySelector("article.incident");
    return first ? first.dataset.incidentId : null;
  }

  // The graph of an incident: its resources, their neighbours (at most MAX_NEIGHBOURS), each link once
  function graphOf(inc, answers) {
    const nodes = new Map();
    const add = (key, kind, name, role) => {
      if (!nodes.has(key)) nodes.set(key, { key, kind, name, role, ranks: [] });
      return nodes.get(key);
    };
    for (const r of inc.resources) add(keyOf(r), r.kind, r.name, "incident");
    const edges = new Map();
    let hidden = 0;
    answers.forEach((answer, i) => {
      if (!answer || !answer.known) return;
      const from = keyOf(inc.resources[i]);
      for (const n of answer.neighbours) {
        if (!nodes.has(n.resource)) {
          if (nodes.size - inc.resources.length >= MAX_NEIGHBOURS) { hidden += 1; continue; }
          add(n.resource, n.kind, n.name, "neighbour");
        }
        const [a, b] = n.direction === "called_by" ? [n.resource, from] : [from, n.resource];
        const pair = [a, b].sort().join("|");
        if (!edges.has(pair)) edges.set(pair, { from: a, to: b, relation: n.relation, directed: n.direction !== "peer" });
      }
    });
    const causes = ((inc.rca && inc.rca.hypotheses) || []).slice(0, 3);
    for (const h of causes) {
      const { kind, name } = partsOf(h.component);
      add(h.component, kind, name, "neighbour").ranks.push(h.rank);
    }
    return { nodes: [...nodes.values()], edges: [...edges.values()], causes, hidden };
  }

  // The incident's resources on an inner ring (the centre when alone), the others on an outer one, each next to
  // the first incident resource it is linked to
  function layout(graph) {
    const cx = WIDTH / 2, cy = HEIGHT / 2;
    const inner = graph.nodes.filter((n) => n.role === "incident");
    const outer = graph.nodes.filter((n) => n.role !== "incident");
    const angle = new Map();
    inner.forEach((n, i) => {
      const a = (2 * Math.PI * i) / inner.length - Math.PI / 2;
      angle.set(n.key, a);
      const r = inner.length === 1 ? 0 : 70;
      Object.assign(n, { x: cx + 1.6 * r * Math.cos(a), y: cy + r * Math.sin(a) });
    });
    const anchor = (n) => {
      const edge = graph.edges.find((e) => (e.from === n.key && angle.has(e.to)) || (e.to === n.key && angle.has(e.from)));
      return edge ? angle.get(edge.from === n.key ? edge.to : edge.from) : 0;
    };
    outer.sort((a, b) => anchor(a) - anchor(b)).forEach((n, i) => {
      const a = (2 * Math.PI * i) / Math.max(outer.length, 1) - Math.PI / 2 + (inner.length > 1 ? Math.PI / outer.length : 0);
      Object.assign(n, { x: cx + 260 * Math.cos(a), y: cy + 145 * Math.sin(a) });
    });
  }

  function draw(inc, graph) {
    layout(graph);
    const at = new Map(graph.nodes.map((n) => [n.key, n]));
    const image = svg("svg", { class: "topology-graph", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img",
      "data-incident-id": inc.incident_id, "aria-label": `Topology of incident ${inc.incident_id}` },
    svg("defs", {}, svg("marker", { id: "topo-arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "7",
      markerHeight: "7", orient: "auto-start-reverse" }, svg("path", { d: "M0,0 L10,5 L0,10 z", class: "topo-arrowhead" }))));
    for (const e of graph.edges) {
      const a = at.get(e.from), b = at.get(e.to);
      const end = clip(a, b);
      image.append(svg("g", { class: "topo-edge", "data-from": e.from, "data-to": e.to, "data-relation": e.relation },
        svg("line", { x1: a.x, y1: a.y, x2: end.x, y2: end.y, class: e.directed ? "topo-line" : "topo-line peer",
          "marker-end": e.directed ? "url(#topo-arrow)" : null }),
        svg("text", { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 4, class: "topo-relation", text: e.relation })));
    }
    for (const n of graph.nodes) {
      const ranks = n.ranks.sort((x, y) => x - y);
      const classes = ["topo-node", n.role, ranks.length ? "cause" : ""].join(" ").trim();
      const group = svg("g", { class: classes, "data-resource": n.key, transform: `translate(${n.x - NODE_W / 2},${n.y - NODE_H / 2})` },
        svg("title", { text: n.key + (ranks.length ? ` — ranked cause #${ranks.join(", #")}` : "") }),
        svg("rect", { width: NODE_W, height: NODE_H, rx: 6 }),
        svg("text", { x: 8, y: 15, class: "topo-kind", text: n.kind }),
        svg("text", { x: 8, y: 30, class: "topo-name", text: short(n.name, 20) }));
      if (ranks.length) {
        group.append(svg("circle", { cx: NODE_W, cy: 0, r: 11, class: `topo-badge rank-${ranks[0]}` }),
          svg("text", { x: NODE_W, y: 4, class: "topo-rank", text: `#${ranks[0]}` }));
      }
      image.append(group);
    }
    const causes = graph.causes.map((h) => el("li", { class: "topo-cause" },
      el("strong", { text: `#${h.rank} ` }), `${h.cause} — ${partsOf(h.component).kind}/${partsOf(h.component).name} `,
      el("span", { class: "muted", text: `(${Math.round(h.confidence * 100)}%)` })));
    box.replaceChildren(...[
      el("p", {}, el("strong", { text: inc.title }), el("span", { class: "muted",
        text: ` · ${inc.incident_id} · ${graph.nodes.length} resources, ${graph.edges.length} links` +
          (graph.hidden ? ` (${graph.hidden} more neighbours not drawn)` : "") })),
      image,
      causes.length ? el("ol", { class: "topo-causes" }, ...causes)
        : el("p", { class: "muted", text: "No root-cause report yet." }),
      graph.edges.length ? null : el("p", { class: "muted", text: "No learned link to its resources yet." }),
    ].filter(Boolean));
  }

  // Where the line from a's centre towards b meets b's box, so that the arrow head stays visible
  function clip(a, b) {
    const dx = b.x - a.x, dy = b.y - a.y;
    const scale = Math.min(Math.abs(dx) > 0 ? (NODE_W / 2) / Math.abs(dx) : Infinity,
      Math.abs(dy) > 0 ? (NODE_H / 2) / Math.abs(dy) : Infinity, 1);
    return { x: b.x - dx * scale, y: b.y - dy * scale };
  }

  // One drawing at a time; a call during one (the list refreshed, the address changed) is not lost: the last such
  // call runs once the drawing under way ends, and its promise settles after that
  async function show(force = false) {
    if (busy) {
      again = again || force || "soft";
      return busy;
    }
    busy = (async () => {
      let forced = force;
      do {
        const pending = again;
        again = false;
        await drawSelected(forced || pending === true);
        forced = false;
      } while (again);
    })();
    try { await busy; } finally { busy = null; }
  }

  async function drawSelected(force) {
    const id = selectedId();
    if (!id) { drawn = { id: null, at: 0, stamp: "" }; box.replaceChildren(el("p", { class: "muted", text: "No open incident." })); return; }
    if (!force && id === drawn.id && Date.now() - drawn.at < STALE_MS) return;
    try {
      const inc = await api(`/api/v1/incidents/${encodeURIComponent(id)}`);
      const answers = await Promise.all(inc.resources.map((r) => api(
        `/api/v1/topology/neighbours?resource=${encodeURIComponent(keyOf(r))}`).catch(() => null)));
      const graph = graphOf(inc, answers);
      const stamp = JSON.stringify([inc.revision, inc.rca && inc.rca.ts, graph.nodes.map((n) => n.key), graph.edges.length]);
      if (stamp !== drawn.stamp || id !== drawn.id) draw(inc, graph);
      drawn = { id, at: Date.now(), stamp };
    } catch (error) {
      box.replaceChildren(el("p", { class: "error", text: `Topology unavailable: ${error.message}` }));
      drawn = { id, at: Date.now(), stamp: "" };
    }
  }

  // Each incident card links to its topology; the list is redrawn on every refresh, so the links are added again
  function linkCards() {
    for (const card of list.querySelectorAll("article.incident")) {
      const title = card.querySelector("h3");
      if (!title || title.querySelector("a.topo-link")) continue;
      const id = card.dataset.incidentId;
      title.append(" ", el("a", { class: "topo-link", href: `#/incidents/${encodeURIComponent(id)}`, text: "topology" }));
    }
  }

  if (!box || !list) return;
  new MutationObserver(() => { linkCards(); show(); }).observe(list, { childList: true });
  window.addEventListener("hashchange", () => { show(true).then(() => box.scrollIntoView({ block: "nearest" })); });
})();
