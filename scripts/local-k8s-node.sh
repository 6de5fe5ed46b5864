# shellcheck shell=bash
# The node of `scripts/local-k8s up --kubelet`: sourced by scripts/local-k8s (not run alone).
#
# Everything runs inside a network namespace of the cluster's own (echelon-<id>): etcd, the
# API server, controller-manager, scheduler, containerd (+ runc, CNI bridge), the kubelet and
# scripts/local-k8s-services (Service ClusterIPs and cluster DNS, instead of kube-proxy and
# CoreDNS). The namespace has no route out: traffic stays inside it. `down` undoes what `up`
# changed on the machine (see node_down), and checks it did.

NODE_PACKAGES=(containerd runc containernetworking-plugins)
NODE_ROOT="$CACHE_ROOT/node/root"     # the Debian packages, unpacked (dpkg -x), not installed
NODE_IMAGES="$CACHE_ROOT/node/images" # pause and busybox archives (scripts/build-images --node)
NODE_NAME=local-k8s-node
NODE_IP=10.88.255.1
POD_SUBNET=10.88.0.0/24
SERVICE_RANGE=10.96.0.0/16
KUBERNETES_SVC_IP=10.96.0.1
DNS_IP=10.96.0.10
CLUSTER_DOMAIN=cluster.local
NS_API_PORT=6443
NODE_READY_TIMEOUT="${ECHELON_NODE_READY_TIMEOUT:-180}"
# sysctls the kubelet rewrites (vm.overcommit_memory 0->1, kernel.panic, kernel.panic_on_oops)
NODE_SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops)
# machine paths containerd, CNI and the kubelet use whatever their settings: removed by `down`
# when `up` found them missing
# /var/lib/kubelet: the kubelet opens its device-plugin socket in /var/lib/kubelet/device-plugins
# whatever its --root-dir (a path compiled in)
NODE_MACHINE_PATHS=(/run/containerd /var/lib/cni /var/log/pods /var/log/containers /run/netns
                    /var/lib/kubelet)

have_node_packages() {
    [[ -x "$NODE_ROOT/usr/bin/containerd" && -x "$NODE_ROOT/usr/sbin/runc" \
        && -x "$NODE_ROOT/usr/lib/cni/bridge" && -x "$NODE_ROOT/usr/bin/containerd-shim-runc-v2" ]]
}

