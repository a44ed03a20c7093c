#!/bin/bash
# SPDX-License-Identifier: MIT
# Private container engines for selftest-core's integration tests and benchmarks: a dockerd and a
# Podman API service on their own sockets, data dirs and configs under one directory this script
# creates, plus a small test image (python3, pytest, pytest-xdist, pytest-cov) built from the
# host's Debian packages without a registry, imported into both. See docs/containers.md for why
# each setting is there.
#
#   tools/engines/engines.sh up [DIR]     start both engines (DIR default: a new /tmp/st-eng-XXXXXX)
#                                          and print shell assignments: ST_ENGINES_DIR, DOCKER_SOCK,
#                                          PODMAN_SOCK, SWARM_SOCK, ST_IMAGE, ST_IMAGE_TAR (also in
#                                          DIR/env); DOCKER2_SOCK with ST_ENGINES naming docker2,
#                                          which also listens on DOCKER2_TLS_HOST (tcp://127.0.0.1:PORT,
#                                          TLS verifying clients: DOCKER_TLS_VERIFY=1 and
#                                          DOCKER_CERT_PATH=DOCKER2_CERT_PATH)
#   tools/engines/engines.sh down DIR     stop what `up` started in DIR, unmount, delete DIR
#   tools/engines/engines.sh status DIR   ping both engines
#   tools/engines/engines.sh restart DIR  start again an engine of DIR that died
#
# Environment: ST_ENGINES=docker,podman (which to start; docker2: a second private dockerd, for
# runs over several engines; "swarm" puts the dockerd in swarm mode as a single-node manager, on
# free ports of 127.0.0.1, and implies docker; `down` leaves it; "swarm2" adds a second dockerd in
# its own network namespace joined as a worker node, the manager then advertising its end of a
# veth pair; prints SWARM_WORKER_SOCK), ST_IMAGE (default selftest-py:test), ST_IMAGE_TAR_IN
# (load that image archive instead of building one).
# Needs root (dockerd, mounts). Installs docker.io podman runc curl openssl with apt-get when
# they are missing.
set -euo pipefail

IMAGE=${ST_IMAGE:-selftest-py:test}
ENGINES=${ST_ENGINES:-docker,podman}
[[ ",$ENGINES," == *",swarm2,"* && ",$ENGINES," != *",swarm,"* ]] && ENGINES="$ENGINES,swarm"
[[ ",$ENGINES," == *",swarm,"* && ",$ENGINES," != *",docker,"* ]] && ENGINES="$ENGINES,docker"
MARK=.selftest-engines

