// Small, dependency-free SVG charts: line charts (with point markers that show their value on
// hover, optional log scale), bar charts with error bars, and scatter plots. Each returns a
// self-contained <svg> string.
//
// The whole kit is one function, chartKit, that refers to nothing outside itself: the node side
// calls it, and the dashboard page inlines its source (chartKit.toString()) so the browser
// draws with the same code. One charting code path for the live page, its export and the demo.

export interface Series {
  name: string;
  points: [number, number][];
  color?: string;
  /** An SVG stroke-dasharray ("4 3"): a second metric of the same run. */ dash?: string;
}
export interface LineOptions {
  logY?: boolean;
  width?: number;
  height?: number;
}
export interface Bar {
  label: string;
  value: number;
  error?: number;
  color?: string;
}
export interface ScatterPoint {
  x: number;
  y: number;
  color?: string;
  title?: string;
  id?: string | number;
}
export interface ScatterOptions {
  note?: string;
  xRange?: [number, number];
  yRange?: [number, number];
  width?: number;
  height?: number;
}

export interface ChartKit {
  PALETTE: string[];
  esc: (s: string) => string;
  fmt: (v: number) => string;
  yAxis: (
    lo: number,
    hi: number,
    o?: { log?: boolean; range?: [number, number] },
  ) => { range: [number, number]; ticks: number[]; labels: string[] };
  lineChart: (title: string, xLabel: string, yLabel: string, series: Series[], options?: LineOptions) => string;
  barChart: (title: string, yLabel: string, bars: Bar[], yRange?: [number, number]) => string;
  scatterPlot: (
    title: string,
    xLabel: string,
    yLabel: string,
    points: ScatterPoint[],
    options?: ScatterOptions,
  ) => string;
}

