#!/usr/bin/env python3
"""Checks the Kubernetes deployment (deploy/k8s) offline, without a cluster.

Run by scripts/deploy/check-k8s.sh (which installs the tools into .venv/k8s first), so
by `make check-k8s` and `make test`. Every step below must pass:

 1. render     every overlay, with and without each component, renders with
               `kubectl kustomize` (a copy of deploy/k8s whose overlay lists
               that set of components); the overlays as committed render to
               the same objects as the copy with their own components.
 2. schemas    every rendered object is valid, in strict mode (no unknown
               field), against Kubernetes' own schemas of the oldest and the
               newest version checked (kubernetes-validate); Gateway API
               objects against the Gateway API's own CRD schemas (from
               ../shared/data/gateway-api-crds, or GATEWAY_API_CRDS): strict
               too, with their list-type rules and their CEL rules.
 3. checkov    no failed check on any rendering; a skipped check is named,
               with its reason, in a checkov.io/skip annotation on the object
               (one exception: the renderings without the network-policies
               component are left without policies on purpose, so
               CKV2_K8S_6 "pods without a NetworkPolicy" is skipped there).
 4. consistency what the manifests say agrees with the code and compose.yaml:
               - every environment variable is one the binary reads (its
                 `--help` lists it; RUST_LOG and OTEL_* are read by the log
                 and trace libraries, so the binary must contain the name),
                 the gateway's are its template's or its image entrypoint's;
               - ports: LISTEN_ADDR, containerPort, the Service's port and
                 targetPort, the probes' port, compose's `expose`;
               - the gateway's upstream lines and the services' URLs name
                 existing Services and ports, with the failover parameters
                 of gateway/render.sh and gateway/Dockerfile;
               - images and settings agree with compose.yaml (PostgreSQL's
                 image, passwords and URLs in dev, log format, grace periods,
                 replicas), the init script with compose's (comments aside);
               - every workload: probes, a preStop pause and a grace period
                 longer than pause + SHUTDOWN_GRACE_SECS, requests and limits,
                 non-root with a fixed uid, no privilege escalation, no
                 capability, seccomp RuntimeDefault, read-only root, the
                 recommended labels, no service links, images from `images:`;
               - production: 2 or more replicas of everything, spread over
                 nodes and zones;
               - the dev overlay alone (`kubectl apply -k
                 deploy/k8s/overlays/dev`, nothing before it): every Secret
                 a pod needs is in the rendering or made by the Job
                 dev-secrets, whose Role grants no more than it needs
                 (create Secrets; get and patch those it makes, by name),
                 whose API token only its kubectl container holds, and whose
                 pod reaches the API server and nothing else; production
                 has no such Job and no Secret;
 5. run        the dev overlay's Job script (dev-secrets, with this
               auth_service) writes Secrets valid for Kubernetes, and a
               second run keeps them as they are; the binaries start with
               the ConfigMaps' settings and those Secrets (on loopback,
               SQLite) and answer 200 on every probe path; nginx runs the
               gateway with the Kubernetes main configuration (as the
               container's user when this runs as root) and passes
               /auth/token, /client/ and /order/ to them.
 6. self-check broken copies of the manifests are fed to each step, which
               must report them: a check that cannot fail checks nothing.

Prints one line per check and ends with "check-k8s: N passed, M failed";
exits 1 when any failed.
"""

import argparse
import base64
import copy
import itertools
import json
import mmap
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import celpy
import jsonschema
import yaml
from kubernetes_validate import utils as kv

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ["dev", "production"]
COMPONENTS = ["network-policies", "gateway-api"]
# The oldest Kubernetes these manifests are for, and the newest that
# kubernetes-validate knows.
OLDEST_K8S = "1.33.0"
SERVICES = {"client-service": "client_service", "order-service": "order_service"}
# The token issuer and the sign-in: a service like the two, with its own
# database too.
AUTH = ("auth-service", "auth_service")
# The Secret of each binary's DATABASE_URL (the dev overlay makes them; in
# production they are the operator's).
DATABASE_SECRETS = {"client_service": "client-service-database", "order_service": "order-service-database",
                    "auth_service": "auth-service-database"}
BINARIES = {**SERVICES, AUTH[0]: AUTH[1]}
# The web console: no database, ONE replica (its sessions are in its
# memory), no autoscaler; its client secret a file of console-credentials.
CONSOLE = ("console", "console")
# Every binary whose --help and version the manifests are checked against.
ALL_BINARIES = {**BINARIES, CONSOLE[0]: CONSOLE[1]}
GATEWAY_API_GROUP = "gateway.networking.k8s.io"
# Variables that the nginx image's own entrypoint reads (docker-nginx's
# entrypoint scripts), beside the template's GATEWAY_* ones.
NGINX_ENTRYPOINT_VARS = {
    "NGINX_ENVSUBST_OUTPUT_DIR",
    "NGINX_ENVSUBST_TEMPLATE_DIR",
    "NGINX_ENVSUBST_TEMPLATE_SUFFIX",
    "NGINX_ENVSUBST_FILTER",
    "NGINX_ENTRYPOINT_QUIET_LOGS",
    # The gateway image's own entrypoint script, gateway/follow-upstreams.sh.
    "GATEWAY_FOLLOW_NAMES",
    "GATEWAY_FOLLOW_SECS",
}
# The postgres image's variables used here, beside compose's.
POSTGRES_IMAGE_VARS = {"PGDATA", "POSTGRES_PASSWORD", "POSTGRES_USER", "POSTGRES_DB"}


# --------------------------------------------------------------- report ---
class Report:
    def __init__(self, quiet=False):
        self.passed = 0
        self.failed = []
        self.quiet = quiet
        self.timings = []

    def step(self, title):
        self.end_step()
        self.current = (title.split(":")[0], time.monotonic())
        if not self.quiet:
            print(f"\n==> {title}", flush=True)

    def end_step(self):
        if getattr(self, "current", None):
            name, since = self.current
            self.timings.append(f"{name} {time.monotonic() - since:.0f} s")
            self.current = None

    def check(self, name, problems):
        """One check: passed when `problems` is empty."""
        if problems:
            self.failed.append(name)
            if not self.quiet:
                print(f"    FAILED: {name}")
                for p in problems:
                    print(f"        - {p}")
        else:
            self.passed += 1
            if not self.quiet:
                print(f"    ok: {name}")
        return not problems


def load_all(text):
    return [d for d in yaml.safe_load_all(text) if d]


def key(obj):
    return f"{obj['kind']}/{obj['metadata']['name']}"


def find(docs, kind, name=None):
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs, kind, name):
    found = find(docs, kind, name)
    return found[0] if found else None


def workloads(docs):
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job")]


# --------------------------------------------------------------- render ---
def kubectl_kustomize(kubectl, path):
    out = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip() or f"kubectl kustomize {path} failed")
    return out.stdout


def variants():
    for overlay in OVERLAYS:
        for n in range(len(COMPONENTS) + 1):
            for comps in itertools.combinations(COMPONENTS, n):
                yield overlay, comps


def variant_name(overlay, comps):
    return "+".join([overlay, *comps])


def render_all(kubectl, work, tree=K8S):
    """Renders every variant from a copy of `tree`; returns {name: (overlay,
    comps, docs, text)} and problems."""
    copy_root = work / "k8s"
    shutil.rmtree(copy_root, ignore_errors=True)
    shutil.copytree(tree, copy_root)
    rendered, problems = {}, []
    for overlay, comps in variants():
        kfile = copy_root / "overlays" / overlay / "kustomization.yaml"
        original = kfile.read_text()
        kust = yaml.safe_load(original)
        if comps:
            kust["components"] = [f"../../components/{c}" for c in comps]
        else:
            kust.pop("components", None)
        kfile.write_text(yaml.safe_dump(kust, sort_keys=False))
        name = variant_name(overlay, comps)
        try:
            text = kubectl_kustomize(kubectl, kfile.parent)
            rendered[name] = (overlay, comps, load_all(text), text)
        except RuntimeError as err:
            problems.append(f"{name}: {err}")
        kfile.write_text(original)
    return rendered, problems


def committed_components(overlay, tree=K8S):
    kust = yaml.safe_load((tree / "overlays" / overlay / "kustomization.yaml").read_text())
    names = []
    for path in kust.get("components") or []:
        names.append(Path(path).name)
    return tuple(c for c in COMPONENTS if c in names), [n for n in names if n not in COMPONENTS]


# -------------------------------------------------------------- schemas ---
_validated = {}


def k8s_schema_problems(docs, versions):
    """Problems of each object, each distinct object validated once (the
    renderings share most of theirs)."""
    problems = []
    for doc in docs:
        if doc.get("apiVersion", "").startswith(GATEWAY_API_GROUP + "/"):
            continue
        canonical = json.dumps(doc, sort_keys=True) + repr(versions)
        if canonical not in _validated:
            _validated[canonical] = k8s_object_problems(doc, versions)
        problems += _validated[canonical]
    return problems


def k8s_object_problems(doc, versions):
    problems = []
    for version in versions:
        try:
            kv.validate(doc, version, strict=True)
        except kv.ValidationError as err:
            path = ".".join(str(p) for p in err.path)
            problems.append(f"{key(doc)} (Kubernetes {err.version}): {path}: {err.message}")
        except kv.SchemaNotFoundError as err:
            problems.append(f"{key(doc)}: {err.message}")
    return problems