log() { printf 'engines: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

want() { [[ ",$ENGINES," == *",$1,"* ]]; }

api() { # api SOCK METHOD PATH [curl args...]: prints the body, fails on HTTP >= 400
    local sock=$1 method=$2 path=$3
    shift 3
    curl -sS --fail-with-body --max-time "${API_TIMEOUT:-120}" --unix-socket "$sock" \
        -X "$method" "http://d$path" "$@"
}

wait_ping() { # wait_ping SOCK NAME PID LOG
    local _
    for _ in $(seq 1 200); do
        if curl -s --max-time 2 --unix-socket "$1" http://d/_ping 2>/dev/null | grep -q OK; then
            return 0
        fi
        [[ -d /proc/$3 ]] || { tail -20 "$4" >&2; die "$2 exited during start (log: $4)"; }
        sleep 0.05
    done
    tail -20 "$4" >&2
    die "$2 did not answer on $1 within 10 s (log: $4)"
}

ensure_packages() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v podman >/dev/null || missing+=(podman)
    command -v runc >/dev/null || missing+=(runc)
    command -v curl >/dev/null || missing+=(curl)
    command -v openssl >/dev/null || missing+=(openssl)
    if ((${#missing[@]})); then
        [[ $(id -u) == 0 ]] || die "missing ${missing[*]} and not root: apt-get install ${missing[*]}"
        log "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2
    fi
}

# ---- docker -----------------------------------------------------------------------------------
# A throwaway CA, a server certificate for 127.0.0.1 and a client certificate (DIR/tls, the
# client's files as DOCKER_CERT_PATH wants them in DIR/tls/client), valid for two days; and a
# free port, in DIR/docker2.tlsport. Kept across restarts.
setup_tls() {
    local st=$1 t=$1/tls
    [[ -f $t/client/key.pem && -f $st/docker2.tlsport ]] && return 0
    rm -rf "$t"
    mkdir -p "$t/client"
    (
        cd "$t"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -days 2 \
            -subj /CN=selftest-test-ca
        openssl req -newkey rsa:2048 -nodes -keyout server-key.pem -out server.csr -subj /CN=127.0.0.1
        printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
            -out server-cert.pem -days 2 -extfile server.ext
        openssl req -newkey rsa:2048 -nodes -keyout client/key.pem -out client.csr -subj /CN=client
        printf 'extendedKeyUsage=clientAuth\n' >client.ext
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
            -out client/cert.pem -days 2 -extfile client.ext
        cp ca.pem client/ca.pem
    ) >"$st/tls.log" 2>&1 || die "certificates for docker2's TLS port failed: $(tail -5 "$st/tls.log")"
    free_port tcp >"$st/docker2.tlsport"
}

start_docker() { # start_docker DIR [NAME]: NAME docker (default) or docker2, each its own files
    local st=$1 n=${2:-docker} tls=()
    mkdir -p "$st/$n-data" "$st/$n-exec"
    if [[ $n == docker2 ]]; then # docker2 also answers on tcp://127.0.0.1 with TLS, verifying clients
        setup_tls "$st"
        tls=(--host "tcp://127.0.0.1:$(cat "$st/docker2.tlsport")" --tlsverify
            --tlscacert "$st/tls/ca.pem" --tlscert "$st/tls/server-cert.pem"
            --tlskey "$st/tls/server-key.pem")
    fi
    # own containerd socket dir under exec-root; no iptables, no bridge (none here), overlay2
    setsid dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=overlay2 \
        --host "unix://$st/$n.sock" "${tls[@]}" --data-root "$st/$n-data" \
        --exec-root "$st/$n-exec" --pidfile "$st/$n.pid" --userland-proxy=false \
        >"$st/${n}d.log" 2>&1 </dev/null &
    echo $! >"$st/${n}d.launcher.pid"
    wait_ping "$st/$n.sock" "${n}d" "$!" "$st/${n}d.log"
}

load_docker2_image() { # the image of the first engine, as an archive, into the second dockerd
    local st=$1
    api "$st/docker2.sock" POST /v1.41/images/load -H 'Content-Type: application/x-tar' \
        -T "$st/image.tar" >"$st/docker2-load.log" || die "docker2 load failed: $(cat "$st/docker2-load.log")"
}

# ---- swarm ------------------------------------------------------------------------------------
# Swarm mode on the private dockerd: a single-node manager advertising 127.0.0.1. The control port
# (default 2377) and the VXLAN data port (default 4789) are free ports picked here, so several
# private engines of this script on one host do not collide.
free_port() { # free_port tcp|udp: a port of 20000-49151 (swarm wants data ports below 49152)
    python3 -c 'import random, socket, sys
t = socket.SOCK_STREAM if sys.argv[1] == "tcp" else socket.SOCK_DGRAM
for _ in range(200):
    p = random.randint(20000, 49151)
    s = socket.socket(socket.AF_INET, t)
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
else:
    sys.exit("no free port")' "$1"
}

start_swarm() {
    local st=$1 state port dport addr=127.0.0.1
    state=$(api "$st/docker.sock" GET /v1.41/info |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["Swarm"]["LocalNodeState"])')
    [[ $state == active ]] && return 0 # a restart of this DIR: the swarm state is in the data root
    [[ -f $st/worker.net ]] && addr=$(sed -n 1p "$st/worker.net")
    port=$(free_port tcp)
    dport=$(free_port udp)
    api "$st/docker.sock" POST /v1.41/swarm/init -H 'Content-Type: application/json' \
        -d "{\"ListenAddr\":\"$addr:$port\",\"AdvertiseAddr\":\"$addr:$port\",\"DataPathPort\":$dport}" \
        >"$st/swarm-init.log" || die "swarm init failed: $(cat "$st/swarm-init.log")"
    touch "$st/.swarm"
    echo "$addr:$port" >"$st/swarm.addr"
    log "swarm: manager on $addr:$port (node $(tr -d '"' <"$st/swarm-init.log"))"
}

# The worker's network: a namespace and a veth pair on a free 10.x.y.0/30; DIR/worker.net holds
# the manager's address, the worker's, the namespace and the host end's name.
setup_worker_net() {
    local st=$1 ns h n a b used
    command -v ip >/dev/null || die "swarm2 needs ip (iproute2) for the worker's network namespace"
    ns=st-$(basename "$st" | tr -cd 'A-Za-z0-9-' | tail -c 20)
    h=stw$(printf '%s' "$st" | md5sum | cut -c1-8)
    n=${h}n
    h=${h}h
    used=$(ip -4 route show; ip -4 addr show)
    for _ in $(seq 1 50); do
        a=$((RANDOM % 50 + 200))
        b=$((RANDOM % 250 + 1))
        [[ $used == *"10.$a.$b."* ]] || break
    done
    ip netns add "$ns"
    ip link add "$h" type veth peer name "$n"
    ip link set "$n" netns "$ns"
    ip addr add "10.$a.$b.1/30" dev "$h"
    ip link set "$h" up
    ip netns exec "$ns" ip addr add "10.$a.$b.2/30" dev "$n"
    ip netns exec "$ns" ip link set "$n" up
    ip netns exec "$ns" ip link set lo up
    printf '%s\n%s\n%s\n%s\n' "10.$a.$b.1" "10.$a.$b.2" "$ns" "$h" >"$st/worker.net"
}

start_worker() { # a second dockerd in the namespace, the image loaded, joined as a worker
    local st=$1 ns ip2 token port
    ns=$(sed -n 3p "$st/worker.net")
    ip2=$(sed -n 2p "$st/worker.net")
    mkdir -p "$st/worker-data" "$st/worker-exec"
    # nsenter --net: only the network namespace changes (the same files at the same paths)
    setsid nsenter --net="/run/netns/$ns" dockerd --iptables=false --ip6tables=false \
        --bridge=none --storage-driver=overlay2 --host "unix://$st/worker.sock" \
        --data-root "$st/worker-data" --exec-root "$st/worker-exec" \
        --pidfile "$st/worker.pid" --userland-proxy=false >"$st/workerd.log" 2>&1 </dev/null &
    echo $! >"$st/workerd.launcher.pid"
    wait_ping "$st/worker.sock" "dockerd (worker)" "$!" "$st/workerd.log"
    api "$st/worker.sock" POST /v1.41/images/load -H 'Content-Type: application/x-tar' \
        -T "$st/image.tar" >"$st/worker-load.log" || die "loading the image into the worker failed"
    token=$(api "$st/docker.sock" GET /v1.41/swarm |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["JoinTokens"]["Worker"])')
    port=$(free_port tcp)
    api "$st/worker.sock" POST /v1.41/swarm/join -H 'Content-Type: application/json' \
        -d "{\"ListenAddr\":\"$ip2:$port\",\"AdvertiseAddr\":\"$ip2:$port\",\"RemoteAddrs\":[\"$(cat "$st/swarm.addr")\"],\"JoinToken\":\"$token\"}" \
        >"$st/swarm-join.log" || die "the worker could not join: $(cat "$st/swarm-join.log")"
    log "swarm: worker in network namespace $ns ($ip2) joined"
}

stop_worker() {
    local st=$1 ns h
    [[ -f $st/worker.net ]] || return 0
    if [[ -S $st/worker.sock ]]; then
        API_TIMEOUT=30 api "$st/worker.sock" POST '/v1.41/swarm/leave?force=1' >/dev/null 2>&1 || true
        API_TIMEOUT=20 api "$st/worker.sock" GET '/v1.41/containers/json?all=1' 2>/dev/null |
            python3 -c 'import json,sys; [print(c["Id"]) for c in json.load(sys.stdin)]' 2>/dev/null |
            while read -r id; do
                API_TIMEOUT=20 api "$st/worker.sock" DELETE "/v1.41/containers/$id?force=1&v=1" >/dev/null 2>&1 || true
            done
    fi
    stop_pid "$st/worker.pid" "dockerd (worker)"
    stop_pid "$st/workerd.launcher.pid" "dockerd (worker)"
    ns=$(sed -n 3p "$st/worker.net")
    h=$(sed -n 4p "$st/worker.net")
    ip link del "$h" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
}

stop_swarm() { # remove the services, then leave the swarm (the state goes with the data root)
    local st=$1
    [[ -f $st/.swarm && -S $st/docker.sock ]] || return 0
    API_TIMEOUT=20 api "$st/docker.sock" GET /v1.41/services 2>/dev/null |
        python3 -c 'import json,sys; [print(s["ID"]) for s in json.load(sys.stdin)]' 2>/dev/null |
        while read -r id; do
            API_TIMEOUT=20 api "$st/docker.sock" DELETE "/v1.41/services/$id" >/dev/null 2>&1 || true
        done
    API_TIMEOUT=30 api "$st/docker.sock" POST '/v1.41/swarm/leave?force=1' >/dev/null 2>&1 ||
        log "swarm leave failed (the data root goes anyway)"
}

# ---- podman -----------------------------------------------------------------------------------
write_podman_conf() {
    local st=$1 p=$1/podman
    mkdir -p "$p/tmp" "$p/volumes" "$p/storage" "$p/run" "$p/imgtmp"
    cat >"$p/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$p/storage"
runroot = "$p/run"
EOF
    cat >"$p/containers.conf" <<EOF
[containers]
netns = "none"
log_driver = "k8s-file"
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=4096:4096"]

[engine]
runtime = "runc"
init_path = "$(init_binary)"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$p/events.log"
tmp_dir = "$p/tmp"
volume_path = "$p/volumes"
image_copy_tmp_dir = "$p/imgtmp"
conmon_env_vars = ["CONTAINERS_CONF=$p/containers.conf", "CONTAINERS_STORAGE_CONF=$p/storage.conf", "TMPDIR=$p/tmp"]
EOF
}

init_binary() { # what podman runs as PID 1 for Init=true: catatonit, else tini
    local b
    for b in /usr/libexec/podman/catatonit /usr/bin/catatonit /usr/bin/tini-static /usr/bin/tini \
        /usr/bin/docker-init; do
        [[ -x $b ]] && { echo "$b"; return; }
    done
    echo /usr/libexec/podman/catatonit
}

start_podman() {
    local st=$1 p=$1/podman
    write_podman_conf "$st"
    CONTAINERS_CONF=$p/containers.conf CONTAINERS_STORAGE_CONF=$p/storage.conf TMPDIR=$p/tmp \
        setsid podman system service --time=0 "unix://$st/podman.sock" \
        >"$st/podman.log" 2>&1 </dev/null &
    echo $! >"$st/podman.pid"
    wait_ping "$st/podman.sock" "podman system service" "$!" "$st/podman.log"
}

# ---- the test image ---------------------------------------------------------------------------
# "host copy": the files of the installed Debian packages and their dependency closure, /bin and
# /lib* mapped into /usr (merged-usr), the .pyc files Debian compiled, minimal passwd/group.
build_rootfs() {
    local root=$1 list=$1.files
    mkdir -p "$root"
    python3 - "$list" <<'EOF'
import os, re, subprocess, sys
want = ["python3", "python3-pytest", "python3-pytest-xdist", "python3-pytest-cov", "dash",
        "libc-bin"]
def installed(p):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True)
    return r.returncode == 0 and "install ok installed" in r.stdout
def deps(p):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Depends},${Pre-Depends}", p],
                       capture_output=True, text=True)
    out = []
    for alt in r.stdout.split(","):
        alt = alt.strip()
        if not alt:
            continue
        names = [re.split(r"[ (:]", a.strip())[0] for a in alt.split("|")]
        names = [n for n in names if n]
        pick = next((n for n in names if installed(n)), None)
        if pick is None:  # a virtual package: whoever provides it
            for n in names:
                q = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Provides}\n"],
                                   capture_output=True, text=True).stdout
                for line in q.splitlines():
                    pkg, _, prov = line.partition(" ")
                    if re.search(r"(^|, )%s( |,|$)" % re.escape(n), prov) and installed(pkg):
                        pick = pkg
                        break
                if pick:
                    break
        if pick:
            out.append(pick)
    return out
