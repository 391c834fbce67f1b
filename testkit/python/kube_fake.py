"""A strict, stateful fake of the Kubernetes API server for Lakestream's tests.

No real API server can be installed where the tests run, so this fake stands in for the part
the provider uses: namespaces (get), ServiceAccounts (core/v1), StatefulSets (apps/v1) and the
pods a StatefulSet controller would make (read only). Strict means a request that the real API
server would refuse is refused here, with the same kind of `Status` body:

- every object written is validated against the official strict JSON schemas of PyPI
  `kubernetes-validate` (unknown fields and wrong types fail), plus the semantic checks of the
  API server that matter for our objects (names, labels, quantities, requests within limits, a
  selector matching the template, immutable StatefulSet fields), answering 422 `Invalid` with
  the field named in the message;
- 404 `NotFound`, 409 `AlreadyExists` / `Conflict` (stale `resourceVersion`), 401
  `Unauthorized`, 400 `BadRequest` as the real server words them;
- the server sets `uid`, `resourceVersion`, `generation`, `creationTimestamp` and defaults.

Authentication: every API request needs `Authorization: Bearer <token>`. With `--token T` the
token must equal T (AKS/GKE-style static tokens in tests). With `--eks-cluster NAME
--aws-secret-key KEY` the token must be an EKS token as `aws eks get-token` makes it:
`k8s-aws-v1.` + unpadded base64url of a presigned STS `GetCallerIdentity` URL for an STS host,
with `x-k8s-aws-id: NAME` among its signed headers, at most 15 minutes old, and a SigV4
signature that verifies with KEY (moto's dummy credentials are known, so the fake checks what
EKS checks by asking STS).

TLS and test-only endpoints: one port serves both. A connection starting with a TLS handshake
is the API (HTTPS, with the certificate given by `--tls-cert`/`--tls-key`); plain HTTP serves
only `GET /` (readiness) and the test-only endpoints under `/fake/`:

- `GET  /fake/objects/{plural}` every stored object of that kind (`serviceaccounts`,
  `statefulsets`, `pods`), as `{"items": [...]}`;
- `POST /fake/statefulsets/{namespace}/{name}/status` merges the JSON body into the
  StatefulSet's status, which then stays until its spec changes again;
- `POST /fake/pods/{namespace}/{name}/status` replaces a pod's status.

Rollout: with `--ready-after SECONDS` a StatefulSet's controller marks it (and its pods) ready
that long after each change of its spec; without it, status changes only through `/fake/`.
Pods `<name>-0 … <name>-(replicas-1)` exist while the StatefulSet wants them.

Usage: kube_fake.py --port PORT --tls-cert FILE --tls-key FILE
                    (--token T | --eks-cluster NAME --aws-secret-key KEY)
                    [--namespace NS ...] [--ready-after SECONDS] [--kubernetes-version 1.33]
"""

import argparse
import base64
import copy
import datetime
import hashlib
import hmac
import json
import re
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema
import kubernetes_validate
from kubernetes_validate.utils import schema_contents
from referencing import Registry, Resource

# The kinds served: plural -> (group, version, kind, namespaced path prefix).
KINDS = {
    "serviceaccounts": ("", "v1", "ServiceAccount"),
    "statefulsets": ("apps", "v1", "StatefulSet"),
    "pods": ("", "v1", "Pod"),
}
# Kinds clients may write; pods belong to the StatefulSet controller.
WRITABLE = {"serviceaccounts", "statefulsets"}
# StatefulSet spec fields an update may change (apps/v1 validation).
STS_MUTABLE = ["replicas", "ordinals", "template", "updateStrategy",
               "persistentVolumeClaimRetentionPolicy", "minReadySeconds"]

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
QUANTITY_MESSAGE = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
SUFFIXES = {"": 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
            "P": 1e15, "E": 1e18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
            "Pi": 2**50, "Ei": 2**60}
STS_HOST = re.compile(r"^sts(\.[a-z0-9-]+)?\.amazonaws\.com(\.cn)?$")
EKS_TOKEN_PREFIX = "k8s-aws-v1."
EKS_TOKEN_MAX_AGE = datetime.timedelta(minutes=15)


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def resource_label(plural):
    group = KINDS[plural][0]
    return f"{plural}.{group}" if group else plural


