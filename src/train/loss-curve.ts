// The loss log (one JSON object per optimizer step) and a self-contained SVG plot of it.

export interface LossRecord {
  step: number; // optimizer steps completed (1-based)
  loss: number; // mean training loss of the step's batch(es), nats per token
  lr: number; // learning rate used for this step
  grad_norm: number; // global gradient norm before clipping
  tokens: number; // training tokens consumed so far
  val_loss?: number; // validation loss, when evaluated at this step
}

export function parseLossLog(text: string): LossRecord[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as LossRecord);
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

/** A 640×360 line chart of training loss (and validation loss points) against step. */
export function lossCurveSvg(records: LossRecord[], title = "training loss"): string {
  const W = 640,
    H = 360,
    left = 56,
    right = 16,
    top = 32,
    bottom = 40;
  const pw = W - left - right,
    ph = H - top - bottom;
  const pts = records.filter((r) => Number.isFinite(r.loss));
  const vals = pts.map((r) => r.loss).concat(records.flatMap((r) => (r.val_loss !== undefined ? [r.val_loss] : [])));
  const maxStep = Math.max(1, ...pts.map((r) => r.step));
  let lo = vals.length ? Math.min(...vals) : 0,
    hi = vals.length ? Math.max(...vals) : 1;
  if (hi - lo < 1e-9) {
    lo -= 0.5;
    hi += 0.5;
  }
  const x = (s: number) => left + (s / maxStep) * pw;
  const y = (v: number) => top + (1 - (v - lo) / (hi - lo)) * ph;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="13">${esc(title)}</text>`);
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((hi - lo) * i) / 4,
      yy = y(v).toFixed(1);
    out.push(`<line x1="${left}" y1="${yy}" x2="${W - right}" y2="${yy}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">${v.toFixed(2)}</text>`);
    const s = Math.round((maxStep * i) / 4),
      xx = x(s).toFixed(1);
    out.push(`<text x="${xx}" y="${H - bottom + 16}" text-anchor="middle">${s}</text>`);
  }
  out.push(`<text x="${left + pw / 2}" y="${H - 6}" text-anchor="middle">step</text>`);
  out.push(`<text x="14" y="${top + ph / 2}" transform="rotate(-90 14 ${top + ph / 2})" text-anchor="middle">loss (nats/token)</text>`);
  out.push(`<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  if (pts.length) {
    const d = pts.map((r, i) => `${i ? "L" : "M"}${x(r.step).toFixed(1)},${y(r.loss).toFixed(1)}`).join("");
    out.push(`<path d="${d}" fill="none" stroke="#1f77b4" stroke-width="1.2"/>`);
  }
  const valPts = records.filter((r) => r.val_loss !== undefined);
  for (const r of valPts) out.push(`<circle cx="${x(r.step).toFixed(1)}" cy="${y(r.val_loss!).toFixed(1)}" r="3" fill="#d62728"/>`);
  out.push(`<text x="${W - right - 4}" y="${top + 14}" text-anchor="end" fill="#1f77b4">train</text>`);
  if (valPts.length) out.push(`<text x="${W - right - 4}" y="${top + 28}" text-anchor="end" fill="#d62728">validation</text>`);
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}
