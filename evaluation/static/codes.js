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
    var paperForm = form.classList.contains("paper-form") || form.hasAttribute("data-paper");
    form.addEventListener("submit", function (event) {
      if (!window.fetch || !window.Blob || !window.URL) { return; }  // plain POST still works
      var reissue = form.querySelector("[name=reissue]");
      if (reissue && !reissue.checked) { return; }  // voiding alone answers with the page itself
      event.preventDefault();
      var button = form.querySelector("button[type=submit]");
      var box = form.querySelector(".issue-progress");
      if (!box) {  // the paper ballot and confirmation forms: a small status line of their own
        box = document.createElement("div");
        box.className = "issue-progress";
        box.innerHTML = '<progress max="100" value="0"></progress> <span class="issue-status small muted" role="status"></span>';
        form.appendChild(box);
      }
      var bar = box.querySelector("progress");
      var status = box.querySelector(".issue-status");
      var countField = form.querySelector("[name=count]");
      var count = countField ? (parseInt(countField.value, 10) || 1) : 1;
      var formatField = form.querySelector("[name=format]");
      var format = formatField ? formatField.value : "pdf";
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
        status.textContent = "正在生成 " + count + (paperForm ? " 张纸质选票" : " 个测评码") +
          "… 已用 " + Math.round(elapsed / 1000) + " 秒";
      }, 200);
      fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" })
        .then(function (response) {
          var disposition = response.headers.get("Content-Disposition") || "";
          if (response.ok && response.headers.get("X-Confirm-Needed")) {
            // More than 应参加: show the confirmation page the plain way.
            window.clearInterval(timer);
            form.submit();
            return null;
          }
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
              " 秒）。" + (paperForm ? "纸质选票可在下方“重新下载”同样的编号。" :
                "测评码只显示这一次，请妥善保存文件。");
            if (countField) { countField.value = ""; }  // nothing invites a second issue
            var batch = response.headers.get("X-Batch-Id");
            var print = response.headers.get("X-Paper-Issue");
            window.setTimeout(function () {
              URL.revokeObjectURL(url);
              showNewBatch(form, batch, print);
            }, 1200);
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

  // After an issue, the codes page again, with the new batch marked: the table is never stale.
  // The response names the batch (X-Batch-Id) or the print (X-Paper-Issue); batches.json is
  // asked only when it does not.
  function showNewBatch(form, batch, print) {
    var back = form.getAttribute("data-back") || window.location.pathname;
    var go = function (id) {
      window.location.href = back + (id ? "?new=" + id + "#batches" : "#batches");
    };
    if (print) { window.location.href = back + "#paper"; return; }
    if (batch) { go(batch); return; }
    var source = form.getAttribute("data-refresh");
    if (!source) { go(null); return; }
    fetch(source, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : {}; })
      .then(function (data) { go(data.last); })
      .catch(function () { go(null); });
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
          set(panel, ".turnout-percent", data.percent_text);
          panel.querySelector(".turnout-total").value = data.percent;
          data.strata.forEach(function (s) {
            var row = panel.querySelector('tr[data-stratum="' + s.id + '"]');
            if (!row) { return; }
            set(row, ".s-used", s.used);
            set(row, ".s-issued", s.issued);
            set(row, ".s-percent", s.percent_text);
            row.querySelector("progress").value = s.percent;
          });
        })
        .catch(function () { /* the next tick tries again */ });
    };
    window.setInterval(refresh, 5000);
  }
})();