class ApiError(Exception):
    """An error answered as a `Status` object."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self):
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(plural, name):
    return ApiError(404, "NotFound", f'{resource_label(plural)} "{name}" not found',
                    {"name": name, "group": KINDS[plural][0], "kind": plural})


def invalid(plural, name, causes):
    """422 Invalid listing every cause, worded as the API server does."""
    kind = KINDS[plural][2]
    group = KINDS[plural][0]
    what = f"{kind}.{group}" if group else kind
    messages = [f"{field}: {message}" for field, message in causes]
    text = messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"
    return ApiError(422, "Invalid", f'{what} "{name}" is invalid: {text}',
                    {"name": name, "group": group, "kind": kind,
                     "causes": [{"reason": "FieldValueInvalid", "message": m, "field": f}
                                for f, m in causes]})


def parse_quantity(text):
    """A quantity's value as a float, or None when it is not a Kubernetes quantity."""
    if not isinstance(text, str):
        return float(text) if isinstance(text, (int, float)) else None
    match = QUANTITY.match(text)
    if not match:
        return None
    number, suffix = match.groups()
    try:
        value = float(number)
    except ValueError:
        return None
    if suffix in SUFFIXES:
        return value * SUFFIXES[suffix]
    exponent = re.match(r"^[eE]([-+]?[0-9]+)$", suffix)
    if exponent:
        return value * 10 ** int(exponent.group(1))
    return None


class Schemas:
    """Strict validators for the kinds clients write, built once from kubernetes-validate."""

    def __init__(self, version):
        version = version.lstrip("v")
        available = [v for v in kubernetes_validate.utils.all_versions()
                     if kubernetes_validate.utils.major_minor(v) <= version]
        if not available:
            sys.exit(f"kubernetes-validate has no schemas for Kubernetes {version}")
        folder = f"kubernetes-json-schema/v{available[-1]}-local-strict"
        self.version = available[-1]
        definitions = Resource.from_contents(schema_contents(f"{folder}/_definitions.json", version))
        self.validators = {}
        for plural in WRITABLE:
            group, api, kind = KINDS[plural]
            name = f"{kind.lower()}-{group + '-' if group else ''}{api}.json"
            schema = schema_contents(f"{folder}/{name}", version)
            registry = definitions @ (Resource.from_contents(schema) @ Registry())
            self.validators[plural] = jsonschema.validators.Draft202012Validator(schema, registry=registry)

    def errors(self, plural, body):
        """(field, message) for every schema violation, deepest first."""
        found = []
        for error in sorted(self.validators[plural].iter_errors(body), key=lambda e: list(e.path)):
            found.extend(flatten(error))
        return found


def field_path(path):
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<root>"


def flatten(error):
    """A schema error as (field, message): the innermost cause of a oneOf/anyOf, and unknown
    fields named one by one, as the API server's strict decoding does."""
    if error.validator == "additionalProperties" and error.validator_value is False:
        allowed = set(error.schema.get("properties", {}))
        unknown = [key for key in error.instance if key not in allowed]
        return [(field_path(list(error.path) + [key]), f'unknown field "{key}"') for key in unknown]
    if error.context:
        best = jsonschema.exceptions.best_match(error.context)
        return flatten(best)
    if error.validator == "type":
        return [(field_path(error.path), f"Invalid value: {json.dumps(error.instance)}: "
                 f"expected {error.validator_value}")]
    return [(field_path(error.path), error.message)]


def check_labels(labels, field, causes):
    for key, value in (labels or {}).items():
        name = key.split("/")[-1]
        if len(name) > 63 or not LABEL_NAME.match(name):
            causes.append((f"{field}", f'Invalid value: "{key}": name part must consist of alphanumeric '
                           "characters, '-', '_' or '.', and must start and end with an alphanumeric character"))
        if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
            causes.append((f"{field}", f'Invalid value: {json.dumps(value)}: a valid label must be an empty '
                           "string or consist of alphanumeric characters, '-', '_' or '.', and must start and "
                           "end with an alphanumeric character"))


def check_metadata(meta, field, causes, name_rule=DNS1123_SUBDOMAIN, max_length=253):
    name = meta.get("name")
    if not name:
        causes.append((f"{field}.name", "Required value: name or generateName is required"))
    elif len(name) > max_length or not name_rule.match(name):
        causes.append((f"{field}.name", f'Invalid value: "{name}": a lowercase RFC 1123 '
                       f"{'label' if name_rule is DNS1123_LABEL else 'subdomain'} must consist of lower case "
                       "alphanumeric characters or '-', and must start and end with an alphanumeric character"))
    check_labels(meta.get("labels"), f"{field}.labels", causes)
    for key in (meta.get("annotations") or {}):
        if not key or len(key.split("/")[-1]) > 63:
            causes.append((f"{field}.annotations", f'Invalid value: "{key}": invalid annotation key'))


