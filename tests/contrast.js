// WCAG 2.x contrast of every visible text in the page against its effective background.
// Returns [{text, ratio, need, fg, bg, size, weight, path}] for each element that holds text.
() => {
  const parse = (css) => {
    const m = css.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  // `over` drawn on an opaque `under`.
  const blend = (over, under) => ({
    r: over.r * over.a + under.r * (1 - over.a),
    g: over.g * over.a + under.g * (1 - over.a),
    b: over.b * over.a + under.b * (1 - over.a),
    a: 1,
  });
  const lum = (c) => {
    const ch = (v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * ch(c.r) + 0.7152 * ch(c.g) + 0.0722 * ch(c.b);
  };
  const ratio = (a, b) => {
    const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  // The canvas behind everything: what the browser paints where no element has a background.
  const canvas = () => {
    const probe = document.createElement("div");
    probe.style.cssText = "background:Canvas;position:absolute;width:1px;height:1px";
    document.documentElement.appendChild(probe);
    const c = parse(getComputedStyle(probe).backgroundColor);
    probe.remove();
    return c && c.a === 1 ? c : { r: 255, g: 255, b: 255, a: 1 };
  };
  const base = canvas();
  // Walk up for background layers until an opaque one, then composite from the bottom.
  const background = (el) => {
    const layers = [];
    for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c && c.a > 0) {
        layers.push(c);
        if (c.a >= 1) break;
      }
    }
    let bg = base;
    for (let i = layers.length - 1; i >= 0; i--) bg = blend(layers[i], bg);
    return bg;
  };
  const visible = (el) => {
    const s = getComputedStyle(el);
    if (s.visibility !== "visible" || s.display === "none") return false;
    for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
      const t = getComputedStyle(n);
      if (parseFloat(t.opacity) === 0 || n.getAttribute("aria-hidden") === "true") return false;
    }
    const r = el.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) return false;
    const doc = document.documentElement;
    return r.right > 0 && r.bottom > 0 && r.left < doc.scrollWidth && r.top < doc.scrollHeight;
  };
  const path = (el) => {
    const parts = [];
    for (let n = el; n && n.nodeType === 1 && parts.length < 4; n = n.parentElement) {
      parts.unshift(n.tagName.toLowerCase() + (n.className && typeof n.className === "string" ? "." + n.className.trim().split(/\s+/).join(".") : ""));
    }
    return parts.join(" > ");
  };
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    const tag = el.tagName.toLowerCase();
    if (["script", "style", "noscript", "title", "head", "meta", "option"].includes(tag)) continue;
    let text = "";
    if (tag === "input" || tag === "select" || tag === "textarea") {
      if (tag === "input" && !["text", "email", "search", "url", ""].includes(el.type)) continue;
      text = tag === "select" ? (el.selectedOptions[0] || {}).text || "" : el.value || el.placeholder || "";
    } else {
      for (const node of el.childNodes) {
        if (node.nodeType === 3) text += node.textContent;
      }
    }
    text = text.replace(/[\s\u034f\u200c\u00a0]+/g, " ").trim();
    if (!text || !visible(el)) continue;
    const s = getComputedStyle(el);
    const fg0 = parse(s.color);
    if (!fg0) continue;
    const bg = background(el);
    const fg = fg0.a < 1 ? blend(fg0, bg) : fg0;
    const size = parseFloat(s.fontSize);
    const weight = parseInt(s.fontWeight, 10) || 400;
    const large = size >= 24 || (size >= 18.66 && weight >= 700);
    const hex = (c) => "#" + [c.r, c.g, c.b].map((v) => Math.round(v).toString(16).padStart(2, "0")).join("");
    out.push({
      text: text.slice(0, 60),
      ratio: Math.round(ratio(fg, bg) * 100) / 100,
      need: large ? 3 : 4.5,
      fg: hex(fg),
      bg: hex(bg),
      size,
      weight,
      path: path(el),
    });
  }
  return out;
}
