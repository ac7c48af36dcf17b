#!/usr/bin/env python3
"""Tests of tools/warploss-devices (Python 3 standard library only).

Usage: test_devices.py PATH-TO-warploss-devices

Runs the tool with a temporary WARPLOSS_CACHE_DIR on whichever OpenCL
implementation the ICD loader offers (POCL_DEVICES=pthread unless already
set), found from the tool's own --json listing: PoCL's pthread device, or
Mesa rusticl's llvmpipe (OCL_ICD_VENDORS=FOLDER-WITH-rusticl.icd
RUSTICL_ENABLE=llvmpipe), each with what the library chooses for it. Devices
but neither of these fails. Exit 0 pass, 1 fail, 77 skipped (no OpenCL device
here at all; CI treats a skip as a failure).
"""
import json
import os
import re
import shutil
import sys
import tempfile

import lsan_tracer

SKIP = 77
TOOL = None
BASE_ENV = None
KERNEL_SOURCES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cl")
failures = []

# The implementations the suite runs on, and what the library chooses for their device (README.md, Platforms):
# llvmpipe gets the GPU's launch shape (its loops stop after 65,535 iterations) and, lacking
# cl_khr_int64_base_atomics, the 32-bit scatter.
IMPLEMENTATIONS = (
    {"name": "PoCL", "platform": "Portable Computing Language", "device": "pthread", "scan": "row",
     "int64_atomics": True, "scatter": "atomic64", "scatter_reason": "the device has cl_khr_int64_base_atomics"},
    {"name": "rusticl", "platform": "rusticl", "device": "llvmpipe", "scan": "group",
     "int64_atomics": False, "scatter": "atomic32", "scatter_reason": "the device lacks cl_khr_int64_base_atomics"},
)


def known_devices(doc):
    """[(implementation, device entry of --json)] for the devices of IMPLEMENTATIONS in the listing."""
    found = []
    for d in doc.get("devices", []):
        for impl in IMPLEMENTATIONS:
            if d.get("platform") == impl["platform"] and impl["device"] in d.get("name", ""):
                found.append((impl, d))
    return found


def run(*args, env=None, unset=()):
    """Run the tool; returns (exit status, stdout, stderr)."""
    e = dict(BASE_ENV)
    for name in unset:
        e.pop(name, None)
    if env:
        e.update(env)
    return lsan_tracer.run([TOOL] + list(args), env=e, timeout=240)


def check(cond, what, detail=""):
    if cond:
        print("ok   " + what)
    else:
        print("FAIL " + what + (": " + detail if detail else ""))
        failures.append(what)


HEADER = re.compile(r"^([* ]) (\d+:\d+) (.+)$")
FIELD = re.compile(r"^    ([a-zA-Z0-9 -]+):\s+(.*)$")


def parse_text(out):
    """The text listing as {"devices": [{index, marked, name, fields}], "default": line}."""
    devices, default = [], None
    for line in out.splitlines():
        m = HEADER.match(line)
        if m:
            devices.append({"marked": m.group(1) == "*", "index": m.group(2), "name": m.group(3), "fields": {}})
            continue
        m = FIELD.match(line)
        if m and devices:
            devices[-1]["fields"][m.group(1)] = m.group(2)
            continue
        if line.startswith("default: "):
            default = line
    return {"devices": devices, "default": default}


