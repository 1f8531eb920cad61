// Mixed precision scopes: torch.autocast. Inside one, LibTorch's dispatcher runs the ops its
// autocast policy names (linear, matmul, bmm, conv...) in the lower-precision dtype, casting
// their float32 inputs (weights included) on the way in; other ops run in whatever dtype their
// inputs have. Parameters are untouched: they stay float32 master weights.
//
// The state is LibTorch's and thread-local; the addon runs every op on the JavaScript main
// thread, so a scope sets it around `fn` and restores what it found (nesting works).
import { native } from "./native.js";
import { dtypeCode, dtypeName, type DType, type Device } from "./dtype.js";

export interface AutocastOptions {
  /** The device whose ops autocast ("cpu" or "cuda"; "cuda:N" means cuda); default cpu. */
  device?: Device;
  /** false runs `fn` with autocast off (a float32 region inside an autocast one); default true. */
  enabled?: boolean;
}

type AutocastDevice = "cpu" | "cuda";

function deviceType(device: Device): AutocastDevice {
  if (device === "cpu") return "cpu";
  if (device === "cuda" || device.startsWith("cuda:")) return "cuda";
  throw new Error(`autocast: unknown device '${device}' (expected cpu, cuda or cuda:N)`);
}

/** Lower-precision dtypes autocast accepts per device (LibTorch's CPU autocast is bfloat16 only). */
const SUPPORTED: Record<AutocastDevice, readonly DType[]> = { cpu: ["bfloat16"], cuda: ["bfloat16", "float16"] };

/**
 * Runs `fn` with autocast to `dtype` on `options.device` (torch.autocast(device_type, dtype)),
 * restoring the previous state after, also when `fn` throws. `fn` must be synchronous: the state
 * is restored when it returns, before any awaited work would run.
 */
export function autocast<T>(dtype: DType, fn: () => T, options: AutocastOptions = {}): T {
  const device = deviceType(options.device ?? "cpu");
  if (!SUPPORTED[device].includes(dtype)) {
    throw new Error(`autocast: ${device} autocast supports ${SUPPORTED[device].join(" and ")}, got ${dtype}`);
  }
  const [wasEnabled, wasDtype] = native.autocastEnter(device, options.enabled ?? true, dtypeCode(dtype));
  try {
    return fn();
  } finally {
    native.autocastExit(device, wasEnabled, wasDtype);
  }
}

/** Whether autocast is on for `device`, and to which dtype (torch.is_autocast_enabled, get_autocast_dtype). */
export function autocastState(device: Device = "cpu"): { enabled: boolean; dtype: DType } {
  const [enabled, code] = native.autocastState(deviceType(device));
  return { enabled, dtype: dtypeName(code) };
}
