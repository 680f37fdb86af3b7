// cryokb concept graph: pan (drag), zoom (wheel, buttons), hover (neighbours), click (articles).
// The SVG and its layout come from the server (networkx); this only moves the view and fills
// the side panel. Text from the database is set with textContent, never as HTML.
(function () {
  "use strict";
  function init() {
    var svg = document.getElementById("cryokb-graph");
    if (!svg) return;
    var panel = document.getElementById("cryokb-panel");
    var database = panel.getAttribute("data-database");
    var home = { x: 0, y: 0, w: 1000, h: 700 };
    var view = Object.assign({}, home);
    var edges = Array.prototype.slice.call(svg.querySelectorAll(".edge"));
    var nodes = Array.prototype.slice.call(svg.querySelectorAll(".node"));
    var byId = {};
    nodes.forEach(function (n) { byId[n.getAttribute("data-id")] = n; });

    function apply() { svg.setAttribute("viewBox", [view.x, view.y, view.w, view.h].join(" ")); }
    function zoom(factor, cx, cy) {
      cx = cx === undefined ? view.x + view.w / 2 : cx;
      cy = cy === undefined ? view.y + view.h / 2 : cy;
      var w = Math.min(4000, Math.max(120, view.w * factor));
      var f = w / view.w;
      view.x = cx - (cx - view.x) * f; view.y = cy - (cy - view.y) * f;
      view.w = w; view.h = view.h * f;
      apply();
    }
    function toSvg(evt) {
      var r = svg.getBoundingClientRect();
      return { x: view.x + (evt.clientX - r.left) / r.width * view.w,
               y: view.y + (evt.clientY - r.top) / r.height * view.h };
    }
    svg.addEventListener("wheel", function (evt) {
      evt.preventDefault();
      var p = toSvg(evt);
      zoom(evt.deltaY > 0 ? 1.15 : 1 / 1.15, p.x, p.y);
    }, { passive: false });
    document.querySelectorAll(".cryokb-zoom button").forEach(function (b) {
      b.addEventListener("click", function () {
        var what = b.getAttribute("data-zoom");
        if (what === "in") zoom(1 / 1.3);
        else if (what === "out") zoom(1.3);
        else { view = Object.assign({}, home); apply(); }
      });
    });
    var drag = null;
    svg.addEventListener("pointerdown", function (evt) {
      if (evt.target.closest(".node") || evt.target.closest(".edge")) return;
      drag = { x: evt.clientX, y: evt.clientY, vx: view.x, vy: view.y };
      svg.classList.add("dragging");
      svg.setPointerCapture(evt.pointerId);
    });
    svg.addEventListener("pointermove", function (evt) {
      if (!drag) return;
      var r = svg.getBoundingClientRect();
      view.x = drag.vx - (evt.clientX - drag.x) / r.width * view.w;
      view.y = drag.vy - (evt.clientY - drag.y) / r.height * view.h;
      apply();
    });
    function endDrag() { drag = null; svg.classList.remove("dragging"); }
    svg.addEventListener("pointerup", endDrag);
    svg.addEventListener("pointercancel", endDrag);

    function focus(id) {
      svg.classList.add("focus");
      byId[id].classList.add("on");
      edges.forEach(function (e) {
        var s = e.getAttribute("data-source"), t = e.getAttribute("data-target");
        if (s === id || t === id) {
          e.classList.add("on");
          byId[s === id ? t : s].classList.add("on");
        }
      });
    }
    function unfocus() {
      svg.classList.remove("focus");
      svg.querySelectorAll(".on").forEach(function (el) { el.classList.remove("on"); });
    }
    nodes.forEach(function (n) {
      n.addEventListener("mouseenter", function () { focus(n.getAttribute("data-id")); });
      n.addEventListener("mouseleave", unfocus);
      n.addEventListener("click", function () {
        load("/-/cryokb/graph/node.json?id=" + encodeURIComponent(n.getAttribute("data-id")));
      });
    });
    edges.forEach(function (e) {
      e.addEventListener("click", function () {
        load("/-/cryokb/graph/edge.json?source=" + encodeURIComponent(e.getAttribute("data-source")) +
             "&target=" + encodeURIComponent(e.getAttribute("data-target")));
      });
    });

    function el(tag, text, attrs) {
      var x = document.createElement(tag);
      if (text !== undefined && text !== null) x.textContent = text;
      Object.keys(attrs || {}).forEach(function (k) { x.setAttribute(k, attrs[k]); });
      return x;
    }
    function show(data) {
      panel.replaceChildren();
      if (data.error) { panel.appendChild(el("p", data.error)); return; }
      if (data.node) {
        panel.appendChild(el("h3", data.node.label || data.node.id));
        panel.appendChild(el("p", (data.node.field || "").replace(/_/g, " ") + ": " + data.node.articles +
                                  " articles, linked to " + data.node.degree + " concepts"));
      } else {
        panel.appendChild(el("h3", data.source + " \u2013 " + data.target));
        panel.appendChild(el("p", data.weight + " articles report both"));
      }
      var list = el("ol");
      data.articles.forEach(function (a) {
        var item = el("li");
        item.appendChild(el("a", a.title || a.pmid, { href: "/" + database + "/articles/" + encodeURIComponent(a.pmid) }));
        item.appendChild(el("span", " (" + (a.pub_year || "n.d.") + ", PMID " + a.pmid + ")"));
        list.appendChild(item);
      });
      panel.appendChild(list);
      panel.appendChild(el("a", data.all_label || (data.truncated ? "first articles in a table" : "all of them in a table"),
                           { href: data.all_url }));
    }
    function load(url) {
      fetch(url, { headers: { Accept: "application/json" } })
        .then(function (r) { return r.json(); })
        .then(show)
        .catch(function () { panel.replaceChildren(el("p", "Could not load the articles.")); });
    }
    apply();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