def test_listing(known):
    rc, out, err = run()
    check(rc == 0, "listing exits 0", "rc %d, stderr %r" % (rc, err))
    text = parse_text(out)
    for impl, dev in known:
        check(("platform %d: %s (" % (dev["platform_index"], impl["platform"])) in out,
              "listing names the %s platform" % impl["name"])
        block = [d for d in text["devices"] if d["index"] == dev["index"]]
        check(len(block) == 1 and impl["device"] in block[0]["name"],
              "listing names %s's %s device" % (impl["name"], impl["device"]), repr([d["name"] for d in text["devices"]]))
        if block:
            fields = block[0]["fields"]
            check(fields.get("int64 atomics") == ("yes" if impl["int64_atomics"] else "no"),
                  "%s: int64 atomics %s" % (impl["name"], fields.get("int64 atomics")))
            want = "%s (%s)" % (impl["scatter"], impl["scatter_reason"])
            check(fields.get("model scatter") == want, "%s: model scatter %s" % (impl["name"], want),
                  repr(fields.get("model scatter")))
            check(("scan: %s," % impl["scan"]) in fields.get("kernels use", ""),
                  "%s: kernels use the %s scan" % (impl["name"], impl["scan"]), repr(fields.get("kernels use")))
    check(sum(d["marked"] for d in text["devices"]) == 1, "exactly one device is marked as the default")
    marked = [d for d in text["devices"] if d["marked"]]
    if marked:
        check("default" in marked[0]["fields"], "the marked device's block gives the reason")
    for d in text["devices"]:
        for field in ("platform", "vendor", "type", "OpenCL", "OpenCL C", "driver", "compute units", "clock",
                      "global memory", "local memory", "largest allocation", "largest work-group", "fp64",
                      "int64 atomics", "model scatter", "sub-groups", "kernels use"):
            check(field in d["fields"], "device %s lists %s" % (d["index"], field))
    return text


def test_json(text, known):
    rc, out, err = run("--json")
    check(rc == 0, "--json exits 0", "rc %d, stderr %r" % (rc, err))
    try:
        doc = json.loads(out)
    except ValueError as e:
        check(False, "--json parses", str(e))
        return None
    check(True, "--json parses")
    devices = doc.get("devices", [])
    check([d["name"] for d in devices] == [d["name"] for d in text["devices"]],
          "--json has the same devices as the text listing")
    check([d["index"] for d in devices] == [d["index"] for d in text["devices"]],
          "--json has the same P:D indices as the text listing")
    check([d["default"] for d in devices] == [d["marked"] for d in text["devices"]],
          "--json marks the same default device as the text listing")
    default = doc.get("default")
    check(isinstance(default, dict), "--json has a default device")
    if isinstance(default, dict):
        want = "default: %s %s (%s)" % (default["index"], default["name"], default["reason"])
        check(text["default"] == want, "--json default and reason match the text listing",
              "%r vs %r" % (text["default"], want))
    for d, t in zip(devices, text["devices"]):
        check(d["type"] == t["fields"].get("type"), "device %s: same type in both" % d["index"])
        check(str(d["compute_units"]) == t["fields"].get("compute units"),
              "device %s: same compute units in both" % d["index"])
        check(d["opencl_c_version"] == t["fields"].get("OpenCL C"), "device %s: same OpenCL C version" % d["index"])
        for key in ("platform", "vendor", "opencl_version", "driver_version", "clock_mhz", "global_mem_bytes",
                    "local_mem_bytes", "max_alloc_bytes", "max_work_group_size", "fp64", "int64_atomics",
                    "model_scatter", "model_scatter_reason", "subgroups", "kernels"):
            check(key in d, "device %s: JSON field %s" % (d["index"], key))
        kernels = d.get("kernels", {})
        check(kernels.get("scan_variant") in ("row", "group"), "device %s: scan variant" % d["index"])
        check(kernels.get("vector_width", 0) > 0, "device %s: vector width" % d["index"])
        check(d.get("model_scatter") in ("atomic64", "atomic32"), "device %s: model scatter" % d["index"])
        check(d.get("model_scatter") == ("atomic64" if d.get("int64_atomics") else "atomic32"),
              "device %s: the scatter follows int64_atomics" % d["index"])
    for impl, dev in known:
        check(dev["kernels"]["scan_variant"] == impl["scan"],
              "%s's %s device gets the %s scan" % (impl["name"], impl["device"], impl["scan"]))
        check(dev["int64_atomics"] == impl["int64_atomics"],
              "%s's %s device: int64_atomics %s" % (impl["name"], impl["device"], impl["int64_atomics"]))
        check(dev["model_scatter"] == impl["scatter"] and dev["model_scatter_reason"] == impl["scatter_reason"],
              "%s's %s device: scatter %s (%s)" % (impl["name"], impl["device"], impl["scatter"],
                                                   impl["scatter_reason"]),
              "%r (%r)" % (dev.get("model_scatter"), dev.get("model_scatter_reason")))
    # WARPLOSS_SCATTER=atomic32 forces the 32-bit scatter anywhere and says so.
    rc, out, err = run("--json", env={"WARPLOSS_SCATTER": "atomic32"})
    forced = json.loads(out).get("devices", []) if rc == 0 else []
    for d in forced:
        want = "WARPLOSS_SCATTER=atomic32" if d["int64_atomics"] else "the device lacks cl_khr_int64_base_atomics"
        check(d["model_scatter"] == "atomic32" and d["model_scatter_reason"] == want,
              "WARPLOSS_SCATTER=atomic32: device %s gets atomic32 (%s)" % (d["index"], want),
              "%r (%r)" % (d.get("model_scatter"), d.get("model_scatter_reason")))
    return doc