def check_pod_spec(spec, field, causes):
    if spec.get("restartPolicy", "Always") != "Always":
        causes.append((f"{field}.restartPolicy", f'Unsupported value: "{spec["restartPolicy"]}": '
                       'supported values: "Always"'))
    containers = spec.get("containers") or []
    if not containers:
        causes.append((f"{field}.containers", "Required value"))
    seen = set()
    for index, container in enumerate(containers):
        at = f"{field}.containers[{index}]"
        name = container.get("name", "")
        if not DNS1123_LABEL.match(name) or len(name) > 63:
            causes.append((f"{at}.name", f'Invalid value: "{name}": a lowercase RFC 1123 label must '
                           "consist of lower case alphanumeric characters or '-'"))
        if name in seen:
            causes.append((f"{at}.name", f'Duplicate value: "{name}"'))
        seen.add(name)
        if not container.get("image"):
            causes.append((f"{at}.image", "Required value"))
        for position, variable in enumerate(container.get("env") or []):
            if not ENV_NAME.match(variable.get("name", "")):
                causes.append((f"{at}.env[{position}].name", f'Invalid value: "{variable.get("name", "")}": '
                               "a valid environment variable name must consist of alphabetic characters, "
                               "digits, '_', '-', or '.', and must not start with a digit"))
        resources = container.get("resources") or {}
        values = {}
        for kind in ("requests", "limits"):
            for resource, quantity in (resources.get(kind) or {}).items():
                value = parse_quantity(quantity)
                if value is None:
                    causes.append((f"{at}.resources.{kind}.{resource}",
                                   f"Invalid value: {json.dumps(quantity)}: {QUANTITY_MESSAGE}"))
                elif value < 0:
                    causes.append((f"{at}.resources.{kind}.{resource}",
                                   f"Invalid value: {json.dumps(quantity)}: must be greater than or equal to 0"))
                else:
                    values[(kind, resource)] = value
        for (kind, resource), value in values.items():
            limit = values.get(("limits", resource))
            if kind == "requests" and limit is not None and value > limit:
                causes.append((f"{at}.resources.requests", f'Invalid value: "{resources["requests"][resource]}": '
                               f"must be less than or equal to {resource} limit of {resources['limits'][resource]}"))


def semantic_errors(plural, body, namespace):
    """The API server's own validation beyond the schema, for the kinds clients write."""
    causes = []
    meta = body.get("metadata") or {}
    if plural == "statefulsets":
        check_metadata(meta, "metadata", causes, DNS1123_LABEL, 63)
        spec = body.get("spec") or {}
        if spec.get("replicas", 1) < 0:
            causes.append(("spec.replicas", "Invalid value: must be greater than or equal to 0"))
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        if not selector and not (spec.get("selector") or {}).get("matchExpressions"):
            causes.append(("spec.selector", "Invalid value: empty selector is invalid for statefulset"))
        template = spec.get("template") or {}
        template_labels = (template.get("metadata") or {}).get("labels") or {}
        if any(template_labels.get(k) != v for k, v in selector.items()):
            causes.append(("spec.template.metadata.labels", f"Invalid value: {json.dumps(template_labels)}: "
                           "`selector` does not match template `labels`"))
        check_labels(template_labels, "spec.template.metadata.labels", causes)
        check_pod_spec(template.get("spec") or {}, "spec.template.spec", causes)
    else:
        check_metadata(meta, "metadata", causes)
    return causes


def apply_defaults(plural, body):
    """The defaults the API server fills in, so clients see what a real server returns."""
    if plural != "statefulsets":
        return
    spec = body.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    spec.setdefault("revisionHistoryLimit", 10)
    strategy = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
    if strategy.get("type") == "RollingUpdate":
        strategy.setdefault("rollingUpdate", {"partition": 0})
    spec.setdefault("persistentVolumeClaimRetentionPolicy",
                    {"whenDeleted": "Retain", "whenScaled": "Retain"})
    pod = spec.setdefault("template", {}).setdefault("spec", {})
    pod.setdefault("restartPolicy", "Always")
    pod.setdefault("dnsPolicy", "ClusterFirst")
    pod.setdefault("schedulerName", "default-scheduler")
    pod.setdefault("terminationGracePeriodSeconds", 30)
    pod.setdefault("securityContext", {})
    for container in pod.get("containers") or []:
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        image = container.get("image", "")
        container.setdefault("imagePullPolicy",
                             "Always" if image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]
                             else "IfNotPresent")


