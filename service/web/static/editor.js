// A small code editor on a native <textarea>: line numbers beside it, Tab and Shift+Tab indent
// and unindent, Enter keeps the line's indentation. Escape hands Tab back to the browser for
// one key press, so the keyboard can always leave the editor (WAI-ARIA's advice for editors
// that take Tab). Everything else (undo, selection, screen readers) is the textarea's own.

const INDENT = "    ";

export function attachEditor(textarea, gutter) {
  let tabMovesFocus = false;
  let shown = 0;

  const renumber = () => {
    const lines = textarea.value.split("\n").length;
    if (shown !== lines) {
      shown = lines;
      const out = [];
      for (let i = 1; i <= lines; i++) out.push(i);
      gutter.textContent = out.join("\n");
    }
    gutter.scrollTop = textarea.scrollTop;
  };

  // Replace [start, end) with `text` through the editing commands, so Ctrl+Z undoes it.
  const replace = (start, end, text, selStart, selEnd) => {
    textarea.setSelectionRange(start, end);
    if (!document.execCommand("insertText", false, text)) {
      textarea.setRangeText(text, start, end, "end");
      textarea.dispatchEvent(new Event("input", { bubbles: true }));
    }
    textarea.setSelectionRange(selStart, selEnd);
  };

  const indent = (outdent) => {
    const { value, selectionStart: start, selectionEnd: end } = textarea;
    if (!outdent && start === end) {
      replace(start, end, INDENT, start + INDENT.length, start + INDENT.length);
      return;
    }
    const lineStart = value.lastIndexOf("\n", start - 1) + 1;
    const block = value.slice(lineStart, end);
    const lines = block.split("\n");
    let first = 0;
    let total = 0;
    const changed = lines.map((line, i) => {
      if (outdent) {
        const strip = line.match(/^( {1,4}|\t)?/)[0].length;
        if (i === 0) first = -strip;
        total -= strip;
        return line.slice(strip);
      }
      if (i === 0) first = INDENT.length;
      total += INDENT.length;
      return INDENT + line;
    });
    replace(lineStart, end, changed.join("\n"), Math.max(lineStart, start + first), end + total);
  };

  textarea.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      tabMovesFocus = true;
      return;
    }
    if (e.key === "Tab" && !e.ctrlKey && !e.altKey && !e.metaKey) {
      if (tabMovesFocus) {
        tabMovesFocus = false;
        return; // the browser moves the focus
      }
      e.preventDefault();
      indent(e.shiftKey);
      return;
    }
    tabMovesFocus = false;
    if (e.key === "Enter" && !e.ctrlKey && !e.metaKey && !e.shiftKey && !e.altKey) {
      const { value, selectionStart: start, selectionEnd: end } = textarea;
      const lineStart = value.lastIndexOf("\n", start - 1) + 1;
      const lead = value.slice(lineStart, start).match(/^[ \t]*/)[0];
      const extra = /[:{[(]\s*$/.test(value.slice(lineStart, start)) ? INDENT : "";
      if (lead || extra) {
        e.preventDefault();
        const text = "\n" + lead + extra;
        replace(start, end, text, start + text.length, start + text.length);
      }
    }
  });
  textarea.addEventListener("blur", () => {
    tabMovesFocus = false;
  });
  textarea.addEventListener("input", renumber);
  textarea.addEventListener("scroll", () => {
    gutter.scrollTop = textarea.scrollTop;
  });
  return { renumber };
}