def test_select(impl, dev):
    for spec in ("cpu", dev["index"], impl["device"], impl["device"].upper()):
        rc, out, err = run("--select", spec)
        check(rc == 0, "--select %s exits 0" % spec, "rc %d, stderr %r" % (rc, err))
        first = out.splitlines()[0] if out else ""
        # "cpu" and a part of the name pick the best match, which may be another device with that name part.
        if spec == dev["index"]:
            check(first.startswith(dev["index"] + " " + dev["name"]), "--select %s names that device" % spec, first)
        else:
            check(re.match(r"^\d+:\d+ ", first) is not None, "--select %s names a device" % spec, first)
        check(("reason: device \"%s\"" % spec) in out, "--select %s gives the reason" % spec, out)
    rc, out, err = run("--select", dev["index"], "--json")
    try:
        sel = json.loads(out)
        check(rc == 0 and sel["default"]["index"] == dev["index"], "--select --json names the device")
    except (ValueError, KeyError, TypeError) as e:
        check(False, "--select --json parses", str(e))
    rc, out, err = run("--select", "no-such-device-xyz")
    check(rc == 1, "--select with a spec that matches nothing exits 1", "rc %d" % rc)
    check("no-such-device-xyz" in err and dev["name"] in err,
          "and the message names the spec and lists the devices", err)
    rc, out, err = run("--select", "9:9")
    check(rc == 1, "--select 9:9 exits 1", "rc %d" % rc)


def test_environment(doc):
    devices = doc["devices"]
    others = [d for d in devices if not d["default"]]
    target = others[-1] if others else devices[0]
    rc, out, err = run("--json", env={"WARPLOSS_DEVICE": target["index"]})
    sel = json.loads(out) if rc == 0 else {}
    marked = [d["index"] for d in sel.get("devices", []) if d["default"]]
    check(marked == [target["index"]], "WARPLOSS_DEVICE=%s marks that device" % target["index"], repr(marked))
    reason = (sel.get("default") or {}).get("reason", "")
    check(reason.startswith("WARPLOSS_DEVICE=%s" % target["index"]), "and the reason names WARPLOSS_DEVICE",
          reason)
    check(reason != doc["default"]["reason"], "and the reason differs from the default's")
    rc, out, err = run(env={"WARPLOSS_DEVICE": target["index"]})
    check(("WARPLOSS_DEVICE=%s" % target["index"]) in (parse_text(out)["default"] or ""),
          "the text listing's default line names WARPLOSS_DEVICE")
    rc, out, err = run(env={"WARPLOSS_DEVICE": "no-such-device-xyz"})
    check(rc == 1 and "WARPLOSS_DEVICE" in err, "a WARPLOSS_DEVICE that matches nothing exits 1 and says so",
          "rc %d, %r" % (rc, err))


def check_blocks(out):
    """--check's text as {"P:D": the device's block}."""
    blocks, index = {}, None
    for line in out.splitlines():
        m = re.match(r"^(\d+:\d+) ", line)
        if m:
            index = m.group(1)
            blocks[index] = ""
        elif index and line.startswith("  "):
            blocks[index] += line + "\n"
    return blocks


MODEL_PASS = re.compile(r"^  model: +6 Adagrad steps agree with the C reference \(30 users, 40 items, dim 8; "
                        r"per-row and sampled candidates\), max abs diff [0-9.e+-]+( \(bitwise\))?, [0-9.]+ s$", re.M)


