// The dashboard's page script. dashboardApp runs in the browser: the page inlines its source
// (dashboardApp.toString()) after chartKit's, so it must refer to nothing outside itself but
// its arguments and the DOM. It keeps each run's rows, applies the updates the server sends
// (server-sent events) or the export carries, and redraws: the progress of each run, the
// metric charts (runs overlaid, smoothing, log scale, values on hover) and the per-pair view.
import type { ChartKit, Series } from "./svg.js";
import type { RunUpdate, RunStatus } from "./run-data.js";
import type { PairLogHeader, PairLogRow } from "../train/pair-log.js";
import type { EvalResult } from "./eval-results.js";

export interface ChartSpec {
  id: string;
  title: string;
  yLabel: string;
  keys: string[];
  empty: string;
}
export interface DashboardConfig {
  live: boolean;
  charts: ChartSpec[];
  updates: RunUpdate[];
  generated: string;
  /** Evaluation results (eval --json files), in checkpoint or round order. */
  evals?: EvalResult[];
}

export function dashboardApp(kit: ChartKit, config: DashboardConfig): void {
  interface Run {
    name: string;
    rows: Record<string, number | string>[];
    pairHeader: PairLogHeader | null;
    pairRows: PairLogRow[];
    status: RunStatus | null;
    problems: string[];
  }
  const runs: Run[] = [];
  const ui = { smoothing: 0, log: false, pairRun: -1, pairStep: -1, colour: "fitted" };
  // Every value from a run's files goes through esc (run-data.ts type-checks them too).
  const esc = kit.esc;
  const root = document.getElementById("dashboard")!;
  root.innerHTML = `<div class="controls">
<label>smoothing <input id="smoothing" type="range" min="0" max="0.99" step="0.01" value="0"> <span id="smoothing-value">0</span></label>
<label><input id="logscale" type="checkbox"> log scale</label>
<span id="connection">${config.live ? "connecting…" : `exported ${esc(config.generated)}`}</span></div>
<div id="runs"></div><div id="charts" class="charts"></div>
<section id="pairs"><h2>Per-pair weights</h2><div class="controls">
<label>run <select id="pair-run"></select></label>
<label>logged step <input id="pair-step" type="range" min="0" max="0" value="0"> <span id="pair-step-value"></span></label>
<label>colour <select id="pair-colour"><option value="fitted">fitted now (margin &gt; 0)</option><option value="progress">step it was first fitted</option></select></label>
</div><div id="pair-body"></div></section><section id="evals" hidden></section><div id="tip" hidden></div>`;
  const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

  const colourOf = (i: number) => kit.PALETTE[i % kit.PALETTE.length];
  const fmtTime = (s: number) =>
    s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;

  /** Exponential moving average with the bias correction TensorBoard applies (the first points are not pulled to 0). */
  function smooth(points: [number, number][], w: number): [number, number][] {
    if (!(w > 0)) return points;
    let s = 0;
    return points.map(([x, y], i) => {
      s = w * s + (1 - w) * y;
      return [x, s / (1 - w ** (i + 1))];
    });
  }

  function renderRuns(): void {
    $("runs").innerHTML = runs.length
      ? runs
          .map((r, i) => {
            const st = r.status;
            const total = st?.totalSteps ?? null;
            const pct = st && total ? ` (${Math.floor((100 * st.step) / total)}%)` : "";
            const eta =
              st?.state === "running"
                ? st.etaSeconds === null
                  ? ", ETA unknown yet"
                  : `, ETA ${fmtTime(st.etaSeconds)}`
                : "";
            const problems = r.problems.length
              ? `<ul class="problems">${r.problems.map((p) => `<li>${esc(p)}</li>`).join("")}</ul>`
              : "";
            return (
              `<div class="run" data-run="${i}"><span class="swatch" style="background:${colourOf(i)}"></span><b>${esc(r.name)}</b> ` +
              `<span class="state state-${(st?.state ?? "unknown").replace(/ /g, "-")}">${esc(st?.state ?? "unknown")}</span> ` +
              `step <span class="step">${esc(String(st?.step ?? 0))}</span>${total ? ` of ${esc(String(total))}` : ""}${esc(pct)}${esc(eta)}` +
              `${st?.checkpoint !== null && st?.checkpoint !== undefined ? `, checkpoint ${esc(String(st.checkpoint))}` : ""}` +
              `<div class="detail">${esc(st?.detail ?? "")}</div>${problems}</div>`
            );
          })
          .join("")
      : config.evals?.length
        ? ""
        : `<p class="problems">${config.live ? "waiting for the server's first update…" : "this export holds no run"}</p>`;
  }

  function renderCharts(): void {
    // A page of evaluations only: no empty training charts.
    const charts = runs.length === 0 && config.evals?.length ? [] : config.charts;
    $("charts").innerHTML = charts
      .map((c) => {
        const series: Series[] = [];
        runs.forEach((r, i) =>
          c.keys.forEach((k, j) => {
            const points = r.rows
              .filter((row) => typeof row[k] === "number")
              .map((row) => [row.step as number, row[k] as number] as [number, number]);
            if (points.length)
              series.push({
                name: c.keys.length > 1 ? `${r.name} ${k.split("/").pop()}` : r.name,
                points: smooth(points, ui.smoothing),
                color: colourOf(i),
                dash: ["", "5 3", "1 3"][j % 3] || undefined,
              });
          }),
        );
        const body = series.length
          ? kit.lineChart(c.title, "step", c.yLabel, series, { logY: ui.log, width: 440, height: 260 })
          : `<p class="empty"><b>${esc(c.title)}</b>: ${esc(c.empty)}</p>`;
        return `<div class="chart" data-chart="${esc(c.id)}">${body}</div>`;
      })
      .join("");
  }

  /**
   * Evaluation results: a table (a column per evaluation, a row per figure) and, with several, a
   * line per figure that changes over them: the rates (every value in [0, 1]) on one chart, each
   * other figure on its own. Figures that stay the same (n, the baseline's length) are in the table only.
   */
  function renderEvals(): void {
    const evals = config.evals ?? [];
    const section = $("evals");
    section.hidden = evals.length === 0;
    if (!evals.length) return;
    const names: string[] = [];
    for (const e of evals) for (const k of Object.keys(e.metrics)) if (!names.includes(k)) names.push(k);
    const cell = (v: number | undefined) => {
      if (v === undefined) return "";
      const text = Number.isInteger(v) ? String(v) : v.toPrecision(4);
      return /\.\d*0$/.test(text) ? text.replace(/\.?0+$/, "") : text; // 0.5000 -> 0.5; 1000 stays
    };
    const table =
      `<table data-evals><caption>Evaluations</caption><tr><th>figure</th>` +
      evals
        .map((e, i) => `<th title="${esc(e.file)}">${evals.length > 1 ? `${i + 1}. ` : ""}${esc(e.name)}</th>`)
        .join("") +
      "</tr>" +
      names
        .map(
          (k) =>
            `<tr data-figure="${esc(k)}"><td>${esc(k)}</td>` +
            evals.map((e) => `<td>${esc(cell(e.metrics[k]))}</td>`).join("") +
            "</tr>",
        )
        .join("") +
      "</table>";
    const problems = evals.filter((e) => e.problem).map((e) => `<li>${esc(e.problem!)}</li>`);
    let charts = "";
    if (evals.length > 1) {
      const values = (k: string) => evals.map((e) => e.metrics[k]).filter((v) => v !== undefined);
      const plotted = names.filter((k) => new Set(values(k)).size > 1);
      const isRate = (k: string) => values(k).every((v) => v >= 0 && v <= 1);
      const line = (k: string, i: number): Series => ({
        name: k,
        points: evals.flatMap((e, x) =>
          e.metrics[k] === undefined ? [] : [[x + 1, e.metrics[k]] as [number, number]],
        ),
        color: colourOf(i),
      });
      const chart = (id: string, title: string, yLabel: string, series: Series[]) =>
        `<div class="chart" data-chart="${esc(id)}">${kit.lineChart(title, "evaluation", yLabel, series, { width: 440, height: 260 })}</div>`;
      const rates = plotted.filter(isRate);
      charts =
        (rates.length ? chart("eval-rates", "Evaluation rates", "rate", rates.map(line)) : "") +
        plotted
          .filter((k) => !isRate(k))
          .map((k, i) => chart(`eval-${k}`, k, k, [line(k, rates.length + i)]))
          .join("");
    }
    section.innerHTML =
      `<h2>Evaluations</h2>${problems.length ? `<ul class="problems">${problems.join("")}</ul>` : ""}` +
      `<div class="charts">${charts}</div>${table}`;
  }

  const at = (v: number[] | number | undefined, i: number): number | null =>
    v === undefined ? null : typeof v === "number" ? v : v[i];
  /** Viridis-like ramp over [0, 1]. */
  function ramp(t: number): string {
    const stops = [
      [68, 1, 84],
      [59, 82, 139],
      [33, 145, 140],
      [94, 201, 98],
      [253, 231, 37],
    ];
    const x = Math.min(Math.max(t, 0), 1) * (stops.length - 1);
    const k = Math.min(Math.floor(x), stops.length - 2);
    const f = x - k;
    return `rgb(${stops[k].map((c, n) => Math.round(c + f * (stops[k + 1][n] - c))).join(",")})`;
  }

  function renderPairs(): void {
    const withPairs = runs.map((r, i) => [r, i] as const).filter(([r]) => r.pairHeader);
    const select = $<HTMLSelectElement>("pair-run");
    const options = withPairs.map(([r, i]) => `<option value="${i}">${esc(r.name)}</option>`).join("");
    if (select.dataset.options !== options) {
      select.innerHTML = options;
      select.dataset.options = options;
    } // not while it is open
    // By default the first run whose loss has w_qual and w_perf (the picture this view is for).
    const withWeights = withPairs.find(
      ([r]) => r.pairRows.at(-1)?.q !== undefined && r.pairRows.at(-1)?.p !== undefined,
    );
    if (!withPairs.some(([, i]) => i === ui.pairRun)) ui.pairRun = (withWeights ?? withPairs[0])?.[1] ?? -1;
    select.value = String(ui.pairRun);
    const body = $("pair-body");
    if (ui.pairRun < 0) {
      body.innerHTML = `<p class="problems">No run here has a pair log (pair_log.jsonl): train with pair_log_samples &gt; 0 (the default, 256) to see each pair's w_qual, w_perf and margin over the run.</p>`;
      return;
    }
    const run = runs[ui.pairRun];
    const ids = run.pairHeader!.ids;
    const rows = run.pairRows;
    const slider = $<HTMLInputElement>("pair-step");
    slider.max = String(Math.max(0, rows.length - 1));
    const idx = ui.pairStep < 0 || ui.pairStep >= rows.length ? rows.length - 1 : ui.pairStep; // -1: follow the latest
    slider.value = String(Math.max(idx, 0));
    if (!rows.length) {
      $("pair-step-value").textContent = "";
      body.innerHTML = `<p class="problems">${esc(run.name)}: pair_log.jsonl has no logged step yet.</p>`;
      return;
    }
    const row = rows[idx];
    const first = rows[0];
    const total = run.pairHeader!.total_steps;
    $("pair-step-value").textContent = `step ${row.step} of ${total} (${idx + 1}/${rows.length} logs)`;
    const firstFitted = ids.map((_, i) => {
      for (let k = 0; k <= idx; k++) if (rows[k].m[i] > 0) return k;
      return -1;
    });
    const weighted = row.q !== undefined && row.p !== undefined;
    const points = ids.map((id, i) => {
      const m = row.m[i];
      const q = at(row.q, i),
        p = at(row.p, i),
        g = at(row.g, i);
      const color =
        ui.colour === "fitted"
          ? m > 0
            ? "#2ca02c"
            : "#d62728"
          : firstFitted[i] < 0
            ? "#bbbbbb"
            : ramp(idx ? firstFitted[i] / idx : 0);
      const title = `pair ${id}: margin ${kit.fmt(m)}${q === null ? "" : `, w_qual ${kit.fmt(q)}`}${p === null ? "" : `, w_perf ${kit.fmt(p)}`}${g === null ? "" : `, gate ${g}`}`;
      return weighted ? { x: q!, y: p!, color, title, id } : { x: id, y: m, color, title, id };
    });
    const fitted = row.m.filter((m) => m > 0).length;
    const note = `${fitted}/${ids.length} fitted`;
    const chart = weighted
      ? kit.scatterPlot(
          `w_qual against w_perf at step ${row.step} (${run.pairHeader!.loss})`,
          "w_qual = σ(η(S_w − S_l))",
          "w_perf = (1 − σ(β·Δπ − τ_ref))^γ",
          points,
          { note, width: 520, height: 400 },
        )
      : kit.scatterPlot(
          `margin per pair at step ${row.step} (${run.pairHeader!.loss}: no w_qual/w_perf)`,
          "pair (index in the training split)",
          "reward margin",
          points,
          { note, width: 520, height: 400 },
        );
    const legend =
      ui.colour === "fitted"
        ? `<span style="color:#2ca02c">●</span> fitted (margin &gt; 0) <span style="color:#d62728">●</span> not fitted`
        : `colour: the log at which the pair was first fitted, <span style="color:${ramp(0)}">●</span> first … <span style="color:${ramp(1)}">●</span> this one; <span style="color:#bbb">●</span> not yet`;
    const moved = ids
      .map((id, i) => ({ id, i, d: row.m[i] - first.m[i] }))
      .sort((a, b) => Math.abs(b.d) - Math.abs(a.d))
      .slice(0, 10);
    const cell = (v: number | null) => (v === null ? "" : kit.fmt(v));
    const table =
      `<table class="moved"><caption>Pairs whose margin moved most since step ${esc(String(first.step))}</caption><tr><th>pair</th><th>margin then</th><th>margin now</th><th>change</th><th>w_perf then</th><th>w_perf now</th><th>w_qual</th><th>gate</th><th>fitted</th></tr>` +
      moved
        .map(
          ({ id, i, d }) =>
            `<tr><td>${esc(String(id))}</td><td>${cell(first.m[i])}</td><td>${cell(row.m[i])}</td><td>${d > 0 ? "+" : ""}${cell(d)}</td><td>${cell(at(first.p, i))}</td><td>${cell(at(row.p, i))}</td><td>${cell(at(row.q, i))}</td><td>${cell(at(row.g, i))}</td><td>${row.m[i] > 0 ? "yes" : "no"}</td></tr>`,
        )
        .join("") +
      "</table>";
    body.innerHTML = `<div class="pair-view"><div class="chart" data-chart="pairs">${chart}<div class="legend-note">${legend}</div></div>${table}</div>`;
  }

  let pending = 0;
  function render(): void {
    pending = 0;
    renderRuns();
    renderCharts();
    renderPairs();
    document.body.dataset.rendered = String(Number(document.body.dataset.rendered ?? 0) + 1);
  }
  const schedule = () => {
    if (!pending) pending = window.setTimeout(render, 30);
  };

  function apply(u: RunUpdate): void {
    if (u.reset || !runs[u.run])
      runs[u.run] = { name: u.name, rows: [], pairHeader: null, pairRows: [], status: null, problems: [] };
    const r = runs[u.run];
    // Item by item: push(...rows) would pass a long run's rows as arguments, past the stack's limit.
    for (const row of u.rows) r.rows.push(row);
    for (const row of u.pairRows) r.pairRows.push(row);
    r.pairHeader = u.pairHeader;
    r.status = u.status;
    r.problems = u.problems;
    document.body.dataset.updates = String(Number(document.body.dataset.updates ?? 0) + 1);
    schedule();
  }

  $<HTMLInputElement>("smoothing").addEventListener("input", (e) => {
    ui.smoothing = Number((e.target as HTMLInputElement).value);
    $("smoothing-value").textContent = String(ui.smoothing);
    schedule();
  });
  $<HTMLInputElement>("logscale").addEventListener("change", (e) => {
    ui.log = (e.target as HTMLInputElement).checked;
    schedule();
  });
  $<HTMLSelectElement>("pair-run").addEventListener("change", (e) => {
    ui.pairRun = Number((e.target as HTMLSelectElement).value);
    ui.pairStep = -1;
    schedule();
  });
  $<HTMLInputElement>("pair-step").addEventListener("input", (e) => {
    const v = Number((e.target as HTMLInputElement).value);
    ui.pairStep = v >= runs[ui.pairRun]?.pairRows.length - 1 ? -1 : v; // at the end: follow new logs
    schedule();
  });
  $<HTMLSelectElement>("pair-colour").addEventListener("change", (e) => {
    ui.colour = (e.target as HTMLSelectElement).value;
    schedule();
  });
  // Values on hover: the marker's <title>, shown at once beside the pointer.
  const tip = $("tip");
  root.addEventListener("mousemove", (e) => {
    const t = (e.target as Element).closest?.("circle");
    const title = t?.querySelector("title")?.textContent;
    if (!title) {
      tip.hidden = true;
      return;
    }
    tip.textContent = title;
    tip.style.left = `${e.pageX + 12}px`;
    tip.style.top = `${e.pageY + 12}px`;
    tip.hidden = false;
  });

  config.updates.forEach(apply);
  renderEvals();
  render();
  if (config.live) {
    const source = new EventSource("events");
    source.onopen = () => {
      $("connection").textContent = "live";
    };
    source.onerror = () => {
      $("connection").textContent = "disconnected: retrying…";
    };
    source.onmessage = (e) => apply(JSON.parse(e.data) as RunUpdate);
  }
}