export function chartKit(): ChartKit {
  const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
  const M = { left: 58, right: 16, top: 28, bottom: 44 };

  function esc(s: string): string {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }

  /** A value with `digits` significant digits (two fewer in exponent form): 4 is the charts' default. */
  function fmtDigits(v: number, digits: number): string {
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(digits - 3) : Number(v.toPrecision(digits)).toString();
  }

  function fmt(v: number): string {
    return fmtDigits(v, 4);
  }

  /** Tick labels with as many digits as it takes to tell them apart (fmt's when that is enough). */
  function tickLabels(values: number[]): string[] {
    for (let digits = 4; digits <= 17; digits++) {
      const labels = values.map((v) => fmtDigits(v, digits));
      if (new Set(labels).size === labels.length) return labels;
    }
    return values.map(String);
  }

  function niceTicks(lo: number, hi: number, count = 5): number[] {
    if (!(hi > lo)) hi = lo + 1;
    const raw = (hi - lo) / count;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
    const ticks: number[] = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
    return ticks;
  }

  interface Frame {
    x: (v: number) => number;
    y: (v: number) => number;
    body: string[];
    W: number;
    H: number;
  }

  /**
   * The y range a plot shows (`range` when given, else the data's), its ticks and their labels.
   * `log`: the values are log10 of the data. A computed range narrower than 1% of its values'
   * size (a near-constant series, or runs whose eval accuracy differs in the 8th digit) is
   * widened to that, centred: the lines sit mid-plot instead of rounding noise spanning it from
   * edge to edge. It then gets a 5% margin. Labels are distinct (more digits when fmt's 4 repeat).
   */
  function yAxis(
    lo: number,
    hi: number,
    o: { log?: boolean; range?: [number, number] } = {},
  ): { range: [number, number]; ticks: number[]; labels: string[] } {
    let [y0, y1] = o.range ?? [lo, hi];
    if (!Number.isFinite(y0) || !Number.isFinite(y1)) [y0, y1] = [0, 1];
    if (!o.range) {
      // 1% of the values: log10(1.01) decades on a log scale.
      const least = o.log ? Math.log10(1.01) : 0.01 * Math.max(Math.abs(y0), Math.abs(y1));
      if (y1 - y0 < least) [y0, y1] = [(y0 + y1) / 2 - least / 2, (y0 + y1) / 2 + least / 2];
    }
    if (y1 === y0) [y0, y1] = [y0 - 0.5, y1 + 0.5]; // all zero, or a given empty range
    if (!o.range) {
      const pad = (y1 - y0) * 0.05;
      [y0, y1] = [y0 - pad, y1 + pad];
    }
    const ticks = o.log
      ? niceTicks(Math.floor(y0), Math.ceil(y1), Math.min(6, Math.max(1, Math.ceil(y1) - Math.floor(y0)))).filter(
          (t) => Number.isInteger(t) && t >= y0 && t <= y1,
        )
      : niceTicks(y0, y1);
    return { range: [y0, y1], ticks, labels: tickLabels(o.log ? ticks.map((t) => 10 ** t) : ticks) };
  }

  /** Axes, labels and ticks; `log` plots log10 of y (the values passed in are already log10). */
  function frame(
    title: string,
    xLabel: string,
    yLabel: string,
    xs: number[],
    ys: number[],
    o: {
      yRange?: [number, number];
      xRange?: [number, number];
      xTicks?: boolean;
      log?: boolean;
      width?: number;
      height?: number;
      legendRows?: number;
    },
  ): Frame {
    const W = o.width ?? 560;
    const H = o.height ?? 320;
    const top = M.top + (o.legendRows ?? 0) * 14; // the legend sits between the title and the plot
    // reduce, not Math.min(...xs): a long run has more points than a call takes arguments.
    const lo = (v: number[]) => v.reduce((a, b) => (b < a ? b : a), Infinity);
    const hi = (v: number[]) => v.reduce((a, b) => (b > a ? b : a), -Infinity);
    let [x0, x1] = o.xRange ?? [lo(xs), hi(xs)];
    if (!Number.isFinite(x0) || !Number.isFinite(x1)) [x0, x1] = [0, 1];
    if (x1 === x0) x1 = x0 + 1;
    const axis = yAxis(lo(ys), hi(ys), { log: o.log, range: o.yRange });
    const [y0, y1] = axis.range;
    const x = (v: number) => M.left + ((v - x0) / (x1 - x0)) * (W - M.left - M.right);
    const y = (v: number) => H - M.bottom - ((v - y0) / (y1 - y0)) * (H - top - M.bottom);
    const midY = (top + H - M.bottom) / 2;
    const body: string[] = [
      `<text x="${W / 2}" y="16" text-anchor="middle" font-size="13" font-weight="600">${esc(title)}</text>`,
      `<line x1="${M.left}" y1="${H - M.bottom}" x2="${W - M.right}" y2="${H - M.bottom}" stroke="#444"/>`,
      `<line x1="${M.left}" y1="${top}" x2="${M.left}" y2="${H - M.bottom}" stroke="#444"/>`,
      `<text x="${(M.left + W - M.right) / 2}" y="${H - 8}" text-anchor="middle" font-size="11">${esc(xLabel)}</text>`,
      `<text x="14" y="${midY}" text-anchor="middle" font-size="11" transform="rotate(-90 14 ${midY})">${esc(yLabel)}${o.log ? " (log)" : ""}</text>`,
    ];
    for (const t of o.xTicks === false ? [] : niceTicks(x0, x1)) {
      body.push(
        `<line x1="${x(t)}" y1="${H - M.bottom}" x2="${x(t)}" y2="${H - M.bottom + 4}" stroke="#444"/>`,
        `<text x="${x(t)}" y="${H - M.bottom + 16}" text-anchor="middle" font-size="10">${fmt(t)}</text>`,
      );
    }
    axis.ticks.forEach((t, i) =>
      body.push(
        `<line x1="${M.left}" y1="${y(t)}" x2="${W - M.right}" y2="${y(t)}" stroke="#eee"/>`,
        `<text class="y-tick" x="${M.left - 6}" y="${y(t) + 3}" text-anchor="end" font-size="10">${axis.labels[i]}</text>`,
      ),
    );
    return { x, y, body, W, H };
  }

  /** Entries in as many columns as the longest name allows, from just under the title. */
  function legendLayout(names: string[], width: number): { columns: number; entry: number; rows: number } {
    const entry = Math.max(60, Math.max(0, ...names.map((n) => n.length)) * 5.6 + 22);
    const columns = Math.max(1, Math.floor((width - M.left - M.right) / entry));
    return { columns, entry, rows: Math.ceil(names.length / columns) };
  }

  function legend(names: string[], colors: string[], dashes: (string | undefined)[], width: number): string {
    const { columns, entry } = legendLayout(names, width);
    return names
      .map(
        (n, i) =>
          `<g class="legend" transform="translate(${M.left + 4 + (i % columns) * entry},${M.top - 6 + Math.floor(i / columns) * 14})">` +
          `<line x1="0" y1="5" x2="14" y2="5" stroke="${colors[i]}" stroke-width="2.5"${dashes[i] ? ` stroke-dasharray="${dashes[i]}"` : ""}/><text x="18" y="9" font-size="10">${esc(n)}</text></g>`,
      )
      .join("");
  }

  function svg(f: Frame): string {
    return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${f.W} ${f.H}" width="${f.W}" height="${f.H}" font-family="sans-serif">${f.body.join("")}</svg>`;
  }

  /** One polyline per series, and a marker per point (class "pt") whose <title> gives its value. */
  function lineChart(
    title: string,
    xLabel: string,
    yLabel: string,
    series: Series[],
    options: LineOptions = {},
  ): string {
    const log = options.logY ?? false;
    const shown = series.map((s) =>
      s.points.filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b) && (!log || b > 0)),
    );
    const ty = (v: number) => (log ? Math.log10(v) : v);
    const all = shown.flat();
    const width = options.width ?? 560;
    const legendRows = legendLayout(
      series.map((s) => s.name),
      width,
    ).rows;
    const f = frame(
      title,
      xLabel,
      yLabel,
      all.map((p) => p[0]),
      all.map((p) => ty(p[1])),
      { log, width, height: options.height, legendRows },
    );
    const colors = series.map((s, i) => s.color ?? PALETTE[i % PALETTE.length]);
    series.forEach((s, i) => {
      const pts = shown[i];
      const xy = pts.map(([a, b]) => [f.x(a).toFixed(1), f.y(ty(b)).toFixed(1)]);
      f.body.push(`<g class="series" data-series="${esc(s.name)}" data-points="${pts.length}">`);
      if (pts.length)
        f.body.push(
          `<polyline fill="none" stroke="${colors[i]}" stroke-width="1.6"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""} points="${xy.map((p) => p.join(",")).join(" ")}"/>`,
        );
      pts.forEach(([a, b], k) =>
        f.body.push(
          `<circle class="pt" cx="${xy[k][0]}" cy="${xy[k][1]}" r="2.4" fill="${colors[i]}"><title>${esc(s.name)}: step ${fmt(a)}, ${esc(yLabel)} ${fmt(b)}</title></circle>`,
        ),
      );
      f.body.push("</g>");
    });
    f.body.push(
      legend(
        series.map((s) => s.name),
        colors,
        series.map((s) => s.dash),
        width,
      ),
    );
    return svg(f);
  }

  /** Bars with optional ± error whiskers (e.g. mean ± std over seeds). */
  function barChart(title: string, yLabel: string, bars: Bar[], yRange?: [number, number]): string {
    const values = bars.flatMap((b) => [b.value - (b.error ?? 0), b.value + (b.error ?? 0), 0]);
    const f = frame(title, "", yLabel, [0, bars.length], values, { yRange, xTicks: false });
    const slot = (f.W - M.left - M.right) / Math.max(bars.length, 1);
    bars.forEach((b, i) => {
      const cx = M.left + slot * (i + 0.5);
      const color = b.color ?? PALETTE[i % PALETTE.length];
      const top = f.y(b.value);
      const base = f.y(yRange ? yRange[0] : 0);
      f.body.push(
        `<rect x="${(cx - slot * 0.3).toFixed(1)}" y="${Math.min(top, base).toFixed(1)}" width="${(slot * 0.6).toFixed(1)}" height="${Math.abs(base - top).toFixed(1)}" fill="${color}" opacity="0.85"/>`,
      );
      if (b.error) {
        const [lo, hi] = [f.y(b.value - b.error), f.y(b.value + b.error)];
        f.body.push(
          `<line x1="${cx}" y1="${lo}" x2="${cx}" y2="${hi}" stroke="#222"/>`,
          `<line x1="${cx - 6}" y1="${lo}" x2="${cx + 6}" y2="${lo}" stroke="#222"/>`,
          `<line x1="${cx - 6}" y1="${hi}" x2="${cx + 6}" y2="${hi}" stroke="#222"/>`,
        );
      }
      f.body.push(
        `<text x="${cx}" y="${f.H - M.bottom + 28}" text-anchor="middle" font-size="10">${esc(b.label)}</text>`,
        `<text x="${cx}" y="${Math.min(top, base) - 4}" text-anchor="middle" font-size="10">${fmt(b.value)}</text>`,
      );
    });
    return svg(f);
  }

  /** One circle (class "dot") per finite point, with its title on hover. */
  function scatterPlot(
    title: string,
    xLabel: string,
    yLabel: string,
    points: ScatterPoint[],
    options: ScatterOptions = {},
  ): string {
    const pts = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    const f = frame(
      title,
      xLabel,
      yLabel,
      pts.map((p) => p.x),
      pts.map((p) => p.y),
      options,
    );
    for (const p of pts) {
      f.body.push(
        `<circle class="dot"${p.id === undefined ? "" : ` data-id="${esc(String(p.id))}"`} cx="${f.x(p.x).toFixed(1)}" cy="${f.y(p.y).toFixed(1)}" r="2.8" fill="${p.color ?? PALETTE[0]}" opacity="0.65">` +
          `${p.title ? `<title>${esc(p.title)}</title>` : ""}</circle>`,
      );
    }
    if (options.note)
      f.body.push(
        `<text x="${f.W - M.right - 4}" y="${M.top + 12}" text-anchor="end" font-size="11">${esc(options.note)}</text>`,
      );
    return svg(f);
  }

  return { PALETTE, esc, fmt, yAxis, lineChart, barChart, scatterPlot };
}

const kit = chartKit();
export const { PALETTE, esc, yAxis, lineChart, barChart, scatterPlot } = kit;

/** Pearson correlation (NaN for fewer than two points or no spread). */
export function pearson(xs: number[], ys: number[]): number {
  const n = Math.min(xs.length, ys.length);
  if (n < 2) return NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0,
    sxx = 0,
    syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
    syy += (ys[i] - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}