def test_check(known):
    rc, out, err = run("--check")
    check(rc == 0, "--check exits 0", "rc %d\n%s%s" % (rc, out, err))
    check("PASS" in out and "FAIL" not in out, "--check prints PASS and no FAIL", out)
    check(re.search(r"build cold: +[0-9.]+ s\n", out) is not None, "--check prints the cold build time")
    check(re.search(r"build cached: +[0-9.]+ s\n", out) is not None, "--check loads the program from the cache")
    check(re.search(r"[0-9.e+]+ rows/s, [0-9.]+ GB/s", out) is not None, "--check prints rows/s and GB/s")
    blocks = check_blocks(out)
    for impl, dev in known:
        block = blocks.get(dev["index"], "")
        want = "  scatter:      %s (%s)\n" % (impl["scatter"], impl["scatter_reason"])
        check(want in block, "--check on %s names the scatter %s and why" % (impl["name"], impl["scatter"]), block)
        check(MODEL_PASS.search(block) is not None, "--check on %s trains the model as the reference does"
              % impl["name"], block)
        check(("scan %s," % impl["scan"]) in block, "--check on %s runs the %s scan" % (impl["name"], impl["scan"]))
    rc, out, err = run("--check", "no-such-device-xyz")
    check(rc == 1, "--check with a spec that matches nothing exits 1", "rc %d" % rc)


def test_check_json(impl, dev):
    rc, out, err = run("--check", dev["index"], "--json")
    check(rc == 0, "--check %s --json exits 0" % dev["index"], "rc %d\n%s%s" % (rc, out, err))
    try:
        doc = json.loads(out)
        entry = doc["devices"][0]
    except (ValueError, KeyError, IndexError) as e:
        check(False, "--check --json parses", str(e))
        return
    check(doc.get("checked") == 1 and doc.get("passed") == 1 and doc.get("spec") == dev["index"],
          "--check --json counts one device checked and passed")
    check(entry.get("index") == dev["index"] and entry.get("name") == dev["name"] and entry.get("status") == "PASS",
          "--check --json: the device and PASS", repr(entry))
    loss, model = entry.get("loss", {}), entry.get("model", {})
    check(loss.get("status") == "PASS" and loss.get("cases") == 9 and (loss.get("rows_per_s") or 0) > 0,
          "--check --json: the loss passed its 9 cases and was timed", repr(loss))
    check(entry.get("kernels", {}).get("scan_variant") == impl["scan"], "--check --json: the %s scan" % impl["scan"])
    check(model.get("status") == "PASS" and model.get("steps") == 6, "--check --json: the model passed 6 steps",
          repr(model))
    check(model.get("scatter") == impl["scatter"] and model.get("scatter_reason") == impl["scatter_reason"],
          "--check --json on %s: scatter %s and why" % (impl["name"], impl["scatter"]), repr(model))
    diff = model.get("max_abs_diff")
    check(isinstance(diff, (int, float)) and 0 <= diff <= 1e-5 and isinstance(model.get("bitwise"), bool),
          "--check --json: the model's max_abs_diff and bitwise", repr(model))


