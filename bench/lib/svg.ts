/**
 * A small SVG line chart, written by hand so the docs need no plotting dependency: log or linear
 * axes, a few series, optional horizontal goal lines, and a legend.
 */
export interface Series {
  readonly name: string;
  readonly color: string;
  readonly points: readonly (readonly [number, number])[];
  readonly dashed?: boolean;
}

export interface ChartOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  readonly logX?: boolean;
  readonly logY?: boolean;
  /** Horizontal reference lines (goals). */
  readonly lines?: readonly { readonly y: number; readonly label: string }[];
  readonly width?: number;
  readonly height?: number;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function ticks(min: number, max: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** e;
        if (v >= min * 0.999 && v <= max * 1.001) out.push(v);
      }
    }
    return out;
  }
  const step = 10 ** Math.floor(Math.log10((max - min) / 4 || 1));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => (max - min) / s <= 6) ?? step * 10;
  const out: number[] = [];
  for (let v = Math.ceil(min / nice) * nice; v <= max + 1e-9; v += nice) out.push(Number(v.toPrecision(6)));
  return out;
}

function label(v: number): string {
  if (v >= 1000) return `${Number((v / 1000).toPrecision(3))}k`;
  return String(Number(v.toPrecision(3)));
}

export function lineChart(o: ChartOptions): string {
  const width = o.width ?? 720;
  const height = o.height ?? 420;
  const m = { left: 64, right: 170, top: 40, bottom: 52 };
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const all = o.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const ys = [...all.map(([, y]) => y), ...(o.lines ?? []).map((l) => l.y)];
  const xs = all.map(([x]) => x);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (o.logX) [x0, x1] = [10 ** Math.floor(Math.log10(x0)), 10 ** Math.ceil(Math.log10(x1))];
  if (o.logY) [y0, y1] = [10 ** Math.floor(Math.log10(Math.max(y0, 1e-3))), 10 ** Math.ceil(Math.log10(y1))];
  else [y0, y1] = [0, y1 * 1.1];
  const fx = (x: number) =>
    m.left +
    (o.logX
      ? (Math.log10(x) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0))
      : (x - x0) / (x1 - x0 || 1)) *
      pw;
  const fy = (y: number) =>
    m.top +
    ph -
    (o.logY
      ? (Math.log10(y) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0))
      : (y - y0) / (y1 - y0 || 1)) *
      ph;
  const f = (n: number) => n.toFixed(1);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(o.title)}</text>`,
  ];
  for (const t of ticks(x0, x1, o.logX ?? false)) {
    out.push(
      `<line x1="${f(fx(t))}" y1="${m.top}" x2="${f(fx(t))}" y2="${m.top + ph}" stroke="#e4e4e4"/>`,
      `<text x="${f(fx(t))}" y="${m.top + ph + 16}" text-anchor="middle">${label(t)}</text>`,
    );
  }
  for (const t of ticks(y0, y1, o.logY ?? false)) {
    out.push(
      `<line x1="${m.left}" y1="${f(fy(t))}" x2="${m.left + pw}" y2="${f(fy(t))}" stroke="#e4e4e4"/>`,
      `<text x="${m.left - 6}" y="${f(fy(t) + 4)}" text-anchor="end">${label(t)}</text>`,
    );
  }
  out.push(
    `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`,
    `<text x="${m.left + pw / 2}" y="${height - 12}" text-anchor="middle">${esc(o.xLabel)}</text>`,
    `<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`,
  );
  for (const l of o.lines ?? []) {
    out.push(
      `<line x1="${m.left}" y1="${f(fy(l.y))}" x2="${m.left + pw}" y2="${f(fy(l.y))}" stroke="#c00" stroke-dasharray="2 4"/>`,
      `<text x="${m.left + pw - 4}" y="${f(fy(l.y) - 4)}" text-anchor="end" fill="#c00">${esc(l.label)}</text>`,
    );
  }
  o.series.forEach((s, i) => {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.logY || y > 0));
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    out.push(
      `<polyline fill="none" stroke="${s.color}" stroke-width="2"${dash} points="${pts.map(([x, y]) => `${f(fx(x))},${f(fy(y))}`).join(' ')}"/>`,
      ...pts.map(([x, y]) => `<circle cx="${f(fx(x))}" cy="${f(fy(y))}" r="3.5" fill="${s.color}"/>`),
    );
    const ly = m.top + 16 + i * 20;
    out.push(
      `<line x1="${m.left + pw + 14}" y1="${ly - 4}" x2="${m.left + pw + 40}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${dash}/>`,
      `<text x="${m.left + pw + 46}" y="${ly}">${esc(s.name)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
