#!/usr/bin/env python3
"""Tests of tools/warploss-devices (Python 3 standard library only).

Usage: test_devices.py PATH-TO-warploss-devices

Runs the tool under PoCL (POCL_DEVICES=pthread unless already set) with a
temporary WARPLOSS_CACHE_DIR. Exit 0 pass, 1 fail, 77 skipped (no OpenCL
device here at all; CI treats a skip as a failure).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
TOOL = None
BASE_ENV = None
failures = []


def run(*args, env=None, unset=()):
    """Run the tool; returns (exit status, stdout, stderr)."""
    e = dict(BASE_ENV)
    for name in unset:
        e.pop(name, None)
    if env:
        e.update(env)
    p = subprocess.run([TOOL] + list(args), env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=240)
    return p.returncode, p.stdout, p.stderr


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


def test_listing():
    rc, out, err = run()
    check(rc == 0, "listing exits 0", "rc %d, stderr %r" % (rc, err))
    check("Portable Computing Language" in out, "listing names the PoCL platform")
    text = parse_text(out)
    check(any("pthread" in d["name"] for d in text["devices"]), "listing names the PoCL pthread device",
          repr([d["name"] for d in text["devices"]]))
    check(sum(d["marked"] for d in text["devices"]) == 1, "exactly one device is marked as the default")
    marked = [d for d in text["devices"] if d["marked"]]
    if marked:
        check("default" in marked[0]["fields"], "the marked device's block gives the reason")
    for d in text["devices"]:
        for field in ("platform", "vendor", "type", "OpenCL", "OpenCL C", "driver", "compute units", "clock",
                      "global memory", "local memory", "largest allocation", "largest work-group", "fp64",
                      "int64 atomics", "sub-groups", "kernels use"):
            check(field in d["fields"], "device %s lists %s" % (d["index"], field))
    return text


def test_json(text):
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
                    "subgroups", "kernels"):
            check(key in d, "device %s: JSON field %s" % (d["index"], key))
        kernels = d.get("kernels", {})
        check(kernels.get("scan_variant") in ("row", "group"), "device %s: scan variant" % d["index"])
        check(kernels.get("vector_width", 0) > 0, "device %s: vector width" % d["index"])
    cpu = [d for d in devices if d["type"] == "CPU" and "pthread" in d["name"]]
    if cpu:
        check(cpu[0]["kernels"]["scan_variant"] == "row", "PoCL's CPU device gets the row scan")
    return doc


def test_select(doc):
    pocl = [d for d in doc["devices"] if "pthread" in d["name"]]
    if not pocl:
        check(False, "a PoCL pthread device to select")
        return
    dev = pocl[0]
    for spec in ("cpu", dev["index"], "pthread", "PTHREAD"):
        rc, out, err = run("--select", spec)
        check(rc == 0, "--select %s exits 0" % spec, "rc %d, stderr %r" % (rc, err))
        first = out.splitlines()[0] if out else ""
        # "cpu" and "pthread" pick the best match, which is PoCL's unless another CPU has more units.
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


def test_check():
    rc, out, err = run("--check")
    check(rc == 0, "--check exits 0", "rc %d\n%s%s" % (rc, out, err))
    check("PASS" in out and "FAIL" not in out, "--check prints PASS and no FAIL", out)
    check(re.search(r"build cold: +[0-9.]+ s\n", out) is not None, "--check prints the cold build time")
    check(re.search(r"build cached: +[0-9.]+ s\n", out) is not None, "--check loads the program from the cache")
    check(re.search(r"[0-9.e+]+ rows/s, [0-9.]+ GB/s", out) is not None, "--check prints rows/s and GB/s")
    rc, out, err = run("--check", "no-such-device-xyz")
    check(rc == 1, "--check with a spec that matches nothing exits 1", "rc %d" % rc)


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
    for args in (("--bogus",), ("--select",), ("--check", "--json"), ("--select", "cpu", "--check")):
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
    for name in ("WARPLOSS_DEVICE", "WARPLOSS_SCAN", "WARPLOSS_KERNEL_DIR"):
        BASE_ENV.pop(name, None)
    try:
        rc, out, err = run()
        if rc == 3:
            print("skipped: no OpenCL platform or device here\n" + err)
            return SKIP
        text = test_listing()
        doc = test_json(text)
        if doc and doc.get("devices") and doc.get("default"):
            test_select(doc)
            test_environment(doc)
        test_check()
        test_no_platform()
        test_usage()
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print("%d failure%s" % (len(failures), "" if len(failures) == 1 else "s"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