class Store:
    """Every object, by (plural, namespace, name), and the StatefulSet controller."""

    def __init__(self, namespaces, ready_after):
        self.lock = threading.Lock()
        self.version = 0
        self.namespaces = set(namespaces)
        self.objects = {plural: {} for plural in KINDS}
        self.changed_at = {}
        self.completed = {}
        self.last_status = {}
        self.ready_after = ready_after

    def next_version(self):
        self.version += 1
        return str(self.version)

    def stamp(self, body):
        body["metadata"]["resourceVersion"] = self.next_version()

    def revision(self, sts):
        digest = hashlib.sha256(json.dumps(sts["spec"]["template"], sort_keys=True).encode()).hexdigest()
        return f"{sts['metadata']['name']}-{digest[:10]}"

    def reconcile(self):
        """One pass of the StatefulSet controller, as the real one behaves: it observes a new
        generation at once (`observedGeneration`, `updateRevision`, the pods of a changed template
        replaced by pending ones) and, with `ready_after`, completes the rollout that long after
        the change (pods running, `readyReplicas` and `currentRevision` caught up), once per
        generation, so a status set through `/fake/` afterwards stays. Pods follow `replicas`;
        an object deleted in the foreground goes once its pods are gone."""
        with self.lock:
            pods = self.objects["pods"]
            for (namespace, name), sts in list(self.objects["statefulsets"].items()):
                key = (namespace, name)
                deleting = "deletionTimestamp" in sts["metadata"]
                wanted = 0 if deleting else sts["spec"].get("replicas", 1)
                revision = self.revision(sts)
                status = sts.setdefault("status", {})
                owned = lambda: [k for k, pod in pods.items() if self.owned(pod, sts)]  # noqa: E731
                for pod_key in owned():
                    if int(pod_key[1].rsplit("-", 1)[1]) >= wanted:
                        del pods[pod_key]
                if deleting:
                    if not owned():
                        del self.objects["statefulsets"][key]
                    continue
                generation = sts["metadata"]["generation"]
                if status.get("observedGeneration") != generation:
                    if status.get("updateRevision") not in (None, revision):
                        for pod_key in owned():
                            pods[pod_key] = self.pod(namespace, pod_key[1], sts, revision)
                    status.update({"observedGeneration": generation, "replicas": wanted,
                                   "updateRevision": revision,
                                   "currentRevision": status.get("currentRevision", revision)})
                for ordinal in range(wanted):
                    if (namespace, f"{name}-{ordinal}") not in pods:
                        pods[(namespace, f"{name}-{ordinal}")] = self.pod(namespace, f"{name}-{ordinal}", sts, revision)
                if (self.ready_after is not None and self.completed.get(key) != generation
                        and time.monotonic() - self.changed_at.get(key, 0) >= self.ready_after):
                    for pod_key in owned():
                        pods[pod_key]["status"] = self.running_status(sts)
                        self.stamp(pods[pod_key])
                    status.update({"replicas": wanted, "readyReplicas": wanted, "currentReplicas": wanted,
                                   "updatedReplicas": wanted, "availableReplicas": wanted,
                                   "currentRevision": revision})
                    self.completed[key] = generation
                counts = {
                    "replicas": len(owned()),
                    "updatedReplicas": sum(1 for k in owned()
                                           if pods[k]["metadata"]["labels"].get("controller-revision-hash") == revision),
                }
                if self.completed.get(key) != generation:
                    status.update(counts)
                    ready = sum(1 for k in owned() if pods[k]["status"].get("phase") == "Running")
                    status.update({"readyReplicas": ready, "availableReplicas": ready})
                if status != self.last_status.get(key):
                    self.last_status[key] = copy.deepcopy(status)
                    self.stamp(sts)

    @staticmethod
    def owned(pod, sts):
        return any(ref.get("uid") == sts["metadata"]["uid"]
                   for ref in pod["metadata"].get("ownerReferences", []))

    def pod(self, namespace, name, sts, revision):
        labels = dict((sts["spec"]["template"].get("metadata") or {}).get("labels") or {})
        containers = sts["spec"]["template"]["spec"].get("containers") or []
        return {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()),
                         "resourceVersion": self.next_version(), "creationTimestamp": now_rfc3339(),
                         "labels": dict(labels, **{"controller-revision-hash": revision}),
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                                              "name": sts["metadata"]["name"], "uid": sts["metadata"]["uid"],
                                              "controller": True, "blockOwnerDeletion": True}]},
            "spec": copy.deepcopy(sts["spec"]["template"]["spec"]),
            "status": {"phase": "Pending",
                       "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                                       "message": "containers with unready status: ["
                                       + " ".join(c.get("name", "") for c in containers) + "]"}],
                       "containerStatuses": [{"name": c.get("name", ""), "image": c.get("image", ""),
                                              "ready": False, "restartCount": 0,
                                              "state": {"waiting": {"reason": "ContainerCreating"}}}
                                             for c in containers]},
        }

    @staticmethod
    def running_status(sts):
        containers = sts["spec"]["template"]["spec"].get("containers") or []
        return {"phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": c.get("name", ""), "image": c.get("image", ""), "ready": True,
                                       "restartCount": 0, "started": True,
                                       "state": {"running": {"startedAt": now_rfc3339()}}}
                                      for c in containers]}


