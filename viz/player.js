(function () {
  "use strict";
  var trace = JSON.parse(document.getElementById("backprop-trace").textContent);
  var steps = trace.steps, nodes = trace.nodes, edges = trace.edges;
  var stepOf = {}, nodeEl = {}, edgeEl = {}, into = {}, outOf = {};
  steps.forEach(function (id, k) { stepOf[id] = k; });
  document.querySelectorAll("[data-node]").forEach(function (el) {
    nodeEl[el.getAttribute("data-node")] = el;
  });
  document.querySelectorAll("[data-edge]").forEach(function (el) {
    edgeEl[el.getAttribute("data-edge")] = el;
  });
  edges.forEach(function (e) {
    (into[e.target] = into[e.target] || []).push(e);
    (outOf[e.source] = outOf[e.source] || []).push(e);
  });
  var k = 0, timer = null;
  var counter = document.getElementById("counter");
  var detail = document.getElementById("detail");
  var playBtn = document.getElementById("play");
  var speed = document.getElementById("speed");

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
  function brief(value, summary) {
    if (value !== null && value !== undefined) return fmt(value);
    if (summary) return "norm " + fmt(summary.norm) + " in [" + fmt(summary.min) + ", " + fmt(summary.max) + "]";
    return "—";
  }
  function d(text) { return text.indexOf(" ") >= 0 ? "d(" + text + ")" : "d" + text; }
  function name(n) { return n.name || n.label || "node " + n.id; }
  function stateAt(id, kk) {
    var s = stepOf[id];
    if (s === undefined || s >= kk) return "waiting";
    return s === kk - 1 ? "active" : "done";
  }
  var labelLayer = document.getElementById("edge-labels"), labelEl = {};
  var SVGNS = "http://www.w3.org/2000/svg";
  function edgeText(e) {
    if (e.contribution === null && !e.summary) return null;
    if (e.local === null) return "contribution";
    return fmt(e.local) + " × " + fmt(nodes[e.target].grad) + " = " + fmt(e.contribution);
  }
  function label(e, st) {
    // made the first time an edge carries a gradient: most edges of a big page never need one
    var t = labelEl[e.id];
    if (!t) {
      if (st === "waiting" || !labelLayer) return;
      var text = edgeText(e), path = edgeEl[e.id];
      if (text === null || !path) return;
      var mid = path.getPointAtLength(path.getTotalLength() / 2);
      t = document.createElementNS(SVGNS, "text");
      t.setAttribute("class", "e-label");
      t.setAttribute("x", mid.x.toFixed(1));
      t.setAttribute("y", (mid.y - 4).toFixed(1));
      t.textContent = text;
      labelLayer.appendChild(t);
      labelEl[e.id] = t;
    }
    t.setAttribute("data-state", st);
  }
  function paint(id, kk) {
    var st = stateAt(id, kk), el = nodeEl[id];
    if (el && el.getAttribute("data-state") !== st) el.setAttribute("data-state", st);
    (into[id] || []).forEach(function (e) {
      var ee = edgeEl[e.id];
      if (ee && ee.getAttribute("data-state") !== st) ee.setAttribute("data-state", st);
      label(e, st);
    });
  }
  function el(tag, cls, text) {
    var x = document.createElement(tag);
    if (cls) x.className = cls;
    if (text !== undefined) x.textContent = text;
    return x;
  }
  function describe() {
    detail.textContent = "";
    if (k === 0) {
      detail.appendChild(el("h2", "", "Before the pass"));
      detail.appendChild(el("p", "", "The forward pass has run: every node shows its value. " +
        "Step (→) to run the backward pass one node at a time, from the root back to the leaves."));
      return;
    }
    var n = nodes[steps[k - 1]];
    detail.appendChild(el("h2", "", "Step " + k + " of " + steps.length + ": " + name(n) +
      (n.op ? " (" + n.op + ")" : "")));
    var g = brief(n.grad, n.summary && n.summary.grad);
    var uses = (outOf[n.id] || []).filter(function (e) { return e.contribution !== null || e.summary; });
    if (n.shape) {
      detail.appendChild(el("div", "", "shape " + (n.shape.join("×") || "scalar") + " " + n.dtype));
      detail.appendChild(el("div", "formula", "value " + brief(n.value, n.summary.value)));
      detail.appendChild(el("div", "formula", "grad  " + g));
    }
    var sum = el("div", "sum");
    if (n.kind === "root") {
      sum.textContent = "The root: its gradient is " + d(name(n)) + "/" + d(name(n)) + " = " + g + ".";
    } else if (uses.length > 1) {
      sum.textContent = "It feeds " + uses.length + " nodes, so its gradient is the sum of their contributions: " +
        uses.map(function (e) { return brief(e.contribution, e.summary) + " (from " + name(nodes[e.target]) + ")"; }).join(" + ") +
        " = " + g;
    } else if (uses.length === 1) {
      sum.textContent = "Its gradient is what " + name(nodes[uses[0].target]) + " sent back: " + g;
    } else {
      sum.textContent = "Its gradient: " + g;
    }
    detail.appendChild(sum);
    if (n.formula) {
      detail.appendChild(el("div", "", "Its rule runs (the op's formula, g = its gradient):"));
      detail.appendChild(el("div", "formula", n.formula));
      (into[n.id] || []).forEach(function (e) {
        var src = nodes[e.source], line = el("div", "edge-line");
        if (e.contribution === null && !e.summary) {
          line.textContent = "to " + name(src) + ": nothing (it needs no gradient)";
        } else if (e.local !== null) {
          line.textContent = "to " + name(src) + ": local " + d(name(n)) + "/" + d(name(src)) + " = " +
            fmt(e.local) + ", upstream g = " + g + ", product " + fmt(e.local) + " × " + g + " = " + fmt(e.contribution);
          if (e.filled) line.appendChild(el("div", "formula", e.filled));
        } else {
          line.textContent = "to " + name(src) + ": " + brief(e.contribution, e.summary);
        }
        detail.appendChild(line);
      });
    } else if (n.kind !== "root") {
      detail.appendChild(el("p", "", "A leaf: no rule to run, its gradient is final."));
    }
    if (n.verdict) {
      detail.appendChild(el("p", "verdict-" + n.verdict, "Yours: " + brief(n.manual, null) +
        (n.verdict === "right" ? " — right." : " — wrong: the engine's is " + g + ".")));
    }
    if (trace.diagnosis && trace.diagnosis.node === n.id) {
      detail.appendChild(el("p", "verdict-wrong", "The first wrong gradient in backward order. " +
        trace.diagnosis.text + "."));
    }
  }
  function go(kk) {
    kk = Math.max(0, Math.min(steps.length, kk));
    if (kk === k && kk !== 0) return;
    var lo = Math.min(k, kk) - 1, hi = Math.max(k, kk);
    for (var s = Math.max(0, lo); s < hi; s++) paint(steps[s], kk);
    if (kk === 0) Object.keys(nodeEl).forEach(function (id) { paint(id, 0); });
    k = kk;
    counter.textContent = "step " + k + " / " + steps.length;
    describe();
    if (k > 0) {
      var a = nodeEl[steps[k - 1]];
      if (a && a.scrollIntoView) a.scrollIntoView({block: "nearest", inline: "nearest"});
    }
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
    else return;
    ev.preventDefault();
  });
  Object.keys(nodeEl).forEach(function (id) {
    nodeEl[id].addEventListener("click", function () {
      if (stepOf[id] !== undefined) { stop(); go(stepOf[id] + 1); }
    });
  });
  var summary = document.getElementById("summary");
  if (trace.too_big) {
    summary.textContent = "";
  } else if (trace.first_wrong !== null) {
    summary.className = "wrong";
    summary.textContent = "First wrong gradient in backward order: " + name(nodes[trace.first_wrong]) +
      " (step " + (stepOf[trace.first_wrong] + 1) + "): " + trace.diagnosis.text + ".";
  } else if (trace.tolerance) {
    summary.textContent = "All your gradients agree with the engine's.";
  }
  var svg = document.getElementById("graph"), canvas = document.getElementById("canvas");
  if (svg && canvas) {  // a graph a little too wide is shrunk to fit; a big one scrolls
    var ratio = parseFloat(svg.getAttribute("width")) / canvas.clientWidth;
    if (ratio > 1 && ratio < 1.6) { svg.style.width = "100%"; svg.style.height = "auto"; }
  }
  document.body.setAttribute("data-ready", "true");
  go(0);
})();
