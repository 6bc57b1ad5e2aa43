#!/usr/bin/env python3
"""The stack file of Docker Swarm mode, made from compose.yaml and
deploy/swarm/stack.yaml (compose.yaml stays the one description of the
system; stack.yaml holds only what Swarm needs beyond it).

    swarm-stack.py render --stack NAME --secrets-dir DIR [--tag TAG] [--override FILE]
        prints the stack file for `docker stack deploy -c FILE NAME`:
        compose.yaml's long-running services with stack.yaml merged onto
        them (and FILE after it, in the same way: settings of one
        deployment, e.g. placement constraints; make swarm-test uses it to
        show what breaks when the gateway resolves names once, or without
        health checks), every image named rest-microservices/SERVICE:TAG
        (TAG default: latest), the secrets' files in DIR, each secret and config
        named after a hash of its content. ${VARIABLE:-default} stays as
        it is: `docker stack deploy` substitutes it from its environment,
        as compose does.
    swarm-stack.py build-override [--tag TAG]
        prints a compose override that names the images compose builds
        rest-microservices/SERVICE:TAG (`docker compose -f compose.yaml -f
        OVERRIDE build SERVICE...` builds and tags them; the same build as
        compose's, with its arguments).

The rules of the merge (and why) are written at the top of
deploy/swarm/stack.yaml. Needs PyYAML (Debian: python3-yaml, which
docker-compose depends on).
"""

import argparse
import copy
import hashlib
import os
import re
import sys

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("swarm-stack.py needs PyYAML (Debian: apt-get install python3-yaml)")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPOSE = os.path.join(ROOT, "compose.yaml")
STACK = os.path.join(ROOT, "deploy", "swarm", "stack.yaml")
# The repository of the images the stack runs; compose builds them under
# this name with build-override.
IMAGE_REPO = "rest-microservices"
# compose.yaml's services that run once and exit (Swarm would restart them).
ONE_SHOT = {"init_auth", "init_secrets"}
# Keys of a compose service that Swarm does not have (see stack.yaml).
DROPPED = ("build", "depends_on", "restart", "security_opt", "expose", "container_name", "profiles")


class NoAliases(yaml.SafeDumper):
    """Writes a value shared by several services (a YAML anchor of
    compose.yaml) in full at each place."""

    def ignore_aliases(self, data):
        return True


def load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def merge(base, over):
    """`over` onto `base`: mappings key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(over)


def content_hash(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:10]


def built_services(compose):
    """The services compose builds (they get our image names)."""
    return [name for name, s in compose["services"].items() if "build" in s and name not in ONE_SHOT]


def image_of(service, tag):
    return f"{IMAGE_REPO}/{service}:{tag}"


def render(stack_name, secrets_dir, tag, override=None):
    compose = load(COMPOSE)
    swarm = load(STACK)
    if override:
        swarm = merge(swarm, load(override) or {})
    secrets_dir = os.path.abspath(secrets_dir)
    out = {"version": "3.8", "services": {}, "networks": swarm.get("networks", {}), "volumes": {}, "secrets": {}, "configs": {}}
    problems = []

    # Secrets: each file of the development set (or yours) in secrets_dir.
    for key, spec in swarm.get("secrets", {}).items():
        path = os.path.join(secrets_dir, spec["file"])
        if not os.path.isfile(path):
            problems.append(f"no {path} (the secret {key}): make the set first (scripts/deploy/swarm-deploy.sh does)")
            continue
        out["secrets"][key] = {"name": f"{stack_name}_{key}_{content_hash(path)}", "file": path}

    for name, service in compose["services"].items():
        if name in ONE_SHOT or service.get("profiles"):
            continue
        service = merge(service, swarm.get("services", {}).get(name, {}))
        for key in DROPPED:
            service.pop(key, None)
        if "build" in compose["services"][name]:
            service["image"] = image_of(name, tag)
        # The secrets this service reads replace compose's volumes there.
        secret_dirs = {os.path.dirname(s["target"]) for s in service.get("secrets", [])}
        volumes = []
        for target in service.pop("tmpfs", []) or []:
            volumes.append({"type": "tmpfs", "target": target})
        for volume in service.get("volumes", []) or []:
            # SOURCE:TARGET[:MODE], SOURCE maybe ${VAR:-default} (a colon in it).
            parsed = re.match(r"^(\$\{[^}]*\}|[^:]+):([^:]+)(?::([a-z,]+))?$", volume)
            if not parsed:
                problems.append(f"{name}: cannot read the volume {volume!r}")
                continue
            source, target, mode = parsed.groups()
            if target in secret_dirs:
                continue
            if target.startswith("/run/secrets"):
                problems.append(f"{name}: compose mounts {source} at {target}, and stack.yaml gives it no secret there")
                continue
            if source.startswith("./"):
                # A file of the checkout: a Swarm config, named after its content.
                path = os.path.join(ROOT, source[2:])
                key = name + "_" + os.path.basename(path).replace(".", "_").replace("-", "_")
                out["configs"][key] = {"name": f"{stack_name}_{key}_{content_hash(path)}", "file": path}
                mode_bits = 0o555 if os.access(path, os.X_OK) else 0o444
                service.setdefault("configs", []).append({"source": key, "target": target, "mode": mode_bits})
                continue
            if source.startswith("$") or source.startswith("/"):
                problems.append(f"{name}: {volume}: a folder of the host has no place in a stack")
                continue
            out["volumes"][source] = compose.get("volumes", {}).get(source) or {}
            entry = {"type": "volume", "source": source, "target": target}
            if mode == "ro":
                entry["read_only"] = True
            volumes.append(entry)
        if volumes:
            service["volumes"] = volumes
        else:
            service.pop("volumes", None)
        for s in service.get("secrets", []):
            if s["source"] not in out["secrets"] and not problems:
                problems.append(f"{name}: the secret {s['source']} is not in stack.yaml's secrets")
        out["services"][name] = service

    for name in swarm.get("services", {}):
        if name not in out["services"]:
            problems.append(f"stack.yaml has the service {name}, which compose.yaml does not run")
    if problems:
        for p in problems:
            print(f"swarm-stack.py: {p}", file=sys.stderr)
        sys.exit(1)
    for key in ("volumes", "secrets", "configs"):
        if not out[key]:
            del out[key]
    header = (
        "# Made by scripts/deploy/swarm-stack.py from compose.yaml and deploy/swarm/stack.yaml:\n"
        "# do not edit (edit those, and render again).\n"
    )
    return header + yaml.dump(out, Dumper=NoAliases, sort_keys=False, width=1000, default_flow_style=False)


def build_override(tag):
    compose = load(COMPOSE)
    services = {name: {"image": image_of(name, tag)} for name in built_services(compose)}
    return yaml.safe_dump({"services": services}, sort_keys=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render")
    r.add_argument("--stack", required=True)
    r.add_argument("--secrets-dir", required=True)
    r.add_argument("--tag", default="latest")
    r.add_argument("--override")
    b = sub.add_parser("build-override")
    b.add_argument("--tag", default="latest")
    sub.add_parser("built-services")
    args = parser.parse_args()
    if args.command == "render":
        sys.stdout.write(render(args.stack, args.secrets_dir, args.tag, args.override))
    elif args.command == "build-override":
        sys.stdout.write(build_override(args.tag))
    else:
        print(" ".join(built_services(load(COMPOSE))))


if __name__ == "__main__":
    main()