seen, todo = set(), list(want)
while todo:
    p = todo.pop()
    if p in seen or not installed(p):
        continue
    seen.add(p)
    todo.extend(deps(p))
files = set()
for p in sorted(seen):
    r = subprocess.run(["dpkg", "-L", p], capture_output=True, text=True)
    for f in r.stdout.splitlines():
        if f.startswith("/usr/share/doc") or f.startswith("/usr/share/man") or \
                f.startswith("/usr/share/locale") or f.startswith("/usr/share/info"):
            continue
        f = re.sub(r"^/(bin|sbin|lib|lib64|lib32|libx32)/", r"/usr/\1/", f)
        if os.path.lexists(f) and not os.path.isdir(f) or os.path.islink(f):
            files.add(f)
# the .pyc files Debian compiled at install time
dirs = {os.path.dirname(f) for f in files if f.endswith(".py")}
for d in dirs:
    c = os.path.join(d, "__pycache__")
    if os.path.isdir(c):
        for n in os.listdir(c):
            if n.endswith(".pyc") and "cpython-311" in n:
                files.add(os.path.join(c, n))
with open(sys.argv[1], "w") as fh:
    for f in sorted(files):
        fh.write(f.lstrip("/") + "\n")
print(len(seen), "packages,", len(files), "files", file=sys.stderr)
EOF
    for d in bin sbin lib lib64; do
        mkdir -p "$root/usr/$d"
        ln -sfn "usr/$d" "$root/$d"
    done
    tar -C / --no-recursion -cf - -T "$list" | tar -C "$root" -xf -
    mkdir -p "$root/tmp" "$root/etc" "$root/root" "$root/proc" "$root/sys" "$root/dev" "$root/run"
    chmod 1777 "$root/tmp"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' \
        >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    ln -sfn /usr/bin/dash "$root/usr/bin/sh" 2>/dev/null || true
    : >"$root/etc/ld.so.conf"
    mkdir -p "$root/etc/ld.so.conf.d"
    cp /etc/ld.so.conf.d/*.conf "$root/etc/ld.so.conf.d/" 2>/dev/null || true
    printf 'include /etc/ld.so.conf.d/*.conf\n' >"$root/etc/ld.so.conf"
    ldconfig -r "$root" 2>/dev/null || true
}

build_image() {
    local st=$1 root=$1/rootfs
    [[ -f $st/image.tar ]] && return 0
    if [[ -n ${ST_IMAGE_TAR_IN:-} ]]; then # reuse an image another `up` built
        cp "$ST_IMAGE_TAR_IN" "$st/image.tar"
        if want docker; then
            api "$st/docker.sock" POST /v1.41/images/load -H 'Content-Type: application/x-tar' \
                -T "$st/image.tar" >"$st/docker-load.log" || die "docker load failed"
        fi
        return 0
    fi
    local t0=$SECONDS
    build_rootfs "$root"
    tar -C "$root" -cf "$st/rootfs.tar" .
    rm -rf "$root" "$root.files"
    local repo=${IMAGE%%:*} tag=${IMAGE##*:}
    local changes
    changes=$(python3 -c 'import urllib.parse; print(urllib.parse.quote("ENV PATH=/usr/local/bin:/usr/bin:/bin"))')
    if want docker; then
        api "$st/docker.sock" POST "/v1.41/images/create?fromSrc=-&repo=$repo&tag=$tag&changes=$changes" \
            -H 'Content-Type: application/x-tar' -T "$st/rootfs.tar" >"$st/import.log"
        grep -q '"error' "$st/import.log" && die "docker import failed: $(cat "$st/import.log")"
        # the same image as a `docker save` archive: podman loads it, and offline tests use it
        api "$st/docker.sock" GET "/v1.41/images/$IMAGE/get" -o "$st/image.tar"
    else # podman only: libpod import, then a docker-archive for the offline tests
        api "$st/podman.sock" POST "/v4.0.0/libpod/images/import?reference=$IMAGE&changes=$changes" \
            -H 'Content-Type: application/x-tar' -T "$st/rootfs.tar" >"$st/import.log" ||
            die "podman import failed: $(cat "$st/import.log")"
        api "$st/podman.sock" GET "/v4.0.0/libpod/images/$IMAGE/get?format=docker-archive" \
            -o "$st/image.tar"
        touch "$st/.image-in-podman"
    fi
    rm -f "$st/rootfs.tar"
    log "image $IMAGE built in $((SECONDS - t0)) s ($(du -h "$st/image.tar" | cut -f1))"
}

load_podman_image() {
    local st=$1
    [[ -f $st/.image-in-podman ]] && return 0
    api "$st/podman.sock" POST "/v4.0.0/libpod/images/load" -H 'Content-Type: application/x-tar' \
        -T "$st/image.tar" >"$st/podman-load.log" || die "podman load failed: $(cat "$st/podman-load.log")"
}

smoke_test() { # smoke_test SOCK NAME: create, start, wait, logs, remove
    local sock=$1 name=$2 id code
    local code_py='import ssl, sqlite3, ctypes, lzma, zlib, pyexpat, hashlib, xdist, pytest_cov, pytest; print("smoke ok", pytest.__version__)'
    id=$(api "$sock" POST /v1.41/containers/create -H 'Content-Type: application/json' \
        -d "$(python3 -c 'import json,sys; print(json.dumps({"Image": sys.argv[1], "Cmd": ["python3", "-c", sys.argv[2]], "HostConfig": {"NetworkMode": "none"}}))' "$IMAGE" "$code_py")" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["Id"])')
    api "$sock" POST "/v1.41/containers/$id/start" >/dev/null
    code=$(api "$sock" POST "/v1.41/containers/$id/wait" | python3 -c 'import json,sys; print(json.load(sys.stdin)["StatusCode"])')
    local out
    out=$(api "$sock" GET "/v1.41/containers/$id/logs?stdout=1&stderr=1" | tr -d '\000-\010')
    api "$sock" DELETE "/v1.41/containers/$id?force=1" >/dev/null
    [[ $code == 0 && $out == *"smoke ok"* ]] || die "$name: the image does not work: exit $code: $out"
    log "$name: $(echo "$out" | grep -a 'smoke ok' | tr -cd '[:print:]')"
}

cmd_up() {
    [[ $(id -u) == 0 ]] || die "needs root (dockerd and overlay mounts)"
    ensure_packages
    local st=${1:-}
    if [[ -z $st ]]; then
        st=$(mktemp -d /tmp/st-eng-XXXXXX)
    else
        mkdir -p "$st"
        st=$(cd "$st" && pwd)
    fi
    touch "$st/$MARK"
    ((${#st} < 60)) || die "$st is too long for the unix socket paths under it"
    want docker && start_docker "$st"
    want docker2 && start_docker "$st" docker2
    want podman && start_podman "$st"
    build_image "$st"
    want docker && smoke_test "$st/docker.sock" docker
    if want docker2; then
        load_docker2_image "$st"
        smoke_test "$st/docker2.sock" docker2
    fi
    want swarm2 && setup_worker_net "$st"
    want swarm && start_swarm "$st"
    want swarm2 && start_worker "$st"
    if want podman; then
        load_podman_image "$st"
        smoke_test "$st/podman.sock" podman
    fi
    {
        echo "ST_ENGINES_DIR=$st"
        want docker && echo "DOCKER_SOCK=$st/docker.sock"
        want docker2 && echo "DOCKER2_SOCK=$st/docker2.sock"
        want docker2 && echo "DOCKER2_TLS_HOST=tcp://127.0.0.1:$(cat "$st/docker2.tlsport")"
        want docker2 && echo "DOCKER2_CERT_PATH=$st/tls/client"
        want podman && echo "PODMAN_SOCK=$st/podman.sock"
        want swarm && echo "SWARM_SOCK=$st/docker.sock"
        want swarm2 && echo "SWARM_WORKER_SOCK=$st/worker.sock"
        echo "ST_IMAGE=$IMAGE"
        echo "ST_IMAGE_TAR=$st/image.tar"
    } | tee "$st/env"
}

stop_pid() { # stop_pid PIDFILE NAME: SIGTERM, then SIGKILL after 15 s; only that process
    local f=$1 pid _
    [[ -f $f ]] || return 0
    pid=$(cat "$f")
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 150); do
        alive "$f" || return 0
        sleep 0.1
    done
    log "$2 ($pid) did not stop: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

alive() { # alive PIDFILE: the process runs (a zombie nobody reaped does not count)
    local pid state
    [[ -f $1 ]] || return 1
    pid=$(cat "$1")
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/stat ]] || return 1
    state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
    [[ -n $state && $state != Z ]]
}

# Starts again an engine of DIR that died (or was killed by a test): dockerd then stops the
# containers it left (no live-restore), and podman's can be removed through the API again.
cmd_restart() {
    local st=${1:?usage: engines.sh restart DIR}
    st=$(cd "$st" && pwd)
    [[ -f $st/$MARK ]] || die "$st was not made by engines.sh up"
    local n
    for n in docker docker2; do
        if [[ -d $st/$n-data ]] && ! alive "$st/$n.pid" && ! alive "$st/${n}d.launcher.pid"; then
            log "restarting ${n}d in $st"
            # dockerd refuses a pid file whose process (a zombie nobody reaped) exists, and waits
            # for the containerd of a containerd.pid that is a zombie until it times out
            rm -f "$st/$n.pid"
            alive "$st/$n-exec/containerd/containerd.pid" || rm -f "$st/$n-exec/containerd/containerd.pid"
            start_docker "$st" "$n"
        fi
    done
    if [[ -d $st/podman ]] && ! alive "$st/podman.pid"; then
        log "restarting podman system service in $st"
        start_podman "$st"
    fi
}

cmd_down() {
    local st=${1:?usage: engines.sh down DIR}
    st=$(cd "$st" 2>/dev/null && pwd) || { log "$1: no such directory"; return 0; }
    [[ -f $st/$MARK ]] || die "$st was not made by engines.sh up: not touching it"
    local s
    cmd_restart "$st" || log "could not restart a dead engine: its containers may be left running"
    stop_swarm "$st"
    stop_worker "$st"
    for s in docker docker2 podman; do # remove what is left in the private engines
        [[ -S $st/$s.sock ]] || continue
        api "$st/$s.sock" GET '/v1.41/containers/json?all=1' 2>/dev/null |
            python3 -c 'import json,sys; [print(c["Id"]) for c in json.load(sys.stdin)]' 2>/dev/null |
            while read -r id; do
                API_TIMEOUT=20 api "$st/$s.sock" DELETE "/v1.41/containers/$id?force=1&v=1" >/dev/null 2>&1 || true
            done
    done
    stop_pid "$st/podman.pid" "podman system service"
    stop_pid "$st/docker.pid" dockerd
    stop_pid "$st/dockerd.launcher.pid" dockerd
    stop_pid "$st/docker2.pid" docker2d
    stop_pid "$st/docker2d.launcher.pid" docker2d
    # unmount everything under DIR, deepest first (dockerd leaves its data root bind-mounted)
    local m
    while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cannot unmount $m"
    done < <(awk -v d="$st/" 'index($2, d) == 1 || $2 == substr(d, 1, length(d) - 1) { print $2 }' /proc/self/mounts | sort -r)
    rm -rf --one-file-system "$st"
    log "stopped and removed $st"
}

cmd_status() {
    local st=${1:?usage: engines.sh status DIR} s
    for s in docker docker2 podman; do
        if [[ -S $st/$s.sock ]]; then
            printf '%s: %s\n' "$s" "$(curl -s --max-time 3 --unix-socket "$st/$s.sock" http://d/_ping || echo down)"
        fi
    done
    if [[ -f $st/.swarm && -S $st/docker.sock ]]; then
        printf 'swarm: %s\n' "$(curl -s --max-time 3 --unix-socket "$st/docker.sock" http://d/v1.41/info |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["Swarm"]["LocalNodeState"])' 2>/dev/null || echo down)"
    fi
}

case ${1:-} in
up) shift; cmd_up "$@" ;;
down) shift; cmd_down "$@" ;;
status) shift; cmd_status "$@" ;;
restart) shift; cmd_restart "$@" ;;
*) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