def test_check_model_fails(impl, dev):
    """A kernel folder whose model source does not compile: the loss passes, the model fails, exit 1."""
    broken = tempfile.mkdtemp(prefix="warploss-broken-model-")
    try:
        for name in os.listdir(KERNEL_SOURCES):
            if name.endswith(".cl"):
                shutil.copy(os.path.join(KERNEL_SOURCES, name), broken)
        with open(os.path.join(broken, "model_update.cl"), "a") as f:
            f.write("\nthis is not OpenCL C;\n")
        env = {"WARPLOSS_KERNEL_DIR": broken}
        rc, out, err = run("--check", dev["index"], env=env)
        check(rc == 1, "--check with a model that does not build exits 1", "rc %d\n%s" % (rc, out))
        check(re.search(r"^  model: +FAIL after 0 of 6 steps$", out, re.M) is not None, "and says the model failed",
              out)
        check(re.search(r"^  FAIL: loss: PASS, model: FAIL \(wl_model_create: .*model_update\.cl", out, re.M)
              is not None, "and that the loss passed and the model did not build, naming the file", out)
        rc, out, err = run("--check", dev["index"], "--json", env=env)
        try:
            entry = json.loads(out)["devices"][0]
        except (ValueError, KeyError, IndexError) as e:
            check(False, "--check --json with a broken model parses", str(e))
            return
        model = entry.get("model", {})
        check(rc == 1 and entry.get("status") == "FAIL" and entry.get("loss", {}).get("status") == "PASS",
              "--check --json: the device FAILs with its loss PASS", repr(entry))
        check(model.get("status") == "FAIL" and "model_update.cl" in model.get("error", "")
              and model.get("scatter") == impl["scatter"] and model.get("max_abs_diff") is None,
              "--check --json: the model FAILs with the build log", repr(model))
    finally:
        shutil.rmtree(broken, ignore_errors=True)


def test_no_platform():
    empty = tempfile.mkdtemp(prefix="warploss-no-icd-")
    try:
        for args in ((), ("--json",), ("--check",), ("--select", "cpu")):
            rc, out, err = run(*args, env={"OCL_ICD_VENDORS": empty})
            check(rc == 3, "no platform (OCL_ICD_VENDORS=empty folder) %s exits 3" % " ".join(args),
                  "rc %d, stderr %r" % (rc, err))
            check("no OpenCL platform" in err and "apt-get install pocl-opencl-icd" in err,
                  "and says how to install PoCL", err)
        rc, out, err = run("--json", env={"OCL_ICD_VENDORS": empty})
        try:
            check(json.loads(out)["devices"] == [], "--json without a platform is valid JSON with no devices")
        except (ValueError, KeyError) as e:
            check(False, "--json without a platform parses", str(e))
    finally:
        shutil.rmtree(empty, ignore_errors=True)


def test_usage():
    rc, out, err = run("--help")
    check(rc == 0 and "--check" in out and "Exit status" in out, "--help exits 0 and documents the options")
    for args in (("--bogus",), ("--select",), ("--json", "--bogus"), ("--select", "cpu", "--check")):
        rc, out, err = run(*args)
        check(rc == 2, "%s is a usage error (exit 2)" % " ".join(args), "rc %d" % rc)


def main():
    global TOOL, BASE_ENV
    if len(sys.argv) != 2:
        print("usage: test_devices.py PATH-TO-warploss-devices", file=sys.stderr)
        return 2
    TOOL = os.path.abspath(sys.argv[1])
    cache = tempfile.mkdtemp(prefix="warploss-devices-test-")
    BASE_ENV = dict(os.environ)
    BASE_ENV.setdefault("POCL_DEVICES", "pthread")
    BASE_ENV["WARPLOSS_CACHE_DIR"] = cache
    for name in ("WARPLOSS_DEVICE", "WARPLOSS_SCAN", "WARPLOSS_SCATTER", "WARPLOSS_KERNEL_DIR"):
        BASE_ENV.pop(name, None)
    try:
        rc, out, err = run("--json")
        if rc == 3:
            print("skipped: no OpenCL platform or device here\n" + err)
            return SKIP
        try:
            known = known_devices(json.loads(out))
        except ValueError as e:
            known = []
            check(False, "--json parses", str(e))
        names = ", ".join("%s's %s" % (impl["platform"], impl["device"]) for impl in IMPLEMENTATIONS)
        check(bool(known), "the devices include one of a known implementation (%s)" % names, out)
        for impl, dev in known:
            print("found %s: %s %s" % (impl["name"], dev["index"], dev["name"]))
        if not known:
            return 1
        text = test_listing(known)
        doc = test_json(text, known)
        if doc and doc.get("devices") and doc.get("default"):
            test_select(*known[0])
            test_environment(doc)
        test_check(known)
        for impl, dev in known:
            test_check_json(impl, dev)
        test_check_model_fails(*known[0])
        test_no_platform()
        test_usage()
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print("%d failure%s" % (len(failures), "" if len(failures) == 1 else "s"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