def strict_schema(node):
    """A CRD's openAPIV3Schema as a JSON Schema that refuses unknown fields,
    as the API server's strict field validation does (a structural schema
    prunes them silently otherwise)."""
    if isinstance(node, list):
        return [strict_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict_schema(v) for k, v in node.items()}
    if out.get("nullable") is True and "type" in out:
        out["type"] = [out["type"], "null"]
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def list_type_problems(schema, value, path):
    """x-kubernetes-list-type: set / map (with its keys): no two items alike."""
    problems = []
    if isinstance(value, dict) and isinstance(schema, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name in value:
                problems += list_type_problems(sub, value[name], f"{path}.{name}")
    elif isinstance(value, list) and isinstance(schema, dict):
        kind = schema.get("x-kubernetes-list-type")
        if kind == "set":
            seen = [json.dumps(v, sort_keys=True) for v in value]
            if len(set(seen)) != len(seen):
                problems.append(f"{path}: items must be unique (list-type set)")
        elif kind == "map":
            keys = schema.get("x-kubernetes-list-map-keys") or []
            seen = [tuple(json.dumps(v.get(k)) for k in keys) for v in value if isinstance(v, dict)]
            if len(set(seen)) != len(seen):
                problems.append(f"{path}: items must be unique by {keys} (list-type map)")
        for i, item in enumerate(value):
            problems += list_type_problems(schema.get("items") or {}, item, f"{path}[{i}]")
    return problems


_cel_programs = {}


def cel_program(rule):
    """A compiled CEL rule; Kubernetes' string `split` added to the
    standard library that cel-python has."""
    if rule not in _cel_programs:
        env = celpy.Environment()
        functions = {
            "split": lambda s, sep: celpy.celtypes.ListType([celpy.celtypes.StringType(x) for x in str(s).split(str(sep))]),
        }
        _cel_programs[rule] = env.program(env.compile(rule), functions=functions)
    return _cel_programs[rule]


def with_defaults(schema, value):
    """The object as the API server validates it: absent fields that the
    schema gives a default have it."""
    if isinstance(value, dict) and isinstance(schema, dict):
        out = dict(value)
        for name, sub in (schema.get("properties") or {}).items():
            if name not in out and isinstance(sub, dict) and "default" in sub:
                out[name] = copy.deepcopy(sub["default"])
            if name in out:
                out[name] = with_defaults(sub, out[name])
        if isinstance(schema.get("additionalProperties"), dict):
            for name in out:
                if name not in (schema.get("properties") or {}):
                    out[name] = with_defaults(schema["additionalProperties"], out[name])
        return out
    if isinstance(value, list) and isinstance(schema, dict):
        return [with_defaults(schema.get("items") or {}, v) for v in value]
    return value


def cel_problems(schema, value, path=""):
    """Every x-kubernetes-validations rule (CEL) of the schema, evaluated
    where the object has a value, as the API server does."""
    problems = []
    if not isinstance(schema, dict):
        return problems
    for rule in schema.get("x-kubernetes-validations") or []:
        try:
            ok = cel_program(rule["rule"]).evaluate({"self": celpy.json_to_cel(value)})
        except Exception as err:  # a CEL error fails the validation, as in the API server
            problems.append(f"{path or '.'}: rule {rule['rule']!r} could not be evaluated: {str(err)[:200]}")
            continue
        if ok is not True and not (isinstance(ok, celpy.celtypes.BoolType) and bool(ok)):
            problems.append(f"{path or '.'}: {rule.get('message') or rule['rule']}")
    if isinstance(value, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name in value:
                problems += cel_problems(sub, value[name], f"{path}.{name}")
        if isinstance(schema.get("additionalProperties"), dict):
            for name, v in value.items():
                if name not in (schema.get("properties") or {}):
                    problems += cel_problems(schema["additionalProperties"], v, f"{path}.{name}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            problems += cel_problems(schema.get("items") or {}, item, f"{path}[{i}]")
    return problems


def load_crds(crd_dir):
    """{(group/version, kind): schema} from every CRD file in crd_dir."""
    crds = {}
    for path in sorted(Path(crd_dir).glob("*.yaml")):
        for doc in load_all(path.read_text()):
            if doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                if version.get("served") and "schema" in version:
                    api = f"{spec['group']}/{version['name']}"
                    crds[(api, spec["names"]["kind"])] = strict_schema(version["schema"]["openAPIV3Schema"])
    return crds


def crd_problems(docs, crds):
    problems = []
    for doc in docs:
        if not doc.get("apiVersion", "").startswith(GATEWAY_API_GROUP + "/"):
            continue
        schema = crds.get((doc["apiVersion"], doc["kind"]))
        if schema is None:
            problems.append(f"{key(doc)}: no CRD schema for {doc['apiVersion']} {doc['kind']}")
            continue
        # metadata is the API server's business (the CRD schema says only
        # "object"): checked here for what matters, a DNS-1123 name.
        body = {k: v for k, v in doc.items() if k != "metadata"}
        name = doc.get("metadata", {}).get("name", "")
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", name) or len(name) > 253:
            problems.append(f"{key(doc)}: metadata.name is not a DNS-1123 subdomain")
        validator = jsonschema.Draft7Validator({k: v for k, v in schema.items() if k != "properties"} | {
            "properties": {k: v for k, v in (schema.get("properties") or {}).items() if k != "metadata"}
        })
        for err in sorted(validator.iter_errors(body), key=lambda e: list(e.path)):
            path = ".".join(str(p) for p in err.path)
            problems.append(f"{key(doc)}: {path}: {err.message}")
        problems += [f"{key(doc)}: {p}" for p in list_type_problems(schema, body, "")]
        problems += [f"{key(doc)}: {p}" for p in cel_problems(schema, with_defaults(schema, body))]
    return problems


# -------------------------------------------------------------- checkov ---
def run_checkov(checkov, files, skip_checks=()):
    """checkov on the given files; returns (problems, passed, skipped)."""
    if not files:
        return [], 0, 0
    with tempfile.TemporaryDirectory() as out_dir:
        cmd = [checkov, "--framework", "kubernetes", "--skip-download", "--compact",
               "--output", "json", "--output-file-path", out_dir]
        for f in files:
            cmd += ["-f", str(f)]
        if skip_checks:
            cmd += ["--skip-check", ",".join(skip_checks)]
        # --skip-download: nothing is fetched (guidelines, policies), so it
        # runs offline.
        proc = subprocess.run(cmd, capture_output=True, text=True)
        result_files = list(Path(out_dir).glob("*.json"))
        if not result_files:
            return [f"checkov did not run (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}"], 0, 0
        data = json.loads(result_files[0].read_text())
    reports = data if isinstance(data, list) else [data]
    problems, passed, skipped = [], 0, 0
    for report in reports:
        results = report.get("results", {})
        summary = report.get("summary", {})
        passed += summary.get("passed", 0)
        skipped += summary.get("skipped", 0)
        if summary.get("parsing_errors"):
            problems.append(f"checkov could not parse {summary['parsing_errors']} file(s)")
        for failed in results.get("failed_checks", []):
            problems.append(f"{failed['check_id']} {failed['check_name']}: {failed['resource']} "
                            f"({Path(failed['file_path']).name})")
        for s in results.get("skipped_checks", []):
            reason = (s.get("check_result") or {}).get("suppress_comment") or ""
            if not reason.strip() or reason.strip() == "No comment provided":
                problems.append(f"{s['check_id']} skipped without a reason: {s['resource']}")
    if proc.returncode not in (0, 1):
        problems.append(f"checkov exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    if proc.returncode == 1 and not problems:
        problems.append("checkov exited 1 but reported no failed check")
    return problems, passed, skipped


# ---------------------------------------------------------- consistency ---
class Facts:
    """What the manifests are checked against: the binaries, the gateway's
    files, compose.yaml and the compose init script."""

    def __init__(self, bin_dir):
        self.bin_dir = Path(bin_dir)
        self.help = {}
        self.help_vars = {}
        for binary in ALL_BINARIES.values():
            out = subprocess.run([str(self.bin_dir / binary), "--help"], capture_output=True, text=True,
                                 env={"PATH": os.environ.get("PATH", "")})
            if out.returncode != 0:
                raise RuntimeError(f"{binary} --help failed: {out.stderr}")
            self.help[binary] = out.stdout
            self.help_vars[binary] = set(re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b", out.stdout))
        self.template = (ROOT / "gateway/templates/gateway.conf.template").read_text()
        self.template_vars = set(re.findall(r"\$\{(GATEWAY_[A-Z_]+)\}", self.template))
        self.gateway_dockerfile = (ROOT / "gateway/Dockerfile").read_text()
        self.dockerfile_env = dockerfile_env(self.gateway_dockerfile)
        self.render_params = re.search(r'^server_params="([^"]*)"', (ROOT / "gateway/render.sh").read_text(),
                                       re.M).group(1)
        self.follow_params = re.search(r'^params="([^"]*)"', (ROOT / "gateway/follow-upstreams.sh").read_text(),
                                       re.M).group(1)
        self.compose = expand_defaults(yaml.safe_load((ROOT / "compose.yaml").read_text()))
        self.compose_init = (ROOT / "deploy/postgres/init-databases.sh").read_text()
        self.versions = {}
        for binary in ALL_BINARIES.values():
            toml = (ROOT / "services" / binary / "Cargo.toml").read_text()
            self.versions[binary] = re.search(r'^version = "([^"]+)"', toml, re.M).group(1)

    def binary_mentions(self, binary, name):
        with open(self.bin_dir / binary, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return m.find(name.encode()) >= 0


def dockerfile_env(text):
    """NAME -> default value of every ENV in a Dockerfile (NAME=value forms)."""
    joined = re.sub(r"\\\n", " ", text)
    env = {}
    for line in joined.splitlines():
        if line.strip().startswith("ENV "):
            for m in re.finditer(r'([A-Z_][A-Z0-9_]*)=("([^"]*)"|(\S*))', line[4:]):
                env[m.group(1)] = m.group(3) if m.group(3) is not None else m.group(4)
    return env


def expand_defaults(node):
    """compose's ${VAR:-default} replaced by the default: what a fresh clone runs."""
    if isinstance(node, dict):
        return {k: expand_defaults(v) for k, v in node.items()}
    if isinstance(node, list):
        return [expand_defaults(v) for v in node]
    if isinstance(node, str):
        return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", node)
    return node


def script_code(script):
    """A shell script without its comments and blank lines."""
    return [line.rstrip() for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def init_sql(script):
    m = re.search(r"<<-'EOSQL'\n(.*?)\nEOSQL", script, re.S)
    if not m:
        return None
    return [line.strip() for line in m.group(1).splitlines() if line.strip()]


def data_of(docs, kind, name):
    """A ConfigMap's data, or a Secret's decoded data (by generated or plain name)."""
    for d in docs:
        if d["kind"] != kind:
            continue
        n = d["metadata"]["name"]
        if n == name or re.fullmatch(re.escape(name) + r"-[a-z0-9]{10}", n):
            if kind == "Secret":
                return {k: base64.b64decode(v).decode() for k, v in (d.get("data") or {}).items()}
            return dict(d.get("data") or {})
    return None


def container_env(docs, container):
    """name -> value (None when it comes from a Secret not in the rendering)."""
    env = {}
    for src in container.get("envFrom") or []:
        if "configMapRef" in src:
            data = data_of(docs, "ConfigMap", src["configMapRef"]["name"])
            env.update(data or {})
        if "secretRef" in src:
            data = data_of(docs, "Secret", src["secretRef"]["name"])
            env.update(data or {})
    for e in container.get("env") or []:
        if "value" in e:
            env[e["name"]] = e["value"]
        elif "secretKeyRef" in e.get("valueFrom", {}):
            ref = e["valueFrom"]["secretKeyRef"]
            data = data_of(docs, "Secret", ref["name"])
            env[e["name"]] = None if data is None else data.get(ref["key"])
        else:
            env[e["name"]] = None
    return env


def pod_labels(workload):
    return workload["spec"]["template"]["metadata"].get("labels") or {}


def matches(selector, labels):
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        value = labels.get(expr["key"])
        if expr["operator"] == "In" and value not in expr["values"]:
            return False
        if expr["operator"] == "NotIn" and value in expr["values"]:
            return False
        if expr["operator"] == "Exists" and value is None:
            return False
    return True


def port_number(container, port):
    if isinstance(port, int):
        return port
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return p["containerPort"]
    return None


def parse_quantity_cpu(value):
    s = str(value)
    return float(s[:-1]) / 1000 if s.endswith("m") else float(s)


def consistency_problems(facts, overlay, comps, docs):
    problems = []
    p = problems.append
    compose_services = facts.compose["services"]
    services_by_name = {d["metadata"]["name"]: d for d in find(docs, "Service")}

    # ---- every object: the recommended labels
    for d in docs:
        labels = d["metadata"].get("labels") or {}
        for label in ("app.kubernetes.io/part-of", "app.kubernetes.io/managed-by"):
            if label not in labels:
                p(f"{key(d)}: no label {label}")
        if d["kind"] not in ("Namespace", "NetworkPolicy"):
            for label in ("app.kubernetes.io/name", "app.kubernetes.io/component"):
                if label not in labels:
                    p(f"{key(d)}: no label {label}")

    # ---- every workload
    for w in workloads(docs):
        name = w["metadata"]["name"]
        spec = w["spec"]["template"]["spec"]
        labels = pod_labels(w)
        for label in ("app.kubernetes.io/name", "app.kubernetes.io/component", "app.kubernetes.io/part-of"):
            if label not in labels:
                p(f"{key(w)}: the pods have no label {label}")
        if spec.get("enableServiceLinks") is not False:
            p(f"{key(w)}: enableServiceLinks is not false (Kubernetes would add *_PORT variables)")
        if spec.get("automountServiceAccountToken") is not False:
            p(f"{key(w)}: automountServiceAccountToken is not false")
        pod_sc = spec.get("securityContext") or {}
        if pod_sc.get("runAsNonRoot") is not True or not pod_sc.get("runAsUser"):
            p(f"{key(w)}: the pod does not run as a fixed non-root user")
        if (pod_sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            p(f"{key(w)}: the pod's seccompProfile is not RuntimeDefault")
        for c in spec["containers"] + (spec.get("initContainers") or []):
            where = f"{key(w)} container {c['name']}"
            sc = c.get("securityContext") or {}
            if sc.get("runAsNonRoot") is not True or not (sc.get("runAsUser") or pod_sc.get("runAsUser")):
                p(f"{where}: runAsNonRoot with a fixed uid is not set")
            if sc.get("allowPrivilegeEscalation") is not False:
                p(f"{where}: allowPrivilegeEscalation is not false")
            if (sc.get("capabilities") or {}).get("drop") != ["ALL"] or (sc.get("capabilities") or {}).get("add"):
                p(f"{where}: capabilities are not drop: [ALL]")
            if (sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
                p(f"{where}: seccompProfile is not RuntimeDefault")
            if sc.get("readOnlyRootFilesystem") is not True:
                p(f"{where}: the root file system is not read-only")
            res = c.get("resources") or {}
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in (res.get(part) or {}):
                        p(f"{where}: no {part}.{r}")
            # (A Job runs once, for seconds: nothing to probe.)
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                if probe not in c and w["kind"] != "Job":
                    p(f"{where}: no {probe}")
            image = c.get("image", "")
            if "/" not in image and ":" not in image:
                p(f"{where}: image {image!r} was not set by the kustomization's images:")

    # ---- the two services and auth_service
    for svc_name, binary in BINARIES.items():
        w = one(docs, "Deployment", svc_name)
        if w is None:
            p(f"no Deployment {svc_name}")
            continue
        spec = w["spec"]["template"]["spec"]
        c = next((c for c in spec["containers"] if c["name"] == svc_name), None)
        if c is None:
            p(f"{key(w)}: no container {svc_name}")
            continue
        env = container_env(docs, c)
        compose = compose_services[binary]
        # variables: each one the binary reads
        for var in env:
            if var in facts.help_vars[binary]:
                continue
            if (var == "RUST_LOG" or var.startswith("OTEL_")) and facts.binary_mentions(binary, var):
                continue
            p(f"{key(w)}: sets {var}, which {binary} does not read (not in its --help)")
        # ports
        listen = env.get("LISTEN_ADDR", "")
        listen_port = int(listen.rsplit(":", 1)[1]) if ":" in listen else None
        container_ports = [pp["containerPort"] for pp in c.get("ports") or []]
        http_port = port_number(c, "http")
        if listen_port is None or container_ports != [listen_port] or http_port != listen_port:
            p(f"{key(w)}: LISTEN_ADDR {listen!r} and the container's ports {container_ports} disagree")
        if [int(x) for x in compose.get("expose", [])] != [listen_port]:
            p(f"{key(w)}: listens on {listen_port}, compose's {binary} exposes {compose.get('expose')}")
        for k in ("LISTEN_ADDR", "LOG_FORMAT"):
            if env.get(k) != compose["environment"].get(k):
                p(f"{key(w)}: {k}={env.get(k)!r}, compose.yaml says {compose['environment'].get(k)!r}")
        # probes: their port, and their paths (answered: see the run step)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = (c.get(probe) or {}).get("httpGet")
            if not get or port_number(c, get.get("port")) != listen_port:
                p(f"{key(w)}: {probe} is not an HTTP GET on the service's port")
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
            got = ((c.get(probe) or {}).get("httpGet") or {}).get("path")
            if got != path:
                p(f"{key(w)}: {probe} asks {got!r}, the service's is {path}")
        # shutdown: preStop pause + SHUTDOWN_GRACE_SECS < terminationGracePeriodSeconds
        pause = (((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}).get("seconds")
        grace = int(env.get("SHUTDOWN_GRACE_SECS") or 10)
        period = spec.get("terminationGracePeriodSeconds", 30)
        if not pause:
            p(f"{key(w)}: no preStop pause")
        elif period < pause + grace + 1:
            p(f"{key(w)}: terminationGracePeriodSeconds {period} leaves no time after the {pause} s pause"
              f" and SHUTDOWN_GRACE_SECS={grace}")
        compose_stop = int(str(compose.get("stop_grace_period", "10s")).rstrip("s"))
        if compose_stop <= grace:
            p(f"compose's {binary}: stop_grace_period {compose_stop}s is not above SHUTDOWN_GRACE_SECS={grace}")
        # its Service
        s = services_by_name.get(svc_name)
        if s is None or not all(pod_labels(w).get(k) == v for k, v in s["spec"]["selector"].items()):
            p(f"Service {svc_name}: missing, or it selects no pod of {key(w)}")
        else:
            sports = s["spec"]["ports"]
            if [(sp["port"], port_number(c, sp.get("targetPort", sp["port"]))) for sp in sports] != [
                    (listen_port, listen_port)]:
                p(f"Service {svc_name}: ports {sports} do not lead to the container's {listen_port}")
        # the other service: a Service name and port
        for var, target in (("ORDER_SERVICE_URL", "order-service"), ("CLIENT_SERVICE_URL", "client-service")):
            if var not in env:
                continue
            m = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", env[var] or "")
            target_svc = services_by_name.get(target)
            if not m or m.group(1) != target or target_svc is None or int(m.group(2)) not in [
                    sp["port"] for sp in target_svc["spec"]["ports"]]:
                p(f"{key(w)}: {var}={env[var]!r} is not the Service {target} and its port")
            compose_url = compose["environment"].get(var, "")
            if (env[var] or "").replace("-", "_") != compose_url:
                p(f"{key(w)}: {var}={env[var]!r}, compose.yaml says {compose_url!r} (with _ for -)")
        # tokens: the keys and the token endpoint are auth-service's; the
        # service's own secret comes from a Secret
        for var, path in (("AUTH_JWKS_URL", "/auth/jwks.json"), ("AUTH_TOKEN_URL", "/auth/token")):
            if binary == AUTH[1]:
                continue
            auth_svc = services_by_name.get(AUTH[0])
            m = re.fullmatch(r"http://([a-z0-9-]+):(\d+)(/.*)", env.get(var) or "")
            if not m or m.group(1) != AUTH[0] or m.group(3) != path or auth_svc is None or int(m.group(2)) not in [
                    sp["port"] for sp in auth_svc["spec"]["ports"]]:
                p(f"{key(w)}: {var}={env.get(var)!r} is not the Service {AUTH[0]}, its port and {path}")
        if binary != AUTH[1]:
            refs = [e for e in c.get("env") or [] if e["name"] == "SERVICE_CLIENT_SECRET"]
            if not refs or "secretKeyRef" not in refs[0].get("valueFrom", {}):
                p(f"{key(w)}: SERVICE_CLIENT_SECRET does not come from a Secret")
        else:
            mounts = {m["name"]: m for m in c.get("volumeMounts") or []}
            keys = [v for v in spec.get("volumes") or [] if "secret" in v and v["name"] in mounts]
            for var in ("AUTH_SIGNING_KEY_FILE", "AUTH_CLIENTS_FILE"):
                if not any((env.get(var) or "").startswith(mounts[v["name"]]["mountPath"].rstrip("/") + "/")
                           for v in keys):
                    p(f"{key(w)}: {var}={env.get(var)!r} is not in a mounted Secret")
        # DATABASE_URL from a Secret named in the manifest
        refs = [e for e in c.get("env") or [] if e["name"] == "DATABASE_URL"]
        if not refs or "secretKeyRef" not in refs[0].get("valueFrom", {}):
            p(f"{key(w)}: DATABASE_URL does not come from a Secret")
        elif secret_base(refs[0]["valueFrom"]["secretKeyRef"].get("name", "")) != DATABASE_SECRETS[binary]:
            p(f"{key(w)}: DATABASE_URL comes from the Secret {refs[0]['valueFrom']['secretKeyRef'].get('name')}, "
              f"not {DATABASE_SECRETS[binary]}")
        elif overlay == "dev":
            url = env.get("DATABASE_URL")
            if url != compose["environment"]["DATABASE_URL"]:
                p(f"{key(w)}: the dev DATABASE_URL {url!r} is not compose's {compose['environment']['DATABASE_URL']!r}")
        # its image: from images:, tagged with the service's version
        image = c["image"]
        version = facts.versions[binary]
        if not image.endswith(":" + version) and "@sha256:" not in image:
            p(f"{key(w)}: image {image} is not tagged with {binary}'s version {version}")
        # autoscaler and disruption budget
        hpa = one(docs, "HorizontalPodAutoscaler", svc_name)
        if hpa is None or hpa["spec"]["scaleTargetRef"].get("name") != svc_name:
            p(f"no HorizontalPodAutoscaler for {key(w)}")
        if "replicas" in w["spec"]:
            p(f"{key(w)}: sets replicas, which its HorizontalPodAutoscaler owns")
        pdb = [b for b in find(docs, "PodDisruptionBudget") if matches(b["spec"]["selector"], pod_labels(w))]
        if not pdb:
            p(f"no PodDisruptionBudget for {key(w)}")

    # ---- the console
    problems += console_problems(facts, docs, services_by_name)

    # ---- the gateway
    gw = one(docs, "Deployment", "gateway")
    if gw is None:
        p("no Deployment gateway")
    else:
        spec = gw["spec"]["template"]["spec"]
        c = next((c for c in spec["containers"] if c["name"] == "gateway"), None)
        env = container_env(docs, c)
        for var in env:
            if var not in facts.template_vars and var not in NGINX_ENTRYPOINT_VARS:
                p(f"{key(gw)}: sets {var}, which neither the gateway template nor the nginx image reads")
        values = {v: env.get(v, facts.dockerfile_env.get(v)) for v in facts.template_vars}
        for var, value in values.items():
            if not value:
                p(f"{key(gw)}: the template's {var} has no value (neither the manifest nor gateway/Dockerfile)")
        for var, svc_name in (("GATEWAY_CLIENT_SERVERS", "client-service"), ("GATEWAY_ORDER_SERVERS", "order-service"),
                              ("GATEWAY_AUTH_SERVERS", AUTH[0]), ("GATEWAY_CONSOLE_SERVERS", CONSOLE[0])):
            lines = re.findall(r"server\s+([^\s;]+)\s*([^;]*);", values.get(var) or "")
            if not lines:
                p(f"{key(gw)}: {var} has no server line")
            for addr, params in lines:
                host, _, port = addr.rpartition(":")
                target = services_by_name.get(host)
                if host != svc_name or target is None or int(port) not in [sp["port"] for sp in target["spec"]["ports"]]:
                    p(f"{key(gw)}: {var} names {addr}, not the Service {svc_name} and its port")
                if params.strip() != facts.render_params:
                    p(f"{key(gw)}: {var} has parameters {params.strip()!r}, gateway/render.sh {facts.render_params!r}")
        # Services' ClusterIPs: nothing for the image's follow-upstreams.sh to follow.
        if env.get("GATEWAY_FOLLOW_NAMES") != "":
            p(f"{key(gw)}: GATEWAY_FOLLOW_NAMES is not set empty (the image would follow compose's names)")
        # The image's own lines (compose, Swarm) are written by follow-upstreams.sh.
        if facts.follow_params != facts.render_params:
            p(f"gateway/follow-upstreams.sh's server parameters {facts.follow_params!r} are not"
              f" gateway/render.sh's {facts.render_params!r}")
        listen = values.get("GATEWAY_LISTEN", "")
        if port_number(c, "http") != int(listen.rsplit(":", 1)[-1] or 0):
            p(f"{key(gw)}: port http is not GATEWAY_LISTEN {listen}")
        status = values.get("GATEWAY_STATUS_LISTEN", "")
        if port_number(c, "status") != int(status.rsplit(":", 1)[-1] or 0):
            p(f"{key(gw)}: port status is not GATEWAY_STATUS_LISTEN {status}")
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = (c.get(probe) or {}).get("httpGet") or {}
            if get.get("path") != "/healthz" or port_number(c, get.get("port")) != port_number(c, "http"):
                p(f"{key(gw)}: {probe} is not GET /healthz on the public port")
        if "location = /healthz" not in facts.template:
            p("gateway template: no `location = /healthz` for the probes")
        s = services_by_name.get("gateway")
        if s is None or [sp["port"] for sp in s["spec"]["ports"]] != [8080]:
            p("Service gateway: must publish 8080 only (as compose publishes the gateway's 8080 only)")
        compose_ports = [str(x).rsplit(":", 1)[-1] for x in compose_services["gateway"].get("ports", [])]
        if compose_ports != [str(port_number(c, "http"))]:
            p(f"{key(gw)}: public port {port_number(c, 'http')}, compose publishes {compose_ports}")
        # the main nginx.conf: mounted, used, one worker per CPU of the limit
        conf_vol = next((v for v in spec.get("volumes") or [] if "configMap" in v
                         and data_of(docs, "ConfigMap", v["configMap"]["name"]) is not None
                         and "nginx.conf" in data_of(docs, "ConfigMap", v["configMap"]["name"])), None)
        if conf_vol is None:
            p(f"{key(gw)}: no ConfigMap volume with nginx.conf")
        else:
            conf = data_of(docs, "ConfigMap", conf_vol["configMap"]["name"])["nginx.conf"]
            mount = next((m for m in c.get("volumeMounts") or [] if m["name"] == conf_vol["name"]), None)
            args = c.get("args") or []
            if mount is None or args[:1] != ["nginx"] or "-c" not in args or \
                    args[args.index("-c") + 1] != f"{mount['mountPath']}/nginx.conf":
                p(f"{key(gw)}: args {args} do not run nginx (through the image's entrypoint) with the mounted nginx.conf")
            workers = re.search(r"^worker_processes\s+(\d+);", conf, re.M)
            cpu = parse_quantity_cpu(((c.get("resources") or {}).get("limits") or {}).get("cpu", 0))
            if not workers or int(workers.group(1)) != max(1, int(cpu + 0.999)):
                p(f"{key(gw)}: worker_processes {workers and workers.group(1)} is not one per CPU of the limit {cpu}")
            out_dir = env.get("NGINX_ENVSUBST_OUTPUT_DIR", "/etc/nginx/conf.d")
            if f"include {out_dir}/*.conf;" not in conf:
                p(f"{key(gw)}: nginx.conf does not include {out_dir}/*.conf, where the template is rendered")
            writable = [m["mountPath"] for m in c.get("volumeMounts") or []
                        if any(v["name"] == m["name"] and "emptyDir" in v for v in spec.get("volumes") or [])]
            if out_dir not in writable:
                p(f"{key(gw)}: {out_dir} (NGINX_ENVSUBST_OUTPUT_DIR) is not a writable emptyDir")
            for path in re.findall(r"^\s*(?:pid|\w+_temp_path)\s+(\S+);", conf, re.M):
                if not any(path.startswith(w.rstrip("/") + "/") for w in writable):
                    p(f"{key(gw)}: nginx writes {path}, which is on the read-only root file system")
        # the image's conf.d, which the Kubernetes nginx.conf does not include
        confd = re.findall(r"/etc/nginx/conf\.d/(\S+)", facts.gateway_dockerfile)
        if [x for x in confd if x not in ("default.conf", "00-server-tokens.conf")]:
            p(f"gateway/Dockerfile writes {confd} into conf.d: base/gateway-nginx.conf must include them")

    # ---- the Secrets: the dev overlay makes or holds every one a pod needs
    problems += secrets_problems(overlay, docs)

    # ---- the dev overlay's PostgreSQL, as compose's
    if overlay == "dev":
        pg = one(docs, "StatefulSet", "postgres")
        cpg = compose_services["postgres"]
        if pg is None:
            p("dev: no StatefulSet postgres")
        else:
            spec = pg["spec"]["template"]["spec"]
            c = spec["containers"][0]
            if c["image"] != cpg["image"]:
                p(f"{key(pg)}: image {c['image']}, compose.yaml runs {cpg['image']}")
            env = container_env(docs, c)
            for var in env:
                if var not in cpg["environment"] and var not in POSTGRES_IMAGE_VARS:
                    p(f"{key(pg)}: sets {var}, which neither compose's postgres nor the image reads")
            for var, value in cpg["environment"].items():
                if env.get(var) != value:
                    p(f"{key(pg)}: {var} is {env.get(var)!r}, compose's default is {value!r}")
            if not pg["spec"].get("volumeClaimTemplates"):
                p(f"{key(pg)}: no PersistentVolumeClaim")
            init = data_of(docs, "ConfigMap", "postgres-init")
            dev_script = next(iter(init.values())) if init else ""
            if not init_sql(dev_script) or script_code(dev_script) != script_code(facts.compose_init):
                p("dev: the init script (postgres-init) is not deploy/postgres/init-databases.sh's, "
                  "comments aside")
            vol = next((v for v in spec.get("volumes") or [] if (v.get("configMap") or {}).get("name", "").startswith("postgres-init")), None)
            mount = vol and next((m for m in c.get("volumeMounts") or [] if m["name"] == vol["name"]), None)
            if not vol or not mount or mount["mountPath"] != "/docker-entrypoint-initdb.d" or vol["configMap"].get("defaultMode") != 0o555:
                p(f"{key(pg)}: the init script is not mounted, executable, in /docker-entrypoint-initdb.d")
            s = services_by_name.get("postgres")
            if s is None or [sp["port"] for sp in s["spec"]["ports"]] != [5432]:
                p("dev: no Service postgres on 5432 (the host of compose's DATABASE_URLs)")

    # ---- production: replicas and spreading
    if overlay == "production":
        for w in find(docs, "Deployment"):
            name = w["metadata"]["name"]
            if name == CONSOLE[0]:
                # One pod, whatever the overlay: its sessions are in its memory.
                if one(docs, "HorizontalPodAutoscaler", name) is not None or w["spec"].get("replicas") != 1:
                    p(f"production: {key(w)} is not kept at exactly 1 replica (its sessions are in its memory)")
                continue
            hpa = one(docs, "HorizontalPodAutoscaler", name)
            if hpa is None or hpa["spec"].get("minReplicas", 1) < 2:
                p(f"production: {key(w)} is not kept at 2 or more replicas")
            keys = {t["topologyKey"] for t in w["spec"]["template"]["spec"].get("topologySpreadConstraints") or []
                    if matches(t.get("labelSelector") or {"matchLabels": {"-": "-"}}, pod_labels(w))}
            for k in ("kubernetes.io/hostname", "topology.kubernetes.io/zone"):
                if k not in keys:
                    p(f"production: {key(w)} is not spread over {k}")
        if find(docs, "StatefulSet") or any(one(docs, "Secret", n) for n in DATABASE_SECRETS.values()):
            p("production: holds a database or a database Secret (both are the operator's)")
        for d in find(docs, "Secret"):
            p(f"production: {key(d)} is in the repository")

    # ---- network policies: every pod that a policy allows to be reached exists
    if "network-policies" in comps:
        pols = find(docs, "NetworkPolicy")
        if not any(pp["spec"]["podSelector"] == {} and set(pp["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
                   and not pp["spec"].get("ingress") and not pp["spec"].get("egress") for pp in pols):
            p("network-policies: no default deny of all traffic")
        for w in workloads(docs):
            if not any(matches(pp["spec"]["podSelector"], pod_labels(w)) and pp["spec"]["podSelector"] != {} for pp in pols):
                p(f"network-policies: no policy for {key(w)}")
        # Every pod with a DATABASE_URL may reach 5432, and (dev) the
        # postgres pod accepts it there.
        pg_pods = [pod_labels(w) for w in find(docs, "StatefulSet", "postgres")]
        for w in workloads(docs):
            spec = w["spec"]["template"]["spec"]
            if not any(e["name"] == "DATABASE_URL" for c in spec["containers"] + (spec.get("initContainers") or [])
                       for e in c.get("env") or []):
                continue
            mine = [pp for pp in pols if matches(pp["spec"]["podSelector"], pod_labels(w))]
            if not any(x.get("port") == 5432 for pp in mine for e in pp["spec"].get("egress") or []
                       for x in e.get("ports") or []):
                p(f"network-policies: {key(w)} has a DATABASE_URL, and no policy lets it reach 5432")
            for labels in pg_pods:
                accepts = [pp for pp in pols if matches(pp["spec"]["podSelector"], labels)]
                if not any(x.get("port") == 5432 and any(matches(f.get("podSelector") or {"matchLabels": {"-": "-"}},
                                                                 pod_labels(w)) for f in e.get("from") or [])
                           for pp in accepts for e in pp["spec"].get("ingress") or [] for x in e.get("ports") or []):
                    p(f"network-policies: the postgres pod does not accept {key(w)} on 5432")
    # ---- Gateway API: the route leads to the gateway Service's port
    if "gateway-api" in comps:
        for route in find(docs, "HTTPRoute"):
            for rule in route["spec"].get("rules", []):
                for ref in rule.get("backendRefs", []):
                    target = services_by_name.get(ref["name"])
                    if target is None or ref.get("port") not in [sp["port"] for sp in target["spec"]["ports"]]:
                        p(f"{key(route)}: backendRef {ref['name']}:{ref.get('port')} is no Service port")
            for parent in route["spec"].get("parentRefs", []):
                if one(docs, "Gateway", parent["name"]) is None:
                    p(f"{key(route)}: parentRef {parent['name']} is no Gateway here")
    return problems


def console_problems(facts, docs, services_by_name):
    """The console's Deployment against its binary, compose's console and
    the Services it calls."""
    problems = []
    p = problems.append
    name, binary = CONSOLE
    w = one(docs, "Deployment", name)
    if w is None:
        return [f"no Deployment {name}"]
    spec = w["spec"]["template"]["spec"]
    c = next((c for c in spec["containers"] if c["name"] == name), None)
    if c is None:
        return [f"{key(w)}: no container {name}"]
    env = container_env(docs, c)
    compose = facts.compose["services"][binary]
    for var in env:
        if var not in facts.help_vars[binary] and not (var == "RUST_LOG" and facts.binary_mentions(binary, var)):
            p(f"{key(w)}: sets {var}, which {binary} does not read (not in its --help)")
    # One replica, no autoscaler: the sessions are in the pod's memory.
    if w["spec"].get("replicas") != 1 or one(docs, "HorizontalPodAutoscaler", name) is not None:
        p(f"{key(w)}: not exactly 1 replica without an autoscaler (its sessions are in its memory)")
    if (compose.get("deploy") or {}).get("replicas", 1) != 1:
        p(f"compose's {binary}: more than one replica")
    listen = env.get("LISTEN_ADDR", "")
    listen_port = int(listen.rsplit(":", 1)[1]) if ":" in listen else None
    if listen_port is None or [pp["containerPort"] for pp in c.get("ports") or []] != [listen_port] \
            or port_number(c, "http") != listen_port:
        p(f"{key(w)}: LISTEN_ADDR {listen!r} and the container's ports disagree")
    if [int(x) for x in compose.get("expose", [])] != [listen_port]:
        p(f"{key(w)}: listens on {listen_port}, compose's {binary} exposes {compose.get('expose')}")
    for k in ("LISTEN_ADDR", "LOG_FORMAT", "AUTH_ISSUER", "CONSOLE_PUBLIC_URL", "CONSOLE_CLIENT_ID",
              "CONSOLE_CLIENT_SECRET_FILE"):
        if env.get(k) != compose["environment"].get(k):
            p(f"{key(w)}: {k}={env.get(k)!r}, compose.yaml says {compose['environment'].get(k)!r}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        get = (c.get(probe) or {}).get("httpGet") or {}
        if get.get("path") != path or port_number(c, get.get("port")) != listen_port:
            p(f"{key(w)}: {probe} is not GET {path} on the console's port")
    pause = (((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}).get("seconds")
    grace = int(env.get("SHUTDOWN_GRACE_SECS") or 10)
    if not pause or spec.get("terminationGracePeriodSeconds", 30) < pause + grace + 1:
        p(f"{key(w)}: no preStop pause, or no time after it for SHUTDOWN_GRACE_SECS={grace}")
    s = services_by_name.get(name)
    if s is None or not all(pod_labels(w).get(k) == v for k, v in s["spec"]["selector"].items()) \
            or [(sp["port"], port_number(c, sp.get("targetPort", sp["port"]))) for sp in s["spec"]["ports"]] != [
                (listen_port, listen_port)]:
        p(f"Service {name}: missing, or it does not lead to the console's {listen_port}")
    # Its calls: the API and the issuer's back channel at the gateway's
    # Service (compose: the gateway's name, with _ for -).
    gateway = services_by_name.get("gateway")
    for var in ("CONSOLE_API_URL", "CONSOLE_AUTH_INTERNAL_URL"):
        m = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", env.get(var) or "")
        if not m or m.group(1) != "gateway" or gateway is None or int(m.group(2)) not in [
                sp["port"] for sp in gateway["spec"]["ports"]]:
            p(f"{key(w)}: {var}={env.get(var)!r} is not the Service gateway and its port")
        if (env.get(var) or "") != compose["environment"].get(var):
            p(f"{key(w)}: {var}={env.get(var)!r}, compose.yaml says {compose['environment'].get(var)!r}")
    # Its System page: service=URL of a Service and its port, each binary named.
    seen = set()
    for item in (env.get("CONSOLE_INSTANCES") or "").split(","):
        svc, _, url = item.partition("=")
        m = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", url)
        target = m and services_by_name.get(m.group(1))
        if not m or target is None or int(m.group(2)) not in [sp["port"] for sp in target["spec"]["ports"]] \
                or ALL_BINARIES.get(m.group(1)) != svc:
            p(f"{key(w)}: CONSOLE_INSTANCES names {item!r}, not service=http://<its Service>:<port>")
        seen.add(svc)
    compose_seen = {i.partition("=")[0] for i in (compose["environment"].get("CONSOLE_INSTANCES") or "").split(",")}
    if seen != set(ALL_BINARIES.values()) or compose_seen != seen:
        p(f"{key(w)}: CONSOLE_INSTANCES names {sorted(seen)}, compose's {sorted(compose_seen)};"
          f" both should name {sorted(ALL_BINARIES.values())}")
    # Its client secret: a file of a mounted Secret.
    mounts = {m["name"]: m for m in c.get("volumeMounts") or []}
    secret_vols = [v for v in spec.get("volumes") or [] if "secret" in v and v["name"] in mounts]
    if not any((env.get("CONSOLE_CLIENT_SECRET_FILE") or "").startswith(mounts[v["name"]]["mountPath"].rstrip("/") + "/")
               for v in secret_vols):
        p(f"{key(w)}: CONSOLE_CLIENT_SECRET_FILE={env.get('CONSOLE_CLIENT_SECRET_FILE')!r} is not in a mounted Secret")
    image = c["image"]
    if not image.endswith(":" + facts.versions[binary]) and "@sha256:" not in image:
        p(f"{key(w)}: image {image} is not tagged with {binary}'s version {facts.versions[binary]}")
    return problems


# -------------------------------------------------- secrets and the Job ---
DEV_JOB = "dev-secrets"
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"


def secret_base(name):
    """A Secret's name without the hash that a kustomize generator adds."""
    return re.sub(r"-[a-z0-9]{10}$", "", name)


def needed_secrets(docs):
    """{Secret name: where} of every Secret a pod of the rendering cannot
    start without (optional references left out)."""
    needed = {}
    for w in workloads(docs):
        spec = w["spec"]["template"]["spec"]
        for c in spec["containers"] + (spec.get("initContainers") or []):
            for e in c.get("env") or []:
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    needed.setdefault(ref["name"], f"{key(w)} {c['name']} {e['name']}")
            for src in c.get("envFrom") or []:
                ref = src.get("secretRef")
                if ref and not ref.get("optional"):
                    needed.setdefault(ref["name"], f"{key(w)} {c['name']} envFrom")
        for v in spec.get("volumes") or []:
            if "secret" in v and not v["secret"].get("optional"):
                needed.setdefault(v["secret"]["secretName"], f"{key(w)} volume {v['name']}")
    return needed


def job_script(docs, job):
    """The script the Job's first container runs (from its ConfigMap), or None."""
    spec = job["spec"]["template"]["spec"]
    for v in spec.get("volumes") or []:
        if "configMap" in v:
            data = data_of(docs, "ConfigMap", v["configMap"]["name"]) or {}
            for name, text in data.items():
                if name.endswith(".sh"):
                    return text
    return None


def job_made_secrets(docs, job):
    """The names of the Secrets the Job's script writes (its `secret NAME` lines)."""
    return set(re.findall(r"^\s*secret ([a-z0-9-]+) ", job_script(docs, job) or "", re.M))


def secrets_problems(overlay, docs):
    problems = []
    p = problems.append
    rendered = {d["metadata"]["name"] for d in find(docs, "Secret")}
    rendered |= {re.sub(r"-[a-z0-9]{10}$", "", n) for n in rendered}
    job = one(docs, "Job", DEV_JOB)
    for kind in ("ClusterRole", "ClusterRoleBinding"):
        for d in find(docs, kind):
            p(f"{key(d)}: no cluster-wide grant here")
    if overlay != "dev":
        if job is not None or find(docs, "Role") or find(docs, "RoleBinding"):
            p(f"{overlay}: a Job or a Role that makes Secrets (production's are the operator's)")
        return problems
    if job is None:
        p(f"dev: no Job {DEV_JOB}: `kubectl apply -k` alone would leave the pods without their keys")
        return problems
    made = job_made_secrets(docs, job)
    if not made:
        p(f"{key(job)}: no script that writes Secrets (a ConfigMap volume with a .sh)")
    for name, where in sorted(needed_secrets(docs).items()):
        if name not in rendered and name not in made:
            p(f"dev: the Secret {name} ({where}) is neither in the rendering nor made by {key(job)}")
    spec = job["spec"]["template"]["spec"]
    js = job["spec"]
    if spec.get("restartPolicy") != "Never" or not js.get("backoffLimit") or not js.get("activeDeadlineSeconds") \
            or not js.get("ttlSecondsAfterFinished"):
        p(f"{key(job)}: not restartPolicy Never with a backoffLimit, an activeDeadlineSeconds and a ttlSecondsAfterFinished")
    # its ServiceAccount, Role and RoleBinding: the least it needs
    sa = spec.get("serviceAccountName")
    if one(docs, "ServiceAccount", sa or "-") is None or sa == "default":
        p(f"{key(job)}: no ServiceAccount of its own")
    bindings = [b for b in find(docs, "RoleBinding") if any(s.get("name") == sa for s in b.get("subjects") or [])]
    if len(bindings) != 1 or len(bindings[0]["subjects"]) != 1 or bindings[0]["subjects"][0].get("kind") != "ServiceAccount":
        p(f"{key(job)}: its ServiceAccount {sa} is not bound by exactly one RoleBinding, to it alone")
    for b in bindings:
        if b["roleRef"].get("kind") != "Role":
            p(f"{key(b)}: binds a {b['roleRef'].get('kind')}, not a Role of the namespace")
        if b["subjects"][0].get("namespace") != job["metadata"].get("namespace"):
            p(f"{key(b)}: its subject's namespace is not the Job's")
        role = one(docs, "Role", b["roleRef"].get("name"))
        if role is None:
            p(f"{key(b)}: no Role {b['roleRef'].get('name')}")
            continue
        want = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
                {"apiGroups": [""], "resources": ["secrets"], "resourceNames": sorted(made), "verbs": ["get", "patch"]}]
        got = [dict(r, **({"resourceNames": sorted(r["resourceNames"])} if "resourceNames" in r else {}),
                    verbs=sorted(r.get("verbs") or [])) for r in role.get("rules") or []]
        if sorted(json.dumps(r, sort_keys=True) for r in got) != sorted(json.dumps(r, sort_keys=True) for r in want):
            p(f"{key(role)}: rules {role.get('rules')} are not the least `kubectl apply --server-side` of "
              f"{sorted(made)} needs: create secrets; get and patch those names")
    # the containers: one makes (no token), one applies (the token)
    inits = spec.get("initContainers") or []
    containers = spec["containers"]
    token_vols = {v["name"] for v in spec.get("volumes") or []
                  if any("serviceAccountToken" in src for src in (v.get("projected") or {}).get("sources") or [])}
    for v in spec.get("volumes") or []:
        for src in (v.get("projected") or {}).get("sources") or []:
            if "serviceAccountToken" in src and not 0 < src["serviceAccountToken"].get("expirationSeconds", 3600) <= 3600:
                p(f"{key(job)}: the API token of volume {v['name']} lives more than an hour")
    if spec.get("automountServiceAccountToken") is not False:
        p(f"{key(job)}: automountServiceAccountToken is not false (every container would hold the token)")
    for c in inits + containers:
        holds = [m for m in c.get("volumeMounts") or [] if m["name"] in token_vols]
        applies = "apply" in (c.get("args") or []) + (c.get("command") or [])
        if applies and [m["mountPath"] for m in holds] != [TOKEN_PATH]:
            p(f"{key(job)} container {c['name']}: runs kubectl apply without the API token at {TOKEN_PATH}")
        if not applies and holds:
            p(f"{key(job)} container {c['name']}: holds the API token but applies nothing")
    if len(inits) != 1 or len(containers) != 1:
        p(f"{key(job)}: not one container that makes the Secrets, then one that applies them")
        return problems
    make, apply = inits[0], containers[0]
    auth = one(docs, "Deployment", AUTH[0])
    if auth is not None and make.get("image") != auth["spec"]["template"]["spec"]["containers"][0].get("image"):
        p(f"{key(job)}: its make container runs {make.get('image')}, not auth-service's image (auth_service init)")
    env = {e["name"]: e.get("value") for e in make.get("env") or []}
    existing, out = env.get("SECRETS_EXISTING"), env.get("SECRETS_OUT")
    mounts = {m["name"]: m["mountPath"] for m in make.get("volumeMounts") or []}
    optional = {v["secret"]["secretName"]: v["name"] for v in spec.get("volumes") or []
                if "secret" in v and v["secret"].get("optional")}
    if set(optional) != made:
        p(f"{key(job)}: it mounts the existing Secrets {sorted(optional)}, its script writes {sorted(made)}")
    for name, vol in optional.items():
        if mounts.get(vol) != f"{existing}/{name}":
            p(f"{key(job)}: the existing Secret {name} is not mounted at SECRETS_EXISTING/{name}")
    args = apply.get("args") or []
    if args[:2] != ["apply", "--server-side"] or f"--filename={out}/secrets.yaml" not in args:
        p(f"{key(job)}: the apply container's args {args} are not `apply --server-side --filename={out}/secrets.yaml`")
    shared = {m["name"] for m in apply.get("volumeMounts") or [] if m["mountPath"] == out}
    if not shared or not any(mounts.get(n) == out for n in shared):
        p(f"{key(job)}: SECRETS_OUT {out} is not a volume of both containers")
    # auth_service's database (the development users), as auth_service has it
    db = next((e for e in make.get("env") or [] if e["name"] == "DATABASE_URL"), None)
    if db is None or secret_base(((db.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name", "")) \
            != DATABASE_SECRETS[AUTH[1]]:
        p(f"{key(job)}: its make container has no DATABASE_URL from the Secret {DATABASE_SECRETS[AUTH[1]]}")
    # its network: the API server (any address, its ports) and the postgres
    # pod only
    pols = [pp for pp in find(docs, "NetworkPolicy") if matches(pp["spec"]["podSelector"], pod_labels(job))
            and pp["spec"]["podSelector"] != {}]
    for pp in pols:
        rules = sorted(json.dumps([sorted((x.get("protocol"), x.get("port")) for x in e.get("ports") or []),
                                   e.get("to")], sort_keys=True) for e in pp["spec"].get("egress") or [])
        want = sorted(json.dumps(r, sort_keys=True) for r in (
            [[["TCP", 443], ["TCP", 6443]], None],
            [[["TCP", 5432]], [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "postgres"}}}]]))
        if pp["spec"].get("ingress") or rules != want \
                or set(pp["spec"].get("policyTypes") or []) != {"Ingress", "Egress"}:
            p(f"{key(pp)}: lets the Job's pod do more than reach the API server (TCP 443, 6443) "
              f"and the postgres pod (TCP 5432)")
    if not pols:
        p(f"{key(job)}: no NetworkPolicy of its own (API server and postgres only)")
    return problems


def job_secrets(facts, docs, work):
    """Runs the dev overlay's Job script as its first container would, with
    this auth_service on PATH: a first run, a second run that sees the first
    one's Secrets, and one without a credentials Secret. Returns (the
    Secrets of the first run, problems)."""
    problems = []
    job = one(docs, "Job", DEV_JOB)
    make = job["spec"]["template"]["spec"]["initContainers"][0]
    work.mkdir(parents=True, exist_ok=True)
    script = work / "make-secrets.sh"
    script.write_text(job_script(docs, job))
    env_of = {e["name"]: e.get("value") for e in make.get("env") or []}

    def run(name, existing):
        root = work / name
        (root / "out").mkdir(parents=True)
        for secret, data in existing.items():
            (root / "existing" / secret).mkdir(parents=True)
            for k, v in data.items():
                (root / "existing" / secret / k).write_bytes(v)
        (root / "existing").mkdir(exist_ok=True)
        # auth_service's database: a SQLite file of this run stands in for
        # the cluster's PostgreSQL (a new one each run, as after a new claim).
        env = {"PATH": f"{facts.bin_dir}:{os.environ.get('PATH', '')}", "POD_NAMESPACE": job["metadata"]["namespace"],
               "SECRETS_EXISTING": str(root / "existing"), "SECRETS_OUT": str(root / "out"),
               "DATABASE_URL": f"sqlite://{root / 'auth_service.db'}"}
        proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
        out = root / "out" / "secrets.yaml"
        docs_out = load_all(out.read_text()) if proc.returncode == 0 and out.exists() else None
        return proc, docs_out

    if not env_of.get("SECRETS_EXISTING") or not env_of.get("SECRETS_OUT"):
        return {}, [f"{key(job)}: its make container sets no SECRETS_EXISTING and SECRETS_OUT"]
    proc, first = run("first", {})
    if first is None:
        return {}, [f"{key(job)}'s script failed: {(proc.stdout + proc.stderr).strip()[-1500:]}"]
    made = {d["metadata"]["name"]: {k: base64.b64decode(v) for k, v in d["data"].items()} for d in first}
    names = [d["metadata"]["name"] for d in first]
    if names[-1:] != ["auth-service-keys"]:
        problems.append(f"{key(job)}'s script writes {names}: auth-service-keys must come last (it marks a complete set)")
    if set(names) != job_made_secrets(docs, job):
        problems.append(f"{key(job)}'s script wrote {names}, its `secret` lines say {sorted(job_made_secrets(docs, job))}")
    problems += k8s_schema_problems(first, ["1.33.0"])
    users = (made.get("dev-clients") or {}).get("dev-users.env", b"").decode()
    if not all(re.search(rf"^{k}=.", users, re.M) for k in ("ADMIN_USER", "ADMIN_PASSWORD", "VIEWER_USER", "VIEWER_PASSWORD")):
        problems.append(f"{key(job)}'s script: the Secret dev-clients has no dev-users.env with the development users")
    for d in first:
        labels = d["metadata"].get("labels") or {}
        if d["metadata"].get("namespace") != job["metadata"]["namespace"] or d.get("type") != "Opaque" \
                or not {"app.kubernetes.io/name", "app.kubernetes.io/component", "app.kubernetes.io/part-of"} <= set(labels):
            problems.append(f"{key(d)} of the Job: not Opaque in the Job's namespace with the recommended labels")
    # Again, seeing those: the same Secrets, byte for byte.
    proc, again = run("again", made)
    if again is None or again != first:
        problems.append(f"{key(job)}'s script, run again with its Secrets present, changed them: "
                        f"{(proc.stdout + proc.stderr).strip()[-500:]}")
    # A credentials Secret gone, the keys still there: it stops, saying how to start over.
    partial = {k: v for k, v in made.items() if k != "order-service-credentials"}
    proc, broken = run("partial", partial)
    if broken is not None or "delete secret auth-service-keys" not in proc.stderr:
        problems.append(f"{key(job)}'s script, without order-service-credentials but with the keys, did not stop "
                        f"and say how to start over: {(proc.stdout + proc.stderr).strip()[-500:]}")
    return made, problems


def operator_secrets(facts, work):
    """What production's operator brings, made here by auth_service's own
    commands (init, for the test): the Secrets under base's names."""
    keys = work / "operator"
    subprocess.run([str(facts.bin_dir / AUTH[1]), "init", str(keys)], check=True, capture_output=True)
    read = lambda name: (keys / name).read_bytes()  # noqa: E731
    return {
        "auth-service-keys": {"auth-signing-key.pem": read("auth-signing-key.pem"), "auth-clients": read("auth-clients")},
        "client-service-credentials": {"SERVICE_CLIENT_SECRET": read("client_service.secret")},
        "order-service-credentials": {"SERVICE_CLIENT_SECRET": read("order_service.secret")},
        "console-credentials": {"client_secret": re.search(rb"^WEB_CLIENT_SECRET=(.*)$", read("dev-clients.env"),
                                                            re.M).group(1)},
        "dev-clients": {"dev-clients.env": read("dev-clients.env")},
    }


def as_secret_docs(made):
    return [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
             "data": {k: base64.b64encode(v).decode() for k, v in data.items()}} for name, data in made.items()]


# ------------------------------------------------------------------ run ---
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=2.0, headers=None):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def wait_http(url, proc, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if http_get(url, 0.5) is not None:
            return True
        time.sleep(0.1)
    return False


def stop(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_problems(facts, docs, work):
    """Starts both binaries with their ConfigMaps' settings and nginx with
    the gateway's Kubernetes configuration; asks every probe path, and
    /client/ and /order/ through nginx."""
    problems = []
    procs = []
    ports = {}
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    # nginx may run as the container's user (see run_gateway): it must
    # reach its files.
    os.chmod(work, 0o711)
    os.chmod(run_dir, 0o755)
    # The Secrets: in dev, those the Job dev-secrets's script writes (run
    # here with this auth_service); in production, the operator's (made
    # here by auth_service's commands). The pods read them as the
    # manifests say (env from secretKeyRef, files of a secret volume, moved
    # into run_dir/secrets).
    if one(docs, "Job", DEV_JOB) is not None:
        made, problems = job_secrets(facts, docs, run_dir / "job")
        if not made:
            return problems
    else:
        made = operator_secrets(facts, run_dir)
    docs = docs + as_secret_docs(made)
    secrets = run_dir / "secrets"
    secrets.mkdir()
    auth_port = free_port()
    try:
        for svc_name, binary in [AUTH, *SERVICES.items()]:
            w = one(docs, "Deployment", svc_name)
            c = next(c for c in w["spec"]["template"]["spec"]["containers"] if c["name"] == svc_name)
            env = {k: v for k, v in container_env(docs, c).items() if v is not None and k != "DATABASE_URL"}
            port = auth_port if binary == AUTH[1] else free_port()
            env.update(LISTEN_ADDR=f"127.0.0.1:{port}", DATA_DIR=str(run_dir / binary),
                       PATH=os.environ.get("PATH", ""))
            if binary == AUTH[1]:
                # The files of its secret volumes, where its settings name them.
                spec = w["spec"]["template"]["spec"]
                for v in spec.get("volumes") or []:
                    mount = next((m for m in c.get("volumeMounts") or [] if m["name"] == v["name"]), None)
                    if "secret" in v and mount:
                        for k, value in (data_of(docs, "Secret", v["secret"]["secretName"]) or {}).items():
                            (secrets / k).write_text(value)
                for var in ("AUTH_SIGNING_KEY_FILE", "AUTH_CLIENTS_FILE"):
                    env[var] = str(secrets / Path(env.get(var, "")).name)
            else:
                for var in ("AUTH_JWKS_URL", "AUTH_TOKEN_URL"):
                    env[var] = re.sub(r"^http://[^/]+", f"http://127.0.0.1:{auth_port}", env.get(var, ""))
            log = open(run_dir / f"{binary}.log", "w")
            proc = subprocess.Popen([str(facts.bin_dir / binary)], env=env, stdout=log, stderr=subprocess.STDOUT)
            procs.append(proc)
            if not wait_http(f"http://127.0.0.1:{port}/healthz", proc):
                tail = (run_dir / f"{binary}.log").read_text()[-1500:]
                problems.append(f"{binary} did not start with the settings of {key(w)}: {tail.strip()}")
                continue
            ports[svc_name] = port
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                path = ((c.get(probe) or {}).get("httpGet") or {}).get("path")
                status = http_get(f"http://127.0.0.1:{port}{path}")
                if status != 200:
                    problems.append(f"{key(w)}: {probe} GET {path} answered {status}, not 200")
        problems += run_console(facts, docs, run_dir, secrets, ports, procs)
        if len(ports) == len(ALL_BINARIES):
            (secrets / "dev-clients.env").write_bytes(made["dev-clients"]["dev-clients.env"])
            problems += run_gateway(facts, docs, run_dir, ports, procs, secrets)
    finally:
        for proc in procs:
            stop(proc)
        for proc in procs:
            if proc.returncode not in (0, None) and proc.returncode != -signal.SIGTERM:
                problems.append(f"a process exited {proc.returncode} when stopped (see {run_dir})")
    return problems


def run_console(facts, docs, run_dir, secrets, ports, procs):
    """The console with its ConfigMap's settings and its Secret's file: it
    starts, and its probes answer."""
    name, binary = CONSOLE
    w = one(docs, "Deployment", name)
    c = next(c for c in w["spec"]["template"]["spec"]["containers"] if c["name"] == name)
    env = {k: v for k, v in container_env(docs, c).items() if v is not None}
    for v in w["spec"]["template"]["spec"].get("volumes") or []:
        if "secret" in v:
            for k, value in (data_of(docs, "Secret", v["secret"]["secretName"]) or {}).items():
                (secrets / f"{name}-{k}").write_text(value)
    port = free_port()
    env.update(LISTEN_ADDR=f"127.0.0.1:{port}", PATH=os.environ.get("PATH", ""),
               CONSOLE_CLIENT_SECRET_FILE=str(secrets / f"{name}-{Path(env.get('CONSOLE_CLIENT_SECRET_FILE', '')).name}"))
    log = open(run_dir / f"{binary}.log", "w")
    proc = subprocess.Popen([str(facts.bin_dir / binary)], env=env, stdout=log, stderr=subprocess.STDOUT)
    procs.append(proc)
    if not wait_http(f"http://127.0.0.1:{port}/healthz", proc):
        return [f"{binary} did not start with the settings of {key(w)}: {(run_dir / f'{binary}.log').read_text()[-1500:].strip()}"]
    ports[name] = port
    problems = []
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        path = ((c.get(probe) or {}).get("httpGet") or {}).get("path")
        status = http_get(f"http://127.0.0.1:{port}{path}")
        if status != 200:
            problems.append(f"{key(w)}: {probe} GET {path} answered {status}, not 200")
    return problems


def run_gateway(facts, docs, run_dir, ports, procs, secrets):
    problems = []
    gw = one(docs, "Deployment", "gateway")
    spec = gw["spec"]["template"]["spec"]
    c = next(c for c in spec["containers"] if c["name"] == "gateway")
    env = container_env(docs, c)
    values = {v: env.get(v, facts.dockerfile_env.get(v)) for v in facts.template_vars}
    # The Services' names resolve in the cluster only: the same lines with
    # the local instances' addresses.
    for var, svc_name in (("GATEWAY_CLIENT_SERVERS", "client-service"), ("GATEWAY_ORDER_SERVERS", "order-service"),
                          ("GATEWAY_AUTH_SERVERS", AUTH[0]), ("GATEWAY_CONSOLE_SERVERS", CONSOLE[0])):
        if var in values:
            values[var] = re.sub(r"server\s+[^\s;]+", f"server 127.0.0.1:{ports[svc_name]}", values[var])
    gw_port, status_port = free_port(), free_port()
    values["GATEWAY_LISTEN"] = f"127.0.0.1:{gw_port}"
    values["GATEWAY_STATUS_LISTEN"] = f"127.0.0.1:{status_port}"
    values["GATEWAY_ACCESS_LOG"] = str(run_dir / "access.log")
    values["GATEWAY_DOCS_DIR"] = str(run_dir / "docs")
    rendered = facts.template
    for var, value in values.items():
        rendered = rendered.replace("${" + var + "}", value)
    # The mounted nginx.conf, with its writable places moved into run_dir.
    conf_vol = next(v for v in spec["volumes"] if "configMap" in v and "nginx.conf" in (data_of(docs, "ConfigMap", v["configMap"]["name"]) or {}))
    conf = data_of(docs, "ConfigMap", conf_vol["configMap"]["name"])["nginx.conf"]
    out_dir = env.get("NGINX_ENVSUBST_OUTPUT_DIR", "/etc/nginx/conf.d")
    moved = {}
    for mount in c["volumeMounts"]:
        if any(v["name"] == mount["name"] and "emptyDir" in v for v in spec["volumes"]):
            target = run_dir / "mounts" / mount["mountPath"].strip("/").replace("/", "_")
            target.mkdir(parents=True, exist_ok=True)
            moved[mount["mountPath"].rstrip("/") + "/"] = str(target) + "/"
            if mount["mountPath"] == out_dir:
                (target / "gateway.conf").write_text(rendered)
    # Every path that starts with a mount's path, in one pass.
    pattern = "|".join(re.escape(m) for m in sorted(moved, key=len, reverse=True))
    conf = re.sub(rf"(?<=\s)({pattern})", lambda m: moved[m.group(1)], conf)
    (run_dir / "nginx.conf").write_text(conf)
    (run_dir / "access.log").touch()
    uid = (c.get("securityContext") or {}).get("runAsUser") or spec["securityContext"]["runAsUser"]
    gid = (c.get("securityContext") or {}).get("runAsGroup") or spec["securityContext"].get("runAsGroup", uid)
    cmd = [shutil.which("nginx") or "/usr/sbin/nginx", "-e", str(run_dir / "error.log"), "-p", str(run_dir),
           "-c", str(run_dir / "nginx.conf")]
    if os.geteuid() == 0 and shutil.which("setpriv"):
        # As the container's user, which owns nothing but the emptyDirs.
        for path in [run_dir / "mounts", *(run_dir / "mounts").iterdir(), run_dir / "access.log"]:
            os.chown(path, uid, gid)
        (run_dir / "error.log").touch()
        os.chown(run_dir / "error.log", uid, gid)
        cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *cmd]
    test = subprocess.run(cmd + ["-t", "-q"], capture_output=True, text=True)
    if test.returncode != 0:
        return [f"nginx -t on the gateway's Kubernetes configuration: {test.stderr.strip()}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(run_dir / "nginx.stderr", "w"))
    procs.append(proc)
    base = f"http://127.0.0.1:{gw_port}"
    if not wait_http(base + "/healthz", proc, 10):
        err = (run_dir / "nginx.stderr").read_text() + (run_dir / "error.log").read_text()
        return [f"nginx did not start with the gateway's Kubernetes configuration: {err.strip()[-1500:]}"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        path = ((c.get(probe) or {}).get("httpGet") or {}).get("path")
        status = http_get(base + path)
        if status != 200:
            problems.append(f"{key(gw)}: {probe} GET {path} answered {status}, not 200")
    # A token of the development client, from the token endpoint through
    # nginx, as a user gets one; then the API with it (and without: 401).
    dev = dict(line.split("=", 1) for line in (secrets / "dev-clients.env").read_text().split())
    basic = base64.b64encode(f"{dev['CLIENT_ID']}:{dev['CLIENT_SECRET']}".encode()).decode()
    token = None
    try:
        request = urllib.request.Request(base + "/auth/token", data=b"grant_type=client_credentials",
                                         headers={"Authorization": f"Basic {basic}",
                                                  "Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(request, timeout=5) as r:
            token = json.load(r)["access_token"]
    except (OSError, ValueError, KeyError) as e:
        problems.append(f"gateway: POST /auth/token through nginx gave no token: {e}")
    for path in ("/client/", "/order/"):
        status = http_get(base + path, headers={"Authorization": f"Bearer {token}"} if token else None)
        if status != 200:
            problems.append(f"gateway: GET {path} with a token through nginx answered {status}, not 200")
        if http_get(base + path) != 401:
            problems.append(f"gateway: GET {path} without a token through nginx was not refused with 401")
    # SIGQUIT: the image's stop signal, a graceful stop.
    stop(proc, signal.SIGQUIT)
    if proc.returncode != 0:
        problems.append(f"nginx exited {proc.returncode} on SIGQUIT")
    return problems


# ----------------------------------------------------------- self-check ---
def container(docs, workload, name):
    w = one(docs, "Deployment", workload)
    return next(c for c in w["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def set_config(docs, name, k, v):
    for d in docs:
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith(name):
            d["data"][k] = v


def broken_schema(docs):
    docs = copy.deepcopy(docs)
    container(docs, "client-service", "client-service")["readinessprobe"] = {"httpGet": {"path": "/readyz"}}
    one(docs, "Service", "gateway")["spec"]["ports"][0]["port"] = "8080"
    return docs, ["readinessprobe", "ports.0.port"]


def broken_crd(docs):
    docs = copy.deepcopy(docs)
    route = one(docs, "HTTPRoute", "rest-microservices")
    route["spec"]["rules"][0]["backendRefs"][0]["port"] = "http"
    route["spec"]["rules"][0]["timeout"] = "10s"
    gw = one(docs, "Gateway", "rest-microservices")
    gw["spec"]["listeners"].append(copy.deepcopy(gw["spec"]["listeners"][0]))
    # Valid for the schema; refused by a CEL rule of the CRD.
    gw["spec"]["listeners"][0]["tls"] = {"mode": "Terminate", "certificateRefs": [{"name": "a-certificate"}]}
    return docs, ["backendRefs.0.port", "timeout", "list-type map", "tls must not be specified"]


def broken_checkov(docs):
    docs = copy.deepcopy(docs)
    c = container(docs, "order-service", "order-service")
    del c["securityContext"]
    del c["resources"]["limits"]
    return docs, ["CKV_K8S_", "order-service"]


def broken_consistency(docs):
    docs = copy.deepcopy(docs)
    set_config(docs, "order-service-settings", "CLIENT_SERVICE_TIMEOUT", "2000")
    set_config(docs, "gateway-settings", "GATEWAY_ORDER_SERVERS", "server orders-service:8001 max_fails=2 fail_timeout=2s;")
    container(docs, "client-service", "client-service")["readinessProbe"]["httpGet"]["path"] = "/ready"
    w = one(docs, "Deployment", "client-service")
    w["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 10
    w["spec"]["template"]["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    one(docs, "Role", DEV_JOB)["rules"][1]["verbs"].append("list")
    job_spec = one(docs, "Job", DEV_JOB)["spec"]["template"]["spec"]
    job_spec["initContainers"][0].setdefault("volumeMounts", []).append(
        {"name": "api-token", "mountPath": TOKEN_PATH, "readOnly": True})
    pg = one(docs, "StatefulSet", "postgres")
    pg["spec"]["template"]["spec"]["containers"][0]["image"] = "postgres:17-alpine"
    for d in docs:
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("postgres-init"):
            d["data"] = {k: v.replace("DATABASE orders OWNER order_service", "DATABASE orders OWNER client_service")
                         for k, v in d["data"].items()}
    # auth_service's database: the Job without it, and the postgres pod
    # shut to auth_service.
    job_spec["initContainers"][0]["env"] = [e for e in job_spec["initContainers"][0]["env"] if e["name"] != "DATABASE_URL"]
    for pol in find(docs, "NetworkPolicy", "postgres"):
        for rule in pol["spec"]["ingress"]:
            for src in rule["from"]:
                for expr in src["podSelector"].get("matchExpressions") or []:
                    expr["values"] = [v for v in expr["values"] if v != AUTH[0]]
    return docs, ["CLIENT_SERVICE_TIMEOUT", "orders-service", "'/ready'", "terminationGracePeriodSeconds 10",
                  "Role/dev-secrets: rules", "container make: holds the API token",
                  "allowPrivilegeEscalation", "postgres:17-alpine", "init script",
                  "make container has no DATABASE_URL", "postgres pod does not accept Deployment/auth-service"]


def broken_run(docs):
    docs = copy.deepcopy(docs)
    set_config(docs, "order-service-settings", "CLIENT_SERVICE_TIMEOUT_MS", "soon")
    container(docs, "client-service", "client-service")["readinessProbe"]["httpGet"]["path"] = "/ready"
    # The Job's script, blind to the Secrets that exist: a second run would
    # replace the keys under the running pods.
    for d in docs:
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith(DEV_JOB):
            d["data"] = {k: v.replace('[[ -f "$existing/auth-service-keys/auth-signing-key.pem"', '[[ -f "/nowhere"')
                         for k, v in d["data"].items()}
    return docs, ["order_service did not start", "GET /ready answered 404", "run again with its Secrets present, changed them"]


def guarded(check, *args):
    """A check's problems; a manifest so broken that the check itself stops
    (a missing key, a wrong type) is a problem too, not a traceback."""
    try:
        return check(*args)
    except Exception as err:  # noqa: BLE001 - reported, and the check fails
        return [f"{check.__name__} stopped on this rendering: {type(err).__name__}: {err}"]


def caught(report, name, problems, expected):
    missing = [e for e in expected if not any(e in p for p in problems)]
    return report.check(name, [f"not reported: {m!r} (reported: {problems[:6]})" for m in missing])


# ----------------------------------------------------------------- main ---
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kubectl", required=True)
    ap.add_argument("--checkov", required=True)
    ap.add_argument("--bin-dir", required=True, help="folder of the debug binaries (their --help)")
    ap.add_argument("--crds", help="the Gateway API CRDs (default: ../shared/data/gateway-api-crds)")
    ap.add_argument("--keep", help="also write the renderings into this folder")
    args = ap.parse_args()
    report = Report()
    started = time.monotonic()
    latest = kv.latest_version()
    versions = sorted({OLDEST_K8S, latest}, key=lambda v: [int(x) for x in v.split(".")])

    with tempfile.TemporaryDirectory(prefix="check-k8s.") as tmp:
        work = Path(tmp)
        # ---- 1. render
        report.step("1. render: every overlay, with and without each component (kubectl kustomize)")
        rendered, problems = render_all(args.kubectl, work)
        report.check(f"{len(list(variants()))} renderings: " + ", ".join(
            variant_name(*v) for v in variants()), problems)
        if problems:
            # The other steps need every rendering.
            return finish(report, started)
        for overlay in OVERLAYS:
            comps, unknown = committed_components(overlay)
            try:
                as_committed = load_all(kubectl_kustomize(args.kubectl, K8S / "overlays" / overlay))
                diff = sorted({json.dumps(d, sort_keys=True) for d in as_committed}
                              ^ {json.dumps(d, sort_keys=True) for d in rendered[variant_name(overlay, comps)][2]})
                report.check(f"overlays/{overlay} as committed (components: {', '.join(comps) or 'none'})",
                             ([f"unknown components {unknown}"] if unknown else [])
                             + ([f"differs from the copy's rendering in {len(diff)} object(s)"] if diff else []))
            except RuntimeError as err:
                report.check(f"overlays/{overlay} as committed", [str(err)])
        try:
            kubectl_kustomize(args.kubectl, K8S / "base")
            report.check("base renders on its own", [])
        except RuntimeError as err:
            report.check("base renders on its own", [str(err)])
        render_dir = work / "rendered"
        render_dir.mkdir()
        for name, (_, _, _, text) in rendered.items():
            (render_dir / f"{name}.yaml").write_text(text)
        if args.keep:
            Path(args.keep).mkdir(parents=True, exist_ok=True)
            for f in render_dir.iterdir():
                shutil.copy(f, args.keep)

        # ---- 2. schemas
        report.step(f"2. schemas: Kubernetes {' and '.join(v.rsplit('.', 1)[0] for v in versions)} (strict), "
                    "Gateway API CRDs")
        for name, (_, _, docs, _) in rendered.items():
            report.check(f"{name}: {len(docs)} objects valid against Kubernetes' schemas",
                         guarded(k8s_schema_problems, docs, versions))
        crd_dir = Path(args.crds or os.environ.get("GATEWAY_API_CRDS") or ROOT.parent / "shared/data/gateway-api-crds")
        crds = {}
        if not crd_dir.is_dir():
            report.check("Gateway API CRDs", [
                f"{crd_dir} does not exist: the Gateway and HTTPRoute cannot be checked. Put the Gateway API's "
                "standard CRDs (v1.6.1) there, or name their folder in GATEWAY_API_CRDS"])
        else:
            crds = load_crds(crd_dir)
            snapshot = (crd_dir / "SNAPSHOT").read_text().strip() if (crd_dir / "SNAPSHOT").exists() else "?"
            print(f"    Gateway API CRDs: {crd_dir} ({snapshot}; {len(crds)} kinds and versions)")
            for name, (_, comps, docs, _) in rendered.items():
                if "gateway-api" in comps:
                    gw_docs = [d for d in docs if d["apiVersion"].startswith(GATEWAY_API_GROUP)]
                    report.check(f"{name}: {len(gw_docs)} Gateway API objects valid against their CRDs",
                                 guarded(crd_problems, docs, crds) + ([] if gw_docs else ["no Gateway API object"]))

        # ---- 3. checkov
        report.step("3. checkov: no failed check")
        with_np = [render_dir / f"{n}.yaml" for n, v in rendered.items() if "network-policies" in v[1]]
        without_np = [render_dir / f"{n}.yaml" for n, v in rendered.items() if "network-policies" not in v[1]]
        for files, skips, label in (
                (with_np, (), "renderings with the network policies"),
                (without_np, ("CKV2_K8S_6",), "renderings without them (CKV2_K8S_6, pods without a policy, skipped)")):
            problems, passed, skipped = run_checkov(args.checkov, files, skips)
            report.check(f"{len(files)} {label}: {passed} passed, {skipped} skipped with a reason", problems)

        # ---- 4. consistency
        report.step("4. consistency: manifests, binaries (--help), gateway files, compose.yaml")
        facts = Facts(args.bin_dir)
        for name, (overlay, comps, docs, _) in rendered.items():
            report.check(f"{name}", guarded(consistency_problems, facts, overlay, comps, docs))

        # ---- 5. run
        report.step("5. run: the binaries with the ConfigMaps' settings, nginx with the gateway's configuration")
        for overlay in OVERLAYS:
            docs = rendered[variant_name(overlay, ())][2]
            report.check(f"{overlay}: both services start, every probe path answers 200, "
                         "nginx serves /healthz, /client/ and /order/", guarded(run_problems, facts, docs, work))

        # ---- 6. self-check
        report.step("6. self-check: broken manifests are caught")
        dev = rendered["dev+network-policies+gateway-api"][2]
        bad, expected = broken_schema(dev)
        caught(report, "schemas: an unknown field and a wrong type", k8s_schema_problems(bad, versions), expected)
        if crds:
            bad, expected = broken_crd(dev)
            caught(report, "Gateway API: a wrong type, an unknown field, two listeners of one name, TLS on HTTP",
                   crd_problems(bad, crds), expected)
        bad, expected = broken_checkov(dev)
        bad_file = work / "broken.yaml"
        bad_file.write_text(yaml.safe_dump_all(bad, sort_keys=False))
        problems, _, _ = run_checkov(args.checkov, [bad_file])
        caught(report, "checkov: a container without securityContext and limits", problems, expected)
        bad, expected = broken_consistency(dev)
        caught(report, "consistency: unread variable, wrong upstream, probe path, grace period, privilege, "
               "image, init SQL, a Role that may list Secrets, the API token in the container that makes them, "
               "the Job without auth_service's database, the postgres pod shut to auth_service",
               consistency_problems(facts, "dev", ("network-policies", "gateway-api"), bad), expected)
        bad, expected = broken_run(rendered["dev"][2])
        caught(report, "run: a setting the binary refuses, a probe path it does not serve, a Job script that "
               "replaces the Secrets it finds",
               run_problems(facts, bad, work), expected)
        broken_tree = work / "broken-tree"
        shutil.copytree(K8S, broken_tree)
        with open(broken_tree / "overlays/dev/kustomization.yaml", "a") as f:
            f.write("\npatches:\n  - path: patches/missing.yaml\n")
        (work / "broken-render").mkdir()
        _, problems = render_all(args.kubectl, work / "broken-render", broken_tree)
        caught(report, "render: a kustomization naming a missing patch", problems, ["dev:", "missing.yaml"])

    return finish(report, started)


def finish(report, started):
    report.end_step()
    print(f"\n    ({time.monotonic() - started:.0f} s: {', '.join(report.timings)})")
    if report.failed:
        print("\nFAILED checks:")
        for name in report.failed:
            print(f"  - {name}")
    print(f"\ncheck-k8s: {report.passed} passed, {len(report.failed)} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
