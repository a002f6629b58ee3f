#!/usr/bin/env bash
# The workshop's steps (notebooks 00-04) done with the plain docker CLI, openssl, htpasswd and
# curl: the baseline that benchmarks/bench.py compares the notebooks with. It is also a compact
# reference of what each stage does by hand.
#   usage: benchmarks/workshop-cli.sh [PORT] [WORKDIR]
set -euo pipefail
PORT="${1:-5000}"
WORK="${2:-$(mktemp -d)}"
NAME=reglab-cli-baseline
REG="127.0.0.1:$PORT"
export DOCKER_CONFIG="$WORK/docker-config"   # docker login writes here, not to ~/.docker
mkdir -p "$WORK" "$DOCKER_CONFIG"
q() { local out; out=$("$@" 2>&1) || { printf '%s\n' "$out" >&2; return 1; }; }  # quiet unless it fails

wait_ready() {  # poll GET /v2/ until it answers 200 or 401 (curl args after the URL)
  local url="$1"; shift
  until code=$(curl -s -o /dev/null -w '%{http_code}' "$@" "$url") && [[ $code =~ ^(200|401)$ ]]; do
    sleep 0.01
  done
}
cleanup() {
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  docker rmi "$REG/hello-world" "$GATEWAY:$PORT/hello-world" >/dev/null 2>&1 || true
  rm -rf "/etc/docker/certs.d/$GATEWAY:$PORT"
  docker network rm reglab-cli-net >/dev/null 2>&1 || true
}
GATEWAY=none
trap cleanup EXIT

# 00 preflight
q docker info
docker run --rm hello-world | grep -q "Hello from Docker!"

# 01 local
q docker run -d --name "$NAME" -p "$REG:5000" registry:2
wait_ready "http://$REG/v2/"
docker tag hello-world "$REG/hello-world"
q docker push "$REG/hello-world"
q docker rmi "$REG/hello-world" hello-world
q docker pull "$REG/hello-world"
docker tag "$REG/hello-world" hello-world
curl -sf "http://$REG/v2/_catalog" | grep -q hello-world
digest() {  # digest of a tag, as the registry serves it (curl args after repo and tag)
  local repo="$1" tag="$2"; shift 2
  curl -sfI "$@" -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "$REG_URL/v2/$repo/manifests/$tag" | tr -d '\r' | awk 'tolower($1)=="docker-content-digest:" {print $2}'
}
REG_URL="http://$REG"
docker tag hello-world "$REG/my-first/hello:v1"                     # exercise: a second name
q docker push "$REG/my-first/hello:v1"
[ "$(digest my-first/hello v1)" = "$(digest hello-world latest)" ]
q docker rmi "$REG/my-first/hello:v1"
q docker rm -f "$NAME"

# 02 persistent
mkdir -p "$WORK/registry-data"
DATA=(-v "$WORK/registry-data:/var/lib/registry")
q docker run -d --name "$NAME" -p "$REG:5000" "${DATA[@]}" registry:2
wait_ready "http://$REG/v2/"
q docker push "$REG/hello-world"
q docker rm -f "$NAME"
q docker run -d --name "$NAME" -p "$REG:5000" "${DATA[@]}" registry:2
wait_ready "http://$REG/v2/"
[ -n "$(digest hello-world latest)" ]
docker tag hello-world "$REG/survivor/hello:v2"                     # exercise: it survives
q docker push "$REG/survivor/hello:v2"
q docker rm -f "$NAME"
q docker run -d --name "$NAME" -p "$REG:5000" "${DATA[@]}" registry:2
wait_ready "http://$REG/v2/"
[ -n "$(digest survivor/hello v2)" ]
q docker rmi "$REG/survivor/hello:v2"
q docker rm -f "$NAME"

# 03 TLS: a CA, a server certificate with SANs, HTTPS, trust for a non-loopback address
q docker network create reglab-cli-net
GATEWAY=$(docker network inspect reglab-cli-net -f '{{(index .IPAM.Config 0).Gateway}}')
mkdir -p "$WORK/certs" "$WORK/ca"
q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 730 \
  -subj "/CN=workshop CA" -keyout "$WORK/ca/ca.key" -out "$WORK/certs/ca.crt"
q openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout "$WORK/certs/domain.key" -out "$WORK/domain.csr"
q openssl x509 -req -in "$WORK/domain.csr" -CA "$WORK/certs/ca.crt" -CAkey "$WORK/ca/ca.key" \
  -days 365 -out "$WORK/certs/domain.crt" \
  -extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1,IP:%s' "$GATEWAY")
chmod 600 "$WORK/certs/domain.key" "$WORK/ca/ca.key"
TLS=(-v "$WORK/certs/domain.crt:/certs/domain.crt:ro" -v "$WORK/certs/domain.key:/certs/domain.key:ro"
     -e REGISTRY_HTTP_TLS_CERTIFICATE=/certs/domain.crt -e REGISTRY_HTTP_TLS_KEY=/certs/domain.key)
q docker run -d --name "$NAME" -p "$REG:5000" -p "$GATEWAY:$PORT:5000" --restart unless-stopped \
  "${DATA[@]}" "${TLS[@]}" registry:2
wait_ready "https://$REG/v2/" -k
! curl -s "https://$REG/v2/" >/dev/null                       # refused without the CA
curl -sf --cacert "$WORK/certs/ca.crt" "https://$REG/v2/" >/dev/null
q docker push "$REG/hello-world"
docker tag hello-world "$GATEWAY:$PORT/hello-world"
{ docker push "$GATEWAY:$PORT/hello-world" 2>&1 || true; } | grep -q "certificate signed by unknown authority"
mkdir -p "/etc/docker/certs.d/$GATEWAY:$PORT"
cp "$WORK/certs/ca.crt" "/etc/docker/certs.d/$GATEWAY:$PORT/ca.crt"
q docker push "$GATEWAY:$PORT/hello-world"
curl -sf --cacert "$WORK/certs/ca.crt" "https://localhost:$PORT/v2/hello-world/tags/list" >/dev/null  # exercise
rm -rf "/etc/docker/certs.d/$GATEWAY:$PORT"
q docker rm -f "$NAME"
q docker network rm reglab-cli-net

# 04 basic auth
PASSWORD=$(openssl rand -base64 18)
mkdir -p "$WORK/auth"
htpasswd -Bbc -C 5 "$WORK/auth/htpasswd" moby "$PASSWORD" 2>/dev/null
q docker run -d --name "$NAME" -p "$REG:5000" --restart unless-stopped "${DATA[@]}" "${TLS[@]}" \
  -v "$WORK/auth:/auth:ro" -e REGISTRY_AUTH=htpasswd -e "REGISTRY_AUTH_HTPASSWD_REALM=Registry Realm" \
  -e REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd registry:2
wait_ready "https://$REG/v2/" -k
CA=(--cacert "$WORK/certs/ca.crt")
[ "$(curl -s -o /dev/null -w '%{http_code}' "${CA[@]}" "https://$REG/v2/")" = 401 ]
[ "$(curl -s -o /dev/null -w '%{http_code}' "${CA[@]}" -u moby:wrong "https://$REG/v2/")" = 401 ]
[ "$(curl -s -o /dev/null -w '%{http_code}' "${CA[@]}" -u "moby:$PASSWORD" "https://$REG/v2/")" = 200 ]
{ docker push "$REG/hello-world" 2>&1 || true; } | grep -q "no basic auth credentials"
echo "$PASSWORD" | q docker login "$REG" --username moby --password-stdin
q docker push "$REG/hello-world"
q docker rmi "$REG/hello-world"
q docker pull "$REG/hello-world"
ALICE=$(openssl rand -base64 18)                                   # exercise: a second user
htpasswd -Bb -C 5 "$WORK/auth/htpasswd" alice "$ALICE" 2>/dev/null
[ "$(curl -s -o /dev/null -w '%{http_code}' "${CA[@]}" -u "alice:$ALICE" "https://$REG/v2/")" = 200 ]
q docker logout "$REG"
echo "workshop steps done with the plain CLI"