class Fake:
    """The API: routing, authentication, validation, storage."""

    def __init__(self, args):
        self.args = args
        self.schemas = Schemas(args.kubernetes_version)
        self.store = Store(["default", "kube-system", "kube-public", "kube-node-lease"] + args.namespace,
                           args.ready_after)

    # --- authentication -------------------------------------------------------------------

    def authenticate(self, header):
        if not header or not header.startswith("Bearer "):
            raise ApiError(401, "Unauthorized", "Unauthorized")
        token = header[len("Bearer "):].strip()
        if self.args.token is not None:
            if not hmac.compare_digest(token, self.args.token):
                raise ApiError(401, "Unauthorized", "Unauthorized")
            return
        problem = self.eks_token_problem(token)
        if problem:
            sys.stderr.write(f"kube_fake: rejected EKS token: {problem}\n")
            raise ApiError(401, "Unauthorized", "Unauthorized")

    def eks_token_problem(self, token):
        """Why `token` is not a valid EKS token for this cluster, or None."""
        if not token.startswith(EKS_TOKEN_PREFIX):
            return f"no {EKS_TOKEN_PREFIX} prefix"
        encoded = token[len(EKS_TOKEN_PREFIX):]
        if "=" in encoded or "+" in encoded or "/" in encoded:
            return "not unpadded base64url"
        try:
            url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return "not base64url"
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme != "https" or not STS_HOST.match(parsed.hostname or "") or parsed.path not in ("", "/"):
            return f"not a presigned STS URL: {parsed.scheme}://{parsed.netloc}{parsed.path}"
        query = urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)
        params = dict(query)
        if len(params) != len(query):
            return "a query parameter appears twice"
        expected = {"Action": "GetCallerIdentity", "Version": "2011-06-15", "X-Amz-Algorithm": "AWS4-HMAC-SHA256"}
        for key, value in expected.items():
            if params.get(key) != value:
                return f"{key} is {params.get(key)!r}, expected {value!r}"
        if params.get("X-Amz-Expires") != "60":
            return f"X-Amz-Expires is {params.get('X-Amz-Expires')!r}, expected '60'"
        signed = params.get("X-Amz-SignedHeaders", "").split(";")
        if "x-k8s-aws-id" not in signed or "host" not in signed:
            return f"x-k8s-aws-id and host must be signed headers, got {signed}"
        try:
            signed_at = datetime.datetime.strptime(params.get("X-Amz-Date", ""), "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc)
        except ValueError:
            return "X-Amz-Date is not a SigV4 time"
        age = datetime.datetime.now(datetime.timezone.utc) - signed_at
        if age > EKS_TOKEN_MAX_AGE or age < -datetime.timedelta(minutes=5):
            return f"signed {age} ago"
        scope = params.get("X-Amz-Credential", "").split("/")
        if len(scope) != 5 or scope[3] != "sts" or scope[4] != "aws4_request":
            return f"credential scope {'/'.join(scope[1:])!r} is not an STS scope"
        _, day, region, service, _ = scope
        headers = {"host": parsed.netloc, "x-k8s-aws-id": self.args.eks_cluster}
        canonical_headers = "".join(f"{name}:{headers.get(name, '')}\n" for name in signed)
        canonical_query = "&".join(
            f"{quote(k)}={quote(v)}" for k, v in sorted(query) if k != "X-Amz-Signature")
        canonical = "\n".join(["GET", "/", canonical_query, canonical_headers, ";".join(signed),
                               hashlib.sha256(b"").hexdigest()])
        string_to_sign = "\n".join(["AWS4-HMAC-SHA256", params["X-Amz-Date"], "/".join(scope[1:]),
                                    hashlib.sha256(canonical.encode()).hexdigest()])
        key = ("AWS4" + self.args.aws_secret_key).encode()
        for part in (day, region, service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, params.get("X-Amz-Signature", "")):
            return f"the signature does not verify for cluster {self.args.eks_cluster!r}"
        return None

    # --- routing --------------------------------------------------------------------------

    def route(self, path):
        """(plural, namespace, name, subresource) for an API path; namespaces are plural
        'namespaces' with no namespace."""
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            rest = parts[2:]
        elif parts[:3] == ["apis", "apps", "v1"]:
            rest = parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        group = "" if parts[0] == "api" else "apps"
        if len(rest) == 2 and rest[0] == "namespaces" and group == "":
            return "namespaces", None, rest[1], None
        if len(rest) in (3, 4, 5) and rest[0] == "namespaces":
            plural = rest[2]
            if plural in KINDS and KINDS[plural][0] == group:
                name = rest[3] if len(rest) > 3 else None
                sub = rest[4] if len(rest) > 4 else None
                if sub is None:
                    return plural, rest[1], name, None
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def handle(self, method, path, query, body):
        plural, namespace, name, _ = self.route(path)
        if plural == "namespaces":
            if method != "GET":
                raise ApiError(405, "MethodNotAllowed", f"the fake serves only GET on namespaces, not {method}")
            with self.store.lock:
                if name not in self.store.namespaces:
                    raise ApiError(404, "NotFound", f'namespaces "{name}" not found',
                                   {"name": name, "kind": "namespaces"})
                return 200, {"apiVersion": "v1", "kind": "Namespace",
                             "metadata": {"name": name, "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
                                          "resourceVersion": "1"},
                             "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
        if method == "GET" and name is None:
            return 200, self.list(plural, namespace, query)
        if method == "GET":
            return 200, self.get(plural, namespace, name)
        if plural not in WRITABLE:
            raise ApiError(405, "MethodNotAllowed", f"{plural} are read-only in the fake (the controller's)")
        if method == "POST" and name is None:
            return 201, self.create(plural, namespace, body)
        if method == "PUT" and name is not None:
            return 200, self.replace(plural, namespace, name, body)
        if method == "DELETE" and name is not None:
            return 200, self.delete(plural, namespace, name, body)
        raise ApiError(405, "MethodNotAllowed", f"the fake does not serve {method} {path}")

    # --- verbs ----------------------------------------------------------------------------

    def get(self, plural, namespace, name):
        with self.store.lock:
            found = self.store.objects[plural].get((namespace, name))
            if found is None:
                raise not_found(plural, name)
            return copy.deepcopy(found)

    def list(self, plural, namespace, query):
        selector = {}
        for term in filter(None, (query.get("labelSelector") or [""])[0].split(",")):
            if "=" not in term or "!=" in term:
                raise ApiError(400, "BadRequest", f'the fake supports only equality selectors, not "{term}"')
            key, value = term.replace("==", "=").split("=", 1)
            selector[key.strip()] = value.strip()
        with self.store.lock:
            items = [copy.deepcopy(obj) for (ns, _), obj in sorted(self.store.objects[plural].items())
                     if ns == namespace and all((obj["metadata"].get("labels") or {}).get(k) == v
                                                for k, v in selector.items())]
            version = str(self.store.version)
        group, api, kind = KINDS[plural]
        return {"apiVersion": f"{group}/{api}" if group else api, "kind": f"{kind}List",
                "metadata": {"resourceVersion": version}, "items": items}

    def check(self, plural, namespace, body, name_in_path=None):
        """Validates a body written to `plural` in `namespace`, as the API server would."""
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request was not a JSON object")
        group, api, kind = KINDS[plural]
        expected_api = f"{group}/{api}" if group else api
        if body.get("apiVersion") != expected_api:
            raise ApiError(400, "BadRequest", f"the API version in the data ({body.get('apiVersion')}) does not "
                                              f"match the expected API version ({expected_api})")
        if body.get("kind") != kind:
            raise ApiError(400, "BadRequest", f"the kind in the data ({body.get('kind')}) does not match the "
                                              f"expected kind ({kind})")
        meta = body.get("metadata")
        name = (meta or {}).get("name") if isinstance(meta, dict) else None
        if isinstance(meta, dict) and meta.get("namespace") not in (None, namespace):
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the "
                                              "namespace sent on the request")
        if name_in_path is not None and name != name_in_path:
            raise ApiError(400, "BadRequest", f'the name of the object ({name}) does not match the name on '
                                              f'the URL ({name_in_path})')
        causes = self.schemas.errors(plural, body)
        if not causes:
            causes = semantic_errors(plural, body, namespace)
        if causes:
            raise invalid(plural, name or "", causes)
        with self.store.lock:
            if namespace not in self.store.namespaces:
                raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found',
                               {"name": namespace, "kind": "namespaces"})

    def create(self, plural, namespace, body):
        self.check(plural, namespace, body)
        meta = body["metadata"]
        if meta.get("resourceVersion"):
            raise ApiError(500, "InternalError", "resourceVersion should not be set on objects to be created")
        body = copy.deepcopy(body)
        body.pop("status", None)
        apply_defaults(plural, body)
        with self.store.lock:
            key = (namespace, meta["name"])
            if key in self.store.objects[plural]:
                raise ApiError(409, "AlreadyExists", f'{resource_label(plural)} "{meta["name"]}" already exists',
                               {"name": meta["name"], "group": KINDS[plural][0], "kind": plural})
            meta = body["metadata"]
            meta.update({"namespace": namespace, "uid": str(uuid.uuid4()), "creationTimestamp": now_rfc3339()})
            for server_only in ("generation", "deletionTimestamp", "managedFields", "selfLink"):
                meta.pop(server_only, None)
            if plural == "statefulsets":
                meta["generation"] = 1
                body["status"] = {"replicas": 0, "availableReplicas": 0}
                self.store.changed_at[key] = time.monotonic()
            self.store.stamp(body)
            self.store.objects[plural][key] = body
            return copy.deepcopy(body)

    def replace(self, plural, namespace, name, body):
        self.check(plural, namespace, body, name)
        body = copy.deepcopy(body)
        apply_defaults(plural, body)
        with self.store.lock:
            key = (namespace, name)
            current = self.store.objects[plural].get(key)
            if current is None:
                raise not_found(plural, name)
            sent_version = body["metadata"].get("resourceVersion")
            if sent_version and sent_version != current["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {resource_label(plural)} '
                                                f'"{name}": the object has been modified; please apply your '
                                                "changes to the latest version and try again",
                               {"name": name, "group": KINDS[plural][0], "kind": plural})
            meta = body["metadata"]
            for kept in ("uid", "creationTimestamp", "generation", "deletionTimestamp", "namespace"):
                if kept in current["metadata"]:
                    meta[kept] = current["metadata"][kept]
            if plural == "statefulsets":
                changed = [f for f in set(body["spec"]) | set(current["spec"])
                           if f not in STS_MUTABLE and body["spec"].get(f) != current["spec"].get(f)]
                if changed:
                    raise invalid(plural, name, [("spec", "Forbidden: updates to statefulset spec for fields other "
                                                  "than 'replicas', 'ordinals', 'template', 'updateStrategy', "
                                                  "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
                                                  "are forbidden")])
                body["status"] = current.get("status", {})
                if body["spec"] != current["spec"]:
                    meta["generation"] = current["metadata"]["generation"] + 1
                    self.store.changed_at[key] = time.monotonic()
            self.store.stamp(body)
            self.store.objects[plural][key] = body
            return copy.deepcopy(body)

    def delete(self, plural, namespace, name, body):
        policy = "Background"
        if body is not None:
            if not isinstance(body, dict) or body.get("kind", "DeleteOptions") != "DeleteOptions":
                raise ApiError(400, "BadRequest", "the body of a delete must be DeleteOptions")
            unknown = set(body) - {"kind", "apiVersion", "propagationPolicy", "gracePeriodSeconds",
                                   "preconditions", "dryRun", "orphanDependents"}
            if unknown:
                raise ApiError(400, "BadRequest", f'strict decoding error: unknown field "{sorted(unknown)[0]}"')
            policy = body.get("propagationPolicy", policy)
            if policy not in ("Background", "Foreground", "Orphan"):
                raise ApiError(422, "Invalid", f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: '
                                               f'Unsupported value: "{policy}"')
        with self.store.lock:
            key = (namespace, name)
            current = self.store.objects[plural].get(key)
            if current is None:
                raise not_found(plural, name)
            if plural == "statefulsets" and policy == "Foreground":
                current["metadata"].setdefault("deletionTimestamp", now_rfc3339())
                current["metadata"]["finalizers"] = ["foregroundDeletion"]
                self.store.stamp(current)
                return copy.deepcopy(current)
            del self.store.objects[plural][key]
            if plural == "statefulsets" and policy == "Background":
                pods = self.store.objects["pods"]
                for pod_key in [k for k, pod in pods.items() if Store.owned(pod, current)]:
                    del pods[pod_key]
            return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                    "details": {"name": name, "group": KINDS[plural][0], "kind": plural,
                                "uid": current["metadata"]["uid"]}}

    # --- test-only endpoints --------------------------------------------------------------

    def admin(self, method, path, body):
        parts = [p for p in path.split("/") if p][1:]
        if method == "GET" and len(parts) == 2 and parts[0] == "objects" and parts[1] in KINDS:
            with self.store.lock:
                return 200, {"items": [copy.deepcopy(o) for _, o in sorted(self.store.objects[parts[1]].items())]}
        if method == "POST" and len(parts) == 4 and parts[3] == "status" and parts[0] in ("statefulsets", "pods"):
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "the status must be a JSON object")
            with self.store.lock:
                found = self.store.objects[parts[0]].get((parts[1], parts[2]))
                if found is None:
                    raise not_found(parts[0], parts[2])
                if parts[0] == "statefulsets":
                    found.setdefault("status", {}).update(body)
                    # The test owns this generation's status from now on.
                    self.store.completed[(parts[1], parts[2])] = found["metadata"]["generation"]
                else:
                    found["status"] = body
                self.store.stamp(found)
                return 200, copy.deepcopy(found)
        raise ApiError(404, "NotFound", f"no test endpoint {method} {path}")


