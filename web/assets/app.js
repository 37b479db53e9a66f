// Seakeeper status page: refreshes the queues from /api/status without
// reloading, and filters them by project or change number. It renders the
// same markup as page.html (keep the two in step).
(function () {
  "use strict";
  var main = document.getElementById("status");
  var input = document.getElementById("q");
  var updated = document.getElementById("updated");
  var errorLine = document.getElementById("refresh-error");
  if (!main) { return; }
  var interval = parseInt(main.getAttribute("data-interval"), 10) || 5000;
  var maxOthers = 5; // as page.go

  function el(tag, attrs) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) { return; }
        if (k === "text") { e.textContent = v; } else { e.setAttribute(k, v === true ? "" : String(v)); }
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined || c === false) { continue; }
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return e;
  }

  // The same formats as page.go.
  function dur(s) {
    s = Math.max(0, s | 0);
    if (s < 60) { return s + "s"; }
    if (s < 3600) { return Math.floor(s / 60) + "m " + (s % 60) + "s"; }
    return Math.floor(s / 3600) + "h " + (Math.floor(s / 60) % 60) + "m";
  }
  function progressText(elapsed, estimated, remaining, done) {
    if (done) { return "Took " + dur(elapsed); }
    if (remaining === 0) { return dur(elapsed) + ", over the estimate of " + dur(estimated); }
    return dur(elapsed) + " of about " + dur(estimated) + ", " + dur(remaining) + " left";
  }
  function barValue(elapsed, estimated, done) {
    return done ? estimated : Math.max(0, Math.min(elapsed, estimated));
  }
  function matches(item, q) {
    q = q.trim().toLowerCase();
    if (q === "") { return true; }
    if (item.change.project.toLowerCase().indexOf(q) >= 0) { return true; }
    return !!item.change.number && String(item.change.number).indexOf(q) === 0;
  }
  function clock(iso) {
    var d = new Date(iso);
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return two(d.getUTCHours()) + ":" + two(d.getUTCMinutes()) + ":" + two(d.getUTCSeconds()) + " UTC";
  }
  function itemLabel(it) {
    return it.change.number ? String(it.change.number) : it.change.project + " " + it.change.ref;
  }
  function offChain(items) {
    var pos = {}, off = items.map(function () { return false; });
    items.forEach(function (it, j) { pos[it.id] = j; });
    items.forEach(function (it, j) {
      var from = Object.prototype.hasOwnProperty.call(pos, it.ahead || "") ? pos[it.ahead] + 1 : 0;
      for (var i = from; i < j; i++) { off[i] = true; }
    });
    return off;
  }

  function progress(id, what, elapsed, estimated, remaining, done) {
    return el("div", { "class": "progress" },
      el("label", { "for": id, text: what + ": " + progressText(elapsed, estimated, remaining, done) }),
      el("progress", { id: id, max: estimated, value: barValue(elapsed, estimated, done) }));
  }

  function renderItem(it, off, labels, gerritUrl) {
    var classes = ["item"];
    if (it.failing) { classes.push("failing"); }
    if (off) { classes.push("offchain"); }
    if (!it.active) { classes.push("inactive"); }
    if (!it.live) { classes.push("nonlive"); }
    var c = it.change;
    var title = el("h4", { id: "t-" + it.id, "class": "title" },
      c.number ? el("a", { "class": "change", href: c.url || null, text: c.number + "," + c.patchset })
               : el("span", { "class": "change", text: c.ref }),
      " ", el("span", { "class": "project", text: c.project }),
      " ", el("span", { "class": "branch", text: c.branch || "" }));
    var badges = el("p", { "class": "badges" },
      it.failing ? el("strong", { "class": "badge failing", text: "✗ Failing" }) : null,
      it.submitting ? el("span", { "class": "badge submitting", text: "Submitting" }) : null,
      !it.active ? el("span", { "class": "badge waiting", text: "Waiting (outside the window)" }) : null,
      !it.live ? el("span", { "class": "badge nonlive", text: "Dependency, not reported" }) : null);
    var reasons = null;
    if (it.failingReasons && it.failingReasons.length) {
      reasons = el("ul", { "class": "reasons", "aria-label": "Why it fails" });
      it.failingReasons.forEach(function (r) { reasons.appendChild(el("li", { text: r })); });
    }
    var ahead = it.ahead
      ? el("p", { "class": "ahead" }, "Tested behind ", el("a", { href: "#" + it.ahead, text: labels[it.ahead] || it.ahead }))
      : el("p", { "class": "ahead", text: "Head of the queue" });
    var age = el("p", { "class": "age" }, "Enqueued ",
      el("time", { datetime: it.enqueuedAt, text: dur(it.enqueuedSeconds) }), " ago");
    var b = it.build;
    var done = !!(b && b.finishedAt);
    var others = (it.changes || []).filter(function (o) {
      return o.project !== c.project || (o.number || 0) !== (c.number || 0) || (o.ref || "") !== (c.ref || "");
    });
    var changes = null;
    if (others.length) {
      // The nearest maxOthers, as page.go.
      var more = Math.max(0, others.length - maxOthers);
      others = others.slice(more);
      changes = el("p", { "class": "changes" }, "Tested with ");
      others.forEach(function (o, i) {
        if (i) { changes.appendChild(document.createTextNode(", ")); }
        changes.appendChild(o.number && gerritUrl
          ? el("a", { href: gerritUrl + "c/" + o.project + "/+/" + o.number, text: String(o.number) })
          : document.createTextNode(o.number ? String(o.number) : o.project + " " + (o.ref || "")));
      });
      if (more) { changes.appendChild(document.createTextNode(" and " + more + " more ahead")); }
    }
    var build = null;
    if (b) {
      var phase = (b.phase || "").toLowerCase();
      var nodes = null;
      if (b.nodes && b.nodes.length) {
        nodes = el("ul", { "class": "nodes", "aria-label": "Workflow nodes" });
        b.nodes.forEach(function (n) {
          nodes.appendChild(el("li", { "class": "node phase-" + (n.phase || "").toLowerCase() },
            n.url ? el("a", { href: n.url, text: n.name }) : n.name,
            " ", el("span", { "class": "phase", text: n.phase }),
            n.message ? " " : null, n.message ? el("span", { "class": "message", text: n.message }) : null));
        });
      }
      build = el("div", { "class": "build" },
        el("p", { "class": "workflow" },
          b.url ? el("a", { "class": "workflow-link", href: b.url, text: "Workflow" }) : "Workflow",
          " ", el("span", { "class": "phase phase-" + phase, text: b.phase }),
          b.message ? " " : null, b.message ? el("span", { "class": "message", text: b.message }) : null),
        progress("pb-" + it.id, "Workflow", b.elapsedSeconds, b.estimatedSeconds, b.remainingSeconds, done),
        nodes);
    }
    var card = el("article", { "class": "card", "aria-labelledby": "t-" + it.id },
      title,
      c.subject ? el("p", { "class": "subject", text: c.subject }) : null,
      badges, reasons, ahead, age,
      progress("pi-" + it.id, "This attempt", it.elapsedSeconds, it.estimatedSeconds, it.remainingSeconds, done),
      changes, build);
    return el("li", { "class": classes.join(" "), id: it.id, "data-change": it.change.number || 0,
      "data-project": c.project, "data-ahead": it.ahead || "" }, card);
  }

  function render(st) {
    var frag = document.createDocumentFragment();
    st.pipelines.forEach(function (p) {
      var hid = "p-" + p.name;
      var sec = el("section", { "class": "pipeline", "data-pipeline": p.name, "aria-labelledby": hid },
        el("h2", { id: hid }, p.name + " ", el("small", { "class": "manager", text: p.manager })),
        p.description ? el("p", { "class": "description", text: p.description }) : null,
        p.queues.length ? null : el("p", { "class": "empty", text: "No items." }));
      p.queues.forEach(function (q) {
        var qid = "q-" + p.name + "-" + q.name;
        var labels = {};
        q.items.forEach(function (it) { labels[it.id] = itemLabel(it); });
        var off = offChain(q.items);
        var ol = el("ol", { "class": "items" });
        q.items.forEach(function (it, i) { ol.appendChild(renderItem(it, off[i], labels, st.gerritUrl || "")); });
        sec.appendChild(el("section", { "class": "queue", "data-queue": q.name, "aria-labelledby": qid },
          el("h3", { id: qid }, "Queue " + q.name, q.window ? " " : null,
            q.window ? el("small", { "class": "window", text: "window " + q.window }) : null),
          ol));
      });
      frag.appendChild(sec);
    });
    frag.appendChild(el("p", { id: "no-match", "class": "empty", hidden: true, text: "No item matches the filter." }));
    var target = location.hash;
    main.replaceChildren(frag);
    main.setAttribute("data-turn", st.turn);
    applyFilter();
    if (target) {
      var t = document.getElementById(decodeURIComponent(target.slice(1)));
      if (t) { t.classList.add("target"); }
    }
  }

  // applyFilter hides what does not match: items, then queues and
  // pipelines left without a visible item.
  function applyFilter() {
    var q = input ? input.value : "";
    var shown = 0;
    main.querySelectorAll("section.pipeline").forEach(function (p) {
      var queues = p.querySelectorAll("section.queue");
      var pShown = queues.length === 0;
      queues.forEach(function (qs) {
        var qShown = false;
        qs.querySelectorAll("li.item").forEach(function (li) {
          var ok = matches({ change: { project: li.getAttribute("data-project"),
            number: parseInt(li.getAttribute("data-change"), 10) || 0 } }, q);
          li.hidden = !ok;
          if (ok) { qShown = true; shown++; }
        });
        qs.hidden = !qShown;
        if (qShown) { pShown = true; }
      });
      p.hidden = !pShown;
    });
    var none = document.getElementById("no-match");
    if (none) { none.hidden = !(shown === 0 && q.trim() !== ""); }
  }

  var lastTurn = main.getAttribute("data-turn");
  function refresh() {
    fetch("/api/status", { headers: { "Accept": "application/json" }, cache: "no-store" })
      .then(function (r) {
        if (!r.ok) { throw new Error("the server answered " + r.status); }
        return r.json();
      })
      .then(function (st) {
        render(st);
        errorLine.hidden = true;
        // Announce only a new state, not every refresh.
        if (String(st.turn) !== lastTurn) {
          lastTurn = String(st.turn);
          updated.replaceChildren("Turn " + st.turn + ", updated at ",
            el("time", { datetime: st.updatedAt, text: clock(st.updatedAt) }));
        }
        main.setAttribute("data-refreshes", (parseInt(main.getAttribute("data-refreshes"), 10) || 0) + 1);
      })
      .catch(function (err) {
        errorLine.textContent = "Could not refresh: " + err.message + ". Showing the last state.";
        errorLine.hidden = false;
      })
      .then(function () { setTimeout(refresh, interval); });
  }

  if (input) {
    input.addEventListener("input", function () {
      applyFilter();
      var u = new URL(location.href);
      if (input.value.trim() === "") { u.searchParams.delete("q"); } else { u.searchParams.set("q", input.value); }
      history.replaceState(null, "", u.pathname + u.search + u.hash);
    });
    input.form.addEventListener("submit", function (e) { e.preventDefault(); });
  }
  applyFilter();
  setTimeout(refresh, interval);
}());
