// `omni-dpo dashboard`: a local live view of run directories, or their static export.
import { parseArgs } from "node:util";
import { UsageError, positiveInt, type Command } from "../args.js";

export const dashboardCommand: Command = {
  help: `Usage: omni-dpo dashboard RUN_DIR [RUN_DIR...] [--port P] [--host H [--allow-remote]]
       omni-dpo dashboard RUN_DIR [RUN_DIR...] --export report.html

Serves one page that follows training runs (their output_dir) as they write: loss, reward
margins and accuracies, chosen/rejected log-probs, learning rate, grad norm, tokens/s, eval
metrics, several runs overlaid; each run's step, ETA and state (running, finished,
interrupted); and the per-pair view of pair_log.jsonl (w_qual against w_perf over the run, the
pairs that moved most). Updates arrive by server-sent events; nothing is fetched from the
network. With --export, writes the same page with the runs' data inline to one HTML file that
opens anywhere, offline.

  --port P          port to listen on (default 6006; 0: any free port)
  --host H          address to bind (default 127.0.0.1, this machine only)
  --allow-remote    needed for a --host other than loopback: anyone who can reach it sees the runs
  --export FILE     write a self-contained HTML file instead of serving
  --eval PATH       evaluation results: a JSON file of what \`omni-dpo eval --json\` printed (win
                    rate, math, pairwise), or a directory of them; repeat for several. One is shown
                    as a table; several (checkpoints, rounds; in the order given, a directory's
                    files by name) as a table with a column each and a line per figure. With
                    --eval, RUN_DIR may be left out.
`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        port: { type: "string" },
        host: { type: "string" },
        "allow-remote": { type: "boolean" },
        export: { type: "string" },
        eval: { type: "string", multiple: true },
      },
    });
    const evals = values.eval ?? [];
    if (!positionals.length && !evals.length)
      throw new UsageError("dashboard: give at least one RUN_DIR (a training run's output_dir) or --eval FILE");
    if (values.export) {
      const { dashboardHtml, readRuns } = await import("../../report/dashboard-page.js");
      const { writeFileAtomic } = await import("../../util/files.js");
      const { readEvalResults } = await import("../../report/eval-results.js");
      const updates = readRuns(positionals);
      const results = readEvalResults(evals);
      writeFileAtomic(values.export, dashboardHtml({ live: false, updates, evals: results }));
      for (const u of updates) for (const p of u.problems) console.error(`${u.name}: ${p}`);
      for (const r of results) if (r.problem) console.error(r.problem);
      const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;
      console.log(
        `wrote ${values.export} (${plural(updates.length, "run")}${results.length ? `, ${plural(results.length, "evaluation")}` : ""})`,
      );
      return 0;
    }
    const { isLoopback, startDashboard } = await import("../../report/dashboard-server.js");
    const host = values.host ?? "127.0.0.1";
    if (!isLoopback(host)) {
      if (!values["allow-remote"])
        throw new UsageError(
          `dashboard: --host ${host} would serve the runs beyond this machine; add --allow-remote to do so`,
        );
      console.error(
        `omni-dpo dashboard: warning: listening on ${host}: anyone who can reach this address can read these runs' metrics (no authentication)`,
      );
    }
    const port = positiveInt(values.port, "--port", 6006, true);
    if (port > 65535) throw new UsageError(`dashboard: --port must be at most 65535, got ${port}`);
    const dash = await startDashboard(positionals, { host, port, evals }).catch((e: Error) => {
      throw new Error(`dashboard: cannot listen on ${host}:${port}: ${e.message}`);
    });
    console.log(`dashboard: ${dash.url} (Ctrl-C to stop)`);
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
        void dash.close().then(resolve);
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    });
    return 0;
  },
};