ensure_node_packages() {
    # apt-get download + dpkg -x into the cache: nothing is installed system-wide
    have_node_packages && return 0
    local tmp="$CACHE_ROOT/node/download.$$" deb
    rm -rf "$tmp" "$NODE_ROOT.tmp"
    mkdir -p "$tmp" "$NODE_ROOT.tmp"
    log "apt-get download ${NODE_PACKAGES[*]} (unpacked into $NODE_ROOT)"
    # apt's sandbox user cannot write into root's cache: download as the caller
    (cd "$tmp" && apt-get -o APT::Sandbox::User=root download "${NODE_PACKAGES[@]}")
    for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$NODE_ROOT.tmp"; done
    (cd "$tmp" && ls ./*.deb) >"$NODE_ROOT.tmp/PACKAGES"
    rm -rf "$NODE_ROOT" && mv "$NODE_ROOT.tmp" "$NODE_ROOT"
    rm -rf "$tmp"
}

node_check() {
    # Can this machine run containers? Prints the reason and fails when it cannot.
    local why=""
    if [[ $(id -u) -ne 0 ]]; then
        why="needs root (network namespaces, mounts, cgroups)"
    elif ! command -v ip >/dev/null || ! command -v nsenter >/dev/null; then
        why="needs ip (iproute2) and nsenter (util-linux)"
    elif ! unshare --net --mount true 2>/dev/null; then
        why="cannot create network and mount namespaces (unshare --net --mount)"
    elif ! unshare --mount sh -c 't=$(mktemp -d) && mkdir $t/l $t/u $t/w $t/m &&
            mount -t overlay overlay -o lowerdir=$t/l,upperdir=$t/u,workdir=$t/w $t/m &&
            umount $t/m; rc=$?; rm -rf $t; exit $rc' 2>/dev/null; then
        why="cannot mount overlayfs (containerd's snapshotter)"
    elif ! grep -q '^cgroup ' /proc/mounts && ! grep -q '^cgroup2 /sys/fs/cgroup ' /proc/mounts; then
        why="no cgroup file system mounted"
    else
        local probe="/sys/fs/cgroup/memory/echelon-probe-$$"
        [[ -d /sys/fs/cgroup/memory ]] || probe="/sys/fs/cgroup/echelon-probe-$$"
        if ! mkdir "$probe" 2>/dev/null; then
            why="cgroups are not writable ($probe)"
        else
            rmdir "$probe"
        fi
    fi
    if [[ -n "$why" ]]; then
        echo "this machine cannot run containers: $why"
        return 1
    fi
    echo "ok"
}

# -------------------------------------------------------------------------------- helpers

node_netns() { cat "$DIR/node/netns" 2>/dev/null; }
in_ns() { nsenter --net="/run/netns/$(node_netns)" -- "$@"; }
node_kubectl() { in_ns "$KUBECTL" --kubeconfig="$DIR/kubeconfig" "$@"; }

cgroup_hierarchies() {
    # the mount point of every cgroup hierarchy (v1 controllers, named ones, the unified one)
    awk '$3 == "cgroup" || $3 == "cgroup2" {print $2}' /proc/mounts | sort -u
}

mounts_under() {
    # mount points at or below each argument, deepest first (from /proc/self/mountinfo,
    # whose field 5 is the mount point, octal-escaped)
    local prefix
    for prefix in "$@"; do
        awk -v p="$prefix" '{m=$5; gsub(/\\040/, " ", m); if (m == p || index(m, p "/") == 1) print m}' \
            /proc/self/mountinfo
    done | awk '{print length($0) " " $0}' | sort -rn | cut -d' ' -f2-
}

node_openssl() {
    # the CA signs the API server's serving cert (the in-cluster clients verify it with the
    # ServiceAccount's ca.crt) and its client cert for the kubelet (logs, exec)
    local d="$DIR"
    cat >"$d/apiserver.ext" <<EOF
subjectAltName=IP:127.0.0.1,IP:$NODE_IP,IP:$KUBERNETES_SVC_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN
extendedKeyUsage=serverAuth
EOF
    printf 'extendedKeyUsage=clientAuth\n' >"$d/client.ext"
    (
        cd "$d"
        openssl genrsa -out sa.key 2048
        openssl rsa -in sa.key -pubout -out sa.pub
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 365 \
            -subj /CN=echelon-local-ca
        openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
            -subj /CN=kube-apiserver
        openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
            -out apiserver.crt -days 365 -extfile apiserver.ext
        openssl req -newkey rsa:2048 -nodes -keyout apiserver-kubelet-client.key \
            -out apiserver-kubelet-client.csr -subj "/O=system:masters/CN=kube-apiserver-kubelet-client"
        openssl x509 -req -in apiserver-kubelet-client.csr -CA ca.crt -CAkey ca.key \
            -CAcreateserial -out apiserver-kubelet-client.crt -days 365 -extfile client.ext
    )
}

write_node_kubeconfig() {
    local token="$1"
    # (the daemons must not inherit a 077 umask: containerd would unpack images unreadable)
    (umask 077 && cat >"$DIR/kubeconfig") <<EOF
apiVersion: v1
kind: Config
clusters:
- name: echelon-local
  cluster:
    server: https://127.0.0.1:$NS_API_PORT
    certificate-authority: $DIR/ca.crt
users:
- name: admin
  user:
    token: $token
contexts:
- name: echelon-local
  context:
    cluster: echelon-local
    user: admin
    namespace: default
current-context: echelon-local
EOF
}

write_containerd_config() {
    local n="$DIR/node" pause_name
    pause_name=$(<"$NODE_IMAGES/pause.name")
    cat >"$n/containerd.toml" <<EOF
version = 2
root = "$n/containerd/root"
state = "$n/containerd/state"
[grpc]
  address = "$n/containerd.sock"
[ttrpc]
  address = "$n/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$n/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  # the sandbox may lack CAP_SYS_RESOURCE: runc would fail writing oom_score_adj
  restrict_oom_score_adj = true
  sandbox_image = "$pause_name"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$NODE_ROOT/usr/lib/cni"
    conf_dir = "$n/cni/conf"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$NODE_ROOT/usr/sbin/runc"
        Root = "$n/runc"
EOF
    mkdir -p "$n/cni/conf" "$n/cni/ipam"
    cat >"$n/cni/conf/10-echelon.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "echelon",
 "plugins": [
  {"type": "bridge", "bridge": "ech-$(<"$n/id")", "isGateway": true, "ipMasq": false,
   "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$n/cni/ipam",
            "ranges": [[{"subnet": "$POD_SUBNET"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "loopback"}
 ]}
EOF
}

write_kubelet_config() {
    local n="$DIR/node"
    printf 'nameserver %s\noptions ndots:1\n' "$DNS_IP" >"$n/resolv.conf"
    cat >"$n/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: /$(<"$n/netns")
failSwapOn: false
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $DIR/ca.crt}
authorization: {mode: Webhook}
makeIPTablesUtilChains: false
# the sandbox may lack CAP_SYS_RESOURCE
oomScoreAdj: 0
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
# the images are imported, never pulled: never garbage-collect them
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
resolvConf: $n/resolv.conf
clusterDNS: [$DNS_IP]
clusterDomain: $CLUSTER_DOMAIN
# how often mounted ConfigMaps are refreshed, at most (the default is 1m)
syncFrequency: 10s
volumePluginDir: $n/volume-plugins
serializeImagePulls: false
EOF
    # from 1.35 the kubelet refuses a cgroup v1 host unless told (the field exists from 1.31)
    if ((K8S_MINOR >= 31)) && ! grep -q '^cgroup2 /sys/fs/cgroup ' /proc/mounts; then
        echo "failCgroupV1: false" >>"$n/kubelet.yaml"
    fi
}

node_record_machine() {
    # what `down` must give back: sysctls, which machine paths exist, /run/netns mounted or not
    local n="$DIR/node" s p
    : >"$n/sysctls.before"
    for s in "${NODE_SYSCTLS[@]}"; do echo "$s=$(sysctl -n "$s")" >>"$n/sysctls.before"; done
    : >"$n/paths.before"
    : >"$n/entries.before"
    for p in "${NODE_MACHINE_PATHS[@]}"; do
        [[ -e "$p" ]] || continue
        echo "$p" >>"$n/paths.before"
        # what is in it (pod log dirs, CNI results, shim sockets): ours are what is new
        find "$p" -mindepth 1 -maxdepth 2 >>"$n/entries.before" 2>/dev/null || true
    done
    if mountpoint -q /run/netns 2>/dev/null; then echo 1; else echo 0; fi >"$n/netns-mounted.before"
    ls /run/netns 2>/dev/null >"$n/netns-entries.before" || true
}

import_images() {
    local f
    for f in "$@"; do
        [[ -f "$f" ]] || continue
        in_ns "$NODE_ROOT/usr/bin/ctr" --address "$DIR/node/containerd.sock" -n k8s.io images \
            import --no-unpack=false "$f" >>"$DIR/node/images.log" 2>&1 \
            || up_failed "ctr images import $f failed (see $DIR/node/images.log)"
        echo "$f" >>"$DIR/node/images.imported"
    done
}

node_ready() {
    [[ "$(node_kubectl get node "$NODE_NAME" \
        -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

node_up_failed() {
    local name
    echo "local-k8s: $1" >&2
    for name in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet services; do
        if [[ -s "$DIR/$name.log" ]]; then
            echo "---- last lines of $DIR/$name.log" >&2
            tail -n 15 "$DIR/$name.log" >&2
        fi
    done
    node_down || true
    exit 1
}

# -------------------------------------------------------------------------------- up

cmd_up_kubelet() {
    # DIR is set and empty of a running cluster; IMAGES_DIRS may name more archives
    local why
    why=$(node_check) || die "$why"
    have_binaries || die "no binaries in $BIN_DIR: run scripts/local-k8s build first"
    have_node_packages || die "no containerd/runc/CNI in $NODE_ROOT: run scripts/local-k8s build first"
    local etcd_bin
    etcd_bin=$(etcd_binary)
    local start=$SECONDS
    ECHELON_K8S_VERSION="$K8S_VERSION" "$SCRIPT_DIR/build-images" --node --out "$NODE_IMAGES" \
        >"$DIR/node-images.log" 2>&1 \
        || { cat "$DIR/node-images.log" >&2; die "scripts/build-images --node failed"; }
    local n="$DIR/node" id ns
    umask 022
    mkdir -p "$n" "$DIR/certs" "$DIR/etcd"
    chmod 700 "$DIR"
    id=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
    ns="echelon-$id"
    echo "$id" >"$n/id"
    echo "$ns" >"$n/netns"
    node_record_machine
    # up_failed (used by the shared code) tears the node down too from here on
    up_failed() { node_up_failed "$@"; }

    ip netns add "$ns" || up_failed "ip netns add $ns failed"
    local NSENTER=(nsenter "--net=/run/netns/$ns" --)
    in_ns ip link set lo up
    in_ns ip link add echnode0 type veth peer name echnode1
    in_ns ip addr add "$NODE_IP/32" dev echnode0
    in_ns ip link set echnode1 up
    in_ns ip link set echnode0 up
    # every Service ClusterIP is an address of this namespace (local-k8s-services binds them)
    in_ns ip route add local "$SERVICE_RANGE" dev lo
    local d
    for d in $(cgroup_hierarchies); do
        mkdir -p "$d/$ns" 2>/dev/null || up_failed "cannot create cgroup $d/$ns"
    done

    node_openssl >"$DIR/openssl.log" 2>&1 || up_failed "openssl failed (see $DIR/openssl.log)"
    local token
    token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    echo "$token" >"$DIR/admin.token"
    echo "$token,admin,admin,system:masters" >"$DIR/tokens.csv"
    echo "$NS_API_PORT" >"$DIR/api.port"
    write_node_kubeconfig "$token"
    link_kubectl

    start_daemon etcd "${NSENTER[@]}" "$etcd_bin" --name echelon-local --data-dir "$DIR/etcd" \
        --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
        --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
        --initial-cluster echelon-local=http://127.0.0.1:2380 --log-level warn
    start_daemon kube-apiserver "${NSENTER[@]}" "$BIN_DIR/kube-apiserver" \
        --etcd-servers=http://127.0.0.1:2379 \
        --bind-address=0.0.0.0 --advertise-address="$NODE_IP" --secure-port="$NS_API_PORT" \
        ${APISERVER_OLD_FLAGS[@]+"${APISERVER_OLD_FLAGS[@]}"} --cert-dir="$DIR/certs" \
        --tls-cert-file="$DIR/apiserver.crt" --tls-private-key-file="$DIR/apiserver.key" \
        --token-auth-file="$DIR/tokens.csv" --authorization-mode=Node,RBAC \
        --service-account-key-file="$DIR/sa.pub" \
        --service-account-signing-key-file="$DIR/sa.key" \
        --service-account-issuer=https://kubernetes.default.svc \
        --service-cluster-ip-range="$SERVICE_RANGE" \
        --allow-privileged=true --client-ca-file="$DIR/ca.crt" \
        --kubelet-client-certificate="$DIR/apiserver-kubelet-client.crt" \
        --kubelet-client-key="$DIR/apiserver-kubelet-client.key" \
        --kubelet-preferred-address-types=InternalIP
    mkdir -p "$(dirname "$LAST_DIR_FILE")"
    echo "$DIR" >"$LAST_DIR_FILE"
    local deadline=$((SECONDS + READY_TIMEOUT)) name
    until node_kubectl get --raw /readyz >/dev/null 2>&1; do
        for name in etcd kube-apiserver; do
            pid_alive "$name" || up_failed "$name exited during startup"
        done
        ((SECONDS < deadline)) || up_failed "/readyz not ok after ${READY_TIMEOUT}s"
        sleep 0.3
    done
    start_daemon kube-controller-manager "${NSENTER[@]}" "$BIN_DIR/kube-controller-manager" \
        --kubeconfig="$DIR/kubeconfig" --bind-address=127.0.0.1 --secure-port=0 \
        --service-account-private-key-file="$DIR/sa.key" --root-ca-file="$DIR/ca.crt" \
        --leader-elect=false --controllers='*' --use-service-account-credentials=false \
        ${PORT_OLD_FLAGS[@]+"${PORT_OLD_FLAGS[@]}"}
    start_daemon kube-scheduler "${NSENTER[@]}" "$BIN_DIR/kube-scheduler" --kubeconfig="$DIR/kubeconfig" \
        --leader-elect=false --bind-address=127.0.0.1 --secure-port=0 \
        ${PORT_OLD_FLAGS[@]+"${PORT_OLD_FLAGS[@]}"}
    start_daemon services "${NSENTER[@]}" /usr/bin/python3 "$SCRIPT_DIR/local-k8s-services" \
        --api "https://127.0.0.1:$NS_API_PORT" --token-file "$DIR/admin.token" --ca "$DIR/ca.crt" \
        --dns-ip "$DNS_IP" --domain "$CLUSTER_DOMAIN"

    write_containerd_config
    start_daemon containerd "${NSENTER[@]}" env PATH="$NODE_ROOT/usr/bin:$NODE_ROOT/usr/sbin:$PATH" \
        "$NODE_ROOT/usr/bin/containerd" --config "$n/containerd.toml"
    deadline=$((SECONDS + 30))
    until [[ -S "$n/containerd.sock" ]]; do
        # not at once: right after start_daemon the process is still exec-ing its way from
        # setsid to containerd
        sleep 0.2
        pid_alive containerd || up_failed "containerd exited during startup"
        ((SECONDS < deadline)) || up_failed "containerd did not open its socket in 30s"
    done
    import_images "$NODE_IMAGES"/*.tar
    # by default, what scripts/build-images made in this repository
    if ((${#IMAGES_DIRS[@]} == 0)) && [[ -d "$SCRIPT_DIR/../dist/images" ]]; then
        IMAGES_DIRS=("$SCRIPT_DIR/../dist/images")
    fi
    local images
    for images in ${IMAGES_DIRS[@]+"${IMAGES_DIRS[@]}"}; do import_images "$images"/*.tar; done

    write_kubelet_config
    start_daemon kubelet "${NSENTER[@]}" "$BIN_DIR/kubelet" --kubeconfig="$DIR/kubeconfig" \
        --config="$n/kubelet.yaml" ${KUBELET_OLD_FLAGS[@]+"${KUBELET_OLD_FLAGS[@]}"} \
        --container-runtime-endpoint="unix://$n/containerd.sock" --node-ip="$NODE_IP" \
        --hostname-override="$NODE_NAME" --root-dir="$n/kubelet" --cert-dir="$n/kubelet-pki" \
        --v=1
    deadline=$((SECONDS + NODE_READY_TIMEOUT))
    until node_ready; do
        for name in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet services; do
            pid_alive "$name" || up_failed "$name exited during startup"
        done
        ((SECONDS < deadline)) || up_failed "node $NODE_NAME not Ready after ${NODE_READY_TIMEOUT}s"
        sleep 0.5
    done
    log "node $NODE_NAME ready in $((SECONDS - start))s (network namespace $ns, state in $DIR)"
    print_env
}

# -------------------------------------------------------------------------------- down

node_daemons=(kubelet kube-scheduler kube-controller-manager services)

node_delete_workloads() {
    # delete every pod through the API while the kubelet runs, so that it stops them the proper
    # way (CNI teardown, sandbox network namespaces removed, volumes unmounted)
    pid_alive kube-apiserver && pid_alive kubelet || return 0
    node_kubectl get --raw /readyz >/dev/null 2>&1 || return 0
    node_kubectl delete deployments,replicasets,statefulsets,daemonsets,jobs,cronjobs --all \
        --all-namespaces --wait=false >/dev/null 2>&1 || true
    node_kubectl delete pods --all --all-namespaces --grace-period=1 --wait=false >/dev/null 2>&1 || true
    local i
    for ((i = 0; i < 120; i++)); do
        [[ -z "$(node_kubectl get pods --all-namespaces -o name 2>/dev/null)" ]] && break
        sleep 0.5
    done
    # the kubelet removes stopped sandboxes lazily; give it a moment, the rest is removed below
    sleep 2
}

containerd_leftovers() {
    # stop and remove what containerd still runs (kill tasks, then remove containers)
    local ctr=("$NODE_ROOT/usr/bin/ctr" --address "$DIR/node/containerd.sock" -n k8s.io) id
    [[ -S "$DIR/node/containerd.sock" ]] && pid_alive containerd || return 0
    for id in $(in_ns "${ctr[@]}" tasks ls -q 2>/dev/null); do
        in_ns "${ctr[@]}" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    sleep 1
    for id in $(in_ns "${ctr[@]}" tasks ls -q 2>/dev/null); do
        in_ns "${ctr[@]}" tasks rm -f "$id" >/dev/null 2>&1 || true
    done
    for id in $(in_ns "${ctr[@]}" containers ls -q 2>/dev/null); do
        in_ns "${ctr[@]}" containers rm "$id" >/dev/null 2>&1 || true
    done
}

kill_shims() {
    # containerd's shims outlive it (they are reparented): those of this cluster's socket
    local pid
    for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $DIR/node/containerd.sock" || true); do
        kill -KILL "$pid" 2>/dev/null || true
    done
}

node_down() {
    # Stop the node and give the machine back as `up` found it. Idempotent.
    local n="$DIR/node" ns
    ns=$(node_netns)
    [[ -n "$ns" ]] || return 0
    node_delete_workloads
    stop_daemons "${node_daemons[@]}"
    containerd_leftovers
    stop_daemons containerd
    kill_shims
    stop_daemons kube-apiserver
    stop_daemons etcd
    local m
    # CNI network namespaces of sandboxes containerd could not remove itself
    if [[ -d /run/netns ]]; then
        for m in /run/netns/cni-*; do
            [[ -e "$m" ]] || continue
            grep -qxF "$(basename "$m")" "$n/netns-entries.before" 2>/dev/null && continue
            umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
            rm -f "$m"
        done
    fi
    # volumes, overlay snapshots, sandbox /dev/shm, ... : everything mounted below DIR
    for m in $(mounts_under "$DIR"); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cannot unmount $m"
    done
    if [[ -e "/run/netns/$ns" ]]; then
        ip netns del "$ns" 2>/dev/null || log "ip netns del $ns failed"
    fi
    if [[ "$(cat "$n/netns-mounted.before" 2>/dev/null)" == 0 ]] && mountpoint -q /run/netns \
        && [[ -z "$(ls -A /run/netns 2>/dev/null)" ]]; then
        umount /run/netns 2>/dev/null || true
    fi
    local d
    for d in $(cgroup_hierarchies); do
        [[ -d "$d/$ns" ]] || continue
        find "$d/$ns" -depth -type d -exec rmdir {} \; 2>/dev/null || true
        [[ -d "$d/$ns" ]] && log "cgroup $d/$ns is still there (processes left in it?)"
    done
    local line
    if [[ -s "$n/sysctls.before" ]]; then
        while IFS= read -r line; do
            [[ "$(sysctl -n "${line%%=*}")" == "${line#*=}" ]] || sysctl -q -w "$line" >/dev/null
        done <"$n/sysctls.before"
    fi
    local p others=0
    # another node of this machine (a concurrent run) shares these paths: then only what is
    # empty goes (containerd's shim sockets are always in /run/containerd/s)
    for m in /run/netns/echelon-*; do [[ -e "$m" && "$m" != "/run/netns/$ns" ]] && others=1; done
    if [[ -f "$n/paths.before" ]]; then
        for p in "${NODE_MACHINE_PATHS[@]}"; do
            if grep -qxF "$p" "$n/paths.before"; then
                # it was there: take out only what appeared in it since (pod log dirs the
                # kubelet had no time to remove, CNI results, shim sockets)
                ((others)) || [[ "$p" == /run/netns ]] && continue
                local e
                while IFS= read -r e; do
                    [[ -e "$e" || -L "$e" ]] || continue
                    grep -qxF "$e" "$n/entries.before" || rm -rf --one-file-system "$e"
                done < <(find "$p" -mindepth 1 -maxdepth 2 2>/dev/null | sort -r)
                continue
            fi
            [[ -e "$p" ]] || continue
            if [[ "$p" == /run/netns ]]; then
                # only when empty (another namespace may have been made meanwhile)
                rmdir /run/netns 2>/dev/null || true
            elif ((others)); then
                find "$p" -depth -type d -empty -delete 2>/dev/null || true
            else
                rm -rf --one-file-system "$p"
            fi
        done
    fi
    rm -f "$n/netns"
}
