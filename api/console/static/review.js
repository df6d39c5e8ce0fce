// The review queue's editors. Each translation is a plain textarea the form sends; this
// script puts an editor over it where the placeholders and tags are chips (rendered by the
// server, the same tokens the server's check keeps), copies the editor's text back into
// the textarea as it changes, and refuses any change that would remove a chip: typing,
// Backspace or Delete next to one, cutting, dropping or pasting over one. Without this
// script the textareas work as they are, and the server still refuses a dropped token.
"use strict";
(function () {
  function text(editor) {
    var out = "";
    editor.childNodes.forEach(function (node) {
      if (node.nodeType === Node.TEXT_NODE) { out += node.data; }
      else if (node.classList && node.classList.contains("chip")) { out += node.dataset.token; }
      else if (node.nodeName === "BR") { out += "\n"; }
      else { out += node.textContent; }
    });
    return out;
  }

  function chipsIn(range, editor) {
    return Array.prototype.some.call(editor.querySelectorAll(".chip"), function (chip) {
      return !range.collapsed && range.intersectsNode(chip);
    });
  }

  // The chip a collapsed caret would delete with Backspace (before it) or Delete (after).
  function neighbour(range, forward) {
    var node = range.startContainer, offset = range.startOffset, sibling;
    if (node.nodeType === Node.TEXT_NODE) {
      if (forward ? offset < node.data.length : offset > 0) { return null; }
      sibling = forward ? node.nextSibling : node.previousSibling;
    } else {
      sibling = forward ? node.childNodes[offset] : node.childNodes[offset - 1];
    }
    return sibling && sibling.classList && sibling.classList.contains("chip") ? sibling : null;
  }

  // The editor's chips, in order: what no change may alter.
  function tokens(editor) {
    return Array.prototype.map.call(editor.querySelectorAll(".chip"), function (chip) {
      return chip.dataset.token;
    }).join("\u0000");
  }

  function guard(editor, area) {
    var chips = tokens(editor);
    var good = editor.innerHTML;
    editor.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); return; }
      if (event.key !== "Backspace" && event.key !== "Delete") { return; }
      var selection = window.getSelection();
      if (!selection.rangeCount) { return; }
      var range = selection.getRangeAt(0);
      var hit = range.collapsed ? neighbour(range, event.key === "Delete") : chipsIn(range, editor);
      if (hit) { event.preventDefault(); }
    });
    editor.addEventListener("beforeinput", function (event) {
      var ranges = event.getTargetRanges ? event.getTargetRanges() : [];
      var dropping = ranges.some(function (r) {
        var range = document.createRange();
        range.setStart(r.startContainer, r.startOffset);
        range.setEnd(r.endContainer, r.endOffset);
        return chipsIn(range, editor);
      });
      if (dropping) { event.preventDefault(); }
    });
    // Whatever got past the checks above (an input method, a drag, an extension): put the
    // last text that kept every chip, and no other, back.
    editor.addEventListener("input", function () {
      if (tokens(editor) !== chips) {
        editor.innerHTML = good;
      } else {
        good = editor.innerHTML;
      }
      area.value = text(editor);
    });
  }

  document.querySelectorAll(".editor[data-for]").forEach(function (editor) {
    var area = document.getElementById(editor.dataset.for);
    if (!area) { return; }
    editor.contentEditable = "true";
    editor.tabIndex = 0;
    editor.hidden = false;
    area.hidden = true;
    area.tabIndex = -1;
    guard(editor, area);
  });
})();
