# shellcheck shell=bash
# The Docker engine (Debian's docker.io, started when it is not answering; a running one is used
# as it is) and the local images: a debootstrap base and setup/images/*/Dockerfile on top.

# Docker engine: one that answers (the user's, local or through DOCKER_HOST) is used as it is.
step_docker() {
  local status=running
  if ! docker info >/dev/null 2>&1; then
    if ! command -v dockerd >/dev/null 2>&1; then
      apt_install docker.io
      status=installed
    fi
    log "starting dockerd (log /var/log/dockerd.log)"
    nohup dockerd >>/var/log/dockerd.log 2>&1 </dev/null 3>&- &
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { echo "dockerd did not answer in 60 s" >&2; return 1; }
    [ "$status" = running ] && status=started
  fi
  echo "$status|$(docker version -f '{{.Server.Version}}' 2>/dev/null)"
}

# Images: debootstrap base + Dockerfiles in setup/images/, rebuilt only when inputs change
image_hash() { docker image inspect -f '{{index .Config.Labels "org.pgfleet.hash"}}' "$1" 2>/dev/null || true; }

# step_base_image [SUITE TAG]: debootstrap SUITE (minbase) and import it as TAG (default
# $DEBIAN_SUITE as $PGFLEET_BASE_IMAGE); cached by the suite and mirror
step_base_image() {
  local suite="${1:-$DEBIAN_SUITE}" tag="${2:-$PGFLEET_BASE_IMAGE}" h
  h="$(printf 'minbase %s %s v1' "$suite" "$DEBIAN_MIRROR" | sha256sum | cut -c1-12)"
  if [ "$(image_hash "$tag")" = "$h" ]; then echo "cached|$tag"; return 0; fi
  command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
  mkdir -p "$CACHE/rootfs"
  local tarball="$CACHE/rootfs/$suite-minbase-$h.tar"
  if [ ! -s "$tarball" ]; then
    local root="$CACHE/rootfs/$suite-minbase.tmp"
    rm -rf "$root"; mkdir -p "$root"
    log "debootstrap $suite (minbase)"
    debootstrap --variant=minbase "$suite" "$root" "$DEBIAN_MIRROR" >&2
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  docker import \
    --change "LABEL org.pgfleet.hash=$h" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["bash"]' \
    "$tarball" "$tag" >&2
  echo "built|$tag"
}

# build_image DIR TAG [EXTRA_FILE...]: extra files are copied into the build context.
# IMAGE_BASE (default $PGFLEET_BASE_IMAGE) is the image built FROM (build arg BASE_IMAGE);
# IMAGE_KEY_ARGS are build args that choose what is built (PG_MAJOR=17), part of the hash;
# IMAGE_BUILD_ARGS are further docker build options, not hashed (what they name is in the context).
build_image() {
  local name="$1" dir="$SETUP_DIR/images/$1" tag="$2"; shift 2
  local base="${IMAGE_BASE:-$PGFLEET_BASE_IMAGE}" base_id h key a
  local -a key_args=()
  base_id="$(docker image inspect -f '{{.Id}}' "$base")"
  key="$base_id"
  for a in ${IMAGE_KEY_ARGS[@]+"${IMAGE_KEY_ARGS[@]}"}; do key+=" $a"; key_args+=(--build-arg "$a"); done
  h="$(printf '%s %s' "$(hash_of "$dir" "$@")" "$key" | sha256sum | cut -c1-12)"
  if [ "$(image_hash "$tag")" = "$h" ]; then echo "cached|$tag"; return 0; fi
  local ctx="$CACHE/build/image-$name-${tag//[^A-Za-z0-9._-]/_}"
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp -a "$dir/." "$ctx/"
  local f
  # hard links: the build context lives on the same filesystem as the cache
  for f in "$@"; do cp -rlL "$f" "$ctx/" 2>/dev/null || cp -rL "$f" "$ctx/"; done
  log "docker build $tag"
  docker build -q --label "org.pgfleet.hash=$h" --build-arg "BASE_IMAGE=$base" \
    ${key_args[@]+"${key_args[@]}"} ${IMAGE_BUILD_ARGS[@]+"${IMAGE_BUILD_ARGS[@]}"} -t "$tag" "$ctx" >&2
  rm -rf "$ctx"
  # drop the superseded (now untagged) build of this image
  docker image prune -f --filter label=org.pgfleet.hash >/dev/null 2>&1 || true
  echo "built|$tag"
}

# step_postgres_image MAJOR TAG BASE: setup/images/postgres for one PostgreSQL major, on the
# base image of a Debian suite that packages it (15: bookworm, 17: trixie)
step_postgres_image() {
  IMAGE_BASE="$3"
  IMAGE_KEY_ARGS=("PG_MAJOR=$1")
  build_image postgres "$2" "$SETUP_DIR/images/shared/pgfleet-reload-on-change"
}

step_openbao_image() {
  local srv="$CACHE/build/openbao-image/server"
  rm -rf "$srv"; mkdir -p "$srv"
  if [ -x "$CACHE/bin/openbao/$OPENBAO_VERSION/bao" ]; then
    ln -f "$CACHE/bin/openbao/$OPENBAO_VERSION/bao" "$srv/bao"
    IMAGE_BUILD_ARGS=(--build-arg "SERVER_KIND=openbao-$OPENBAO_VERSION")
  elif [ -x "$CACHE/bin/vault/$VAULT_SERVER_VERSION/vault" ]; then
    ln -f "$CACHE/bin/vault/$VAULT_SERVER_VERSION/vault" "$srv/vault"
    install -m 0755 "$SETUP_DIR/bin/bao-compat.sh" "$srv/bao"
    IMAGE_BUILD_ARGS=(--build-arg "SERVER_KIND=hashicorp-vault-$VAULT_SERVER_VERSION+bao-compat")
  else
    echo "no Vault-API server binary built (step vaultserver)" >&2
    return 1
  fi
  build_image openbao "$PGFLEET_OPENBAO_IMAGE" "$srv"
}

step_versitygw_image() {
  local bin="$CACHE/bin/versitygw/$VERSITYGW_VERSION/versitygw"
  [ -x "$bin" ] || { echo "no versitygw binary built (step versitygw)" >&2; return 1; }
  local srv="$CACHE/build/versitygw-image/server"
  rm -rf "$srv"; mkdir -p "$srv"
  ln -f "$bin" "$srv/versitygw"
  IMAGE_BUILD_ARGS=(--build-arg "VERSITYGW_VERSION=$VERSITYGW_VERSION")
  build_image versitygw "$PGFLEET_VERSITYGW_IMAGE" "$srv"
}
