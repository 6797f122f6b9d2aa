"""Issue 14's targets for `sepconv profile` on this machine, measured in one run:

1. the ceilings at 1 and 2 threads (`sepconv profile --machine-only --remeasure --json -`): each
   memory level's bandwidth at least the next one's;
2. the DRAM figure within 25% of likwid-bench's triad at the same thread count over a working set
   beyond 4x the L3 (Debian's `likwid`, installed here with apt-get when missing and run as root);
3. MobileNetV2 at batch 1 and 8, 1 and 2 threads: no layer above its ceiling (a flag is a miss);
4. the ONNX Runtime path (`--layers-on onnxruntime`, one thread): its per-layer rows (layers,
   functional and unmapped nodes) add up to within 20% of the whole-model time of the same run,
   for MobileNetV2 and MobileNetV3-Large.

    python benchmarks/profile_targets.py > benchmarks/results/profile/targets.txt

Nothing else should run meanwhile (the load average is printed with every step).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SEPCONV = [sys.executable, "-m", "sepconv"]
ORDER = ("L1", "L2", "L3", "DRAM")


def load() -> str:
    return "load {:.2f}".format(os.getloadavg()[0])


def sepconv_json(*argv: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "doc.json"
        done = subprocess.run([*SEPCONV, *argv, "--json", str(out)], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"sepconv {' '.join(argv)} failed: {done.stderr.strip()}")
        return json.loads(out.read_text())


def likwid_triad(threads: int, nbytes: int) -> float | None:
    """likwid-bench's triad (a = b + c*d, 3 loads and 1 store of doubles counted) in GB/s."""
    if shutil.which("likwid-bench") is None and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "likwid"], capture_output=True)
    if shutil.which("likwid-bench") is None:
        print("  likwid-bench is not available (apt-get install likwid)")
        return None
    for test in ("triad_avx512", "triad_avx", "triad"):
        done = subprocess.run(["likwid-bench", "-t", test, "-w", f"S0:{nbytes // 2**20}MB:{threads}"],
                              capture_output=True, text=True)
        found = re.search(r"MByte/s:\s+([\d.]+)", done.stdout)
        if done.returncode == 0 and found:
            return float(found.group(1)) / 1e3
    print(f"  likwid-bench failed: {done.stderr.strip()[-300:]}")
    return None


def main() -> int:
    misses = 0
    print(f"python {sys.version.split()[0]}; {load()}")
    machines = {}
    for threads in (1, 2):
        doc = sepconv_json("profile", "--machine-only", "--remeasure", "--threads", str(threads))
        m = doc["machine"]
        machines[threads] = m
        levels = {lv["name"]: lv for lv in m["levels"]}
        print(f"\n[1] ceilings, {threads} thread(s) ({load()}): " + ", ".join(
            f"{n} {levels[n]['bandwidth_gb_per_s']} GB/s up to {levels[n]['capacity_bytes']}" for n in ORDER)
            + "; " + ", ".join(f"{p['precision']} {p['gflops_per_s']} ({p['engine']})" for p in m["peaks"]))
        bws = [levels[n]["bandwidth_gb_per_s"] for n in ORDER if levels[n]["bandwidth_gb_per_s"] is not None]
        ordered = all(a >= b for a, b in zip(bws, bws[1:]))
        misses += not ordered
        print(f"    each level >= the next: {'yes' if ordered else 'NO (miss)'}")
        l3 = levels["L3"]["capacity_bytes"] or 32 * 2**20
        size = max(4 * l3, 2**30)
        triad = likwid_triad(threads, size)
        if triad is not None:
            dram = levels["DRAM"]["bandwidth_gb_per_s"]
            ratio = dram / triad
            ok = abs(ratio - 1) <= 0.25
            misses += not ok
            print(f"[2] likwid-bench triad over {size / 2**20:.0f} MiB, {threads} thread(s): {triad:.1f} GB/s; sepconv's "
                  f"DRAM {dram} GB/s = {ratio:.2f}x ({'within' if ok else 'OUTSIDE'} 25%) ({load()})")
    for threads in (1, 2):
        for batch in (1, 8):
            doc = sepconv_json("profile", "mobilenet_v2", "--input", f"{batch}x3x224x224", "--batch", str(batch),
                               "--threads", str(threads))
            flagged = [row["name"] for row in doc["layers"] if row.get("above_ceiling")]
            levels = {}
            for row in doc["layers"]:
                levels[row["memory_level"]] = levels.get(row["memory_level"], 0) + 1
            misses += len(flagged)
            top = max(doc["layers"], key=lambda row: row["roofline_fraction"] or 0)
            print(f"[3] mobilenet_v2 batch {batch}, {threads} thread(s): {len(doc['layers'])} rows, by level {levels}, "
                  f"{len(flagged)} above their ceiling{': ' + ', '.join(flagged[:8]) if flagged else ''}; highest "
                  f"{top['name']} at {top['roofline_fraction']:.0%} of its ceiling ({load()})")
    for model in ("mobilenet_v2", "mobilenet_v3_large"):
        doc = sepconv_json("profile", model, "--layers-on", "onnxruntime", "--threads", "1")
        t = doc["timing"]
        ratio = t["accounted_time_ms"] / t["model_time_ms"]
        ok = abs(ratio - 1) <= 0.20
        misses += not ok
        kinds = ", ".join(f"{k['kind']} {k['macs_share']:.1%} MACs / {k['time_share']:.1%} time"
                          for k in doc["by_kind"] if k["time_ms"])
        print(f"[4] {model} on onnxruntime {t['engine_version']}: rows {t['accounted_time_ms']:.2f} ms against the "
              f"model's {t['model_time_ms']:.2f} ms = {ratio:.0%} ({'within' if ok else 'OUTSIDE'} 20%) ({load()})\n"
              f"    by kind: {kinds}")
    print(f"\nmisses: {misses}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
