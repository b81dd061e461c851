(function () {
  "use strict";
  // The player: lays the graph out (dagre, inlined before this script, for a page marked
  // "layered"; the columns written by the page's Python otherwise), then steps through the
  // backward pass one rule at a time, with the view following the step.
  var trace = JSON.parse(document.getElementById("backprop-trace").textContent);
  var steps = trace.steps, nodes = trace.nodes, edges = trace.edges;
  var SVGNS = "http://www.w3.org/2000/svg";
  var stepOf = {}, nodeEl = {}, edgeEl = {}, into = {}, outOf = {}, labelEl = {}, box = {};
  steps.forEach(function (id, k) { stepOf[id] = k + 1; });
  document.querySelectorAll("[data-node]").forEach(function (el) {
    nodeEl[el.getAttribute("data-node")] = el;
  });
  document.querySelectorAll("[data-edge]").forEach(function (el) {
    edgeEl[el.getAttribute("data-edge")] = el;
  });
  edges.forEach(function (e) {
    (into[e.target] = into[e.target] || []).push(e);
    if (carried(e)) (outOf[e.source] = outOf[e.source] || []).push(e);
  });
  var k = 0, timer = null;
  var counter = document.getElementById("counter");
  var detail = document.getElementById("detail");
  var playBtn = document.getElementById("play");
  var speed = document.getElementById("speed");
  var svg = document.getElementById("graph"), canvas = document.getElementById("canvas");
  var viewport = document.getElementById("viewport");
  var labelLayer = document.getElementById("edge-labels");
  var layered = document.body.classList.contains("layered");
  var LINE = layered ? 19 : 15, PAD = 9;

  function carried(e) { return e.contribution !== null || !!e.summary; }
  function fmt(x) {
    if (x === null || x === undefined) return "—";
    if (typeof x === "string") return x === "Infinity" ? "inf" : x === "-Infinity" ? "-inf" : x;
    if (Array.isArray(x)) return "[" + x.map(fmt).join(", ") + "]";
    if (x === 0) return "0";
    var a = Math.abs(x), e = Math.floor(Math.log10(a));
    if (e < -4 || e >= 4) {
      var parts = x.toExponential(3).split("e");
      var m = parts[0].indexOf(".") >= 0 ? parts[0].replace(/0+$/, "").replace(/\.$/, "") : parts[0];
      var p = parseInt(parts[1], 10);
      return m + "e" + (p < 0 ? "-" : "+") + (Math.abs(p) < 10 ? "0" : "") + Math.abs(p);
    }
    var s = x.toPrecision(4);
    return s.indexOf(".") >= 0 ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
  }
  function signed(x) { var t = fmt(x); return t.charAt(0) === "-" ? "(" + t + ")" : t; }
  function brief(value, summary) {
    if (value !== null && value !== undefined) return fmt(value);
    if (summary) return "norm " + fmt(summary.norm) + " in [" + fmt(summary.min) + ", " + fmt(summary.max) + "]";
    return "—";
  }
  function shapeText(shape) { return shape.length ? shape.join("×") : "scalar"; }
  function d(text) { return "d(" + text + ")"; }
  function name(n) { return n.name || n.label || "node " + n.id; }
  function el(tag, cls, text) {
    var x = document.createElement(tag);
    if (cls) x.className = cls;
    if (text !== undefined) x.textContent = text;
    return x;
  }

  // -- what each node and edge shows after kk steps ---------------------------------------------
  function arrived(n, kk) {
    // the contributions that have reached n after kk steps, and whether one came at step kk
    var got = [], now = false;
    (outOf[n.id] || []).forEach(function (e) {
      var s = stepOf[e.target];
      if (s <= kk) { got.push(e); if (s === kk) now = true; }
    });
    return {got: got, all: (outOf[n.id] || []).length, now: now};
  }
  function stateAt(n, kk) {
    var s = stepOf[n.id];
    if (s !== undefined) return s > kk ? "waiting" : s === kk ? "active" : "done";
    var a = arrived(n, kk);  // a leaf: its gradient arrives with the rules that feed it
    if (!a.all && n.complete_at) return kk >= n.complete_at ? "done" : "waiting";  // no rule sent any
    if (!a.got.length) return "waiting";
    if (a.now) return "arriving";
    return a.got.length === a.all ? "done" : "partial";
  }
  function gradShown(n, kk) {
    if (stepOf[n.id] !== undefined) return stepOf[n.id] <= kk ? "full" : "none";
    var a = arrived(n, kk);
    if (!a.all) return n.complete_at && kk >= n.complete_at ? "full" : "none";
    return !a.got.length ? "none" : a.got.length === a.all ? "full" : "part";
  }
  function partText(n, got) {
    if (n.shape) return "grad " + got.length + " of " + (outOf[n.id] || []).length + " parts";
    var sum = got.reduce(function (acc, e) { return acc + (typeof e.contribution === "number" ? e.contribution : NaN); }, 0);
    return "grad " + fmt(sum) + " + …";
  }
  function edgeLines(e) {
    if (!carried(e)) return null;
    if (e.summary) {
      return ["shape " + shapeText(e.shape || []),
        "mean " + fmt(e.summary.mean) + ", max|·| " + fmt(e.summary.maxabs)];
    }
    return [fmt(e.local) + " × " + signed(nodes[e.target].grad), "= " + fmt(e.contribution)];
  }

  // -- the picture: text lines in each box, labels, then the layout ------------------------------
  function makeLabel(e) {
    var lines = edgeLines(e);
    if (lines === null || !labelLayer) return null;
    var t = document.createElementNS(SVGNS, "text");
    t.setAttribute("class", "e-label");
    t.setAttribute("data-label", e.id);
    t.setAttribute("data-state", "waiting");
    lines.forEach(function (line, i) {
      var span = document.createElementNS(SVGNS, "tspan");
      span.setAttribute("x", "0");
      span.setAttribute("dy", i ? "1.15em" : "0");
      span.textContent = line;
      t.appendChild(span);
    });
    labelLayer.appendChild(t);
    labelEl[e.id] = t;
    return t;
  }
  function setLabelAt(t, cx, top) {
    // the label's box, [cx - w/2, top] .. [cx + w/2, top + h], holds both lines
    var b = t.getBBox();
    t.setAttribute("transform", "translate(" + (cx - b.width / 2 - b.x).toFixed(1) + "," + (top - b.y).toFixed(1) + ")");
  }
  function fillNode(n) {
    // lines from the top: name, (shape), data, grad (one of three texts), the learner's value
    var g = nodeEl[n.id], line = 0, width = 0;
    var part = g.querySelector(".t-part");
    if (part) {
      var all = outOf[n.id] || [];
      part.textContent = stepOf[n.id] === undefined && all.length > 1 ? partText(n, all.slice(0, -1)) : "";
    }
    g.querySelectorAll("text").forEach(function (t) {
      var cls = t.getAttribute("class");
      if (cls === "t-wait" || cls === "t-part") line -= 1;  // they share the grad line
      t.setAttribute("x", PAD);
      t.setAttribute("y", (PAD + LINE * line + LINE * 0.72).toFixed(1));
      line += 1;
      if (layered) width = Math.max(width, t.getComputedTextLength());
    });
    return {w: Math.ceil(width + 2 * PAD), h: Math.ceil(LINE * line + 2 * PAD - 4)};
  }
  function placeNode(n, x, y, w, h) {
    box[n.id] = {x: x, y: y, w: w, h: h};
    var g = nodeEl[n.id];
    g.setAttribute("transform", "translate(" + x.toFixed(1) + "," + y.toFixed(1) + ")");
    var r = g.querySelector("rect");
    r.setAttribute("width", w);
    r.setAttribute("height", h);
  }
  function layoutColumns() {
    // a page too big for dagre: the columns its Python wrote, straight curves, lazy labels
    var boxes = svg.getAttribute("data-boxes").split(";");
    nodes.forEach(function (n, i) {
      var b = boxes[i].split(",").map(parseFloat);
      fillNode(n);
      placeNode(n, b[0], b[1], b[2], b[3]);
    });
    edges.forEach(function (e) {
      var s = box[e.source], t = box[e.target], count = (into[e.target] || []).length;
      var x0 = s.x + s.w, y0 = s.y + s.h / 2, x1 = t.x;
      var y1 = t.y + t.h / 2 + (e.input - (count - 1) / 2) * Math.min(10, t.h / count);
      var dx = Math.max((x1 - x0) / 2, 20);
      edgeEl[e.id].setAttribute("d", "M" + x0 + "," + y0 + "C" + (x0 + dx) + "," + y0 + " " + (x1 - dx) + "," + y1 + " " + x1 + "," + y1);
    });
    var size = svg.getAttribute("data-size").split(",").map(parseFloat);
    return {w: size[0], h: size[1]};
  }
  function layoutLayered() {
    // dagre's layered layout; every edge label is a box of its own in the layout, so no label
    // lies on a node or another label, and the two edges of a * a get two places
    var g = new dagre.graphlib.Graph({multigraph: true, compound: trace.groups.length > 0});
    // a layer's box has its name above it, in room the wider separation leaves
    var grouped = trace.groups.length > 0;
    g.setGraph({rankdir: "LR", nodesep: grouped ? 34 : 16, ranksep: 26, edgesep: 12, marginx: 12, marginy: grouped ? 30 : 12});
    g.setDefaultEdgeLabel(function () { return {}; });
    var sizes = {}, lsize = {};
    nodes.forEach(function (n) { sizes[n.id] = fillNode(n); g.setNode("n" + n.id, {width: sizes[n.id].w, height: sizes[n.id].h}); });
    trace.groups.forEach(function (grp, k) {
      g.setNode("g" + k, {});
      grp.members.forEach(function (i) { g.setParent("n" + i, "g" + k); });
    });
    edges.forEach(function (e) {
      var t = makeLabel(e), lab = {};
      if (t) { var b = t.getBBox(); lsize[e.id] = {w: Math.ceil(b.width) + 6, h: Math.ceil(b.height) + 4}; lab = {width: lsize[e.id].w, height: lsize[e.id].h, labelpos: "c"}; }
      g.setEdge("n" + e.source, "n" + e.target, lab, "e" + e.id);
    });
    dagre.layout(g);
    var half = {};  // a rank's column: its centre x -> half the width of its widest box
    function widen(x, w) { var key = Math.round(x); half[key] = Math.max(half[key] || 0, w / 2); }
    nodes.forEach(function (n) {
      var p = g.node("n" + n.id);
      placeNode(n, p.x - p.width / 2, p.y - p.height / 2, p.width, p.height);
      widen(p.x, p.width);
    });
    var routes = {};
    edges.forEach(function (e) {
      var p = g.edge({v: "n" + e.source, w: "n" + e.target, name: "e" + e.id});
      routes[e.id] = p;
      if (lsize[e.id]) {
        widen(p.x, lsize[e.id].w);
        setLabelAt(labelEl[e.id], p.x, p.y - lsize[e.id].h / 2);
      }
    });
    trace.groups.forEach(function (grp, k) { placeGroup(k, g.node("g" + k)); });
    edges.forEach(function (e) { route(e, routes[e.id], half, lsize[e.id]); });
    return {w: g.graph().width, h: g.graph().height};
  }
  function placeGroup(k, p) {
    var grp = document.querySelector('[data-group="' + k + '"]');
    if (!grp || !p) return;
    var r = grp.querySelector("rect"), t = grp.querySelector("text");
    r.setAttribute("x", p.x - p.width / 2); r.setAttribute("y", p.y - p.height / 2);
    r.setAttribute("width", p.width); r.setAttribute("height", p.height);
    t.setAttribute("x", p.x - p.width / 2 + 4); t.setAttribute("y", p.y - p.height / 2 - 5);
  }
  function endOffset(list, e, h) {
    var i = list.indexOf(e), n = list.length;
    return (i - (n - 1) / 2) * Math.min(9, (h - 10) / Math.max(n, 1));
  }
  function route(e, p, half, lab) {
    // Straight along each rank's column, at the height dagre gave the edge there, and curved
    // only in the gaps between columns, where no box is: so no edge passes behind a box.
    var s = box[e.source], t = box[e.target];
    var outs = (outOf[e.source] || []).slice().sort(function (a, b) { return box[a.target].y - box[b.target].y || a.input - b.input; });
    var sy = s.y + s.h / 2 + (outs.indexOf(e) >= 0 ? endOffset(outs, e, s.h) : 0);
    var ty = t.y + t.h / 2 + endOffset(into[e.target], e, t.h);
    function col(x) { return half[Math.round(x)] || 0; }
    var sx = s.x + s.w / 2, tx = t.x + t.w / 2;
    var path = "M" + (s.x + s.w).toFixed(1) + "," + sy.toFixed(1) + "H" + (sx + col(sx)).toFixed(1);
    var cx = sx + col(sx), cy = sy;
    p.points.slice(1, -1).forEach(function (q) {
      var y = q.y;
      if (lab && Math.abs(q.x - p.x) < 1 && Math.abs(q.y - p.y) < 1) y = p.y + lab.h / 2;  // under its label
      var xl = q.x - col(q.x), xr = q.x + col(q.x), mid = (cx + xl) / 2;
      path += "C" + mid.toFixed(1) + "," + cy.toFixed(1) + " " + mid.toFixed(1) + "," + y.toFixed(1) + " " + xl.toFixed(1) + "," + y.toFixed(1) + "H" + xr.toFixed(1);
      cx = xr; cy = y;
    });
    var xl = tx - col(tx), mid = (cx + xl) / 2;
    path += "C" + mid.toFixed(1) + "," + cy.toFixed(1) + " " + mid.toFixed(1) + "," + ty.toFixed(1) + " " + xl.toFixed(1) + "," + ty.toFixed(1) + "H" + t.x.toFixed(1);
    edgeEl[e.id].setAttribute("d", path);
  }

  // -- the view: fitted at first, zoom and pan, following the step ------------------------------
  var view = {s: 1, x: 0, y: 0}, size = {w: 1, h: 1}, FONT = layered ? 15 : 12;
  function apply() {
    viewport.setAttribute("transform", "translate(" + view.x.toFixed(1) + "," + view.y.toFixed(1) + ") scale(" + view.s.toFixed(4) + ")");
    svg.setAttribute("data-scale", view.s.toFixed(4));
  }
  function fit() {
    var cw = canvas.clientWidth, ch = canvas.clientHeight;
    view.s = Math.min(cw / size.w, ch / size.h, 1.5);
    view.x = (cw - size.w * view.s) / 2;
    view.y = Math.max(0, (ch - size.h * view.s) / 2);
    apply();
  }
  function zoomAt(factor, px, py) {
    var s = Math.max(0.05, Math.min(4, view.s * factor));
    view.x = px - (px - view.x) * s / view.s;
    view.y = py - (py - view.y) * s / view.s;
    view.s = s;
    apply();
  }
  function follow(id) {
    // the stepped node stays on screen, and readable: a fitted big graph zooms in to it
    var b = box[id];
    if (!b) return;
    var cw = canvas.clientWidth, ch = canvas.clientHeight, m = 6;
    if (FONT * view.s < 11) {
      view.s = Math.min(1, Math.min(cw, ch) / Math.max(b.w, b.h) / 1.5);
      view.x = cw / 2 - (b.x + b.w / 2) * view.s;
      view.y = ch / 2 - (b.y + b.h / 2) * view.s;
    }
    // the least move that brings the whole box in: the rest of the picture stays put
    var left = b.x * view.s + view.x, top = b.y * view.s + view.y;
    var right = left + b.w * view.s, bottom = top + b.h * view.s;
    if (right > cw - m) view.x -= right - (cw - m);
    if (bottom > ch - m) view.y -= bottom - (ch - m);
    if (left > m && b.x * view.s + view.x < m) view.x = m - b.x * view.s;
    if (b.x * view.s + view.x < m && left <= m) view.x = m - b.x * view.s;
    if (b.y * view.s + view.y < m) view.y = m - b.y * view.s;
    apply();
  }
  function controlsForView() {
    canvas.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var r = canvas.getBoundingClientRect();
      zoomAt(Math.exp(-ev.deltaY * 0.0015), ev.clientX - r.left, ev.clientY - r.top);
    }, {passive: false});
    var drag = null;
    canvas.addEventListener("pointerdown", function (ev) { drag = {x: ev.clientX, y: ev.clientY, vx: view.x, vy: view.y, moved: false}; });
    window.addEventListener("pointermove", function (ev) {
      if (!drag) return;
      var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      if (drag.moved) { view.x = drag.vx + dx; view.y = drag.vy + dy; apply(); }
    });
    window.addEventListener("pointerup", function () { setTimeout(function () { drag = null; }, 0); });
    canvas.addEventListener("click", function (ev) { if (drag && drag.moved) ev.stopPropagation(); }, true);
    function centre(f) { zoomAt(f, canvas.clientWidth / 2, canvas.clientHeight / 2); }
    document.getElementById("zoom-in").addEventListener("click", function () { centre(1.25); });
    document.getElementById("zoom-out").addEventListener("click", function () { centre(0.8); });
    document.getElementById("fit").addEventListener("click", fit);
    window.addEventListener("resize", fit);
  }

  // -- stepping -------------------------------------------------------------------------------
  var partEl = {};
  function touched(from, to) {
    // the nodes and edges whose look can change between step `from` and step `to`: the
    // stepped nodes in between and the inputs their rules fed (a big page repaints no more)
    var ids = {}, es = [];
    for (var s = Math.max(1, Math.min(from, to)); s <= Math.max(from, to); s++) {
      var id = steps[s - 1];
      ids[id] = true;
      (into[id] || []).forEach(function (e) { ids[e.source] = true; es.push(e); });
    }
    return {nodes: Object.keys(ids).map(function (i) { return nodes[i]; }), edges: es};
  }
  function paint(kk, from) {
    var which = from === undefined ? {nodes: nodes, edges: edges} : touched(from, kk);
    which.nodes.forEach(function (n) {
      var g = nodeEl[n.id], st = stateAt(n, kk), shown = gradShown(n, kk);
      if (g.getAttribute("data-state") !== st) g.setAttribute("data-state", st);
      if (g.getAttribute("data-grad") !== shown) g.setAttribute("data-grad", shown);
      if (!(n.id in partEl)) partEl[n.id] = g.querySelector(".t-part");
      if (partEl[n.id] && shown === "part") partEl[n.id].textContent = partText(n, arrived(n, kk).got);
    });
    which.edges.forEach(function (e) {
      var s = stepOf[e.target], st = s > kk ? "waiting" : s === kk ? "active" : "done";
      var path = edgeEl[e.id];
      if (path.getAttribute("data-state") !== st) path.setAttribute("data-state", st);
      var t = labelEl[e.id];
      if (!t && st !== "waiting" && !layered) t = lazyLabel(e);
      if (t && t.getAttribute("data-state") !== st) t.setAttribute("data-state", st);
    });
  }
  function lazyLabel(e) {
    var t = makeLabel(e), path = edgeEl[e.id];
    if (!t) return null;
    var mid = path.getPointAtLength(path.getTotalLength() / 2), b = t.getBBox();
    setLabelAt(t, mid.x, mid.y - b.height - 2);
    return t;
  }
  function go(kk) {
    kk = Math.max(0, Math.min(steps.length, kk));
    if (kk === k && kk !== 0) return;
    var from = k;
    k = kk;
    paint(k, from === k ? undefined : from);
    counter.textContent = "step " + k + " / " + steps.length;
    describe();
    if (k > 0) follow(steps[k - 1]);
    if (k === steps.length) stop();
  }
  function stop() { if (timer !== null) { clearInterval(timer); timer = null; } playBtn.textContent = "Play"; }
  function start() {
    if (k === steps.length) go(0);
    stop();
    timer = setInterval(function () { go(k + 1); }, 1000 / parseFloat(speed.value));
    playBtn.textContent = "Pause";
  }
  function toggle() { if (timer === null) start(); else stop(); }

  // -- the side panel: what this step did, in the graph's own names ------------------------------
  function describe() {
    detail.textContent = "";
    if (k === 0) {
      detail.appendChild(el("h2", "", "Before the pass"));
      detail.appendChild(el("p", "", "The forward pass has run: every box shows its value. " +
        "Step (→) to run the backward pass one rule at a time, from the root back to the leaves."));
      return;
    }
    var n = nodes[steps[k - 1]];
    detail.appendChild(el("h2", "", "Step " + k + " of " + steps.length + ": " + name(n) + (n.op ? " (" + n.op + ")" : "")));
    if (n.shape) detail.appendChild(el("div", "", "shape " + shapeText(n.shape) + " " + n.dtype));
    detail.appendChild(el("div", "sum", gradientWords(n)));
    if (n.formula) {
      detail.appendChild(el("div", "", "Its rule (g is its gradient, " + brief(n.grad, n.summary && n.summary.grad) + "):"));
      detail.appendChild(el("div", "formula", n.rule || n.formula));
      (into[n.id] || []).forEach(function (e) { detail.appendChild(edgeWords(e)); });
    }
    arrivals(n);
    verdicts(n.id);
  }
  function gradientWords(n) {
    var g = brief(n.grad, n.summary && n.summary.grad), uses = outOf[n.id] || [];
    if (n.kind === "root") return "The root: its gradient is " + d(name(n)) + "/" + d(name(n)) + " = " + g + ".";
    if (uses.length > 1) return sumWords(n, uses) + ": its gradient is the sum of what its " + uses.length + " uses sent back.";
    if (uses.length === 1) return "Its gradient is what " + name(nodes[uses[0].target]) + " sent back: " + g + ".";
    return "Its gradient: " + g + ".";
  }
  function sumWords(n, uses) {
    var terms = uses.map(function (e, i) { return i ? signed(e.contribution) : fmt(e.contribution); });
    var from = uses.map(function (e) { return name(nodes[e.target]); }).join(", ");
    if (n.shape) return name(n) + " = " + uses.length + " arrays added (from " + from + ")";
    return d(name(n)) + " = " + terms.join(" + ") + " = " + brief(n.grad, null) + " (from " + from + ")";
  }
  function edgeWords(e) {
    var src = nodes[e.source], line = el("div", "edge-line");
    if (!carried(e)) {
      line.textContent = "to " + name(src) + ": nothing (it needs no gradient)";
    } else if (e.filled) {
      line.appendChild(el("div", "", "to " + name(src) + ":"));
      line.appendChild(el("div", "formula", e.filled));
    } else if (e.local !== null) {
      line.textContent = "to " + name(src) + ": " + fmt(e.local) + " × " + fmt(nodes[e.target].grad) + " = " + fmt(e.contribution);
    } else {
      var lines = edgeLines(e);
      line.textContent = "to " + name(src) + ": " + lines.join(", ");
    }
    return line;
  }
  function arrivals(n) {
    // the leaves this rule fed: their gradient is whole now, or the sum is still being built
    (into[n.id] || []).forEach(function (e, i, all) {
      var src = nodes[e.source];
      if (stepOf[src.id] !== undefined || !carried(e) || all.indexOf(e) !== all.findIndex(function (x) { return x.source === e.source; })) return;
      var a = arrived(src, k), words;
      if (a.all === 1) words = name(src) + " is a leaf: its gradient, " + brief(src.grad, src.summary && src.summary.grad) + ", is complete.";
      else if (a.got.length === a.all) words = sumWords(src, a.got) + ": complete, all " + a.all + " uses have sent theirs.";
      else words = name(src) + " so far: " + a.got.map(function (x, i) { return src.shape ? brief(x.contribution, x.summary) : i ? signed(x.contribution) : fmt(x.contribution); }).join(" + ") + " (" + a.got.length + " of its " + a.all + " uses).";
      detail.appendChild(el("div", "sum", words));
      verdicts(src.id, a.got.length === a.all);
    });
  }
  function verdicts(id, complete) {
    var n = nodes[id];
    if (!n.verdict || complete === false) return;
    detail.appendChild(el("p", "verdict-" + n.verdict, name(n) + ", yours: " + brief(n.manual, null) +
      (n.verdict === "right" ? " — right." : " — wrong: the engine's is " + brief(n.grad, n.summary && n.summary.grad) + ".")));
    if (trace.diagnosis && trace.diagnosis.node === id) {
      detail.appendChild(el("p", "verdict-wrong", "The first wrong gradient in backward order. " + trace.diagnosis.text + "."));
    }
  }

  // -- start ----------------------------------------------------------------------------------
  document.getElementById("step").addEventListener("click", function () { stop(); go(k + 1); });
  document.getElementById("back").addEventListener("click", function () { stop(); go(k - 1); });
  document.getElementById("reset").addEventListener("click", function () { stop(); go(0); });
  playBtn.addEventListener("click", toggle);
  speed.addEventListener("input", function () {
    document.getElementById("speed-value").textContent = speed.value + " steps/s";
    if (timer !== null) start();
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.target && ev.target.tagName === "INPUT" && ev.key !== " ") return;
    if (ev.key === "ArrowRight") { stop(); go(k + 1); }
    else if (ev.key === "ArrowLeft") { stop(); go(k - 1); }
    else if (ev.key === " ") { toggle(); }
    else if (ev.key === "Home") { stop(); go(0); }
    else if (ev.key === "+" || ev.key === "=") { zoomAt(1.25, canvas.clientWidth / 2, canvas.clientHeight / 2); }
    else if (ev.key === "-") { zoomAt(0.8, canvas.clientWidth / 2, canvas.clientHeight / 2); }
    else if (ev.key === "0") { fit(); }
    else return;
    ev.preventDefault();
  });
  Object.keys(nodeEl).forEach(function (id) {
    nodeEl[id].addEventListener("click", function () {
      var n = nodes[id], s = stepOf[id] !== undefined ? stepOf[id] : n.complete_at;
      if (s) { stop(); go(s); }
    });
  });
  var summary = document.getElementById("summary");
  if (trace.too_big) {
    summary.textContent = "";
  } else if (trace.first_wrong !== null) {
    summary.className = "wrong";
    summary.textContent = "First wrong gradient in backward order: " + name(nodes[trace.first_wrong]) +
      " (step " + nodes[trace.first_wrong].complete_at + "): " + trace.diagnosis.text + ".";
  } else if (trace.tolerance) {
    summary.textContent = "All your gradients agree with the engine's.";
  }
  if (svg && viewport) {
    size = layered ? layoutLayered() : layoutColumns();
    fit();
    controlsForView();
  }
  document.body.setAttribute("data-ready", "true");
  go(0);
})();
