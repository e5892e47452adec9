// carepoints pages: read-aloud (读给我听), charts (ECharts from data-chart), CSRF for HTMX.
(function () {
  "use strict";
  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }
  document.addEventListener("htmx:configRequest", function (e) {
    e.detail.headers["X-CSRF-Token"] = csrf();
  });
  // 读给我听: the main content, in the page's language, by the browser's speech synthesis.
  function readAloud(button) {
    if (!("speechSynthesis" in window)) { button.disabled = true; return; }
    var synth = window.speechSynthesis;
    if (synth.speaking) { synth.cancel(); button.setAttribute("aria-pressed", "false"); return; }
    var main = document.getElementById("main");
    if (!main) return;
    var clone = main.cloneNode(true);
    clone.querySelectorAll("[data-no-read], script, style, svg, .cp-chart").forEach(function (n) { n.remove(); });
    var text = clone.innerText.replace(/\s+\n/g, "\n").trim();
    var u = new SpeechSynthesisUtterance(text);
    u.lang = document.documentElement.lang || "zh-CN";
    u.rate = 0.9;
    u.onend = function () { button.setAttribute("aria-pressed", "false"); };
    button.setAttribute("aria-pressed", "true");
    window.__cpLastSpoken = text;  // for tests and screen readers' debugging
    synth.speak(u);
  }
  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("[data-read-aloud]");
    if (b) { e.preventDefault(); readAloud(b); }
  });
  // Charts: <div class="cp-chart" data-chart='{ECharts option}'>
  function charts(root) {
    if (!window.echarts) return;
    (root || document).querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.__cpChart) { el.__cpChart.dispose(); }
      try {
        var chart = window.echarts.init(el, null, { renderer: "canvas" });
        chart.setOption(JSON.parse(el.getAttribute("data-chart")));
        el.__cpChart = chart;
        el.setAttribute("data-chart-ready", "1");
      } catch (err) { el.setAttribute("data-chart-error", String(err)); }
    });
  }
  window.addEventListener("resize", function () {
    document.querySelectorAll("[data-chart-ready]").forEach(function (el) { if (el.__cpChart) el.__cpChart.resize(); });
  });
  document.addEventListener("DOMContentLoaded", function () { charts(document); });
  document.addEventListener("htmx:afterSettle", function (e) { charts(e.target); });
})();
