// 纸质票录入: keyboard-only entry. One key per line, Enter to the next line; Enter on the last
// line saves the ballot. Each line echoes what its key means. A 票面 key that voids the ballot
// (data-voids) saves at once: its other lines do not count. On the 核定 page (lines marked
// data-differs) Enter goes to the next differing line and saves after the last one; Enter on
// such a line left empty asks for a second Enter before it counts as "nothing ticked".
// Without this script the form still works: Tab moves between lines and Enter saves.
(function () {
  "use strict";
  var has = Object.prototype.hasOwnProperty;

  // A Chinese input method in 全角 mode types "１" or "＊": fold to the keys the page expects.
  function fold(text) {
    return text.replace(/[\uff01-\uff5e]/g, function (ch) {
      return String.fromCharCode(ch.charCodeAt(0) - 0xfee0);
    }).replace(/\u3000/g, " ").trim().toLowerCase();
  }

  function meaning(field) {
    var cell = field.closest("tr").querySelector(".meaning");
    var table = {};
    try { table = JSON.parse(field.getAttribute("data-meanings") || "{}"); } catch (e) { table = {}; }
    var key = fold(field.value);
    var known = has.call(table, key);
    if (cell) {
      cell.textContent = known ? table[key] : "无效的键";
      cell.classList.toggle("bad", !known);
    }
    field.classList.toggle("stroke-bad", !known);
    return known;
  }

  function save(form) {
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  }

  function wire(form) {
    var fields = Array.prototype.slice.call(form.querySelectorAll("input.stroke"));
    var differing = fields.filter(function (f) { return f.hasAttribute("data-differs"); });
    var path = differing.length ? differing : fields;
    fields.forEach(function (field) {
      meaning(field);
      field.addEventListener("input", function () {
        var value = fold(field.value);
        if (value.length > 1) value = value.slice(-1);
        if (value !== field.value) field.value = value;
        field.removeAttribute("data-empty-ok");
        meaning(field);
      });
      field.addEventListener("focus", function () { field.select(); });
      field.addEventListener("keydown", function (event) {
        if (event.isComposing) return;
        if (event.key.length === 1 && !event.ctrlKey && !event.metaKey && !event.altKey &&
            field.value && field.selectionStart === field.selectionEnd) {
          field.select(); // a line holds one key: the key typed over it replaces it
          return;
        }
        if (event.key !== "Enter") return;
        event.preventDefault();
        if (!meaning(field)) { field.select(); return; } // stay, ready to be typed over
        var key = fold(field.value);
        if (key === "" && field.hasAttribute("data-differs") && !field.hasAttribute("data-empty-ok")) {
          // A line the two clerks read differently is cleared for the paper's answer: an Enter
          // alone would settle it as "nothing ticked" unseen. Ask for a second Enter.
          field.setAttribute("data-empty-ok", "");
          var cell = field.closest("tr").querySelector(".meaning");
          if (cell) {
            cell.textContent = "空着即“" + cell.textContent + "”：确认请再按一次回车，否则输入键";
            cell.classList.add("bad");
          }
          return;
        }
        var voids = field.getAttribute("data-voids");
        if (voids !== null && key && voids.indexOf(key) >= 0) { save(form); return; }
        var at = path.indexOf(field);
        var next = at >= 0 ? path[at + 1] : fields[fields.indexOf(field) + 1];
        if (next) next.focus(); else save(form);
      });
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll("form[data-paper-entry]"), wire);
})();