def quote(text):
    return urllib.parse.quote(text, safe="-_.~")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-fake"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return None
        raw = self.rfile.read(length)
        try:
            return json.loads(raw)
        except ValueError as err:
            raise ApiError(400, "BadRequest", f"the body is not JSON: {err}")

    def dispatch(self, method):
        fake = self.server.fake
        parsed = urllib.parse.urlsplit(self.path)
        tls = isinstance(self.connection, ssl.SSLSocket)
        try:
            body = self.body()
            if not tls:
                if method == "GET" and parsed.path == "/":
                    return self.answer(200, {"fake": "kubernetes", "schemas": fake.schemas.version})
                if parsed.path.startswith("/fake/"):
                    return self.answer(*fake.admin(method, parsed.path, body))
                raise ApiError(400, "BadRequest", "Client sent an HTTP request to an HTTPS server.")
            fake.authenticate(self.headers.get("Authorization"))
            if self.headers.get("Content-Type", "application/json").split(";")[0] != "application/json" and body:
                raise ApiError(415, "UnsupportedMediaType",
                               f'the body of the request was in an unknown format - accepted media types '
                               f'include: application/json ({self.headers.get("Content-Type")})')
            self.answer(*fake.handle(method, parsed.path, urllib.parse.parse_qs(parsed.query), body))
        except ApiError as err:
            self.answer(err.code, err.status())

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PATCH(self):
        self.dispatch("PATCH")


