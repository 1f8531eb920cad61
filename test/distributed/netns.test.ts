// Two machines on one: two network namespaces ("hosts") joined by a veth pair, 10.213.0.1/24
// and 10.213.0.2/24 (this project's own addresses; each namespace pair is private, so runs in
// parallel do not collide), one launcher in each with --nnodes 2 --node-rank K --master-addr
// 10.213.0.1: the rendezvous and Gloo's traffic cross the veth, not loopback, and the run ends
// with the weights of one process with the global batch (float64, 1e-10). Needs root and `ip`
// (iproute2) with network namespaces permitted; skips with the reason otherwise (fails instead
// under OMNI_DPO_REQUIRE_NETNS=1, for a machine known to allow them). The namespaces
// (and with them the veth pair) are deleted in `finally`.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../helpers/toy.js";
import { runCommand, type RankRun } from "./ranks.js";
import { CLI, maxWeightDifference, runTrain, weightsOf, writeRecipe, writeSetup } from "./train-ranks.js";
import { skipBecause } from "../helpers/requirements.js";

const HOSTS = [
  { ns: `omni-dpo-${process.pid}-0`, dev: `odv${process.pid % 100000}a`, address: "10.213.0.1" },
  { ns: `omni-dpo-${process.pid}-1`, dev: `odv${process.pid % 100000}b`, address: "10.213.0.2" },
];

function ip(args: string[]): { ok: boolean; output: string } {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  return { ok: r.status === 0, output: `${r.stderr ?? ""}${r.stdout ?? ""}${r.error ? r.error.message : ""}`.trim() };
}

/** Makes the two hosts; returns why it cannot (the test then skips), or null. */
function makeHosts(): string | null {
  if (process.getuid?.() !== 0) return "network namespaces need root";
  if (!ip(["-V"]).ok) return "no `ip` command (iproute2)";
  const [a, b] = HOSTS;
  const steps: string[][] = [
    ["netns", "add", a.ns],
    ["netns", "add", b.ns],
    ["link", "add", a.dev, "type", "veth", "peer", "name", b.dev],
    ["link", "set", a.dev, "netns", a.ns],
    ["link", "set", b.dev, "netns", b.ns],
    ...HOSTS.flatMap((h) => [
      ["-n", h.ns, "addr", "add", `${h.address}/24`, "dev", h.dev],
      ["-n", h.ns, "link", "set", h.dev, "up"],
      ["-n", h.ns, "link", "set", "lo", "up"],
    ]),
  ];
  for (const s of steps) {
    const r = ip(s);
    if (!r.ok) return `ip ${s.join(" ")} failed: ${r.output}`;
  }
  return null;
}

function removeHosts(): void {
  // Deleting a namespace deletes the veth end inside it, and with it the pair.
  for (const h of HOSTS) ip(["netns", "del", h.ns]);
  ip(["link", "del", HOSTS[0].dev]); // in case it never moved into its namespace
}

/** `omni-dpo train` inside host h's namespace, its Gloo on the veth (GLOO_SOCKET_IFNAME, as on a real machine with several interfaces). */
function trainOnHost(h: (typeof HOSTS)[number], recipe: string, args: string[], timeoutMs = 120000): Promise<RankRun> {
  return runCommand(
    "ip",
    ["netns", "exec", h.ns, process.execPath, CLI, "train", recipe, ...args],
    { GLOO_SOCKET_IFNAME: h.dev },
    timeoutMs,
  );
}

let root: string;
before(() => {
  root = tempDir("omni-dpo-netns-");
});
after(() => rmSync(root, { recursive: true, force: true }));

describe("two hosts (network namespaces joined by a veth pair)", () => {
  it("a launcher on each (--nnodes 2, --master-addr 10.213.0.1) trains as one process with the global batch (float64, 1e-10)", async (t) => {
    const setup = writeSetup(root, 21);
    const recipe = (name: string, batch: number) =>
      writeRecipe(join(root, `${name}.yaml`), {
        model_name_or_path: setup.model,
        dataset_mixer: { [setup.data]: 1.0 },
        test_split_size: 5,
        output_dir: join(root, name),
        torch_dtype: "float64",
        pref_loss: "dpo",
        beta: 0.5,
        learning_rate: 5e-3,
        num_train_epochs: 2,
        per_device_train_batch_size: batch,
        gradient_accumulation_steps: 2,
        max_grad_norm: 0.05,
        max_length: 48,
        max_prompt_length: 24,
        logging_steps: 1,
        save_steps: 3,
        seed: 11,
        ddp_timeout: 60,
        ddp_bucket_cap_mb: 0.016,
      });
    const cannot = makeHosts();
    try {
      const skip = skipBecause("netns", cannot);
      if (skip) {
        t.skip(skip);
        return;
      }
      const alone = await runTrain(recipe("alone", 4));
      assert.equal(alone.code, 0, alone.output);
      const nodes = recipe("hosts", 2);
      const flags = (rank: number) => [
        "--nnodes",
        "2",
        "--node-rank",
        String(rank),
        "--nproc-per-node",
        "1",
        "--master-addr",
        HOSTS[0].address,
        "--master-port",
        "29500",
      ];
      const [h0, h1] = await Promise.all([
        trainOnHost(HOSTS[0], nodes, flags(0)),
        trainOnHost(HOSTS[1], nodes, flags(1)),
      ]);
      assert.equal(h0.code, 0, h0.output);
      assert.equal(h1.code, 0, h1.output);
      assert.match(h0.stdout, /trained 4 steps/);
      assert.match(h0.output, /rank 0 of 2 joined \(gloo, 10\.213\.0\.1:29500\)/);
      // The gradients crossed the veth: the 4 steps' all-reduces alone are far more than 100 kB.
      const received = HOSTS.map(
        (h) =>
          JSON.parse(ip(["-n", h.ns, "-s", "-j", "link", "show", "dev", h.dev]).output)[0].stats64.rx.bytes as number,
      );
      assert.ok(
        received.every((b) => b > 100_000),
        `bytes received on the veth: ${received.join(", ")}`,
      );
      const diff = maxWeightDifference(weightsOf(join(root, "alone")), weightsOf(join(root, "hosts")));
      assert.ok(diff <= 1e-10, `weights differ by ${diff}`);
    } finally {
      removeHosts();
    }
  });
});
