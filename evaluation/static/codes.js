// 发放测评码 and 参测情况: progress while slips are generated, live turnout. No other host.
(function () {
  "use strict";

  // --- issuing: fetch the file, show progress while the server renders it, then save it ---
  function filenameFrom(disposition) {
    var m = /filename\*=UTF-8''([^;]+)/.exec(disposition || "");
    if (m) { return decodeURIComponent(m[1]); }
    m = /filename="([^"]+)"/.exec(disposition || "");
    return m ? m[1] : "测评码";
  }

  function wireIssueForm(form) {
    form.addEventListener("submit", function (event) {
      if (!window.fetch || !window.Blob || !window.URL) { return; }  // plain POST still works
      event.preventDefault();
      var button = form.querySelector("button[type=submit]");
      var box = form.querySelector(".issue-progress");
      var bar = box.querySelector("progress");
      var status = box.querySelector(".issue-status");
      var count = parseInt(form.querySelector("[name=count]").value, 10) || 1;
      var format = form.querySelector("[name=format]").value;
      var perSlip = parseFloat(form.getAttribute("data-ms-per-slip")) || 2;
      var expected = 500 + (format === "csv" ? count * 0.2 : count * perSlip);
      var started = Date.now();
      button.disabled = true;
      box.hidden = false;
      bar.value = 0;
      var timer = window.setInterval(function () {
        var elapsed = Date.now() - started;
        // Approaches 95 % as the expected time passes; the real end sets 100 %.
        bar.value = Math.min(95, 95 * (1 - Math.exp(-elapsed / expected)));
        status.textContent = "正在生成 " + count + " 个测评码… 已用 " + Math.round(elapsed / 1000) + " 秒";
      }, 200);
      fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" })
        .then(function (response) {
          var disposition = response.headers.get("Content-Disposition") || "";
          if (!response.ok || disposition.indexOf("attachment") !== 0) {
            return response.text().then(function (html) {
              var doc = new DOMParser().parseFromString(html, "text/html");
              var msg = doc.querySelector(".error-message");
              throw new Error(msg ? msg.textContent : "发放失败（" + response.status + "）");
            });
          }
          return response.blob().then(function (blob) {
            var url = URL.createObjectURL(blob);
            var link = document.createElement("a");
            link.href = url;
            link.download = filenameFrom(disposition);
            document.body.appendChild(link);
            link.click();
            link.remove();
            window.clearInterval(timer);
            bar.value = 100;
            status.textContent = "已生成并下载（" + Math.round((Date.now() - started) / 100) / 10 +
              " 秒）。测评码只显示这一次，请妥善保存文件。";
            window.setTimeout(function () { URL.revokeObjectURL(url); window.location.reload(); }, 2500);
          });
        })
        .catch(function (error) {
          window.clearInterval(timer);
          box.hidden = false;
          status.textContent = error.message;
          button.disabled = false;
        });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("form.issue-form"), wireIssueForm);

  // --- turnout: poll the JSON every five seconds while the round is open ---
  var panel = document.getElementById("turnout");
  if (panel && panel.getAttribute("data-live") === "yes" && window.fetch) {
    var set = function (root, selector, value) {
      var node = root.querySelector(selector);
      if (node) { node.textContent = value; }
    };
    var refresh = function () {
      fetch(panel.getAttribute("data-url"), { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) { return; }
          set(panel, ".turnout-state", data.state);
          set(panel, ".turnout-used", data.used);
          set(panel, ".turnout-issued", data.issued);
          set(panel, ".turnout-percent", data.percent);
          panel.querySelector(".turnout-total").value = data.percent;
          data.strata.forEach(function (s) {
            var row = panel.querySelector('tr[data-stratum="' + s.id + '"]');
            if (!row) { return; }
            set(row, ".s-used", s.used);
            set(row, ".s-issued", s.issued);
            set(row, ".s-percent", s.percent);
            row.querySelector("progress").value = s.percent;
          });
        })
        .catch(function () { /* the next tick tries again */ });
    };
    window.setInterval(refresh, 5000);
  }
})();