class Server(ThreadingHTTPServer):
    """HTTPS for the API and plain HTTP for readiness and `/fake/`, on one port: the first byte
    of a connection tells a TLS handshake (0x16) from an HTTP request."""

    daemon_threads = True

    def __init__(self, address, fake, context):
        super().__init__(address, Handler)
        self.fake, self.context = fake, context

    def finish_request(self, request, client_address):
        request.settimeout(30)
        try:
            first = request.recv(1, socket.MSG_PEEK)
            if first == b"\x16":
                request = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as err:
            sys.stderr.write(f"kube_fake: connection from {client_address} failed: {err}\n")
            return
        super().finish_request(request, client_address)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-cert", required=True)
    parser.add_argument("--tls-key", required=True)
    parser.add_argument("--token")
    parser.add_argument("--eks-cluster")
    parser.add_argument("--aws-secret-key")
    parser.add_argument("--namespace", action="append", default=[])
    parser.add_argument("--ready-after", type=float)
    parser.add_argument("--kubernetes-version", default="1.33")
    args = parser.parse_args()
    if (args.token is None) == (args.eks_cluster is None) or (args.eks_cluster and not args.aws_secret_key):
        parser.error("give either --token, or --eks-cluster with --aws-secret-key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.tls_cert, args.tls_key)
    fake = Fake(args)
    server = Server(("127.0.0.1", args.port), fake, context)

    def controller():
        while True:
            fake.store.reconcile()
            time.sleep(0.05)

    threading.Thread(target=controller, daemon=True).start()
    sys.stderr.write(f"kube_fake: serving on 127.0.0.1:{args.port} (schemas {fake.schemas.version})\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
